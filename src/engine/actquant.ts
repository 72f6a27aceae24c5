// In-graph fake quantization of activations and KV-cache entries, built from IR primitives so that
// the result equals quant's int codec (src/quant/affine.ts) on the same values, bit for bit; symmetric
// activations use the codec's restricted grid (amax on code qmax, the usual absmax form):
//   symmetric:  s = sig16(amax / qmax),                 q = clip(round(x / s), −2^(b−1), 2^(b−1) − 1), x̂ = s·q
//   asymmetric: s = sig16((hi − lo) / qmax), z = round(−lo / s), q = clip(round(x / s) + z, 0, 2^b − 1), x̂ = s·(q − z)
// with lo = min(min x, 0), hi = max(max x, 0), round = half to even (ONNX Round); the scale is kept
// to 16 significant bits (quant's F32 scale storage), rounded to nearest for symmetric grids and down
// for asymmetric ones, as quant's intParams does. quant computes the scale and
// x / s in float64, so the graph does too (Cast to F64 around the codec) and casts the result back.
// Groups: 'token' = one scale per row of the last axis (per token for [T, K], per token and head for
// [T, H, D]); 'tensor' = one scale for everything; 'static' = a fixed, calibrated scale.
// Float formats round through a saturating Cast (clip to ±max, then round to nearest even), as quant's
// float codec; scaled FP8 uses s = up16(amax / fmax), x̂ = s · fp8(x / s), again in float64.

import { ConfigError } from '../core/errors.js';
import type { Dim, GraphBuilder, Value } from './ir.js';

