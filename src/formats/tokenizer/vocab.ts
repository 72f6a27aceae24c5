// A tokenizer's vocabulary in the shape GGUF stores it (tokenizer.ggml.*), the common currency
// for converting between llama2.c tokenizer.bin, GGUF and Hugging Face tokenizer.json.
// - model 'llama': SentencePiece BPE; pieces use '▁' (U+2581) for spaces, scores rank merges,
//   byte-fallback tokens are '<0xNN>' with type BYTE.
// - model 'gpt2': byte-level BPE; pieces are in GPT-2's byte→unicode alphabet, merges "a b".

import { ConfigError } from '../../core/errors.js';
import type { Llama2cVocab } from '../llama2c/tokenizer-bin.js';

/** GGUF token types (llama.cpp's llama_token_type). */
export const TOKEN_TYPE = { NORMAL: 1, UNKNOWN: 2, CONTROL: 3, USER_DEFINED: 4, UNUSED: 5, BYTE: 6 } as const;

export interface VocabExport {
  model: 'llama' | 'gpt2';
  tokens: string[];
  /** 'llama' only (merge priority, higher first) */
  scores: Float32Array | null;
  /** GGUF token types per id */
  types: Int32Array;
  /** 'gpt2' only: "left right" pairs, highest priority first */
  merges: string[] | null;
  bosId: number | null;
  eosId: number | null;
  unkId: number | null;
  padId: number | null;
  addBos: boolean;
  addEos: boolean;
  /** 'llama': prepend '▁' to the text (SentencePiece add_dummy_prefix) */
  addSpacePrefix: boolean;
  /** 'gpt2': pre-tokenizer name as GGUF's tokenizer.ggml.pre ('default', 'llama-bpe', 'qwen2', …) */
  pre: string | null;
}

export const SPM_SPACE = '\u2581';
const BYTE_PIECE = /^<0x[0-9A-Fa-f]{2}>$/;
const CONTROL_L2C: Record<number, string> = { 0: '<unk>', 1: '<s>', 2: '</s>' };

/**
 * llama2.c tokenizer.bin → SentencePiece vocabulary. llama2.c's exporter turned '▁' into ' ' and
 * wrapped BOS/EOS in newlines ("\n<s>\n"); both are undone here. Ids 0/1/2 are unk/BOS/EOS.
 */
export function spmVocabFromLlama2c(v: Llama2cVocab): VocabExport {
  const dec = new TextDecoder();
  const tokens = v.pieces.map((p, i) => CONTROL_L2C[i] ?? dec.decode(p).replaceAll(' ', SPM_SPACE));
  const types = Int32Array.from(tokens, (t, i) =>
    i === 0 ? TOKEN_TYPE.UNKNOWN : i <= 2 ? TOKEN_TYPE.CONTROL : BYTE_PIECE.test(t) ? TOKEN_TYPE.BYTE : TOKEN_TYPE.NORMAL,
  );
  return {
    model: 'llama',
    tokens,
    scores: Float32Array.from(v.scores),
    types,
    merges: null,
    bosId: 1,
    eosId: 2,
    unkId: 0,
    padId: null,
    addBos: true,
    addEos: false,
    addSpacePrefix: true,
    pre: null,
  };
}

/** SentencePiece vocabulary → llama2.c tokenizer.bin contents (the inverse of the above). */
export function llama2cVocabFromSpm(v: VocabExport): Llama2cVocab {
  if (v.model !== 'llama' || !v.scores) {
    throw new ConfigError('unsupported', 'llama2.c tokenizer.bin holds only SentencePiece vocabularies', { field: 'tokenizer.ggml.model', expected: 'llama', found: v.model });
  }
  const enc = new TextEncoder();
  const pieces = v.tokens.map((t, i) => {
    if (i === v.bosId) return enc.encode('\n<s>\n');
    if (i === v.eosId) return enc.encode('\n</s>\n');
    return enc.encode(v.types[i] === TOKEN_TYPE.BYTE || v.types[i] === TOKEN_TYPE.CONTROL || v.types[i] === TOKEN_TYPE.UNKNOWN ? t : t.replaceAll(SPM_SPACE, ' '));
  });
  return { maxTokenLength: pieces.reduce((a, p) => Math.max(a, p.length), 0), pieces, scores: Float32Array.from(v.scores) };
}

/**
 * Merge list for a SentencePiece vocabulary, as Hugging Face's converter derives it: every split
 * of a piece into two pieces that both exist, ordered by the merged piece's score (descending),
 * then by the ids of the two halves.
 */
