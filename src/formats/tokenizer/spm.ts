// SentencePiece-BPE over a GGUF "llama" vocabulary (VocabExport with scores and token types),
// as llama.cpp tokenizes it: spaces become '▁', a '▁' dummy prefix is added when
// add_space_prefix is set, each code point starts as its own piece (or as <0xNN> byte tokens
// when the vocabulary lacks it), then score-greedy merging (merge.ts). Control tokens are not
// parsed out of the text. Decoding maps '▁' back to spaces, BYTE tokens to their byte, skips
// control tokens and drops the dummy-prefix space at the start.

import type { EncodeOptions, Tokenizer } from './types.js';
import { mergeByScore, mergeByScoreReference, type MergeVocab } from './merge.js';
import { SPM_SPACE, TOKEN_TYPE, type VocabExport } from './vocab.js';

const BYTE_PIECE = /^<0x([0-9A-Fa-f]{2})>$/;
const utf8 = new TextEncoder();

export class SpmTokenizer implements Tokenizer {
  readonly kind = 'spm' as const;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly unkId: number | null;
  // the lookup tables are built on the first encode: a run that only carries the vocabulary over
  // (quantizing a GGUF into a GGUF) does not pay for a Map of 128k pieces
  private tables: { mv: MergeVocab; byteIds: Int32Array } | null = null;

  constructor(readonly vocab: VocabExport) {
    this.vocabSize = vocab.tokens.length;
    this.bosId = vocab.bosId;
    this.eosId = vocab.eosId;
    this.unkId = vocab.unkId;
  }

  private get mv(): MergeVocab {
    return (this.tables ??= this.buildTables()).mv;
  }

  private get byteIds(): Int32Array {
    return (this.tables ??= this.buildTables()).byteIds;
  }

  private buildTables(): { mv: MergeVocab; byteIds: Int32Array } {
    const vocab = this.vocab;
    const lookup = new Map<string, number>();
    vocab.tokens.forEach((t, i) => {
      // byte and control pieces are not text: "<0x41>" in the input must not match them
      if (vocab.types[i] === TOKEN_TYPE.BYTE || vocab.types[i] === TOKEN_TYPE.CONTROL) return;
      if (!lookup.has(t)) lookup.set(t, i);
    });
    const byteIds = new Int32Array(256).fill(-1);
    vocab.tokens.forEach((t, i) => {
      const m = BYTE_PIECE.exec(t);
      if (m && vocab.types[i] === TOKEN_TYPE.BYTE) byteIds[parseInt(m[1], 16)] = i;
    });
    return { mv: { keys: vocab.tokens, lookup, scores: vocab.scores ?? new Float32Array(vocab.tokens.length) }, byteIds };
  }

  encode(text: string, opts: EncodeOptions = {}): number[] {
    return this.wrap(mergeByScore(this.initial(text), this.mv), opts);
  }

  /** Quadratic reference merge, for tests. */
  encodeReference(text: string, opts: EncodeOptions = {}): number[] {
    return this.wrap(mergeByScoreReference(this.initial(text), this.mv), opts);
  }

  private wrap(ids: number[], opts: EncodeOptions): number[] {
    if ((opts.bos ?? this.vocab.addBos) && this.bosId !== null) ids.unshift(this.bosId);
    if ((opts.eos ?? false) && this.eosId !== null) ids.push(this.eosId);
    return ids;
  }

  private initial(text: string): number[] {
    if (text.length === 0) return [];
    const norm = (this.vocab.addSpacePrefix ? SPM_SPACE : '') + text.replaceAll(' ', SPM_SPACE);
    const ids: number[] = [];
    for (const ch of norm) {
      const id = this.mv.lookup.get(ch);
      if (id !== undefined) {
        ids.push(id);
        continue;
      }
      for (const b of utf8.encode(ch)) {
        const bid = this.byteIds[b];
        if (bid >= 0) ids.push(bid);
        else if (this.unkId !== null) ids.push(this.unkId);
      }
    }
    return ids;
  }

  decode(ids: readonly number[]): string {
    const bytes: number[] = [];
    let first = true;
    for (const id of ids) {
      if (id < 0 || id >= this.vocabSize) throw new RangeError(`token id ${id} outside the vocabulary (0..${this.vocabSize - 1})`);
      const type = this.vocab.types[id];
      if (type === TOKEN_TYPE.CONTROL) continue;
      if (type === TOKEN_TYPE.BYTE) {
        bytes.push(parseInt(BYTE_PIECE.exec(this.vocab.tokens[id])![1], 16));
      } else {
        let piece = this.vocab.tokens[id].replaceAll(SPM_SPACE, ' ');
        if (first && this.vocab.addSpacePrefix && piece.startsWith(' ')) piece = piece.slice(1);
        for (const b of utf8.encode(piece)) bytes.push(b);
      }
      first = false;
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
