// llama2.c `tokenizer.bin`: int32 max_token_length, then per token a float32 merge score, an
// int32 byte length and the piece's bytes (no terminator). All little-endian. The vocabulary size
// is not stored (run.c takes it from the checkpoint), so the reader reads to the end of the file
// unless told how many tokens to expect.

import { FormatError } from '../../core/errors.js';

export interface Llama2cVocab {
  maxTokenLength: number;
  /** raw piece bytes (run.c stores a space, not '▁', for the SentencePiece word marker) */
  pieces: Uint8Array[];
  /** float32 merge scores (higher merges first) */
  scores: Float32Array;
}

/** Parses a tokenizer.bin; every length is checked against the bytes left before slicing. */
export function parseLlama2cVocab(bytes: Uint8Array, file = '<buffer>', expectedVocab?: number): Llama2cVocab {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length < 4) {
    throw new FormatError('truncated', 'tokenizer.bin shorter than its header', { file, offset: 0, expected: '>= 4 bytes', found: bytes.length });
  }
  const maxTokenLength = dv.getInt32(0, true);
  if (maxTokenLength <= 0 || maxTokenLength > 1 << 16) {
    throw new FormatError('bad_header', 'implausible max_token_length in tokenizer.bin', { file, field: 'max_token_length', offset: 0, expected: '1..65536', found: maxTokenLength });
  }
  const pieces: Uint8Array[] = [];
  const scores: number[] = [];
  let off = 4;
  while (off < bytes.length && (expectedVocab === undefined || pieces.length < expectedVocab)) {
    if (off + 8 > bytes.length) {
      throw new FormatError('truncated', 'tokenizer.bin ends inside a token record', { file, index: pieces.length, offset: off, expected: 8, found: bytes.length - off });
    }
    const score = dv.getFloat32(off, true);
    const len = dv.getInt32(off + 4, true);
    if (len < 0 || len > maxTokenLength || off + 8 + len > bytes.length) {
      throw new FormatError(len < 0 || len > maxTokenLength ? 'bad_header' : 'truncated', 'bad token length in tokenizer.bin', {
        file,
        index: pieces.length,
        offset: off + 4,
        expected: `0..${Math.min(maxTokenLength, bytes.length - off - 8)}`,
        found: len,
      });
    }
    pieces.push(bytes.slice(off + 8, off + 8 + len));
    scores.push(score);
    off += 8 + len;
  }
  if (expectedVocab !== undefined && pieces.length < expectedVocab) {
    throw new FormatError('truncated', 'tokenizer.bin holds fewer tokens than the model vocabulary', { file, offset: off, expected: expectedVocab, found: pieces.length });
  }
  return { maxTokenLength, pieces, scores: Float32Array.from(scores) };
}

/** Serializes a vocabulary; max_token_length is recomputed from the pieces unless given larger. */
export function encodeLlama2cVocab(v: Pick<Llama2cVocab, 'pieces' | 'scores'> & { maxTokenLength?: number }): Uint8Array {
  let total = 4;
  let maxLen = 0;
  for (const p of v.pieces) {
    total += 8 + p.length;
    maxLen = Math.max(maxLen, p.length);
  }
  const out = new Uint8Array(total);
  const dv = new DataView(out.buffer);
  dv.setInt32(0, Math.max(maxLen, v.maxTokenLength ?? 0), true);
  let off = 4;
  v.pieces.forEach((p, i) => {
    dv.setFloat32(off, v.scores[i], true);
    dv.setInt32(off + 4, p.length, true);
    out.set(p, off + 8);
    off += 8 + p.length;
  });
  return out;
}
