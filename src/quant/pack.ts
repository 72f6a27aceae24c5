// Bit packing for the containers that store integer codes. Codes here are UNSIGNED (0 … 2^b − 1);
// symmetric int codes q are stored as q + 2^(b−1) with zero point 2^(b−1) (toUnsignedCodes).
// Legend: N = output features (rows of our [N, K] weights), K = input features, G = group size,
// nG = K / G groups per row, b = bits.
//
// GPTQ (AutoGPTQ / HF "gptq" checkpoint_format v1, the layout transformers and vLLM load):
//   qweight int32 [K·b/32, N]: for each output column n, the codes along K form one little-endian
//           bit stream (code k occupies bits k·b … k·b + b − 1), cut into 32-bit words; word r of
//           column n is qweight[r, n]. For b = 2, 4, 8 that is 32/b codes per word; for b = 3 codes
//           straddle words (code 10 has 2 bits in word 0 and 1 in word 1), as AutoGPTQ packs them.
//   qzeros  int32 [nG, N·b/32]: the same stream along N, one row per group, storing (zero − 1)
//           (AutoGPTQ's pack does `zeros -= 1`; its kernels add 1 back). Symmetric 4-bit: 0x77777777.
//   scales  f16 [nG, N] (the transpose of our [N, nG]); g_idx int32 [K] = k / G.
// ONNX Runtime com.microsoft.MatMulNBits:
//   B uint8 [N, nG, G·b/8]: per row n and block, the block's codes as a little-endian bit stream
//           along K (low bits first: for b = 4, byte i holds code 2i in its low nibble, 2i + 1 high).
//   scales [N·nG]; zero_points uint8 [N · ceil(nG·b/8)], each row's zero points as a bit stream
//           (for b = 4, two per byte, low nibble first); absent means 2^(b−1).
// ggml 4-bit blocks (Q4_0, Q4_1, IQ4_NL, MXFP4): 32 codes in 16 bytes, byte j = code j | code (j+16) << 4.

import { ConfigError, ShapeError } from '../core/errors.js';
import type { IntQuantized } from './types.js';

// ---- generic little-endian bit streams

/** Pack `values` (each < 2^bits) into a little-endian bit stream of 32-bit words. */
export function packBits32(values: ArrayLike<number>, bits: number, out = new Uint32Array(Math.ceil((values.length * bits) / 32))): Uint32Array {
  out.fill(0);
  const mask = (1 << bits) - 1;
  for (let i = 0, pos = 0; i < values.length; i++, pos += bits) {
    const v = values[i] & mask;
    const w = pos >>> 5;
    const o = pos & 31;
    out[w] |= v << o;
    if (o + bits > 32) out[w + 1] |= v >>> (32 - o);
  }
  return out;
}

export function unpackBits32(words: Uint32Array | Int32Array, bits: number, count: number, out = new Uint8Array(count)): Uint8Array {
  const mask = (1 << bits) - 1;
  for (let i = 0, pos = 0; i < count; i++, pos += bits) {
    const w = pos >>> 5;
    const o = pos & 31;
    let v = words[w] >>> o;
    if (o + bits > 32) v |= words[w + 1] << (32 - o);
    out[i] = v & mask;
  }
  return out;
}

/** Pack into a little-endian bit stream of bytes. */
export function packBits8(values: ArrayLike<number>, bits: number, out = new Uint8Array(Math.ceil((values.length * bits) / 8))): Uint8Array {
  out.fill(0);
  const mask = (1 << bits) - 1;
  for (let i = 0, pos = 0; i < values.length; i++, pos += bits) {
    const v = values[i] & mask;
    const b = pos >>> 3;
    const o = pos & 7;
    out[b] |= v << o;
    if (o + bits > 8) out[b + 1] |= v >>> (8 - o);
  }
  return out;
}

export function unpackBits8(bytes: Uint8Array, bits: number, count: number, out = new Uint8Array(count)): Uint8Array {
  const mask = (1 << bits) - 1;
  for (let i = 0, pos = 0; i < count; i++, pos += bits) {
    const b = pos >>> 3;
    const o = pos & 7;
    let v = bytes[b] >>> o;
    if (o + bits > 8) v |= bytes[b + 1] << (8 - o);
    out[i] = v & mask;
  }
  return out;
}

