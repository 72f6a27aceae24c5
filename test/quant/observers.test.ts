// Observers: exact min-max and percentiles, MSE clip search beating no clipping on heavy tails,
// TensorRT-style KL thresholds (near amax for uniform data, well inside it with rare outliers),
// running min/max and EMA by hand, and the clip range feeding quantize.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { NumericError, ConfigError } from '../../src/core/errors.js';
import {
  minMaxRange, percentileRange, mseClipSearch, mseClipSearchPerGroup, klRange, AbsHistogram, klThreshold, RunningRange, fakeQuant, parseScheme,
} from '../../src/quant/index.js';
import { mse } from '../../src/numerics/metrics.js';
import type { IntScheme } from '../../src/quant/index.js';

test('min-max and percentiles (numpy linear interpolation)', () => {
  const x = Float32Array.from({ length: 101 }, (_, i) => i - 50); // −50 … 50
  assert.deepEqual(minMaxRange(x), { min: -50, max: 50 });
  assert.deepEqual(percentileRange(x, 99), { min: -49, max: 49 });
  assert.deepEqual(percentileRange(x, 99.5), { min: -49.5, max: 49.5 });
  const s = percentileRange(Float32Array.from([1, -10, 2, 3]), 100, true);
  assert.deepEqual(s, { min: -10, max: 10 });
  const bad = new Float32Array(3);
  bad[2] = Infinity;
  assert.throws(() => minMaxRange(bad), (e: unknown) => e instanceof NumericError && e.context.index === 2);
});

test('MSE clip search: heavy-tailed data clips (< 1) and lowers the error; the ratio feeds quantize', () => {
  const rng = new Rng(21);
  const w = Float32Array.from({ length: 16 * 128 }, () => {
    const u = rng.next() - 0.5;
    return -Math.sign(u) * Math.log(1 - 2 * Math.abs(u)) * 0.02; // Laplace(0.02)
  });
  const sc = parseScheme('int3-channel');
  const r = mseClipSearch(w, [16, 128], sc, { norm: 2 });
  assert.ok(r.ratio < 1, `ratio ${r.ratio}`);
  const clipped = mse(w, fakeQuant(w, [16, 128], sc, { clipRatio: r.ratio }));
  const plain = mse(w, fakeQuant(w, [16, 128], sc));
  assert.ok(clipped < plain);
  assert.ok(Math.abs(clipped * w.length - r.error) <= 1e-9 * r.error);
});

test('KL (entropy) calibration: uniform data keeps ~amax, rare outliers are clipped', () => {
  const rng = new Rng(5);
  const u = Float32Array.from({ length: 50000 }, () => rng.next() * 2 - 1);
  const ru = klRange(u);
  assert.ok(ru.max > 0.9 && ru.max <= 1.0001, `uniform threshold ${ru.max}`);
  const g = rng.fillNormal(new Float32Array(50000), 0, 1);
  g[7] = 40;
  const rg = klRange(g);
  assert.ok(rg.max > 2.5 && rg.max < 6, `gaussian+outlier threshold ${rg.max}`);
  assert.equal(rg.min, -rg.max);
});

test('histogram range doubling keeps counts; thresholds from batches', () => {
  const h = new AbsHistogram();
  h.add(Float32Array.from([0.5, -1]));
  assert.equal(h.range, 1);
  h.add(Float32Array.from([3.5]));
  assert.equal(h.range, 4);
  assert.equal(h.counts.reduce((a, b) => a + b, 0), 3);
  assert.ok(klThreshold(h) > 0);
});

test('running min/max and EMA by hand', () => {
  const rr = new RunningRange({ mode: 'minmax' });
  rr.update(Float32Array.from([-1, 2]));
  assert.deepEqual(rr.update(Float32Array.from([-3, 1])), { min: -3, max: 2 });
  const ema = new RunningRange({ mode: 'ema', averagingConstant: 0.5 });
  ema.update(Float32Array.from([-1, 2]));
  assert.deepEqual(ema.update(Float32Array.from([-3, 4])), { min: -2, max: 3 });
});

test('an observer range clips through quantize opts.clip', () => {
  const w = Float32Array.from([-0.1, 0.05, 0.02, 9]);
  const range = percentileRange(w, 60, true);
  const d = fakeQuant(w, [1, 4], parseScheme('int8-tensor'), { clip: range });
  assert.ok(Math.abs(d[3] - range.max) < range.max / 127);
});

test('per-group MSE clip ratios: no group worse than with the best common ratio; ratios feed quantize', () => {
  const rng = new Rng(22);
  const w = rng.fillNormal(new Float32Array(8 * 256), 0, 0.02);
  for (let r = 0; r < 8; r += 2) w[r * 256 + 7] = 0.3; // outliers in half the rows
  const sc = parseScheme('int4-g64') as IntScheme;
  const ratios = mseClipSearchPerGroup(w, [8, 256], sc, { norm: 2 });
  assert.equal(ratios.length, 32);
  assert.ok(ratios.some((v) => v < 1));
  const per = mse(w, fakeQuant(w, [8, 256], sc, { clipRatio: ratios }));
  const common = mseClipSearch(w, [8, 256], sc, { norm: 2 });
  assert.ok(per * w.length <= common.error * (1 + 1e-12), `${per * w.length} vs ${common.error}`);
  assert.throws(() => fakeQuant(w, [8, 256], sc, { clipRatio: new Float32Array(3) }), ConfigError);
  assert.throws(() => fakeQuant(w, [8, 256], sc, { clipRatio: 1.5 }), ConfigError);
});
