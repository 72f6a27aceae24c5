// KL divergence and top-1 agreement of logits rows against hand-computed values.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { compareLogitRows, klDivergence, logSoftmaxRow } from '../../src/eval/divergence.js';

test('klDivergence: KL of two hand-computed distributions, 0 for identical ones', () => {
  const p = Float64Array.from([Math.log(0.75), Math.log(0.25)]);
  const q = Float64Array.from([Math.log(0.5), Math.log(0.5)]);
  const want = 0.75 * Math.log(0.75 / 0.5) + 0.25 * Math.log(0.25 / 0.5);
  assert.ok(Math.abs(klDivergence(p, q) - want) < 1e-15);
  assert.equal(klDivergence(p, p), 0);
});

test('logSoftmaxRow and compareLogitRows: shift-invariant log-probs, first argmax on ties, summed KL and agreement', () => {
  const V = 2;
  const out = new Float64Array(V);
  // logits (ln 3, 0) → probabilities (0.75, 0.25), whatever constant is added
  const arg = logSoftmaxRow(Float32Array.from([0, 0, 5 + Math.log(3), 5]), 1, V, out);
  assert.equal(arg, 0);
  assert.ok(Math.abs(out[0] - Math.log(0.75)) < 1e-6 && Math.abs(out[1] - Math.log(0.25)) < 1e-6);
  assert.equal(logSoftmaxRow(Float32Array.from([1, 1]), 0, V, out), 0, 'first index on a tie');
  // row 0: (0.75, 0.25) vs (0.5, 0.5), top-1 differs only by the tie rule (0 vs 0: agree);
  // row 1: (0.25, 0.75) vs (0.75, 0.25): argmax 1 vs 0, disagree
  const ref = Float32Array.from([Math.log(3), 0, 0, Math.log(3)]);
  const tst = Float32Array.from([0, 0, Math.log(3), 0]);
  const c = compareLogitRows(ref, tst, V);
  const kl0 = 0.75 * Math.log(0.75 / 0.5) + 0.25 * Math.log(0.25 / 0.5);
  const kl1 = 0.25 * Math.log(0.25 / 0.75) + 0.75 * Math.log(0.75 / 0.25);
  assert.equal(c.rows, 2);
  assert.equal(c.agree, 1);
  assert.ok(Math.abs(c.klSum - (kl0 + kl1)) < 1e-6, `${c.klSum} vs ${kl0 + kl1}`);
});
