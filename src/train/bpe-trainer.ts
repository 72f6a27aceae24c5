// Byte-level BPE training: a deterministic trainer whose result runs as formats/tokenizer's
// byte-level BPE (the one encoder and GPT-2 byte table) and saves as a Hugging Face tokenizer.json
// that @huggingface/tokenizers encodes identically.
// Ids: 0..255 are the bytes (in byte order), then one id per merge in merge order, then the
// special token <|endoftext|> last. Ties between equally frequent pairs go to the pair whose
// merged string sorts first (then the smaller left id), so training is deterministic.

import { ConfigError } from '../core/errors.js';
import { BpeTokenizer as ByteLevelBpe, byteToUnicode } from '../formats/tokenizer/bpe.js';
import { BPE_PRE_TOKENIZERS, TOKEN_TYPE, type VocabExport } from '../formats/tokenizer/vocab.js';

/** GPT-2's pre-tokenizer split (the regex Hugging Face ByteLevel uses with use_regex: true). */
export const GPT2_SPLIT = new RegExp(BPE_PRE_TOKENIZERS.default, 'gu');

export const END_OF_TEXT = '<|endoftext|>';

const B2U = byteToUnicode();
const enc = new TextEncoder();

export interface BpeModel {
  /** token strings in the byte-to-unicode alphabet, index = id (special token last) */
  vocab: string[];
  /** merges as [left id, right id] in rank order; merge r creates id 256 + r */
  merges: [number, number][];
}

export interface BpeTrainOptions {
  /** total vocabulary size including the 256 bytes and the special token */
  vocabSize: number;
  /** stop merging pairs seen fewer times than this */
  minFrequency?: number;
  signal?: AbortSignal;
}

/** Trains byte-level BPE on `text`. */
export function trainBpe(text: string, opts: BpeTrainOptions): BpeModel {
  const { vocabSize } = opts;
  const minFreq = opts.minFrequency ?? 2;
  if (!Number.isInteger(vocabSize) || vocabSize < 257 || vocabSize > 65535) {
    throw new ConfigError('bad_option', 'BPE vocabulary size out of range', { field: 'vocabSize', expected: 'an integer in [257, 65535]', found: vocabSize });
  }
  // unique pre-tokenized words with counts, as byte-id sequences
  const wordCount = new Map<string, number>();
  for (const m of text.matchAll(GPT2_SPLIT)) wordCount.set(m[0], (wordCount.get(m[0]) ?? 0) + 1);
  const words: number[][] = [];
  const freq: number[] = [];
  for (const [w, c] of [...wordCount].sort((a, b) => (a[0] < b[0] ? -1 : 1))) {
    words.push(Array.from(enc.encode(w)));
    freq.push(c);
  }
  const vocab = B2U.slice();
  const merges: [number, number][] = [];
  const key = (a: number, b: number) => a * 65536 + b;
  const pairCount = new Map<number, number>();
  const where = new Map<number, Set<number>>();
  const addWord = (wi: number, sign: number) => {
    const w = words[wi];
    for (let i = 0; i + 1 < w.length; i++) {
      const k = key(w[i], w[i + 1]);
      pairCount.set(k, (pairCount.get(k) ?? 0) + sign * freq[wi]);
      if (sign > 0) {
        let s = where.get(k);
        if (!s) where.set(k, (s = new Set()));
        s.add(wi);
      }
    }
  };
  for (let wi = 0; wi < words.length; wi++) addWord(wi, 1);
  // a pair whose merged string is already a token (e.g. "a"+"bc" after "ab"+"c") is never merged,
  // so every token string stays unique (tokenizer.json keys the vocabulary by string)
  const seen = new Set(vocab);
  const banned = new Set<number>();

  while (vocab.length < vocabSize - 1) {
    if (opts.signal?.aborted) throw new ConfigError('bad_option', 'BPE training interrupted');
    let best = -1;
    let bestC = 0;
    let bestStr = '';
    for (const [k, c] of pairCount) {
      if (c < bestC || c <= 0 || banned.has(k)) continue;
      const s = vocab[Math.floor(k / 65536)] + vocab[k % 65536];
      if (c > bestC || s < bestStr || (s === bestStr && k < best)) {
        best = k;
        bestC = c;
        bestStr = s;
      }
    }
    if (best < 0 || bestC < minFreq) break;
    if (seen.has(bestStr)) {
      banned.add(best);
      continue;
    }
    seen.add(bestStr);
    const a = Math.floor(best / 65536);
    const b = best % 65536;
    const id = vocab.length;
    vocab.push(bestStr);
    merges.push([a, b]);
    for (const wi of where.get(best) ?? []) {
      addWord(wi, -1);
      const w = words[wi];
      const nw: number[] = [];
      for (let i = 0; i < w.length; i++) {
        if (i + 1 < w.length && w[i] === a && w[i + 1] === b) {
          nw.push(id);
          i++;
        } else nw.push(w[i]);
      }
      words[wi] = nw;
      addWord(wi, 1);
    }
    where.delete(best);
    pairCount.delete(best);
  }
  vocab.push(END_OF_TEXT);
  return { vocab, merges };
}

