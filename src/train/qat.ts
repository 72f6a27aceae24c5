// QAT weights through quant's codecs: the forward pass of every QAT quantizer is
// quant.fakeQuant(W, scheme, {scales: α}) with the learned per-row α, so training, evaluation and
// export all see exactly the codec's values. The gradients are ParetoQ's (quantizers.ts, float64).
//   1 bit     lowbit 'binary'        x̂ = α·sign(W)
//   1.58 bits lowbit 'seq_ternary'   x̂ = (α/1.5)·{−1, 0, 1}
//   2 bits    lowbit 'seq_2bit'      x̂ = (α/4)·{−3, −1, 1, 3}
//   3, 4 bits int symmetric          x̂ = α·clamp(round(W/α), −2^(b−1), 2^(b−1) − 1)
//   BitNet    lowbit 'absmean_ternary', one γ per tensor from the data (no learned scale)
// Legend: N = rows (output features), K = columns.

import type { GgmlType } from '../core/dtype.js';
import { fakeQuant } from '../quant/index.js';
import type { QuantScheme } from '../quant/scheme.js';
import { f16ToF32, f32ToF16 } from '../numerics/float16.js';
import { paretoQMethod, type QatBits } from './quantizers.js';

export function qatScheme(bits: QatBits, bitnet: boolean): QuantScheme {
  const channel = { kind: 'channel' as const, axis: 0 };
  if (bitnet) return { kind: 'lowbit', method: 'absmean_ternary', granularity: { kind: 'tensor' } };
  if (bits === 1) return { kind: 'lowbit', method: 'binary', granularity: channel };
  if (bits === 1.58) return { kind: 'lowbit', method: 'seq_ternary', granularity: channel };
  if (bits === 2) return { kind: 'lowbit', method: 'seq_2bit', granularity: channel };
  return { kind: 'int', bits, symmetric: true, granularity: channel, scaleDtype: 'F32', rounding: 'half_even' };
}

/** The weights the QAT model uses: the codec's fake-quant with the learned scales. w: [N, K], alpha: [N]. */
export function qatWeights(w: Float32Array, shape: number[], alpha: Float32Array | null, bits: QatBits, bitnet: boolean, name?: string): Float32Array {
  const scheme = qatScheme(bits, bitnet);
  return fakeQuant(w, shape, scheme, bitnet || !alpha ? { name } : { name, scales: alpha });
}

/** The codec stores the scale α/div (lowbit.ts: seq_ternary α/1.5, seq_2bit α/4, otherwise α). */
export function scaleDivisor(bits: QatBits): number {
  return bits === 1.58 ? 1.5 : bits === 2 ? 4 : 1;
}

/**
 * Projects α so that the codec's stored scale (α·ratio) is exactly representable in fp16 (GGUF
 * block scales are fp16): then a ggml block type that holds the grid (TQ1_0/TQ2_0 for ternary and
 * binary weights) reproduces the QAT weights bit for bit.
 */
export function projectAlphaToF16(alpha: Float32Array, bits: QatBits): Float32Array {
  const div = scaleDivisor(bits);
  // s·div is exact in f32 for div ∈ {1, 1.5, 4} and an 11-bit s, and the codec's fround(α)/div gives s back
  return alpha.map((a) => Math.fround(f16ToF32(f32ToF16(a / div)) * div));
}

/**
 * The ggml block type a QAT bit width exports to: ternary and binary → TQ2_0 (exact when rows are
 * whole 256-blocks and scales are fp16), 2 → Q2_K, 3 → Q3_K, 4 → Q4_0 (the K-quants need rows that
 * are multiples of 256; otherwise Q4_0 is used). Only the ternary/binary case is exact.
 */
export function qatGgmlType(bits: QatBits, bitnet: boolean, K: number): GgmlType {
  if (bitnet || bits === 1 || bits === 1.58) return K % 256 === 0 ? 'TQ2_0' : 'Q4_0';
  if (bits === 2 && K % 256 === 0) return 'Q2_K';
  if (bits === 3 && K % 256 === 0) return 'Q3_K';
  return 'Q4_0';
}

export const QAT_METHOD_NAME = (bits: QatBits, bitnet: boolean): string =>
  bitnet ? 'BitNet b1.58 absmean ternary' : `ParetoQ ${paretoQMethod(bits).toUpperCase()} ${bits}-bit`;
