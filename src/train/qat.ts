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
import { ConfigError } from '../core/errors.js';
import { gridTypeFits, type GridGgmlType } from '../quant/ggml/index.js';
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
  // LSQ's grid: α·[−2^(b−1), 2^(b−1) − 1]; without learned scales the codec's restricted grid is
  // ParetoQ's initialisation α = max|W_row| / (2^(b−1) − 1)
  return { kind: 'int', bits, symmetric: true, restricted: true, granularity: channel, scaleDtype: 'F32', rounding: 'half_even' };
}

/** The weights the QAT model uses: the codec's fake-quant with the learned scales. w: [N, K], alpha: [N]. */
export function qatWeights(w: Float32Array, shape: number[], alpha: Float32Array | null, bits: QatBits, bitnet: boolean, name?: string): Float32Array {
  const scheme = qatScheme(bits, bitnet);
  return fakeQuant(w, shape, scheme, bitnet || !alpha ? { name } : { name, scales: alpha });
}

/** The codec stores the scale α/div (quant/lowbit.ts: seq_ternary α/1.5, seq_2bit α/4, otherwise α). */
export function scaleDivisor(bits: QatBits): number {
  return bits === 1.58 ? 1.5 : bits === 2 ? 4 : 1;
}

/**
 * Projects α so that the codec's stored scale (α/div: the grid step) is exactly representable in
 * fp16 (GGUF block scales and GPTQ scales are fp16): then a container that holds the grid
 * reproduces the QAT weights bit for bit, for every bit width (qatGgmlType, qatGptqBits).
 */
export function projectAlphaToF16(alpha: Float32Array, bits: QatBits): Float32Array {
  const div = scaleDivisor(bits);
  // s·div is exact in f32 for div ∈ {1, 1.5, 4} and an 11-bit s, and the codec's fround(α)/div gives s back
  return alpha.map((a) => Math.fround(f16ToF32(f32ToF16(a / div)) * div));
}

/** The integer levels of a QAT grid in units of its step: binary/ternary/BitNet {−1, 0, 1}, 2-bit SEQ {±1, ±3}, LSQ [−2^(b−1), 2^(b−1) − 1]. */
export function qatGridRange(bits: QatBits, bitnet: boolean): { lo: number; hi: number; odd: boolean } {
  if (bitnet || bits === 1 || bits === 1.58) return { lo: -1, hi: 1, odd: false };
  if (bits === 2) return { lo: -3, hi: 3, odd: true };
  return { lo: -(2 ** (bits - 1)), hi: 2 ** (bits - 1) - 1, odd: false };
}

/**
 * The step of each row's grid in the QAT weights: fround(α)/div as the codec stores it (ParetoQ),
 * or the tensor's γ (BitNet: every non-zero weight is ±γ). eff: [N, K], alpha: [N].
 */
export function qatRowSteps(bits: QatBits, bitnet: boolean, alpha: Float32Array | null, eff: Float32Array, N: number): Float32Array {
  if (bitnet || !alpha) {
    let g = 0;
    for (let i = 0; i < eff.length; i++) g = Math.max(g, Math.abs(eff[i]));
    return new Float32Array(N).fill(g);
  }
  const div = scaleDivisor(bits);
  return Float32Array.from(alpha, (a) => Math.fround(a) / div);
}

/** BitNet's counterpart of projectAlphaToF16: the ternary weights γ·t with γ moved to the nearest fp16 value. */
export function projectBitnetToF16(eff: Float32Array): Float32Array {
  let g = 0;
  for (let i = 0; i < eff.length; i++) g = Math.max(g, Math.abs(eff[i]));
  const g16 = f16ToF32(f32ToF16(g));
  return eff.map((v) => (v > 0 ? g16 : v < 0 ? -g16 : v));
}

/**
 * The ggml block type a QAT bit width exports to, written exactly (quant/ggml/grid-encode.ts: the
 * blocks hold the fp16 step and the integer levels, so they dequantize to the QAT weights bit
 * for bit once the scales are projected to fp16):
 *   ternary, binary, BitNet → TQ2_0 (2.06 bpw; TQ1_0 1.69 bpw on request)   K % 256 = 0
 *   2-bit SEQ {±1, ±3}·α/4  → Q2_K  (2.625 bpw; d = dmin = α/4, sc 2, m 3)  K % 256 = 0
 *   3-bit LSQ [−4, 3]·α     → Q3_K  (3.44 bpw)                              K % 256 = 0
 *   4-bit LSQ [−8, 7]·α     → Q4_0  (4.5 bpw; Q4_K on request)              K % 32 = 0
 * Rows that are not whole 256-blocks use Q4_0 (4.5 bpw, holds every grid) when K % 32 = 0, and
 * F32 (exact, unpacked) otherwise. `prefer` picks another container that holds the grid.
 */
export function qatGgmlType(bits: QatBits, bitnet: boolean, K: number, prefer?: GridGgmlType): GgmlType {
  const { lo, hi, odd } = qatGridRange(bits, bitnet);
  if (prefer) {
    if (!gridTypeFits(prefer, lo, hi, odd, K)) {
      throw new ConfigError('bad_option', 'the requested ggml type cannot hold this QAT grid exactly', { field: '--ggml-type', expected: `levels ${lo}..${hi}${odd ? ' (odd)' : ''}, rows a multiple of the block size`, found: `${prefer} for rows of ${K}` });
    }
    return prefer;
  }
  const first: GridGgmlType = bitnet || bits === 1 || bits === 1.58 ? 'TQ2_0' : bits === 2 ? 'Q2_K' : bits === 3 ? 'Q3_K' : 'Q4_0';
  for (const t of [first, 'Q4_0'] as const) if (gridTypeFits(t, lo, hi, odd, K)) return t;
  return 'F32';
}

/** GPTQ bits that hold a QAT grid symmetrically (code = level + 2^(b−1)): 2-bit SEQ's odd levels need 3 bits. */
export function qatGptqBits(bits: QatBits, bitnet: boolean): 2 | 3 | 4 {
  if (bitnet || bits === 1 || bits === 1.58) return 2;
  return bits === 4 ? 4 : 3;
}

export const QAT_METHOD_NAME = (bits: QatBits, bitnet: boolean): string =>
  bitnet ? 'BitNet b1.58 absmean ternary' : `ParetoQ ${paretoQMethod(bits).toUpperCase()} ${bits}-bit`;
