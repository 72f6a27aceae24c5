// Weights of the two quantized-linear forms bitscale's ONNX exports use, decoded back to float32
// exactly as onnxruntime computes them (one float32 rounding of (code − zero point) · scale):
//  - com.microsoft MatMulNBits: B uint8 [N, Kb, G·bits/8] with codes packed low bits first along K,
//    scales float32 [N·Kb], optional zero points: packed uint8 [N · ceil(Kb·bits/8)] (low bits
//    first along the blocks) or float32 [N·Kb]; no zero-point input means 2^(bits−1);
//  - DequantizeLinear (blocked along axis 1) over int8/uint8 codes [N, K] with scales [N, K/G] and
//    optional zero points of the codes' type.
// Legend: N = rows (output features), K = input features, G = block size, Kb = K/G.
import { FormatError } from '../../core/errors.js';

export interface NBitsAttrs {
  N: number;
  K: number;
  bits: number;
  blockSize: number;
}

/** W [N, K] from MatMulNBits operands. */
export function dequantMatMulNBits(B: Uint8Array, scales: Float32Array, zeros: Uint8Array | Float32Array | null, a: NBitsAttrs, where = 'MatMulNBits'): Float32Array {
  const { N, K, bits, blockSize: G } = a;
  const Kb = Math.ceil(K / G);
  const blob = (G * bits) / 8;
  if (B.length !== N * Kb * blob) throw new FormatError('shape_mismatch', 'MatMulNBits B has the wrong size', { tensor: where, expected: N * Kb * blob, found: B.length });
  if (scales.length !== N * Kb) throw new FormatError('shape_mismatch', 'MatMulNBits scales have the wrong size', { tensor: where, expected: N * Kb, found: scales.length });
  const mask = (1 << bits) - 1;
  const mid = 1 << (bits - 1);
  const zRow = Math.ceil((Kb * bits) / 8);
  const code = (buf: Uint8Array, off: number, e: number) => (buf[off + ((e * bits) >> 3)] >> ((e * bits) & 7)) & mask;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let j = 0; j < Kb; j++) {
      const s = scales[n * Kb + j];
      const z = zeros === null ? mid : zeros instanceof Float32Array ? zeros[n * Kb + j] : code(zeros, n * zRow, j);
      const off = (n * Kb + j) * blob;
      for (let e = 0; e < G && j * G + e < K; e++) out[n * K + j * G + e] = (code(B, off, e) - z) * s;
    }
  }
  return out;
}

/** W [N, K] from a blocked DequantizeLinear over 8-bit codes. */
export function dequantBlocked(codes: Int8Array | Uint8Array, scales: Float32Array, zeros: Int8Array | Uint8Array | null, N: number, K: number, G: number): Float32Array {
  const Kb = K / G;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const j = n * Kb + Math.floor(k / G);
      out[n * K + k] = (codes[n * K + k] - (zeros ? zeros[j] : 0)) * scales[j];
    }
  }
  return out;
}
