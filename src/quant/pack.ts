// Bit packing for the containers that store integer codes. Codes here are UNSIGNED (0 … 2^b − 1);
// symmetric int codes q are stored as q + 2^(b−1) with zero point 2^(b−1) (toUnsignedCodes).
// Legend: N = output features (rows of our [N, K] weights), K = input features, G = group size,
// nG = K / G groups per row, b = bits.
//
// GPTQ-packed checkpoints: formats/gptq/pack.ts; the bit streams: numerics/bitstream.ts.
// ONNX Runtime com.microsoft.MatMulNBits:
//   B uint8 [N, nG, G·b/8]: per row n and block, the block's codes as a little-endian bit stream
//           along K (low bits first: for b = 4, byte i holds code 2i in its low nibble, 2i + 1 high).
//   scales [N·nG]; zero_points uint8 [N · ceil(nG·b/8)], each row's zero points as a bit stream
//           (for b = 4, two per byte, low nibble first); absent means 2^(b−1).
// ggml 4-bit blocks (Q4_0, Q4_1, IQ4_NL, MXFP4): 32 codes in 16 bytes, byte j = code j | code (j+16) << 4.

import { ConfigError, ShapeError } from '../core/errors.js';
import type { IntQuantized } from './types.js';
import { packBits8, unpackBits8 } from '../numerics/bitstream.js';

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