export function spmMerges(v: VocabExport): [string, string][] {
  const scores = v.scores as Float32Array;
  const id = new Map<string, number>();
  v.tokens.forEach((t, i) => {
    if (!id.has(t)) id.set(t, i);
  });
  const all: { l: string; r: string; s: number; il: number; ir: number }[] = [];
  v.tokens.forEach((t, i) => {
    if (v.types[i] !== TOKEN_TYPE.NORMAL && v.types[i] !== TOKEN_TYPE.USER_DEFINED) return;
    const cps = Array.from(t);
    for (let k = 1; k < cps.length; k++) {
      const l = cps.slice(0, k).join('');
      const r = cps.slice(k).join('');
      const il = id.get(l);
      const ir = id.get(r);
      if (il !== undefined && ir !== undefined) all.push({ l, r, s: scores[i], il, ir });
    }
  });
  all.sort((a, b) => b.s - a.s || a.il - b.il || a.ir - b.ir);
  return all.map((m) => [m.l, m.r]);
}

export interface HfTokenizerFiles {
  /** tokenizer.json */
  tokenizer: Record<string, unknown>;
  /** tokenizer_config.json */
  config: Record<string, unknown>;
}

/**
 * tokenizer.json + tokenizer_config.json for a SentencePiece vocabulary, in the layout Hugging
 * Face uses for Llama-2 ("legacy": Prepend + Replace normalizer, BPE with byte fallback, a
 * ByteFallback/Fuse/Strip decoder), so transformers' LlamaTokenizerFast and tokenizers load it.
 */
export function spmTokenizerFiles(v: VocabExport, modelMaxLength: number): HfTokenizerFiles {
  if (v.model !== 'llama') throw new ConfigError('unsupported', 'tokenizer.json export is implemented for SentencePiece vocabularies', { field: 'tokenizer.ggml.model', expected: 'llama', found: v.model });
  const vocab: Record<string, number> = {};
  v.tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  const name = (i: number | null) => (i === null ? null : v.tokens[i]);
  const special = v.tokens
    .map((t, i) => ({ t, i }))
    .filter(({ i }) => v.types[i] === TOKEN_TYPE.CONTROL || v.types[i] === TOKEN_TYPE.UNKNOWN || v.types[i] === TOKEN_TYPE.USER_DEFINED)
    .map(({ t, i }) => ({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: v.types[i] !== TOKEN_TYPE.USER_DEFINED }));
  const bos = name(v.bosId);
  const eos = name(v.eosId);
  const seq = (ab: 'A' | 'B') => [
    ...(v.addBos && bos ? [{ SpecialToken: { id: bos, type_id: 0 } }] : []),
    { Sequence: { id: ab, type_id: 0 } },
    ...(v.addEos && eos ? [{ SpecialToken: { id: eos, type_id: 0 } }] : []),
  ];
  const specialTokens: Record<string, unknown> = {};
  for (const [t, i] of [[bos, v.bosId], [eos, v.eosId]] as const) {
    if (t !== null && i !== null) specialTokens[t] = { id: t, ids: [i], tokens: [t] };
  }
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special,
    normalizer: {
      type: 'Sequence',
      normalizers: [
        ...(v.addSpacePrefix ? [{ type: 'Prepend', prepend: SPM_SPACE }] : []),
        { type: 'Replace', pattern: { String: ' ' }, content: SPM_SPACE },
      ],
    },
    pre_tokenizer: null,
    post_processor: { type: 'TemplateProcessing', single: seq('A'), pair: [...seq('A'), ...seq('B').map((x) => ('Sequence' in x ? { Sequence: { id: 'B', type_id: 1 } } : x))], special_tokens: specialTokens },
    decoder: {
      type: 'Sequence',
      decoders: [
        { type: 'Replace', pattern: { String: SPM_SPACE }, content: ' ' },
        { type: 'ByteFallback' },
        { type: 'Fuse' },
        ...(v.addSpacePrefix ? [{ type: 'Strip', content: ' ', start: 1, stop: 0 }] : []),
      ],
    },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: name(v.unkId),
      continuing_subword_prefix: null,
      end_of_word_suffix: null,
      fuse_unk: true,
      byte_fallback: true,
      ignore_merges: false,
      vocab,
      merges: spmMerges(v),
    },
  };
  const config = {
    add_bos_token: v.addBos,
    add_eos_token: v.addEos,
    bos_token: bos,
    eos_token: eos,
    unk_token: name(v.unkId),
    pad_token: name(v.padId),
    clean_up_tokenization_spaces: false,
    legacy: true,
    model_max_length: modelMaxLength,
    tokenizer_class: 'LlamaTokenizer',
    added_tokens_decoder: Object.fromEntries(special.map((s) => [String(s.id), { ...s, id: undefined }])),
  };
  return { tokenizer, config };
}

