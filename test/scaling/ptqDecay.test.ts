import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fitPtqDecay, ptqDecay } from '../../src/scaling/ptqDecay.js';

test('recovers C and γ_post from exact points (worked by hand)', () => {
  // C = 2, γ = 1.5: δ(2) = 2e^(−4/3) = 0.52720, δ(4) = 2e^(−8/3) = 0.13897, δ(8) = 2e^(−16/3) = 0.0096562
  const pts = [2, 4, 8].map((b) => ({ bits: b, delta: 2 * Math.exp(-b / 1.5) }));
  assert.ok(Math.abs(pts[0].delta - 0.5272) < 1e-4);
  const f = fitPtqDecay(pts);
  assert.ok(Math.abs(f.C - 2) < 1e-12);
  assert.ok(Math.abs(f.gammaPost - 1.5) < 1e-12);
  assert.ok(Math.abs(f.r2 - 1) < 1e-12);
  assert.ok(Math.abs(ptqDecay(3, f) - 2 * Math.exp(-2)) < 1e-12);
});

test('skips non-positive deltas and rejects flat or growing trends', () => {
  const f = fitPtqDecay([
    { bits: 8, delta: -1e-5 },
    { bits: 4, delta: 0.1 },
    { bits: 2, delta: 1 },
  ]);
  assert.equal(f.used, 2);
  assert.throws(() => fitPtqDecay([{ bits: 4, delta: 0.1 }]), /two or more/);
  assert.throws(() => fitPtqDecay([{ bits: 4, delta: 0.1 }, { bits: 8, delta: 0.2 }]), /does not decrease/);
});
