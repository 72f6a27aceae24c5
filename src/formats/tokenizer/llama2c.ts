// llama2.c's tokenizer (run.c `encode` / `decode`), reproduced exactly:
// - encode: BOS (id 1) if asked; a dummy-prefix " " token when the text is non-empty; each UTF-8
//   code point (up to 4 bytes) looked up as a piece, else its bytes as byte-fallback ids
//   (byte + 3, i.e. pieces <0x00>…<0xFF> at ids 3..258); then score-greedy pair merging
//   (merge.ts); EOS (id 2) if asked.
// - decode: a piece that starts with a space loses it right after BOS; a "<0xNN>" piece is the raw
//   byte NN. The byte stream is decoded as UTF-8 at the end (run.c prints bytes as they come).
//   BOS/EOS produce no text.

import type { EncodeOptions, Tokenizer } from './types.js';
import type { Llama2cVocab } from '../llama2c/tokenizer-bin.js';
import { spmVocabFromLlama2c, type VocabExport } from './vocab.js';
import { bytesToBinary, mergeByScore, mergeByScoreReference, type MergeVocab } from './merge.js';

const BOS = 1;
const EOS = 2;
const UNK = 0;
const BYTE_OFFSET = 3;
const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>/;

const utf8 = new TextEncoder();
/** one binary-string character per byte value (merge.ts keys pieces this way) */
const BIN = Array.from({ length: 256 }, (_, i) => String.fromCharCode(i));

export class Llama2cTokenizer implements Tokenizer {
  readonly kind = 'llama2c' as const;
  readonly vocabSize: number;
  readonly bosId = BOS;
  readonly eosId = EOS;
  readonly unkId = UNK;
  readonly vocab: Llama2cVocab;
  private readonly mv: MergeVocab;
  /** per id: the bytes decode emits (byte pieces resolved) */
  private readonly out: Uint8Array[];

  constructor(vocab: Llama2cVocab) {
    this.vocab = vocab;
    this.vocabSize = vocab.pieces.length;
    const keys = vocab.pieces.map(bytesToBinary);
    const lookup = new Map<string, number>();
    // the first id wins for a duplicated piece (run.c's bsearch picks an arbitrary one)
    keys.forEach((k, i) => {
      if (!lookup.has(k)) lookup.set(k, i);
    });
    this.mv = { keys, lookup, scores: vocab.scores };
    this.out = keys.map((k, i) => {
      const m = BYTE_PIECE.exec(k);
      return m ? Uint8Array.of(parseInt(m[1], 16)) : vocab.pieces[i];
    });
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.finish(mergeByScore(this.initial(text, opts.bos ?? true), this.mv), opts);
  }

  /** run.c's quadratic loop: the slow reference for `encode`. */
  encodeReference(text: string, opts: EncodeOptions = {}): number[] {
    return this.finish(mergeByScoreReference(this.initial(text, opts.bos ?? true), this.mv), opts);
  }

  private finish(ids: number[], opts: EncodeOptions): number[] {
    if (opts.eos) ids.push(EOS);
    return ids;
  }

  /** BOS, dummy prefix and per-code-point lookup, before any merge. */
  private initial(text: string, bos: boolean): number[] {
    const ids: number[] = [];
    if (bos) ids.push(BOS);
    if (text.length === 0) return ids;
    const space = this.mv.lookup.get(' ');
    if (space !== undefined) ids.push(space);
    const b = utf8.encode(text);
    let start = 0;
    for (let i = 0; i < b.length; i++) {
      // extend through continuation bytes, but never past 4 bytes (run.c's str_len < 4)
      if (i + 1 < b.length && (b[i + 1] & 0xc0) === 0x80 && i + 1 - start < 4) continue;
      let key = BIN[b[start]];
      for (let j = start + 1; j <= i; j++) key += BIN[b[j]];
      const id = this.mv.lookup.get(key);
      if (id !== undefined) ids.push(id);
      else for (let j = start; j <= i; j++) ids.push(b[j] + BYTE_OFFSET);
      start = i + 1;
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    const parts: Uint8Array[] = [];
    let total = 0;
    let prev = -1;
    for (const id of ids) {
      if (id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} outside the vocabulary (0..${this.vocabSize - 1})`);
      if (id !== BOS && id !== EOS) {
        let piece = this.out[id];
        if (prev === BOS && piece.length > 0 && piece[0] === 0x20) piece = piece.subarray(1);
        parts.push(piece);
        total += piece.length;
      }
      prev = id;
    }
    const all = new Uint8Array(total);
    let off = 0;
    for (const p of parts) {
      all.set(p, off);
      off += p.length;
    }
    return new TextDecoder().decode(all);
  }

  tokenPiece(id: number): string {
    return new TextDecoder().decode(this.vocab.pieces[id]);
  }

  exportVocab(): VocabExport {
    return spmVocabFromLlama2c(this.vocab);
  }
}
