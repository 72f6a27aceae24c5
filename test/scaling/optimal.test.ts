// Compute-optimal precision: closed-form split checked against a brute-force grid, T1.6 numbers,
// and independence from the budget over six orders of magnitude.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KUMAR2024, withConstants } from '../../src/scaling/constants.js';
import {
  bruteForceOptimalTied,
  computeOptimalFixedN,
  computeOptimalSeparate,
  computeOptimalTied,
  minimize1d,
  trainingCost,
} from '../../src/scaling/optimal.js';

/** the 1-D search converges to ~1e-9 in P; differences between budgets are round-off of that */
const P_SEARCH_TOL = 1e-6;
/** the brute-force grid steps 0.05 bits and 1/200 decade in N */
const GRID_P_TOL = 0.05;
const GRID_LOSS_TOL = 2e-5;

test('T1.6: u* = 1.90381 solves 3u·e^(−u) = 1 − e^(−u); P* = u*·γ with one tied γ', () => {
  // with γ_w = γ_a = γ_kv = γ, F(P)/P = (1 − e^(−P/γ))³/P is maximised at P = u*·γ
  const u = minimize1d((x) => Math.abs(3 * x * Math.exp(-x) - (1 - Math.exp(-x))), 1, 3);
  assert.ok(Math.abs(u - 1.90381) < 1e-5, `u* = ${u}`);
  for (const [g, want] of [
    [KUMAR2024.values.gammaW, 5.092],
    [KUMAR2024.values.gammaA, 4.208],
  ]) {
    const set = withConstants(KUMAR2024, { gammaW: g, gammaA: g, gammaKv: g });
    const o = computeOptimalTied(1e21, set);
    assert.ok(Math.abs(o.precision.w - want) < 5e-4, `γ=${g}: P* = ${o.precision.w}, want ${want}`);
  }
});

test('T1.6: separate γ give P* ≈ 3.47, the same at budgets spanning 6 orders of magnitude', () => {
  const budgets = [1e17, 1e18, 1e19, 1e20, 1e21, 1e22, 1e23];
  const ps = budgets.map((C) => computeOptimalTied(C, KUMAR2024).precision.w);
  assert.ok(Math.abs(ps[0] - 3.47) < 5e-3, `P* = ${ps[0]}`);
  for (const p of ps) assert.ok(Math.abs(p - ps[0]) < P_SEARCH_TOL, `P* varies with compute: ${ps.join(', ')}`);
  // while N* and D* do scale with the budget, and the optimum spends exactly the budget
  const lo = computeOptimalTied(1e17, KUMAR2024);
  const hi = computeOptimalTied(1e23, KUMAR2024);
  assert.ok(hi.N / lo.N > 100 && hi.D / lo.D > 100);
  assert.ok(Math.abs(trainingCost(hi.N, hi.D, hi.precision.w) / 1e23 - 1) < 1e-12);
  // and the caveat about the paper's 7-8 bits is returned with the number
  assert.ok(hi.caveats.some((s) => s.includes('7-8-bit')));
});

test('compute-independence also holds for constants with α ≠ β (not just the paper\'s tied exponents)', () => {
  const set = withConstants(KUMAR2024, { alpha: 0.34, beta: 0.28, gammaW: 3, gammaA: 2, gammaKv: 1.2 });
  const ps = [1e16, 1e19, 1e22].map((C) => computeOptimalTied(C, set).precision.w);
  for (const p of ps) assert.ok(Math.abs(p - ps[0]) < P_SEARCH_TOL, ps.join(', '));
});

test('closed-form optimum matches an exhaustive grid over N and P (slow reference)', () => {
  for (const C of [1e19, 1e21, 1e23]) {
    const fast = computeOptimalTied(C, KUMAR2024);
    const slow = bruteForceOptimalTied(C, KUMAR2024.values, { minBits: 2, maxBits: 8, nPerDecade: 100 });
    assert.ok(Math.abs(fast.precision.w - slow.P) <= GRID_P_TOL, `C=${C}: ${fast.precision.w} vs grid ${slow.P}`);
    // the closed form is never worse than the grid, and the grid is close behind
    assert.ok(fast.loss <= slow.loss + 1e-12 && slow.loss - fast.loss < GRID_LOSS_TOL, `C=${C}: ${fast.loss} vs ${slow.loss}`);
  }
});

test('separate precisions: KV cache, the least sensitive tensor, gets the fewest bits; budget-independent', () => {
  const a = computeOptimalSeparate(1e19, KUMAR2024);
  const b = computeOptimalSeparate(1e23, KUMAR2024);
  assert.ok(a.precision.kv < a.precision.a && a.precision.a < a.precision.w, JSON.stringify(a.precision));
  for (const k of ['w', 'a', 'kv'] as const) assert.ok(Math.abs(a.precision[k] - b.precision[k]) < 1e-4, k);
  // freeing the three widths can only lower the loss at the same budget
  assert.ok(a.loss <= computeOptimalTied(1e19, KUMAR2024).loss + 1e-12);
  // charging only weights' bits: activations and KV are free, so they go to the top of the range
  const w = computeOptimalSeparate(1e21, KUMAR2024, { costWeights: { w: 1, a: 0, kv: 0 } });
  assert.ok(w.precision.a > 15.99 && w.precision.kv > 15.99);
});

test('with N fixed, P* grows with compute (paper §4.3.3)', () => {
  const ps = [1e19, 1e21, 1e23].map((C) => computeOptimalFixedN(C, 1e9, KUMAR2024).precision.w);
  assert.ok(ps[0] < ps[1] && ps[1] < ps[2], ps.join(', '));
});

test('bad budgets and search intervals are typed errors', () => {
  assert.throws(() => computeOptimalTied(-1, KUMAR2024), /compute must be/);
  assert.throws(() => computeOptimalTied(1e21, KUMAR2024, { minBits: 0.5 }), /search interval/);
  assert.throws(() => computeOptimalSeparate(1e21, KUMAR2024, { costWeights: { w: -1, a: 1, kv: 1 } }), /cost weights/);
});
