// GPTQ-packed int32 tensors (AutoGPTQ / Hugging Face "gptq" checkpoint_format v1, the layout
// transformers and vLLM load). Codes are UNSIGNED (0 … 2^b − 1).
//   qweight int32 [K·b/32, N]: for each output column n, the codes along K form one little-endian
//           bit stream (code k occupies bits k·b … k·b + b − 1), cut into 32-bit words; word r of
//           column n is qweight[r, n]. For b = 2, 4, 8 that is 32/b codes per word; for b = 3 codes
//           straddle words (code 10 has 2 bits in word 0 and 1 in word 1), as AutoGPTQ packs them.
//   qzeros  int32 [nG, N·b/32]: the same stream along N, one row per group, storing (zero − 1)
//           (AutoGPTQ's pack does `zeros -= 1`; its kernels add 1 back). Symmetric 4-bit: 0x77777777.
//   scales  f16 [nG, N] (the transpose of our [N, nG]); g_idx int32 [K] = k / G.
// Legend: N = output features (rows of our [N, K] weights), K = input features, nG = groups per row, b = bits.

import { ShapeError } from '../../core/errors.js';
import { packBits32, unpackBits32 } from '../../numerics/bitstream.js';
import { packGptqColumnsInto } from '../../numerics/pack-words.js';

function gcd(a: number, b: number): number {
  return b ? gcd(b, a % b) : a;
}

/** qweight int32 [K·b/32, N] from unsigned codes [N, K]. */
export function packGptqWeight(codes: Uint8Array, N: number, K: number, bits: number): Int32Array {
  if ((K * bits) % 32 !== 0) {
    throw new ShapeError('shape_mismatch', 'GPTQ packing needs K·bits to be a multiple of 32', { field: 'K', expected: `multiple of ${32 / gcd(32, bits)}`, found: K });
  }
  const out = new Int32Array(((K * bits) / 32) * N);
  packGptqColumnsInto(codes, N, K, bits, out, N, 0);
  return out;
}

/** Unsigned codes [N, K] from qweight int32 [K·b/32, N]. */
export function unpackGptqWeight(qweight: Int32Array, N: number, K: number, bits: number): Uint8Array {
  const rows = (K * bits) / 32;
  const out = new Uint8Array(N * K);
  const words = new Uint32Array(rows);
  const col = new Uint8Array(K);
  for (let n = 0; n < N; n++) {
    for (let r = 0; r < rows; r++) words[r] = qweight[r * N + n] >>> 0;
    unpackBits32(words, bits, K, col);
    out.set(col, n * K);
  }
  return out;
}

/** qzeros int32 [nG, N·b/32] from zero points [N, nG] (our layout), storing zero − 1 (AutoGPTQ v1). */
export function packGptqZeros(zeros: Uint8Array, N: number, nG: number, bits: number): Int32Array {
  if ((N * bits) % 32 !== 0) {
    throw new ShapeError('shape_mismatch', 'GPTQ qzeros need N·bits to be a multiple of 32', { field: 'N', found: N });
  }
  const w = (N * bits) / 32;
  const out = new Int32Array(nG * w);
  const row = new Uint8Array(N);
  const words = new Uint32Array(w);
  const mask = (1 << bits) - 1;
  for (let g = 0; g < nG; g++) {
    for (let n = 0; n < N; n++) row[n] = (zeros[n * nG + g] - 1) & mask;
    packBits32(row, bits, words);
    for (let j = 0; j < w; j++) out[g * w + j] = words[j] | 0;
  }
  return out;
}

/** Zero points [N, nG] from qzeros (adds the 1 back, mod 2^b as AutoGPTQ's kernels do). */
export function unpackGptqZeros(qzeros: Int32Array, N: number, nG: number, bits: number): Uint8Array {
  const w = (N * bits) / 32;
  const out = new Uint8Array(N * nG);
  const row = new Uint8Array(N);
  const mask = (1 << bits) - 1;
  for (let g = 0; g < nG; g++) {
    unpackBits32(Uint32Array.from(qzeros.subarray(g * w, (g + 1) * w), (v) => v >>> 0), bits, N, row);
    for (let n = 0; n < N; n++) out[n * nG + g] = (row[n] + 1) & mask;
  }
  return out;
}
