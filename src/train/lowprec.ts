// Low-precision training (Kumar et al., "Scaling Laws for Precision"): weights, activations and the
// KV cache are each fake-quantized in the forward pass to their own precision; gradients stay in
// high precision (straight-through, ste.ts).
//   weights:      on the host, through quant's own codec (quant/index.ts fakeQuant) with a named
//                 scheme: `4:channel` is `int4-channel-restricted` (the absmax grid, amax on code
//                 2^(b−1) − 1, like the activations below; it is idempotent, so a model trained at P
//                 bits loses nothing to PTQ at P bits, which the precision law assumes), and any int
//                 scheme string is accepted as is: `train --weights S` trains on the weights
//                 `eval --w-bits S` applies (test/pipeline/quantize/one-quantizer.test.ts checks atol = 0);
//   activations,  in the graph (they only exist there): symmetric absmax integer grids,
//   KV:           x̂ = clip(round(x·s), −Qp−1, Qp)/s with s = Qp / max(amax, ε), per tensor or per token
//                 (the BitNet b1.58 activation quantizer is the 8-bit per-token case).
// Legend: T = tokens, E = features; "token" granularity reduces over the last axis only.

import { ConfigError } from '../core/errors.js';
import { fakeQuant, parseScheme } from '../quant/index.js';
import type { FloatScheme, IntScheme } from '../quant/scheme.js';
import type { GraphBuilder, Value } from '../engine/ir.js';
import { graphSte } from './ste.js';

export type LpGranularity = 'tensor' | 'channel' | 'token';

/** Element formats: symmetric integers, or floats (FP8 E4M3/E5M2 and FP4 E2M1 absmax-scaled; F16/BF16 plain casts). */
export type LpFormat = 'int' | 'e4m3' | 'e5m2' | 'fp4' | 'fp16' | 'bf16';

/** One tensor class's training precision; null = full precision (float32). */
export interface LpSpec {
  bits: number;
  /** weights: 'channel' (per output row) or 'tensor'; activations/KV: 'tensor' or 'token' */
  granularity: LpGranularity;
  /** default 'int' */
  format?: LpFormat;
  /** weights given as an int scheme string (`int4-g128`): the codec scheme itself */
  scheme?: IntScheme;
}

/** Float formats: bits, and for the minifloats mantissa bits, minimum normal exponent and max finite value. */
const FLOATS: Record<Exclude<LpFormat, 'int'>, { bits: number; scheme: 'F8_E4M3' | 'F8_E5M2' | 'FP4_E2M1' | 'F16' | 'BF16'; mbits: number; emin: number; fmax: number }> = {
  e4m3: { bits: 8, scheme: 'F8_E4M3', mbits: 3, emin: -6, fmax: 448 },
  e5m2: { bits: 8, scheme: 'F8_E5M2', mbits: 2, emin: -14, fmax: 57344 },
  fp4: { bits: 4, scheme: 'FP4_E2M1', mbits: 1, emin: 0, fmax: 6 },
  fp16: { bits: 16, scheme: 'F16', mbits: 10, emin: -14, fmax: 65504 },
  bf16: { bits: 16, scheme: 'BF16', mbits: 7, emin: -126, fmax: 3.3895313892515355e38 },
};

export interface LowPrecision {
  weights: LpSpec | null;
  activations: LpSpec | null;
  kv: LpSpec | null;
}

export const FULL_PRECISION: LowPrecision = { weights: null, activations: null, kv: null };

/** ε below which an absmax is treated as this value (BitNet's clamp). */
export const ACT_EPS = 1e-5;

/** Parses "8", "4:tensor", "e4m3:channel", "fp4", "bf16", "fp32"/"none" → LpSpec | null. */
export function parseLpSpec(s: string | undefined, what: 'weights' | 'activations' | 'kv'): LpSpec | null {
  if (s === undefined || s === 'none' || s === 'fp32' || s === '32') return null;
  if (what === 'weights' && /^int[1-8]-/.test(s)) {
    const scheme = parseScheme(s);
    if (scheme.kind !== 'int') throw new ConfigError('internal', 'an int scheme string parsed to another kind', { field: what, found: s });
    return { bits: scheme.bits, granularity: scheme.granularity.kind === 'tensor' ? 'tensor' : 'channel', scheme };
  }
  const [b, g] = s.split(':');
  const granularity = (g ?? (what === 'weights' ? 'channel' : 'tensor')) as LpGranularity;
  const okG = what === 'weights' ? ['channel', 'tensor'] : ['tensor', 'token'];
  const bad = () => {
    throw new ConfigError('bad_option', `invalid ${what} precision`, { field: what, expected: `BITS (2..8) or e4m3|e5m2|fp4|fp16|bf16, then optionally :${okG.join('|')}${what === 'weights' ? '; or an int scheme (int4-g128)' : ''}; or none`, found: s });
  };
  if (!okG.includes(granularity)) bad();
  if (b in FLOATS) return { bits: FLOATS[b as keyof typeof FLOATS].bits, granularity, format: b as LpFormat };
  const bits = Number(b);
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) bad();
  return { bits, granularity };
}

