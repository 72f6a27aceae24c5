// Byte-level BPE: a deterministic trainer and the tokenizer it produces (GPT-2 conventions, so the
// result saves as a Hugging Face tokenizer.json that @huggingface/tokenizers encodes identically).
// Ids: 0..255 are the bytes (in byte order), then one id per merge in merge order, then the
// special token <|endoftext|> last. Ties between equally frequent pairs go to the pair whose
// merged string sorts first (then the smaller left id), so training is deterministic.

import { ConfigError } from '../core/errors.js';
import type { EncodeOptions, Tokenizer } from '../formats/tokenizer/types.js';

/** GPT-2's pre-tokenizer split (the regex Hugging Face ByteLevel uses with use_regex: true). */
export const GPT2_SPLIT = /'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+/gu;

export const END_OF_TEXT = '<|endoftext|>';

/** GPT-2's bytes_to_unicode: printable bytes map to themselves, the rest to U+0100 onwards. */
export function bytesToUnicode(): string[] {
  const bs: number[] = [];
  for (let b = 33; b <= 126; b++) bs.push(b);
  for (let b = 161; b <= 172; b++) bs.push(b);
  for (let b = 174; b <= 255; b++) bs.push(b);
  const map: string[] = new Array(256);
  for (const b of bs) map[b] = String.fromCodePoint(b);
  let n = 0;
  for (let b = 0; b < 256; b++) if (!bs.includes(b)) map[b] = String.fromCodePoint(256 + n++);
  return map;
}

const B2U = bytesToUnicode();
const U2B = new Map(B2U.map((u, b) => [u, b]));
const enc = new TextEncoder();
const dec = new TextDecoder('utf-8', { fatal: false });

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

/** A tokenizer over a trained byte-level BPE model. */
export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe' as const;
  readonly vocabSize: number;
  readonly bosId: number;
  readonly eosId: number;
  readonly unkId = null;
  private readonly rank = new Map<number, number>();
  private readonly cache = new Map<string, number[]>();

  constructor(readonly model: BpeModel) {
    this.vocabSize = model.vocab.length;
    this.bosId = this.vocabSize - 1;
    this.eosId = this.vocabSize - 1;
    model.merges.forEach(([a, b], r) => this.rank.set(a * 65536 + b, r));
  }

  private encodeWord(w: string): number[] {
    const hit = this.cache.get(w);
    if (hit) return hit;
    const ids = Array.from(enc.encode(w));
    // repeatedly apply the lowest-ranked merge present (standard BPE encoding)
    while (ids.length > 1) {
      let bestR = Infinity;
      let bestI = -1;
      for (let i = 0; i + 1 < ids.length; i++) {
        const r = this.rank.get(ids[i] * 65536 + ids[i + 1]);
        if (r !== undefined && r < bestR) {
          bestR = r;
          bestI = i;
        }
      }
      if (bestI < 0) break;
      const [a, b] = this.model.merges[bestR];
      for (let i = 0; i + 1 < ids.length; i++) {
        if (ids[i] === a && ids[i + 1] === b) ids.splice(i, 2, 256 + bestR);
      }
    }
    if (this.cache.size < 100000) this.cache.set(w, ids);
    return ids;
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if (opts.bos) out.push(this.bosId);
    for (const m of text.matchAll(GPT2_SPLIT)) for (const id of this.encodeWord(m[0])) out.push(id);
    if (opts.eos) out.push(this.eosId);
    return out;
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      if (id === this.eosId) continue;
      for (const ch of this.model.vocab[id] ?? '') {
        const b = U2B.get(ch);
        if (b !== undefined) bytes.push(b);
      }
    }
    return dec.decode(Uint8Array.from(bytes));
  }

  tokenPiece(id: number): string {
    return this.model.vocab[id] ?? '';
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
  static fromHfJson(json: { model: { vocab: Record<string, number>; merges: (string | [string, string])[] } }): BpeTokenizer {
    const vocab: string[] = [];
    for (const [t, i] of Object.entries(json.model.vocab)) vocab[i] = t;
    const idOf = new Map(vocab.map((t, i) => [t, i]));
    const merges = json.model.merges.map((m) => {
      const [l, r] = Array.isArray(m) ? m : m.split(' ');
      return [idOf.get(l) as number, idOf.get(r) as number] as [number, number];
    });
    return new BpeTokenizer({ vocab, merges });
  }
}
