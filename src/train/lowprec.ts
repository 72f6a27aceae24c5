// Low-precision training (Kumar et al., "Scaling Laws for Precision"): weights, activations and the
// KV cache are each fake-quantized in the forward pass to their own precision; gradients stay in
// high precision (straight-through, ste.ts).
//   weights:      on the host, through quant's own codec (quant/index.ts fakeQuant), so the values the
//                 graph sees are exactly the codec's (the parity test checks atol = 0);
//   activations,  in the graph (they only exist there): symmetric absmax integer grids,
//   KV:           x̂ = clip(round(x·s), −Qp−1, Qp)/s with s = Qp / max(amax, ε), per tensor or per token
//                 (the BitNet b1.58 activation quantizer is the 8-bit per-token case).
// Legend: T = tokens, E = features; "token" granularity reduces over the last axis only.

import { ConfigError } from '../core/errors.js';
import { fakeQuant } from '../quant/index.js';
import type { IntScheme } from '../quant/scheme.js';
import type { GraphBuilder, Value } from '../engine/ir.js';
import { graphSte } from './ste.js';

export type LpGranularity = 'tensor' | 'channel' | 'token';

/** One tensor class's training precision; null = full precision (float32). */
export interface LpSpec {
  bits: number;
  /** weights: 'channel' (per output row) or 'tensor'; activations/KV: 'tensor' or 'token' */
  granularity: LpGranularity;
}

export interface LowPrecision {
  weights: LpSpec | null;
  activations: LpSpec | null;
  kv: LpSpec | null;
}

export const FULL_PRECISION: LowPrecision = { weights: null, activations: null, kv: null };

/** ε below which an absmax is treated as this value (BitNet's clamp). */
export const ACT_EPS = 1e-5;

/** Parses "8", "4:tensor", "6:channel", "fp32"/"none" → LpSpec | null. */
export function parseLpSpec(s: string | undefined, what: 'weights' | 'activations' | 'kv'): LpSpec | null {
  if (s === undefined || s === 'none' || s === 'fp32' || s === '32' || s === '16') return null;
  const [b, g] = s.split(':');
  const bits = Number(b);
  const granularity = (g ?? (what === 'weights' ? 'channel' : 'tensor')) as LpGranularity;
  const okG = what === 'weights' ? ['channel', 'tensor'] : ['tensor', 'token'];
  if (!Number.isInteger(bits) || bits < 2 || bits > 8 || !okG.includes(granularity)) {
    throw new ConfigError('bad_option', `invalid ${what} precision`, { field: what, expected: `BITS[:${okG.join('|')}] with BITS in 2..8, or none`, found: s });
  }
  return { bits, granularity };
}

/** The int codec scheme used for weights at this precision. */
export function weightScheme(spec: LpSpec): IntScheme {
  return {
    kind: 'int',
    bits: spec.bits,
    symmetric: true,
    granularity: spec.granularity === 'tensor' ? { kind: 'tensor' } : { kind: 'channel', axis: 0 },
    scaleDtype: 'F32',
    rounding: 'half_even',
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

/** Fake-quantizes an activation or KV tensor with an identity STE; `stop` collects stop-gradient ids. */
export function quantizeActivation(b: GraphBuilder, x: Value, spec: LpSpec | null, stop: Set<number>): Value {
  if (!spec) return x;
  const g = spec.granularity === 'channel' ? 'tensor' : spec.granularity;
  return graphSte(b, x, absmaxQuantGraph(b, x, spec.bits, g), stop);
}
