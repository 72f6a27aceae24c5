// NF4 / log2 / k-means code books: exact levels, nearest-level codes, idempotence, importance weighting,
// determinism for a seed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { quantize, dequantize, fakeQuant, parseScheme, bitsPerWeight, NF4_LEVELS, log2Levels } from '../../src/quant/index.js';
import type { CodebookQuantized } from '../../src/quant/index.js';

test('NF4 levels are the REFERENCE §7 values, ascending, 0 exact', () => {
  assert.equal(NF4_LEVELS.length, 16);
  assert.equal(NF4_LEVELS[7], 0);
  assert.equal(NF4_LEVELS[0], -1);
  assert.equal(NF4_LEVELS[15], 1);
  assert.equal(NF4_LEVELS[8], Math.fround(0.07958029955625534));
  for (let i = 1; i < 16; i++) assert.ok(NF4_LEVELS[i] > NF4_LEVELS[i - 1]);
});

test('NF4 hand-computed group: s = absmax, codes = nearest level to x/s', () => {
  // s = absmax = 2 (f32 scale)
  const w = new Float32Array([2, -1, 0.2, 0.08, -2, 0, 0.9, -0.36]);
  const q = quantize(w, [1, 8], parseScheme('nf4-g8-f32')) as CodebookQuantized;
  assert.equal(q.scales[0], 2);
  // x/s: 1 → 15; −0.5 → −0.525 (2); 0.1 → 0.0796 (8); 0.04 → 0 vs 0.0796: 0.04 > 0.0398 → 8; −1 → 0; 0 → 7;
  // 0.45 → 0.4407 (12); −0.18 → −0.1848 (5)
  assert.deepEqual([...q.codes], [15, 2, 8, 8, 0, 7, 12, 5]);
  const d = dequantize(q);
  assert.equal(d[0], 2);
  assert.equal(d[5], 0);
  assert.deepEqual(fakeQuant(d, [1, 8], parseScheme('nf4-g8-f32')), d);
});

test('log2 levels: 0 and signed powers of two; codes idempotent', () => {
  assert.deepEqual([...log2Levels(3)], [-1, -0.5, -0.25, 0, 0.125, 0.25, 0.5, 1]);
  const L4 = log2Levels(4);
  assert.equal(L4.length, 16);
  assert.ok(L4.every((v) => v === 0 || Number.isInteger(Math.log2(Math.abs(v)))));
  const rng = new Rng(1);
  const w = rng.fillNormal(new Float32Array(4 * 128), 0, 0.1);
  const d = fakeQuant(w, [4, 128], parseScheme('log2-g128'));
  assert.deepEqual(fakeQuant(d, [4, 128], parseScheme('log2-g128')), d);
});

test('k-means: per-group books, deterministic for a seed, better than NF4 on bimodal data, importance pulls levels', () => {
  const rng = new Rng(5);
  const w = new Float32Array(4 * 128).map(() => (rng.next() < 0.5 ? -0.5 : 0.5) + rng.normal(0, 0.01));
  const sc = parseScheme('kmeans4-g128');
  const a = quantize(w, [4, 128], sc, { seed: 11 }) as CodebookQuantized;
  const b = quantize(w, [4, 128], sc, { seed: 11 }) as CodebookQuantized;
  assert.deepEqual(a.codes, b.codes);
  assert.deepEqual(a.codebook, b.codebook);
  assert.equal(a.codebook.length, 4 * 16);
  const mse = (d: Float32Array): number => d.reduce((acc, v, i) => acc + (v - w[i]) ** 2, 0) / w.length;
  const km = mse(dequantize(a));
  const nf = mse(fakeQuant(w, [4, 128], parseScheme('nf4-g128')));
  assert.ok(km < nf, `k-means ${km} vs nf4 ${nf}`);
  // importance: a heavily weighted column with an unusual value gets (nearly) its own level
  const w2 = new Float32Array(128).map((_, i) => (i % 2 ? 0.1 : -0.1) * (1 + (i % 7) * 0.1));
  w2[3] = 0.77;
  const imp = new Float32Array(128).fill(1e-6);
  imp[3] = 1;
  const d2 = fakeQuant(w2, [1, 128], parseScheme('kmeans1-g128'), { importance: imp });
  assert.ok(Math.abs(d2[3] - 0.77) < 1e-3);
});

test('bits per weight of code books', () => {
  assert.equal(bitsPerWeight(parseScheme('nf4-g64'), [64, 64]), 4 + 16 / 64);
  assert.equal(bitsPerWeight(parseScheme('kmeans4-g128'), [64, 128]), 4 + (16 + 16 * 16) / 128);
});