// ---- int tensors → unsigned codes and zero points

/** Unsigned codes [N·K] and zero points [S] of an int tensor (symmetric: q + 2^(b−1), zero 2^(b−1)). */
export function toUnsignedCodes(q: IntQuantized): { codes: Uint8Array; zeros: Uint8Array } {
  const b = q.scheme.bits;
  if (q.zeros) return { codes: Uint8Array.from(q.codes), zeros: q.zeros };
  const off = 2 ** (b - 1);
  const codes = new Uint8Array(q.codes.length);
  for (let i = 0; i < codes.length; i++) codes[i] = q.codes[i] + off;
  return { codes, zeros: new Uint8Array(q.scales.length).fill(off) };
}

function requireGroupMatrix(q: IntQuantized, what: string): { N: number; K: number; G: number } {
  const g = q.scheme.granularity;
  if (q.shape.length !== 2) {
    throw new ShapeError('shape_mismatch', `${what} packs 2-D [N, K] weights`, { expected: '[N, K]', found: `[${q.shape.join(', ')}]` });
  }
  const [N, K] = q.shape;
  if (g.kind === 'group') return { N, K, G: g.size };
  if (g.kind === 'channel' && g.axis === 0) return { N, K, G: K };
  throw new ConfigError('unsupported', `${what} needs per-group or per-output-channel scales`, { found: g });
}

// ---- GPTQ

/** qweight int32 [K·b/32, N] from unsigned codes [N, K]. */
export function packGptqWeight(codes: Uint8Array, N: number, K: number, bits: number): Int32Array {
  if ((K * bits) % 32 !== 0) {
    throw new ShapeError('shape_mismatch', 'GPTQ packing needs K·bits to be a multiple of 32', { field: 'K', expected: `multiple of ${32 / gcd(32, bits)}`, found: K });
  }
  const rows = (K * bits) / 32;
  const out = new Int32Array(rows * N);
  const col = new Uint8Array(K);
  const words = new Uint32Array(rows);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) col[k] = codes[n * K + k];
    packBits32(col, bits, words);
    for (let r = 0; r < rows; r++) out[r * N + n] = words[r] | 0;
  }
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

export interface GptqTensors {
  qweight: Int32Array; // [K·b/32, N]
  qzeros: Int32Array; // [nG, N·b/32]
  scales: Float32Array; // [nG, N] (store as f16)
  gIdx: Int32Array; // [K]
  bits: number;
  groupSize: number;
}

/** The four GPTQ tensors of an int-quantized [N, K] weight. */
export function toGptq(q: IntQuantized): GptqTensors {
  const { N, K, G } = requireGroupMatrix(q, 'GPTQ');
  const b = q.scheme.bits;
  if (![2, 3, 4, 8].includes(b)) throw new ConfigError('unsupported', 'GPTQ stores 2, 3, 4 or 8 bits', { field: 'bits', found: b });
  const nG = K / G;
  const { codes, zeros } = toUnsignedCodes(q);
  const scales = new Float32Array(nG * N);
  for (let n = 0; n < N; n++) for (let g = 0; g < nG; g++) scales[g * N + n] = q.scales[n * nG + g];
  const gIdx = new Int32Array(K).map((_, k) => Math.floor(k / G));
  return { qweight: packGptqWeight(codes, N, K, b), qzeros: packGptqZeros(zeros, N, nG, b), scales, gIdx, bits: b, groupSize: G };
}

// ---- ONNX MatMulNBits

/** B uint8 [N, nG, G·b/8] from unsigned codes [N, K]. */
export function packMatMulNBits(codes: Uint8Array, N: number, K: number, bits: number, blockSize: number): Uint8Array {
  if (K % blockSize !== 0 || (blockSize * bits) % 8 !== 0) {
    throw new ShapeError('shape_mismatch', 'MatMulNBits needs K a multiple of block_size and block_size·bits a multiple of 8', {
      field: 'K',
      expected: `multiple of ${blockSize}`,
      found: K,
    });
  }
  const blob = (blockSize * bits) / 8;
  const nG = K / blockSize;
  const out = new Uint8Array(N * nG * blob);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < nG; g++) {
      const src = codes.subarray(n * K + g * blockSize, n * K + (g + 1) * blockSize);
      packBits8(src, bits, out.subarray((n * nG + g) * blob, (n * nG + g + 1) * blob));
    }
  }
  return out;
}

