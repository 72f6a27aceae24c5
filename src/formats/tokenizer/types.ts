// One tokenizer interface for every source: llama2.c tokenizer.bin, Hugging Face tokenizer.json,
// and the vocabulary embedded in GGUF (SentencePiece "llama" with scores, BPE "gpt2" with merges).

import type { VocabExport } from './vocab.js';

export type TokenizerKind = 'llama2c' | 'spm' | 'bpe' | 'hf';

export interface EncodeOptions {
  /** prepend the BOS token (default true for SentencePiece-style vocabularies) */
  bos?: boolean;
  /** append the EOS token (default false) */
  eos?: boolean;
}

export interface Tokenizer {
  readonly kind: TokenizerKind;
  readonly vocabSize: number;
  readonly bosId: number | null;
  readonly eosId: number | null;
  readonly unkId: number | null;
  encode(text: string, opts?: EncodeOptions): number[];
  decode(ids: readonly number[]): string;
  /** the piece of one token as stored in the vocabulary (e.g. '▁the', '<0x0A>') */
  tokenPiece(id: number): string;
  /** the vocabulary in GGUF's terms (tokenizer.ggml.*), for writing it into another format */
  exportVocab?(): VocabExport;
}