export type ActQuantSpec =
  | { kind: 'int'; bits: number; symmetric: boolean; granularity: 'token' | 'tensor' }
  /** static per-tensor: `scale` (and `zero` for asymmetric) fixed ahead of time, e.g. from calibration */
  | { kind: 'int'; bits: number; symmetric: boolean; granularity: 'static'; scale: number; zero?: number }
  /** a float format: a saturating cast, or (FP8 with `granularity`) absmax-scaled per token / tensor */
  | { kind: 'float'; format: 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2'; granularity?: 'token' | 'tensor' | null };

/**
 * BitNet's (and the trainer's) per-token absmax form, in float32 and without scale rounding:
 * s = qmax / max(amax, eps), x̂ = clip(round(x·s), −qmax − 1, qmax) / s. Not quant's codec (no
 * 16-bit scale), so it is kept apart from ActQuantSpec.
 */
export interface AbsmaxActSpec {
  kind: 'absmax';
  bits: number;
  eps: number;
}

/** largest finite value of each float format (casts saturate to it, as quant's float codec does) */
export const FLOAT_MAX = { F16: 65504, BF16: 3.3895313892515355e38, F8_E4M3: 448, F8_E5M2: 57344 } as const;

export function intLimits(bits: number, symmetric: boolean): { qmin: number; qmax: number } {
  if (!Number.isInteger(bits) || bits < 2 || bits > 16) {
    throw new ConfigError('bad_option', 'activation/KV int bits must be 2–16', { field: 'bits', expected: '2..16', found: bits });
  }
  return symmetric ? { qmin: -(2 ** (bits - 1)), qmax: 2 ** (bits - 1) - 1 } : { qmin: 0, qmax: 2 ** bits - 1 };
}

/** ceil(x) from primitives */
function ceil<N extends Dim>(b: GraphBuilder<N>, x: Value<N>): Value<N> {
  return b.neg(b.floor(b.neg(x)));
}

/**
 * Rounds positive F64 scales to 16 significant bits (quant's F32 scale storage) in direction `dir`;
 * 0 stays 0. Subnormal-range scales (< 2^-126) are not snapped to float32 here.
 */
export function roundScaleSig16<N extends Dim>(b: GraphBuilder<N>, s: Value<N>, dir: 'nearest' | 'down' | 'up'): Value<N> {
  const pos = b.less(0, s);
  const safe = b.where(pos, s, 1);
  let e = b.floor(b.div(b.log(safe), Math.LN2));
  // log may be off by one ulp near powers of two: enforce 2^e ≤ s < 2^(e+1)
  e = b.sub(e, b.cast(b.less(safe, b.pow(2, e)), 'F64'));
  e = b.add(e, b.where(b.less(safe, b.pow(2, b.add(e, 1))), 0, 1, 'F64'));
  const q = b.pow(2, b.sub(e, 15));
  const m = b.div(safe, q); // exact: division by a power of two
  const r = dir === 'up' ? ceil(b, m) : dir === 'down' ? b.floor(m) : b.round(m);
  return b.where(pos, b.mul(r, q), 0);
}

/** x̂ for activations `x` (F32, any rank ≥ 1) under `spec`; returns x itself when spec is null. */
export function fakeQuantActivation<N extends Dim>(b: GraphBuilder<N>, x: Value<N>, spec: ActQuantSpec | AbsmaxActSpec | null): Value<N> {
  if (!spec) return x;
  if (spec.kind === 'float') return fakeQuantFloat(b, x, spec);
  if (spec.kind === 'absmax') {
    const { qmin, qmax } = intLimits(spec.bits, true);
    const s = b.div(qmax, b.maximum(b.max(b.abs(x), [x.shape.length - 1], true), spec.eps));
    return b.div(b.clip(b.round(b.mul(x, s)), qmin, qmax), s);
  }
  const { qmin, qmax } = intLimits(spec.bits, spec.symmetric);
  const x64 = b.cast(x, 'F64');
  const last = x.shape.length - 1;
  const allAxes = x.shape.map((_, i) => i);
  let s: Value<N>;
  let z: Value<N> | null = null;
  if (spec.granularity === 'static') {
    if (!(spec.scale > 0)) throw new ConfigError('bad_option', 'static activation scale must be > 0', { field: 'scale', found: spec.scale });
    s = b.scalar(spec.scale, 'F64');
    if (!spec.symmetric) z = b.scalar(spec.zero ?? 0, 'F64');
  } else {
    const axes = spec.granularity === 'token' ? [last] : allAxes;
    if (spec.symmetric) {
      const amax = b.max(b.abs(x64), axes, true);
      s = roundScaleSig16(b, b.div(amax, qmax), 'nearest');
    } else {
      const lo = b.minimum(b.neg(b.max(b.neg(x64), axes, true)), 0);
      const hi = b.maximum(b.max(x64, axes, true), 0);
      s = roundScaleSig16(b, b.div(b.sub(hi, lo), qmax), 'down');
      const sSafe0 = b.where(b.equal(s, 0), 1, s);
      z = b.clip(b.round(b.div(b.neg(lo), sSafe0)), 0, qmax);
      // a zero scale maps everything to code z = 0 in quant
      z = b.where(b.equal(s, 0), 0, z);
    }
  }
  const sSafe = b.where(b.equal(s, 0), 1, s);
  let q = b.round(b.div(x64, sSafe));
  if (z) q = b.add(q, z);
  // −0 codes become +0, as in quant's integer code arrays (onnxruntime folds away a plain `+ 0`)
  q = b.where(b.equal(q, 0), 0, q);
  q = b.clip(q, qmin, qmax);
  const deq = b.mul(s, z ? b.sub(q, z) : q);
  return b.cast(deq, x.dtype);
}

function fakeQuantFloat<N extends Dim>(b: GraphBuilder<N>, x: Value<N>, spec: Extract<ActQuantSpec, { kind: 'float' }>): Value<N> {
  const fmax = FLOAT_MAX[spec.format];
  const roundTrip = (v: Value<N>) => b.cast(b.clip(v, -fmax, fmax), spec.format);
  if (!spec.granularity) return b.cast(roundTrip(x), x.dtype);
  if (spec.format === 'F16' || spec.format === 'BF16') throw new ConfigError('bad_option', 'scaled casts are for FP8 formats', { field: 'granularity', found: spec.format });
  const x64 = b.cast(x, 'F64');
  const axes = spec.granularity === 'token' ? [x.shape.length - 1] : x.shape.map((_, i) => i);
  const s = roundScaleSig16(b, b.div(b.max(b.abs(x64), axes, true), fmax), 'up');
  const zero = b.equal(s, 0);
  const y = b.mul(s, b.cast(roundTrip(b.div(x64, b.where(zero, 1, s))), 'F64'));
  return b.cast(b.where(zero, 0, y), x.dtype);
}
