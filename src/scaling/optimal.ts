// Compute-optimal (N, D, P) under a training compute budget (Kumar et al. §4.3, REFERENCE §1.6).
//
// Legend: C = compute in FLOPs, N = parameters, D = tokens, P = bit width, F(P) = Π_x (1 − e^(−P_x/γ_x)),
// N_eff = N·F. Cost model: C = (6/16)·N·D·P̄ (16-bit training costs 6·N·D, linear in bits), where
// P̄ is one common P when precisions are tied, and a weighted mean of P_w, P_a, P_kv otherwise
// (our assumption; the paper ties the three precisions for this analysis).
//
// For a fixed precision the pretraining loss depends on N and D only through N_eff and D, and the
// budget fixes Q = N_eff·D = (16C/6)·F/P̄. Minimising A·X^−α + B·(Q/X)^−β over X = N_eff gives
// X* = (α·A/(β·B))^(1/(α+β))·Q^(β/(α+β)), closed form. The loss at X* falls as Q grows, so the
// best precision maximises F/P̄ whatever C is: P* does not depend on the budget (tested).
import { ConfigError } from '../core/errors.js';
import type { ConstantSet, LawConstants } from './constants.js';
import { checkPositive, precisionProduct, rangeCaveats, type TrainPrecision } from './law.js';

/** FLOPs per parameter per token per bit: 16-bit training costs 6 FLOPs per parameter-token. */
export const FLOPS_PER_BIT = 6 / 16;

/** Relative weights of P_w, P_a, P_kv in the cost when precisions are separate. */
export interface CostWeights {
  w: number;
  a: number;
  kv: number;
}

export const EQUAL_COST_WEIGHTS: CostWeights = { w: 1, a: 1, kv: 1 };

export interface OptimalPoint {
  /** budget in FLOPs */
  compute: number;
  N: number;
  D: number;
  nEff: number;
  /** bit widths: all three equal when tied */
  precision: { w: number; a: number; kv: number };
  /** the bit width the cost is charged at (P, or the weighted mean P̄) */
  costBits: number;
  /** pretraining loss at the optimum */
  loss: number;
  tokensPerParam: number;
  caveats: string[];
}

export interface PrecisionSearch {
  /** bit-width search interval, default [1, 16] */
  minBits?: number;
  maxBits?: number;
  costWeights?: CostWeights;
}

/** Training cost (6/16)·N·D·P in FLOPs. */
export function trainingCost(N: number, D: number, bits: number): number {
  return FLOPS_PER_BIT * N * D * bits;
}

export function costBits(p: Required<TrainPrecision>, wts: CostWeights = EQUAL_COST_WEIGHTS): number {
  return (wts.w * p.w + wts.a * p.a + wts.kv * p.kv) / (wts.w + wts.a + wts.kv);
}

/** The best split of the budget into N and D at fixed precisions (closed form, see header). */
export function optimalAtPrecision(compute: number, p: Required<TrainPrecision>, c: LawConstants, wts: CostWeights = EQUAL_COST_WEIGHTS) {
  const F = precisionProduct(p, c);
  const bits = costBits(p, wts);
  const Q = ((compute / FLOPS_PER_BIT) * F) / bits; // N_eff·D
  const X = Math.pow((c.alpha * c.A) / (c.beta * c.B), 1 / (c.alpha + c.beta)) * Math.pow(Q, c.beta / (c.alpha + c.beta));
  const N = X / F;
  const D = Q / X;
  const loss = c.A * Math.pow(X, -c.alpha) + c.B * Math.pow(D, -c.beta) + c.E;
  return { N, D, nEff: X, loss, costBits: bits };
}

const GOLDEN = (Math.sqrt(5) - 1) / 2;

/** Minimiser of a 1-D function on [lo, hi]: a coarse scan (against local minima), then golden section. */
export function minimize1d(f: (x: number) => number, lo: number, hi: number, steps = 200, tol = 1e-9): number {
  let best = lo;
  let bestV = f(lo);
  for (let i = 1; i <= steps; i++) {
    const x = lo + ((hi - lo) * i) / steps;
    const v = f(x);
    if (v < bestV) {
      bestV = v;
      best = x;
    }
  }
  const h = (hi - lo) / steps;
  let a = Math.max(lo, best - h);
  let b = Math.min(hi, best + h);
  let x1 = b - GOLDEN * (b - a);
  let x2 = a + GOLDEN * (b - a);
  let f1 = f(x1);
  let f2 = f(x2);
  while (b - a > tol) {
    if (f1 < f2) {
      b = x2;
      x2 = x1;
      f2 = f1;
      x1 = b - GOLDEN * (b - a);
      f1 = f(x1);
    } else {
      a = x1;
      x1 = x2;
      f1 = f2;
      x2 = a + GOLDEN * (b - a);
      f2 = f(x2);
    }
  }
  const m = (a + b) / 2;
  return f(m) <= bestV ? m : best;
}

function checkSearch(s: PrecisionSearch): [number, number] {
  const lo = s.minBits ?? 1;
  const hi = s.maxBits ?? 16;
  if (!(Number.isFinite(lo) && Number.isFinite(hi) && lo >= 1 && hi > lo && hi <= 64)) {
    throw new ConfigError('bad_option', 'invalid bit-width search interval', { field: 'minBits/maxBits', expected: '1 <= minBits < maxBits <= 64', found: [lo, hi] });
  }
  return [lo, hi];
}