// Pre-tokenizer regexes for byte-level BPE, written for JS (no inline (?i:…) groups), by
// GGUF tokenizer.ggml.pre name. 'default' is GPT-2's (what ByteLevel's use_regex applies).
const CONTRACTIONS = "'(?:[sS]|[tT]|[rR][eE]|[vV][eE]|[mM]|[lL][lL]|[dD])";
export const BPE_PRE_TOKENIZERS: Record<string, string> = {
  default: "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+",
  'llama-bpe': `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
  qwen2: `${CONTRACTIONS}|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+`,
};
BPE_PRE_TOKENIZERS.gpt2 = BPE_PRE_TOKENIZERS.default;
BPE_PRE_TOKENIZERS.smollm = BPE_PRE_TOKENIZERS.default;

/**
 * tokenizer.json + tokenizer_config.json for a byte-level BPE ('gpt2') vocabulary: BPE with its
 * merges, a Split on the pre-tokenizer regex then ByteLevel (GPT-2's own regex when pre is
 * 'default'), control tokens as special added tokens, BOS/EOS added as the vocabulary says.
 */
export function bpeTokenizerFiles(v: VocabExport, modelMaxLength: number): HfTokenizerFiles {
  if (v.model !== 'gpt2' || !v.merges) throw new ConfigError('unsupported', 'expected a byte-level BPE vocabulary with merges', { field: 'tokenizer.ggml.model', expected: 'gpt2', found: v.model });
  const pre = v.pre ?? 'default';
  const regex = BPE_PRE_TOKENIZERS[pre];
  if (!regex) throw new ConfigError('unsupported', 'unknown byte-level BPE pre-tokenizer', { field: 'tokenizer.ggml.pre', expected: Object.keys(BPE_PRE_TOKENIZERS).join(', '), found: pre });
  const vocab: Record<string, number> = {};
  v.tokens.forEach((t, i) => {
    if (!(t in vocab)) vocab[t] = i;
  });
  const special = v.tokens
    .map((t, i) => ({ t, i }))
    .filter(({ i }) => v.types[i] === TOKEN_TYPE.CONTROL || v.types[i] === TOKEN_TYPE.USER_DEFINED)
    .map(({ t, i }) => ({ id: i, content: t, single_word: false, lstrip: false, rstrip: false, normalized: false, special: v.types[i] === TOKEN_TYPE.CONTROL }));
  const name = (i: number | null) => (i === null ? null : v.tokens[i]);
  const bos = name(v.bosId);
  const eos = name(v.eosId);
  const single = [
    ...(v.addBos && bos ? [{ SpecialToken: { id: bos, type_id: 0 } }] : []),
    { Sequence: { id: 'A', type_id: 0 } },
    ...(v.addEos && eos ? [{ SpecialToken: { id: eos, type_id: 0 } }] : []),
  ];
  const specialTokens: Record<string, unknown> = {};
  for (const [t, i] of [[bos, v.bosId], [eos, v.eosId]] as const) {
    if (t !== null && i !== null) specialTokens[t] = { id: t, ids: [i], tokens: [t] };
  }
  const byteLevel = (useRegex: boolean) => ({ type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: useRegex });
  const tokenizer = {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: special,
    normalizer: null,
    pre_tokenizer:
      pre === 'default' || pre === 'gpt2' || pre === 'smollm'
        ? byteLevel(true)
        : { type: 'Sequence', pretokenizers: [{ type: 'Split', pattern: { Regex: regex }, behavior: 'Isolated', invert: false }, byteLevel(false)] },
    post_processor: { type: 'TemplateProcessing', single, pair: [...single, ...single.map((x) => ('Sequence' in x ? { Sequence: { id: 'B', type_id: 1 } } : x))], special_tokens: specialTokens },
    decoder: byteLevel(true),
    model: { type: 'BPE', dropout: null, unk_token: null, continuing_subword_prefix: null, end_of_word_suffix: null, fuse_unk: false, byte_fallback: false, ignore_merges: false, vocab, merges: v.merges },
  };
  const config = {
    add_bos_token: v.addBos,
    add_eos_token: v.addEos,
    bos_token: bos,
    eos_token: eos,
    pad_token: name(v.padId),
    clean_up_tokenization_spaces: false,
    model_max_length: modelMaxLength,
    tokenizer_class: 'PreTrainedTokenizerFast',
    added_tokens_decoder: Object.fromEntries(special.map((s) => [String(s.id), { ...s, id: undefined }])),
  };
  return { tokenizer, config };
}
