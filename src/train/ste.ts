// Straight-through estimators, in one place. Every fake-quantizer in bitscale's training code
// (host float64 references in quantizers.ts and the graph gradient rules in engine/grad/) takes
// its input gradient from the rules below, so the choice of estimator is visible and testable.
//
// A fake-quantizer y = Q(x) has zero derivative almost everywhere (round is piecewise constant);
// an STE replaces dQ/dx by a surrogate:
//   - 'identity'     dy/dx = 1 everywhere (BitNet: x + (Q(x) − x).detach())
//   - 'clipped'      dy/dx = 1 where lo ≤ x/α ≤ hi, 0 outside (LSQ, SEQ: the clamp passes no gradient)

import type { GraphBuilder, Value } from '../engine/ir.js';

export type SteKind = 'identity' | 'clipped';

export interface SteRule {
  kind: SteKind;
  /** for 'clipped': the in-range interval of x/α (inclusive) */
  lo?: number;
  hi?: number;
}

export const STE_IDENTITY: SteRule = { kind: 'identity' };

export function steClipped(lo: number, hi: number): SteRule {
  return { kind: 'clipped', lo, hi };
}

/** Surrogate derivative dy/dx at normalised input v = x/α. */
export function steMask(rule: SteRule, v: number): number {
  if (rule.kind === 'identity') return 1;
  return v >= (rule.lo as number) && v <= (rule.hi as number) ? 1 : 0;
}

/**
 * Input gradient of a fake-quantizer under an STE: gx[i] = gy[i]·mask(x[i]/α[row]).
 * x, gy: [N, K] row-major; alpha: [N] (one per row) or [1] (per tensor).
 */
export function steBackward(rule: SteRule, x: ArrayLike<number>, alpha: ArrayLike<number>, gy: ArrayLike<number>, N: number, K: number): Float64Array {
  const gx = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    const a = alpha.length === 1 ? alpha[0] : alpha[n];
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      gx[i] = gy[i] * steMask(rule, x[i] / a);
    }
  }
  return gx;
}

/**
 * The identity STE in a graph: y = stop(q) + (x − stop(x)). y's value is exactly q (x − x = 0 in
 * floating point, unlike x + (q − x)); its gradient flows to x unchanged. The two Identity nodes'
 * ids are added to `stop`, which autodiff (engine/autodiff.ts) treats as stop-gradients.
 */
export function graphSte(b: GraphBuilder, x: Value, q: Value, stop: Set<number>): Value {
  const sq = b.identity(q);
  const sx = b.identity(x);
  stop.add(sq.id);
  stop.add(sx.id);
  return b.add(sq, b.sub(x, sx));
}
