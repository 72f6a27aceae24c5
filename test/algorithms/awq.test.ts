import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { IntGrid } from '../../src/algorithms/grid.js';
import { rtnOnGrid } from '../../src/algorithms/gptq.js';
import { gramOf } from '../../src/algorithms/stats.js';
import {
  awqAlphaGrid, awqClipSearch, awqScales, awqSearchScales, foldIntoLinearRows, foldIntoNorm, outputLoss,
  scaleInputColumns, scaledFakeQuant, SCALE_MAPPINGS, type FakeQuantFn,
} from '../../src/algorithms/awq.js';
import { smoothQuantScales, w8a8Error, weightColumnMax } from '../../src/algorithms/smoothquant.js';

// T5/T6 values are given to 5 decimals.
const FIXTURE_TOL = 5e-6;
// folding must leave the float function unchanged up to float64 rounding
const FOLD_TOL = 1e-12;

const int4g32: FakeQuantFn = (w, n, k) => rtnOnGrid(w, n, k, new IntGrid(n, k, { bits: 4, symmetric: false, groupSize: 32 }));
const int3g32: FakeQuantFn = (w, n, k) => rtnOnGrid(w, n, k, new IntGrid(n, k, { bits: 3, symmetric: false, groupSize: 32 }));

test('T5: AWQ scales before the search', () => {
  const s = awqScales([0.1, 1.0, 4.0], 0.5);
  [0.39764, 1.25743, 2.51487].forEach((v, i) => assert.ok(Math.abs(s[i] - v) < FIXTURE_TOL, `s[${i}] = ${s[i]}`));
  const s1 = awqScales([0.1, 1.0, 4.0], 1.0);
  [0.15811, 1.58114, 6.32456].forEach((v, i) => assert.ok(Math.abs(s1[i] - v) < FIXTURE_TOL));
  const grid = awqAlphaGrid();
  assert.equal(grid.length, 20);
  assert.equal(grid[0], 0);
  assert.ok(Math.abs(grid[19] - 0.95) < 1e-15);
});

test('T6: SmoothQuant factors', () => {
  const s = smoothQuantScales([10, 1, 0.1], [0.5, 0.5, 2.0], 0.5);
  [4.47214, 1.41421, 0.22361].forEach((v, i) => assert.ok(Math.abs(s[i] - v) < FIXTURE_TOL, `s[${i}] = ${s[i]}`));
});

/** Activations with a few planted outlier channels (×25), weights i.i.d. normal. */
function outlierLayer(seed: number, N: number, K: number, T: number) {
  const rng = new Rng(seed);
  const boost = new Float64Array(K).fill(1);
  for (let i = 0; i < 4; i++) boost[rng.int(K)] = 25;
  const x = new Float64Array(T * K).map((_, i) => rng.normal() * boost[i % K]);
  const w = new Float64Array(N * K).map(() => rng.normal() * 0.02);
  const sx = new Float64Array(K);
  for (let i = 0; i < x.length; i++) sx[i % K] += Math.abs(x[i]) / T;
  return { x, w, sx, gram: gramOf(x, T, K) };
}

test('AWQ beats RTN on a layer with planted outlier channels (int4 and int3, g32), gram and token losses agree', () => {
  const N = 48, K = 128, T = 256;
  const { x, w, sx, gram } = outlierLayer(21, N, K, T);
  for (const fq of [int4g32, int3g32]) {
    const res = awqSearchScales([{ name: 'fc', w, n: N }], K, sx, { gram }, fq);
    const rtn = outputLoss(w, fq(Float64Array.from(w), N, K), N, K, { gram });
    assert.ok(Math.abs(res.rtnLoss - rtn) <= 1e-9 * rtn, 'α = 0 is plain RTN');
    assert.ok(res.alpha > 0, `chose α = ${res.alpha}`);
    const awq = outputLoss(w, scaledFakeQuant(w, N, K, res.scales, fq), N, K, { gram });
    assert.ok(awq < 0.8 * rtn, `AWQ ${awq} vs RTN ${rtn}`);
    const viaTokens = outputLoss(w, scaledFakeQuant(w, N, K, res.scales, fq), N, K, { x, t: T });
    assert.ok(Math.abs(viaTokens - awq) < 1e-9 * awq);
  }
});