/** The GGUF-style vocabulary of a trained model: byte-level BPE, <|endoftext|> a control token (BOS and EOS). */
export function trainedBpeVocab(m: BpeModel): VocabExport {
  const last = m.vocab.length - 1;
  return {
    model: 'gpt2',
    tokens: m.vocab,
    scores: null,
    types: Int32Array.from(m.vocab, (_, i) => (i === last ? TOKEN_TYPE.CONTROL : TOKEN_TYPE.NORMAL)),
    merges: m.merges.map(([a, b]) => `${m.vocab[a]} ${m.vocab[b]}`),
    bosId: last,
    eosId: last,
    unkId: null,
    padId: null,
    addBos: false,
    addEos: false,
    addSpacePrefix: false,
    pre: 'default',
  };
}

/**
 * A trained byte-level BPE model as a tokenizer: formats/tokenizer's encoder on its vocabulary, plus
 * the model (ids as merge pairs) and its tokenizer.json. Token strings are unique (the trainer never
 * merges into an existing string), so ranking merges by string pair equals ranking them by id pair.
 */
export class TrainedBpeTokenizer extends ByteLevelBpe {
  declare readonly bosId: number;
  declare readonly eosId: number;

  constructor(readonly model: BpeModel) {
    super(trainedBpeVocab(model));
  }

  /** Hugging Face tokenizer.json (BPE model, ByteLevel pre-tokenizer and decoder). */
  toHfJson(): Record<string, unknown> {
    const vocab: Record<string, number> = {};
    this.model.vocab.forEach((t, i) => (vocab[t] = i));
    return {
      version: '1.0',
      truncation: null,
      padding: null,
      added_tokens: [{ id: this.eosId, content: END_OF_TEXT, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true }],
      normalizer: null,
      pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      post_processor: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: false, use_regex: true },
      decoder: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
      model: {
        type: 'BPE',
        dropout: null,
        unk_token: null,
        continuing_subword_prefix: null,
        end_of_word_suffix: null,
        fuse_unk: false,
        byte_fallback: false,
        ignore_merges: false,
        vocab,
        merges: this.model.merges.map(([a, b]) => `${this.model.vocab[a]} ${this.model.vocab[b]}`),
      },
    };
  }

  /** Rebuilds the tokenizer from a tokenizer.json written by toHfJson. */
  static fromHfJson(json: { model: { vocab: Record<string, number>; merges: (string | [string, string])[] } }): TrainedBpeTokenizer {
    const vocab: string[] = [];
    for (const [t, i] of Object.entries(json.model.vocab)) vocab[i] = t;
    const idOf = new Map(vocab.map((t, i) => [t, i]));
    const merges = json.model.merges.map((m) => {
      const [l, r] = Array.isArray(m) ? m : m.split(' ');
      return [idOf.get(l) as number, idOf.get(r) as number] as [number, number];
    });
    return new TrainedBpeTokenizer({ vocab, merges });
  }
}