export function unpackMatMulNBits(B: Uint8Array, N: number, K: number, bits: number, blockSize: number): Uint8Array {
  const blob = (blockSize * bits) / 8;
  const nG = K / blockSize;
  const out = new Uint8Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let g = 0; g < nG; g++) {
      const o = (n * nG + g) * blob;
      unpackBits8(B.subarray(o, o + blob), bits, blockSize, out.subarray(n * K + g * blockSize, n * K + (g + 1) * blockSize));
    }
  }
  return out;
}

/** zero_points uint8 [N · ceil(nG·b/8)] from zero points [N, nG]. */
export function packMatMulNBitsZeros(zeros: Uint8Array, N: number, nG: number, bits: number): Uint8Array {
  const per = Math.ceil((nG * bits) / 8);
  const out = new Uint8Array(N * per);
  for (let n = 0; n < N; n++) packBits8(zeros.subarray(n * nG, (n + 1) * nG), bits, out.subarray(n * per, (n + 1) * per));
  return out;
}

export function unpackMatMulNBitsZeros(zp: Uint8Array, N: number, nG: number, bits: number): Uint8Array {
  const per = Math.ceil((nG * bits) / 8);
  const out = new Uint8Array(N * nG);
  for (let n = 0; n < N; n++) unpackBits8(zp.subarray(n * per, (n + 1) * per), bits, nG, out.subarray(n * nG, (n + 1) * nG));
  return out;
}

export interface MatMulNBitsTensors {
  B: Uint8Array; // [N, nG, G·b/8]
  scales: Float32Array; // [N·nG]
  /** absent for symmetric schemes (the operator's default 2^(b−1) is exactly our zero) */
  zeroPoints?: Uint8Array; // [N·ceil(nG·b/8)]
  bits: number;
  blockSize: number;
  N: number;
  K: number;
}

export function toMatMulNBits(q: IntQuantized): MatMulNBitsTensors {
  const { N, K, G } = requireGroupMatrix(q, 'MatMulNBits');
  const b = q.scheme.bits;
  const { codes, zeros } = toUnsignedCodes(q);
  const out: MatMulNBitsTensors = { B: packMatMulNBits(codes, N, K, b, G), scales: q.scales.slice(), bits: b, blockSize: G, N, K };
  if (q.zeros) out.zeroPoints = packMatMulNBitsZeros(zeros, N, K / G, b);
  return out;
}

// ---- ggml 4-bit nibble order

/** 32 codes (< 16) → 16 bytes, byte j = code j | code (j+16) << 4. */
export function packGgmlNibbles(codes: ArrayLike<number>, out = new Uint8Array(16), off = 0): Uint8Array {
  for (let j = 0; j < 16; j++) out[j] = (codes[off + j] & 15) | ((codes[off + j + 16] & 15) << 4);
  return out;
}

export function unpackGgmlNibbles(bytes: Uint8Array, out = new Uint8Array(32)): Uint8Array {
  for (let j = 0; j < 16; j++) {
    out[j] = bytes[j] & 15;
    out[j + 16] = bytes[j] >> 4;
  }
  return out;
}

/** Re-order one 16-byte ggml nibble block to sequential low-first order (MatMulNBits' 4-bit blob). */
export function ggmlNibblesToSequential(bytes: Uint8Array, out = new Uint8Array(16)): Uint8Array {
  return packBits8(unpackGgmlNibbles(bytes), 4, out);
}

export function sequentialToGgmlNibbles(bytes: Uint8Array, out = new Uint8Array(16)): Uint8Array {
  return packGgmlNibbles(unpackBits8(bytes, 4, 32), out);
}

function gcd(a: number, b: number): number {
  return b ? gcd(b, a % b) : a;
}