/** The codec scheme used for weights at this precision: B bits per channel/tensor is `intB-channel-restricted` / `intB-tensor-restricted`. */
export function weightScheme(spec: LpSpec): IntScheme | FloatScheme {
  if (spec.scheme) return spec.scheme;
  if (spec.format && spec.format !== 'int') {
    const f = FLOATS[spec.format];
    const cast = spec.format === 'fp16' || spec.format === 'bf16';
    return { kind: 'float', format: f.scheme, granularity: cast ? null : spec.granularity === 'tensor' ? { kind: 'tensor' } : { kind: 'channel', axis: 0 } };
  }
  return {
    kind: 'int',
    bits: spec.bits,
    symmetric: true,
    granularity: spec.granularity === 'tensor' ? { kind: 'tensor' } : { kind: 'channel', axis: 0 },
    scaleDtype: 'F32',
    rounding: 'half_even',
    restricted: true,
  };
}

/** Host fake-quant of one weight [N, K] through the codec (null spec: returned as is). */
export function quantizeWeight(w: Float32Array, shape: number[], spec: LpSpec | null, name?: string): Float32Array {
  if (!spec) return w;
  return fakeQuant(w, shape, weightScheme(spec), { name });
}

/** In-graph absmax fake-quant value (no STE): clip(round(x·s), −Qp−1, Qp)/s. */
export function absmaxQuantGraph(b: GraphBuilder, x: Value, bits: number, granularity: 'tensor' | 'token'): Value {
  const qp = 2 ** (bits - 1) - 1;
  const axes = granularity === 'token' ? [x.shape.length - 1] : x.shape.map((_, i) => i);
  const amax = b.maximum(b.max(b.abs(x), axes, true), ACT_EPS);
  const s = b.div(qp, amax);
  return b.div(b.clip(b.round(b.mul(x, s)), -qp - 1, qp), s);
}

/**
 * In-graph absmax minifloat fake-quant (no STE), emulated with primitives: x is scaled so that its
 * absmax lands on the format's max, each value is rounded (half to even) to the step of its binade
 * 2^(max(floor(log2|x|), emin) − mbits), clipped to ±max and scaled back. log2 is Log/ln 2 in
 * float32, which can misplace a value lying within an ulp of a power of two into the binade below
 * (a finer step): the only difference from the codec's exact encoder.
 */
export function minifloatQuantGraph(b: GraphBuilder, x: Value, format: 'e4m3' | 'e5m2' | 'fp4', granularity: 'tensor' | 'token'): Value {
  const f = FLOATS[format];
  const axes = granularity === 'token' ? [x.shape.length - 1] : x.shape.map((_, i) => i);
  const amax = b.maximum(b.max(b.abs(x), axes, true), ACT_EPS);
  const s = b.div(f.fmax, amax);
  const xs = b.mul(x, s);
  const e = b.maximum(b.floor(b.div(b.log(b.maximum(b.abs(xs), 1e-30)), Math.LN2)), f.emin);
  const step = b.pow(b.scalar(2), b.sub(e, f.mbits));
  const q = b.clip(b.mul(b.round(b.div(xs, step)), step), -f.fmax, f.fmax);
  return b.div(q, s);
}

/** Fake-quantizes an activation or KV tensor with an identity STE; `stop` collects stop-gradient ids. */
export function quantizeActivation(b: GraphBuilder, x: Value, spec: LpSpec | null, stop: Set<number>): Value {
  if (!spec) return x;
  const g = spec.granularity === 'channel' ? 'tensor' : spec.granularity;
  const fmt = spec.format ?? 'int';
  let q: Value;
  if (fmt === 'int') q = absmaxQuantGraph(b, x, spec.bits, g);
  else if (fmt === 'fp16' || fmt === 'bf16') q = b.cast(b.cast(x, fmt === 'fp16' ? 'F16' : 'BF16'), 'F32'); // round to nearest even
  else q = minifloatQuantGraph(b, x, fmt, g);
  return graphSte(b, x, q, stop);
}