function finish(compute: number, p: Required<TrainPrecision>, set: ConstantSet, wts: CostWeights, lo: number, hi: number): OptimalPoint {
  const o = optimalAtPrecision(compute, p, set.values, wts);
  const caveats = [...set.caveats, ...rangeCaveats({ N: o.N, D: o.D, bits: [p.w, p.a, p.kv] }, set)];
  const eps = 1e-3 * (hi - lo);
  for (const [k, v] of Object.entries(p)) {
    if (v - lo < eps || hi - v < eps) caveats.push(`the optimal ${k} precision ${v.toFixed(2)} lies at the edge of the search interval [${lo}, ${hi}]`);
  }
  return { compute, N: o.N, D: o.D, nEff: o.nEff, precision: { ...p }, costBits: o.costBits, loss: o.loss, tokensPerParam: o.D / o.N, caveats };
}

/** Compute-optimal N, D and one common precision P for weights, activations and KV cache. */
export function computeOptimalTied(compute: number, set: ConstantSet, search: PrecisionSearch = {}): OptimalPoint {
  checkPositive(compute, 'compute');
  const [lo, hi] = checkSearch(search);
  const c = set.values;
  const P = minimize1d((x) => optimalAtPrecision(compute, { w: x, a: x, kv: x }, c).loss, lo, hi);
  return finish(compute, { w: P, a: P, kv: P }, set, EQUAL_COST_WEIGHTS, lo, hi);
}

/**
 * Compute-optimal N, D and separate P_w, P_a, P_kv, charged at the weighted mean bit width
 * (cyclic coordinate descent with a 1-D search per precision; the objective is smooth).
 */
export function computeOptimalSeparate(compute: number, set: ConstantSet, search: PrecisionSearch = {}): OptimalPoint {
  checkPositive(compute, 'compute');
  const [lo, hi] = checkSearch(search);
  const wts = search.costWeights ?? EQUAL_COST_WEIGHTS;
  for (const [k, v] of Object.entries(wts)) {
    if (!(Number.isFinite(v) && v >= 0)) throw new ConfigError('bad_option', 'cost weights must be >= 0', { field: `costWeights.${k}`, expected: 'a number >= 0', found: v });
  }
  const c = set.values;
  const p = { w: 8, a: 8, kv: 8 };
  const loss = (q: typeof p) => optimalAtPrecision(compute, q, c, wts).loss;
  let prev = loss(p);
  for (let sweep = 0; sweep < 100; sweep++) {
    for (const k of ['w', 'a', 'kv'] as const) {
      p[k] = minimize1d((x) => loss({ ...p, [k]: x }), lo, hi, 60);
    }
    const cur = loss(p);
    if (prev - cur < 1e-13) break;
    prev = cur;
  }
  return finish(compute, p, set, wts, lo, hi);
}

/**
 * With N fixed in advance, the precision that minimises the loss for a budget: D = C/((6/16)·N·P).
 * The paper notes P* then grows roughly like log C (§4.3.3).
 */
export function computeOptimalFixedN(compute: number, N: number, set: ConstantSet, search: PrecisionSearch = {}): OptimalPoint {
  checkPositive(compute, 'compute');
  checkPositive(N, 'N');
  const [lo, hi] = checkSearch(search);
  const c = set.values;
  const lossAt = (P: number) => {
    const F = precisionProduct({ w: P, a: P, kv: P }, c);
    const D = compute / (FLOPS_PER_BIT * N * P);
    return c.A * Math.pow(N * F, -c.alpha) + c.B * Math.pow(D, -c.beta) + c.E;
  };
  const P = minimize1d(lossAt, lo, hi);
  const D = compute / (FLOPS_PER_BIT * N * P);
  const nEff = N * precisionProduct({ w: P, a: P, kv: P }, c);
  const caveats = [...set.caveats, ...rangeCaveats({ N, D, bits: [P] }, set)];
  return { compute, N, D, nEff, precision: { w: P, a: P, kv: P }, costBits: P, loss: lossAt(P), tokensPerParam: D / N, caveats };
}

/**
 * Slow reference for tests: an exhaustive grid over log N and P (tied), D from the budget.
 * Shares no code with the closed form above.
 */
export function bruteForceOptimalTied(compute: number, c: LawConstants, grid: { bitsStep?: number; nPerDecade?: number; minBits?: number; maxBits?: number } = {}) {
  const step = grid.bitsStep ?? 0.05;
  const perDecade = grid.nPerDecade ?? 200;
  let best = { loss: Infinity, N: 0, D: 0, P: 0 };
  const lo = grid.minBits ?? 1;
  const hi = grid.maxBits ?? 16;
  for (let i = 0; lo + i * step <= hi + 1e-12; i++) {
    const P = lo + i * step;
    const f = (1 - Math.exp(-P / c.gammaW)) * (1 - Math.exp(-P / c.gammaA)) * (1 - Math.exp(-P / c.gammaKv));
    for (let j = 0; j <= 14 * perDecade; j++) {
      const N = Math.pow(10, 4 + j / perDecade);
      const D = compute / ((6 / 16) * N * P);
      const L = c.A * Math.pow(N * f, -c.alpha) + c.B * Math.pow(D, -c.beta) + c.E;
      if (L < best.loss) best = { loss: L, N, D, P };
    }
  }
  return best;
}
