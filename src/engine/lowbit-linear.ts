// Real low-bit execution of a linear layer from quant's integer codes (IntQuantized), two ways:
//   'nbits': com.microsoft MatMulNBits (2/4/8 bits, power-of-two blocks ≥ 16, zero points optional),
//            accuracy_level pinned (0 = dequantize to fp32, exact);
//   'dq':    DequantizeLinear (blocked along K for groups, per-axis for channels) then MatMul; 4-bit
//            codes travel as INT4/UINT4, every other width (3, 5, 6, 7, 8 bits) in an INT8/UINT8 container.
// Both give the same numbers as the fake-quantized float weight up to accumulation order.
// MatMulNBits also takes float zero points (x̂ = s·(u − z) with u the unsigned code and z a float, e.g.
// 1.5 for the SEQ 2-bit grid {−3, −1, 1, 3}·s/2); DequantizeLinear cannot (its zero point has the
// codes' integer type), so such weights have no 'dq' form.
// Legend: N = out features, K = in features, G = group (block) size, Kb = K / G blocks.

import { ConfigError } from '../core/errors.js';
import type { IntQuantized } from '../quant/types.js';
import type { GraphBuilder, IrTensor, Value } from './ir.js';

export type LowBitMode = 'nbits' | 'dq';

/**
 * A linear weight run in real low bit: quant's integer codes, and optionally float zero points
 * [N·Kb] that replace q's integer ones (then q is asymmetric with unsigned codes and no `zeros`).
 */
export interface LowBitWeight {
  q: IntQuantized;
  mode: LowBitMode;
  floatZeros?: Float32Array;
}

/** Packs unsigned codes low-bits-first: element i of a run lands at bit (i·bits) of the run's bytes. */
function packRun(out: Uint8Array, outOff: number, codes: ArrayLike<number>, from: number, count: number, bits: number, bias: number): void {
  for (let e = 0; e < count; e++) {
    const v = (codes[from + e] + bias) & ((1 << bits) - 1);
    const bit = e * bits;
    out[outOff + (bit >> 3)] |= v << (bit & 7);
  }
}

/**
 * MatMulNBits operands: B [N, Kb, G·bits/8], scales [N·Kb], zero points [N · ceil(Kb·bits/8)]
 * (asymmetric with integer zero points), or float zero points [N·Kb] when `floatZeros` is given.
 */
export function packMatMulNBits(
  q: IntQuantized,
  floatZeros?: Float32Array,
): { B: Uint8Array; scales: Float32Array; zeroPoints: Uint8Array | null; floatZeroPoints?: Float32Array; N: number; K: number; G: number; bits: number } {
  const [N, K] = q.shape;
  const bits = q.scheme.bits;
  const g = q.scheme.granularity;
  if (q.shape.length !== 2 || g.kind !== 'group') {
    throw new ConfigError('unsupported', 'MatMulNBits needs a 2-D weight quantized in groups along K', { field: 'granularity', expected: 'group', found: g.kind });
  }
  const G = g.size;
  if (bits !== 2 && bits !== 4 && bits !== 8) {
    throw new ConfigError('unsupported', 'MatMulNBits supports 2, 4 and 8 bits only', { field: 'bits', expected: '2, 4 or 8', found: bits, hint: "use the 'dq' path for other widths" });
  }
  if (G < 16 || (G & (G - 1)) !== 0) {
    throw new ConfigError('unsupported', 'MatMulNBits block size must be a power of two >= 16', { field: 'group', found: G });
  }
  const Kb = K / G;
  if (floatZeros && (q.scheme.symmetric || floatZeros.length !== N * Kb)) {
    throw new ConfigError('bad_config', 'float zero points need unsigned (asymmetric) codes and one value per block', { field: 'floatZeros', expected: N * Kb, found: q.scheme.symmetric ? 'symmetric codes' : floatZeros.length });
  }
  if (!q.scheme.symmetric && !floatZeros && q.zeros?.length !== N * Kb) {
    throw new ConfigError('bad_config', 'asymmetric codes need one integer zero point per block', { field: 'zeros', expected: N * Kb, found: q.zeros?.length ?? 'none' });
  }
  const blob = (G * bits) / 8;
  const B = new Uint8Array(N * Kb * blob);
  // symmetric codes are signed: MatMulNBits's default zero point 2^(bits-1) undoes the bias
  const bias = q.scheme.symmetric ? 1 << (bits - 1) : 0;
  for (let n = 0; n < N; n++) for (let j = 0; j < Kb; j++) packRun(B, (n * Kb + j) * blob, q.codes, n * K + j * G, G, bits, bias);
  if (floatZeros) return { B, scales: q.scales, zeroPoints: null, floatZeroPoints: floatZeros, N, K, G, bits };
  let zeroPoints: Uint8Array | null = null;
  if (!q.scheme.symmetric) {
    const rowBytes = Math.ceil((Kb * bits) / 8);
    zeroPoints = new Uint8Array(N * rowBytes);
    for (let n = 0; n < N; n++) packRun(zeroPoints, n * rowBytes, q.zeros!, n * Kb, Kb, bits, 0);
  }
  return { B, scales: q.scales, zeroPoints, N, K, G, bits };
}

