// δ_PTQ(P) = C·e^(−P/γ_post) fitted by least squares of ln δ on P: against numbers worked by hand.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitPtqDecay, ptqDecay } from '../../src/scaling/ptq-decay.js';

const near = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);

test('recovers C and γ_post from exact points (worked by hand)', () => {
  // C = 2, γ = 1.5: δ(2) = 2e^(−4/3) = 0.52720, δ(4) = 2e^(−8/3) = 0.13897, δ(8) = 2e^(−16/3) = 0.0096562
  // (5 significant digits: the fit may move by ~1e-5 relative)
  const f = fitPtqDecay([
    { bits: 2, delta: 0.5272 },
    { bits: 4, delta: 0.13897 },
    { bits: 8, delta: 0.0096562 },
  ]);
  near(f.C, 2, 1e-4, 'C');
  near(f.gammaPost, 1.5, 1e-4, 'γ_post');
  near(f.r2, 1, 1e-8, 'R²');
  assert.equal(f.used, 3);
  // the law itself: δ(3) = 2e^(−2) = 0.27067, δ(0) = C
  near(ptqDecay(3, { C: 2, gammaPost: 1.5 }), 0.27067, 5e-6, 'δ(3)');
  assert.equal(ptqDecay(0, { C: 2, gammaPost: 1.5 }), 2);
});

test('least squares on points off the curve (worked by hand)', () => {
  // δ = 1, 0.1, 0.01 at P = 2, 4, 8: ln δ = ln10·(0, −1, −2); mean P = 14/3, deviations (−8/3, −2/3, 10/3);
  // Sxx = 168/9 = 56/3, Sxy = −6·ln10, Syy = 2·ln²10 → slope = −(9/28)·ln10, γ_post = 28/(9·ln10) = 1.351138,
  // ln C = −ln10 + (9/28)(14/3)·ln10 = ln10/2 → C = √10 = 3.162278; R² = 36/((56/3)·2) = 27/28 = 0.9642857
  const f = fitPtqDecay([
    { bits: 2, delta: 1 },
    { bits: 4, delta: 0.1 },
    { bits: 8, delta: 0.01 },
  ]);
  near(f.gammaPost, 1.351138, 1e-6, 'γ_post');
  near(f.C, 3.162278, 1e-6, 'C');
  near(f.r2, 0.9642857, 1e-7, 'R²');
});

test('skips non-positive deltas and rejects flat or growing trends', () => {
  const f = fitPtqDecay([
    { bits: 8, delta: -1e-5 },
    { bits: 4, delta: 0.1 },
    { bits: 2, delta: 1 },
  ]);
  assert.equal(f.used, 2);
  // two points determine the curve: γ = 2/ln10 = 0.868589, C = 1·e^(2/γ) = 10
  near(f.gammaPost, 0.868589, 1e-6, 'γ_post from two points');
  near(f.C, 10, 1e-9, 'C from two points');
  assert.throws(() => fitPtqDecay([{ bits: 4, delta: 0.1 }]), /two or more/);
  assert.throws(() => fitPtqDecay([{ bits: 4, delta: 0.1 }, { bits: 8, delta: 0.2 }]), /does not decrease/);
});