test('clip search never increases the per-group error and only shrinks weights', () => {
  const N = 16, K = 64, T = 200;
  const { w, gram } = outlierLayer(4, N, K, T);
  const clip = awqClipSearch(w, N, K, 32, gram, int3g32);
  const before = outputLoss(w, int3g32(Float64Array.from(w), N, K), N, K, { gram });
  const after = outputLoss(w, int3g32(clip.w, N, K), N, K, { gram });
  assert.ok(after <= before * (1 + 1e-12), `${after} vs ${before}`);
  for (let i = 0; i < w.length; i++) assert.ok(Math.abs(clip.w[i]) <= Math.abs(w[i]));
  assert.equal(clip.maxVal.length, N * 2);
});

test('folding scales into the norm or the preceding linear leaves the float function unchanged', () => {
  const rng = new Rng(8);
  const K = 12, N = 5, Kin = 7;
  const gamma = new Float64Array(K).map(() => 1 + rng.normal() * 0.1);
  const W = new Float64Array(N * K).map(() => rng.normal());
  const s = new Float64Array(K).map(() => Math.exp(rng.normal()));
  const h = new Float64Array(K).map(() => rng.normal()); // normalised hidden state
  const y0 = Array.from({ length: N }, (_, r) => W.slice(r * K, r * K + K).reduce((a, v, j) => a + v * gamma[j] * h[j], 0));
  const g2 = Float64Array.from(gamma);
  const W2 = Float64Array.from(W);
  foldIntoNorm(g2, s);
  scaleInputColumns(W2, N, K, s);
  const y1 = Array.from({ length: N }, (_, r) => W2.slice(r * K, r * K + K).reduce((a, v, j) => a + v * g2[j] * h[j], 0));
  y0.forEach((v, i) => assert.ok(Math.abs(v - y1[i]) < FOLD_TOL * (1 + Math.abs(v))));
  // fc → fc: up [K, Kin] then down [N, K]
  const up = new Float64Array(K * Kin).map(() => rng.normal());
  const xin = new Float64Array(Kin).map(() => rng.normal());
  const mid = (u: Float64Array) => Array.from({ length: K }, (_, r) => u.slice(r * Kin, r * Kin + Kin).reduce((a, v, c) => a + v * xin[c], 0));
  const out = (d: Float64Array, m: number[]) => Array.from({ length: N }, (_, r) => d.slice(r * K, r * K + K).reduce((a, v, j) => a + v * m[j], 0));
  const z0 = out(W, mid(up));
  const up2 = Float64Array.from(up);
  const W3 = Float64Array.from(W);
  foldIntoLinearRows(up2, K, Kin, s);
  scaleInputColumns(W3, N, K, s);
  const z1 = out(W3, mid(up2));
  z0.forEach((v, i) => assert.ok(Math.abs(v - z1[i]) < FOLD_TOL * (1 + Math.abs(v))));
});

test('Llama mappings are data: norms feed q/k/v and gate/up, v feeds o under a shape check, up feeds down', () => {
  const m = SCALE_MAPPINGS.llama;
  assert.deepEqual(m.map((x) => x.prev), ['input_layernorm', 'self_attn.v_proj', 'post_attention_layernorm', 'mlp.up_proj']);
  assert.equal(m[1].requireSameShape, true);
  assert.deepEqual(m[3].linears, ['mlp.down_proj']);
});

test('SmoothQuant lowers W8A8 error on activations with outlier channels', () => {
  const N = 24, K = 64, T = 64;
  const { x, w } = outlierLayer(13, N, K, T);
  const actMax = new Float64Array(K);
  for (let i = 0; i < x.length; i++) actMax[i % K] = Math.max(actMax[i % K], Math.abs(x[i]));
  const s = smoothQuantScales(actMax, weightColumnMax([{ w, n: N }], K), 0.5);
  const plain = w8a8Error(x, T, w, N, K, null);
  const smooth = w8a8Error(x, T, w, N, K, s);
  assert.ok(smooth < 0.7 * plain, `smoothed ${smooth} vs plain ${plain}`);
});
