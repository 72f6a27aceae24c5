// compressed-tensors "pack-quantized" int32 packing (format facts: see write.ts beside this file).
// Values are unsigned codes u = q + 2^(b−1) (q the signed code in [−2^(b−1), 2^(b−1) − 1]);
// pf = 32 / b of them share one int32 word, the first in the lowest bits. The run along the
// packed dimension is zero-padded up to a multiple of pf.
//   weights:     [R, C] codes → [R, ceil(C/pf)] words, packed along C (the input dimension)
//   zero points: [R, C]       → [ceil(R/pf), C] words, packed along R (the output dimension)
// Legend: R = rows, C = columns, b = bits (2, 4 or 8: a divisor of 32), pf = 32 / b.

import { ConfigError } from '../../core/errors.js';
import { packCtRowsInto } from '../../numerics/pack-words.js';

function packFactor(bits: number): number {
  if (bits !== 2 && bits !== 4 && bits !== 8) {
    throw new ConfigError('unsupported', 'compressed-tensors packing takes 2, 4 or 8 bits', { field: 'bits', expected: '2 | 4 | 8', found: bits });
  }
  return 32 / bits;
}

/** [R, C] unsigned codes → [R, ceil(C/pf)] int32, packed along C. */
export function packCtRows(codes: ArrayLike<number>, R: number, C: number, bits: number): Int32Array {
  const out = new Int32Array(R * Math.ceil(C / packFactor(bits)));
  packCtRowsInto(codes, R, C, bits, out, 0);
  return out;
}

/** Inverse of packCtRows (padding dropped). */
export function unpackCtRows(words: Int32Array, R: number, C: number, bits: number): Uint8Array {
  const pf = packFactor(bits);
  const W = Math.ceil(C / pf);
  const mask = (1 << bits) - 1;
  const out = new Uint8Array(R * C);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) out[r * C + c] = (words[r * W + ((c / pf) | 0)] >>> ((c % pf) * bits)) & mask;
  }
  return out;
}

/** [R, C] unsigned zero points → [ceil(R/pf), C] int32, packed along R. */
export function packCtColumns(values: ArrayLike<number>, R: number, C: number, bits: number): Int32Array {
  const pf = packFactor(bits);
  const mask = (1 << bits) - 1;
  const out = new Int32Array(Math.ceil(R / pf) * C);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) out[((r / pf) | 0) * C + c] |= (values[r * C + c] & mask) << ((r % pf) * bits);
  }
  return out;
}

/** Inverse of packCtColumns (padding dropped). */
export function unpackCtColumns(words: Int32Array, R: number, C: number, bits: number): Uint8Array {
  const pf = packFactor(bits);
  const mask = (1 << bits) - 1;
  const out = new Uint8Array(R * C);
  for (let r = 0; r < R; r++) {
    for (let c = 0; c < C; c++) out[r * C + c] = (words[((r / pf) | 0) * C + c] >>> ((r % pf) * bits)) & mask;
  }
  return out;
}