function codesTensor(q: IntQuantized, shape: number[], values: ArrayLike<number>): IrTensor {
  const four = q.scheme.bits <= 4;
  const n = values.length;
  if (four) {
    const data = new Uint8Array(Math.ceil(n / 2));
    for (let i = 0; i < n; i++) data[i >> 1] |= (values[i] & 15) << ((i & 1) * 4);
    return { dtype: q.scheme.symmetric ? 'I4' : 'U4', shape, data };
  }
  return q.scheme.symmetric ? { dtype: 'I8', shape, data: Int8Array.from(values) } : { dtype: 'U8', shape, data: Uint8Array.from(values) };
}

/** Dequantized weight W [N, K] as a graph value (DequantizeLinear over constant codes). */
export function dequantizedWeight(b: GraphBuilder, name: string, q: IntQuantized): Value {
  const [N, K] = q.shape;
  const g = q.scheme.granularity;
  const codes = b.constant(codesTensor(q, [N, K], q.codes), `${name}.codes`);
  let axis = 1;
  let blockSize = 0;
  let scaleShape: number[];
  if (g.kind === 'group') {
    blockSize = g.size;
    scaleShape = [N, K / g.size];
  } else if (g.kind === 'channel' && g.axis === 0) {
    axis = 0;
    scaleShape = [N];
  } else if (g.kind === 'tensor') {
    scaleShape = [];
  } else {
    throw new ConfigError('unsupported', 'DequantizeLinear path: granularity not supported', { tensor: name, found: g });
  }
  const scale = b.constant({ dtype: 'F32', shape: scaleShape, data: q.scales }, `${name}.scales`);
  const zp = q.zeros ? b.constant(codesTensor(q, scaleShape, q.zeros), `${name}.zeros`) : null;
  return b.dequantizeLinear(codes, scale, zp, axis, blockSize);
}

/**
 * The weight W [N, K] MatMulNBits computes with, from the same operands, in plain code: the slow
 * reference for that node. x̂ = fround((u − z)·s): u the unsigned code (signed code + 2^(bits−1) for
 * symmetric q), z the block's integer zero point (2^(bits−1) when absent) or float zero point.
 */
export function dequantizeNBits(q: IntQuantized, floatZeros?: Float32Array): Float32Array {
  const [N, K] = q.shape;
  const g = q.scheme.granularity;
  const G = g.kind === 'group' ? g.size : K;
  const Kb = K / G;
  const mid = 1 << (q.scheme.bits - 1);
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const j = n * Kb + Math.floor(k / G);
      const c = q.codes[n * K + k];
      // (u − z) is exact in float64 and in float32 (small integers or halves), so one rounding remains
      const d = q.scheme.symmetric ? c : floatZeros ? c - floatZeros[j] : c - (q.zeros ? q.zeros[j] : mid);
      out[n * K + k] = d * q.scales[j];
    }
  }
  return out;
}

/** x [..., K] @ Wᵀ for a quantized W [N, K], in the chosen low-bit mode (float zero points: 'nbits' only). */
export function lowBitLinear(b: GraphBuilder, name: string, x: Value, q: IntQuantized, mode: LowBitMode, accuracyLevel = 0, floatZeros?: Float32Array): Value {
  if (mode === 'dq') {
    if (floatZeros) throw new ConfigError('unsupported', 'DequantizeLinear has no float zero points', { tensor: name, field: 'mode', expected: 'nbits', found: 'dq' });
    return b.matmul(x, b.transpose(dequantizedWeight(b, name, q), [1, 0]));
  }
  const p = packMatMulNBits(q, floatZeros);
  const Kb = p.K / p.G;
  const B = b.constant({ dtype: 'U8', shape: [p.N, Kb, (p.G * p.bits) / 8], data: p.B }, `${name}.qweight`);
  const S = b.constant({ dtype: 'F32', shape: [p.N * Kb], data: p.scales }, `${name}.scales`);
  let Z: Value | null = null;
  if (p.floatZeroPoints) Z = b.constant({ dtype: 'F32', shape: [p.N * Kb], data: p.floatZeroPoints }, `${name}.zeros`);
  else if (p.zeroPoints) Z = b.constant({ dtype: 'U8', shape: [p.zeroPoints.length], data: p.zeroPoints }, `${name}.zeros`);
  return b.matmulNBits(x, B, S, Z, { K: p.K, N: p.N, bits: p.bits, blockSize: p.G, accuracyLevel });
}
