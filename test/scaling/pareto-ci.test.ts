// The noise-aware frontier: hand-worked cases (the demo's numbers from issue 17), agreement with the
// classic frontier when intervals have zero width, and the frontier's defining properties on
// seeded random interval sets.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { bestWithinBudget, clearlyBetter, dominates, intervalFrontier, withinNoise, type IntervalPoint } from '../../src/scaling/pareto-ci.js';
import { paretoFrontier } from '../../src/scaling/pareto.js';
import { Rng } from '../../src/core/rng.js';

const iv = (id: string, size: number, value: number, half: number): IntervalPoint => ({ id, size, value, lo: value - half, hi: value + half });

test('perplexity that cannot separate the points: the smallest of an overlapping run is the frontier', () => {
  // mean NLL ± 95% half-width as in the demo (4,096 tokens): ln 52.077 = 3.9528 etc., ±0.035
  const pts = [iv('awq-int2', 2.13, Math.log(56.958), 0.035), iv('gptq-int3', 3.13, Math.log(52.713), 0.035), iv('awq-int4', 4.13, Math.log(52.019), 0.035), iv('gptq-q4_0', 4.5, Math.log(52.156), 0.035), iv('base', 32, Math.log(52.077), 0.035)];
  const f = intervalFrontier(pts);
  // int3 is measurably better than int2 (the intervals do not meet); nothing after it is
  assert.deepEqual(f.frontier, ['awq-int2', 'gptq-int3']);
  // awq-int4 is *not* ranked above the float model although its point estimate is lower
  assert.equal(f.dominatedBy.get('awq-int4'), 'gptq-int3');
  assert.equal(f.dominatedBy.get('base'), 'gptq-int3');
  assert.deepEqual(f.ties.get('gptq-int3'), ['awq-int4', 'gptq-q4_0', 'base']);
});

test('KL divergence separates them: the frontier follows the measurably better points', () => {
  const pts = [iv('awq-int2', 2.13, 0.1227, 0.004), iv('gptq-int3', 3.13, 0.0239, 0.001), iv('awq-int4', 4.13, 0.0058, 0.0003), iv('rtn-int4', 4.13, 0.0061, 0.0003), iv('gptq-q4_0', 4.5, 0.0027, 0.0002), iv('q8_0', 8.5, 1.5e-5, 2e-6)];
  const f = intervalFrontier(pts);
  // awq-int4 and rtn-int4 overlap at the same size: both stay, as a tie
  assert.deepEqual(f.frontier, ['awq-int2', 'gptq-int3', 'awq-int4', 'rtn-int4', 'gptq-q4_0', 'q8_0']);
  assert.deepEqual(f.ties.get('awq-int4'), ['rtn-int4']);
  const pick = bestWithinBudget(pts, 4.2)!;
  assert.equal(pick.best.id, 'awq-int4');
  assert.deepEqual(pick.equivalent.map((p) => p.id), ['rtn-int4']);
  assert.equal(bestWithinBudget(pts, 4.5)!.best.id, 'gptq-q4_0');
  assert.equal(bestWithinBudget(pts, 2), null);
});

test('with zero-width intervals and distinct values the frontier is the classic Pareto frontier', () => {
  const rng = new Rng(17);
  for (let trial = 0; trial < 200; trial++) {
    const n = 1 + Math.floor(rng.next() * 12);
    const pts = Array.from({ length: n }, (_, i) => iv(`p${i}`, 1 + Math.floor(rng.next() * 6), rng.next(), 0));
    const classic = paretoFrontier(pts.map((p) => ({ id: p.id, bits: 1, size: p.size, quality: p.value })), 'lower').map((p) => p.id).sort();
    assert.deepEqual(intervalFrontier(pts).frontier.slice().sort(), classic, `trial ${trial}`);
  }
});

test('frontier properties on random intervals: undominated, complete, and each larger point clearly better', () => {
  const rng = new Rng(3);
  for (let trial = 0; trial < 300; trial++) {
    const n = 1 + Math.floor(rng.next() * 14);
    const pts = Array.from({ length: n }, (_, i) => iv(`p${i}`, 1 + Math.floor(rng.next() * 8), rng.next() * 3, rng.next() * 0.6));
    const f = intervalFrontier(pts);
    const by = new Map(pts.map((p) => [p.id, p]));
    const front = f.frontier.map((id) => by.get(id)!);
    assert.ok(front.length >= 1);
    for (const p of front) assert.ok(!pts.some((q) => q !== p && dominates(q, p)), `trial ${trial}: ${p.id} is dominated`);
    for (const p of pts) if (!f.frontier.includes(p.id)) assert.ok(dominates(by.get(f.dominatedBy.get(p.id)!)!, p), `trial ${trial}: ${p.id}`);
    for (const a of front) {
      for (const b of front) {
        if (a.size < b.size) assert.ok(clearlyBetter(b, a), `trial ${trial}: ${b.id} is on the frontier but not clearly better than ${a.id}`);
        if (a !== b && a.size === b.size) assert.ok(withinNoise(a, b), `trial ${trial}: same-size frontier points must tie`);
      }
    }
  }
});

test('bad input is refused with the field named', () => {
  assert.throws(() => intervalFrontier([{ id: 'a', size: 1, value: 2, lo: 3, hi: 4 }]), /interval must contain the value/);
  assert.throws(() => intervalFrontier([iv('a', 1, 1, 0), iv('a', 2, 1, 0)]), /duplicate point id/);
  assert.throws(() => intervalFrontier([iv('a', NaN, 1, 0)]), /size must be finite/);
});
