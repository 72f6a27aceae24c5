// Byte-level BPE over a GGUF "gpt2" vocabulary (tokens in GPT-2's byte→unicode alphabet plus a
// ranked merge list), as llama.cpp and Hugging Face run it: split the text with the
// pre-tokenizer regex named by tokenizer.ggml.pre, map each piece's UTF-8 bytes to the
// byte-unicode alphabet, then apply merges lowest rank first (leftmost among equal ranks).
// Special tokens are not parsed out of the text. Decoding maps the alphabet back to bytes.

import { ConfigError } from '../../core/errors.js';
import type { EncodeOptions, Tokenizer } from './types.js';
import { BPE_PRE_TOKENIZERS, TOKEN_TYPE, type VocabExport } from './vocab.js';

/** GPT-2's reversible byte → printable character map. */
export function byteToUnicode(): string[] {
  const keep: number[] = [];
  for (let b = 0x21; b <= 0x7e; b++) keep.push(b);
  for (let b = 0xa1; b <= 0xac; b++) keep.push(b);
  for (let b = 0xae; b <= 0xff; b++) keep.push(b);
  const map: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) map[b] = keep.includes(b) ? String.fromCharCode(b) : String.fromCharCode(256 + n++);
  return map;
}

const B2U = byteToUnicode();
const U2B = new Map(B2U.map((c, b) => [c, b]));
const utf8 = new TextEncoder();

export class BpeTokenizer implements Tokenizer {
  readonly kind = 'bpe' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly unkId: number | null;
  // the piece and merge maps are built on the first encode: a run that only carries the
  // vocabulary over (quantizing a GGUF into a GGUF) does not pay for 128k pieces and 280k merges
  private maps: { ids: Map<string, number>; ranks: Map<string, number> } | null = null;
  private readonly split: RegExp;
  private readonly cache = new Map<string, number[]>();

  constructor(readonly vocab: VocabExport) {
    if (!vocab.merges) throw new ConfigError('bad_config', 'a gpt2 (byte-level BPE) vocabulary needs a merge list', { field: 'tokenizer.ggml.merges' });
    this.vocabSize = vocab.tokens.length;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.unkId = vocab.unkId;
    const pre = vocab.pre ?? 'default';
    const src = BPE_PRE_TOKENIZERS[pre];
    if (!src) {
      throw new ConfigError('unsupported', 'unknown byte-level BPE pre-tokenizer', { field: 'tokenizer.ggml.pre', expected: Object.keys(BPE_PRE_TOKENIZERS).join(', '), found: pre });
    }
    this.split = new RegExp(src, 'gu');
  }

  private buildMaps(): { ids: Map<string, number>; ranks: Map<string, number> } {
    const ids = new Map<string, number>();
    const ranks = new Map<string, number>();
    this.vocab.tokens.forEach((t, i) => {
      if (!ids.has(t)) ids.set(t, i);
    });
    this.vocab.merges!.forEach((m, i) => {
      if (!ranks.has(m)) ranks.set(m, i);
    });
    return { ids, ranks };
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    const out: number[] = [];
    if ((opts.bos ?? this.vocab.addBos) && this.bosId !== null) out.push(this.bosId);
    for (const m of text.matchAll(this.split)) {
      for (const id of this.word(m[0])) out.push(id);
    }
    if ((opts.eos ?? this.vocab.addEos) && this.eosId !== null) out.push(this.eosId);
    return out;
  }

  private word(w: string): number[] {
    const hit = this.cache.get(w);
    if (hit) return hit;
    const { ids: pieces, ranks } = (this.maps ??= this.buildMaps());
    let syms = Array.from(utf8.encode(w), (b) => B2U[b]);
    for (;;) {
      let best = -1;
      let bestRank = Infinity;
      for (let i = 0; i + 1 < syms.length; i++) {
        const r = ranks.get(syms[i] + ' ' + syms[i + 1]);
        if (r !== undefined && r < bestRank) {
          bestRank = r;
          best = i;
        }
      }
      if (best < 0) break;
      // merge every occurrence of the best pair, left to right (non-overlapping)
      const a = syms[best];
      const b = syms[best + 1];
      const next: string[] = [];
      for (let i = 0; i < syms.length; i++) {
        if (i + 1 < syms.length && syms[i] === a && syms[i + 1] === b) {
          next.push(a + b);
          i++;
        } else next.push(syms[i]);
      }
      syms = next;
    }
    const ids = syms.map((s) => pieces.get(s) ?? this.unkId ?? -1).filter((x) => x >= 0);
    if (this.cache.size < 65536) this.cache.set(w, ids);
    return ids;
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    for (const id of ids) {
      if (id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} outside the vocabulary (0..${this.vocabSize - 1})`);
      if (this.vocab.types[id] === TOKEN_TYPE.CONTROL) continue;
      for (const ch of this.vocab.tokens[id]) {
        const b = U2B.get(ch);
        if (b !== undefined) bytes.push(b);
        else for (const x of utf8.encode(ch)) bytes.push(x);
      }
    }
    return new TextDecoder().decode(Uint8Array.from(bytes));
  }

  tokenPiece(id: number): string {
    return this.vocab.tokens[id];
  }

  exportVocab(): VocabExport {
    return this.vocab;
  }
}
