import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { CodebookGrid, IntGrid } from '../../src/algorithms/grid.js';
import { gptq, rtnOnGrid, actOrderPermutation } from '../../src/algorithms/gptq.js';
import { gramOf, weightedError } from '../../src/algorithms/stats.js';
import { cholesky, choleskyInverse, choleskyUpper, upperCholeskyOfInverse, upperCholeskyOfInverseRef } from '../../src/numerics/linalg.js';

// T4 values are printed to 4 decimals; the reference is a float64 numpy port.
const T4_TOL = 5e-5;
// fast vs reference factor of H⁻¹ (float64, well conditioned)
const CHOL_TOL = 1e-9;

function t4Inputs() {
  const N = 8, K = 16, T = 64;
  const W = new Float64Array(N * K);
  for (let i = 0; i < N; i++) for (let j = 0; j < K; j++) W[i * K + j] = Math.sin(7 * i + 3 * j);
  const X = new Float64Array(T * K); // [T, K]
  for (let t = 0; t < T; t++) for (let j = 0; j < K; j++) X[t * K + j] = Math.cos(5 * j + 11 * t) * (1 + (j % 4));
  const G = gramOf(X, T, K);
  const H = G.map((v) => (v * 2) / T);
  return { N, K, W, G, H };
}

test('T4: RTN and GPTQ squared output errors match the reference at 2, 3, 4 bits', () => {
  const { N, K, W, G, H } = t4Inputs();
  const expected: Record<number, [number, number]> = { 2: [1029.3176, 416.4429], 3: [189.6582, 49.489], 4: [21.6556, 5.6773] };
  for (const bits of [2, 3, 4]) {
    const rtn = rtnOnGrid(W, N, K, new IntGrid(N, K, { bits, symmetric: false }));
    const res = gptq(W, N, K, H, new IntGrid(N, K, { bits, symmetric: false }));
    const [eR, eG] = expected[bits];
    assert.ok(Math.abs(weightedError(W, rtn, G, N, K) - eR) < T4_TOL * Math.max(1, eR), `RTN ${bits} bits`);
    assert.ok(Math.abs(weightedError(W, res.weights, G, N, K) - eG) < T4_TOL * Math.max(1, eG), `GPTQ ${bits} bits`);
  }
  const res4 = gptq(W, N, K, H, new IntGrid(N, K, { bits: 4, symmetric: false }));
  const row0 = [0, 0.132779, -0.265559, 0.398338, -0.531118, 0.663897];
  row0.forEach((v, j) => assert.ok(Math.abs(res4.weights[j] - v) < 1e-6, `row 0 col ${j}`));
});

test('fast upper Cholesky of H⁻¹ equals the three-step reference', () => {
  const rng = new Rng(3);
  const K = 40, T = 120;
  const X = new Float64Array(T * K).map(() => rng.normal());
  const H = gramOf(X, T, K);
  for (let i = 0; i < K; i++) H[i * K + i] += 0.1;
  const a = upperCholeskyOfInverse(H, K);
  const b = upperCholeskyOfInverseRef(H, K);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  assert.ok(m < CHOL_TOL, `max diff ${m}`);
  // and against the composition written out step by step
  const c = choleskyUpper(choleskyInverse(cholesky(H, K), K), K);
  let m2 = 0;
  for (let i = 0; i < a.length; i++) m2 = Math.max(m2, Math.abs(a[i] - c[i]));
  assert.ok(m2 < CHOL_TOL, `vs step-by-step composition: max diff ${m2}`);
  // lower triangle is zero
  for (let i = 1; i < K; i++) for (let j = 0; j < i; j++) assert.equal(a[i * K + j], 0);
});

/** A layer with correlated inputs: X = Z·M with a random mixing matrix and per-channel scales. */
function correlatedLayer(seed: number, N: number, K: number, T: number) {
  const rng = new Rng(seed);
  const M = new Float64Array(K * K).map(() => rng.normal() / Math.sqrt(K));
  for (let i = 0; i < K; i++) M[i * K + i] += 1;
  const scale = Float64Array.from({ length: K }, () => Math.exp(rng.normal()));
  const X = new Float64Array(T * K);
  const z = new Float64Array(K);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < K; i++) z[i] = rng.normal();
    for (let j = 0; j < K; j++) {
      let s = 0;
      for (let i = 0; i < K; i++) s += z[i] * M[i * K + j];
      X[t * K + j] = s * scale[j];
    }
  }
  const W = new Float64Array(N * K).map(() => rng.normal() * 0.05);
  const G = gramOf(X, T, K);
  return { W, G, H: G.map((v) => (2 * v) / T) };
}

function sqnrDb(W: Float64Array, Q: Float64Array, G: Float64Array, N: number, K: number): number {
  const zero = new Float64Array(N * K);
  return 10 * Math.log10(weightedError(W, zero, G, N, K) / weightedError(W, Q, G, N, K));
}

test('GPTQ output SQNR ≥ RTN on correlated inputs (int4 g32, int3 per-row, NF4 g64, act-order)', () => {
  const N = 32, K = 128, T = 512;
  const { W, G, H } = correlatedLayer(11, N, K, T);
  const cases: [string, () => IntGrid | CodebookGrid, boolean][] = [
    ['int4 g32 asym', () => new IntGrid(N, K, { bits: 4, symmetric: false, groupSize: 32 }), false],
    ['int3 row sym', () => new IntGrid(N, K, { bits: 3, symmetric: true }), false],
    ['nf4 g64', () => new CodebookGrid(N, K, 64), false],
    ['int4 g32 act-order', () => new IntGrid(N, K, { bits: 4, symmetric: false, groupSize: 32 }), true],
  ];
  for (const [name, mk, actOrder] of cases) {
    const rtn = rtnOnGrid(W, N, K, mk());
    const q = gptq(W, N, K, H, mk(), { actOrder, blockSize: 48 });
    const sR = sqnrDb(W, rtn, G, N, K);
    const sG = sqnrDb(W, q.weights, G, N, K);
    assert.ok(sG > sR + 1, `${name}: GPTQ ${sG.toFixed(2)} dB vs RTN ${sR.toFixed(2)} dB`);
  }
});

test('returned weights are exactly the grid codes dequantized, with g_idx naming each column\'s group', () => {
  const N = 16, K = 96, T = 300;
  const { W, H } = correlatedLayer(5, N, K, T);
  for (const [actOrder, staticGroups] of [[false, false], [true, false], [true, true], [false, true]] as const) {
    const grid = new IntGrid(N, K, { bits: 4, symmetric: false, groupSize: 32, scaleF16: true });
    const res = gptq(W, N, K, H, grid, { actOrder, staticGroups, blockSize: 40 });
    const ng = grid.numGroups;
    for (let r = 0; r < N; r++) {
      for (let j = 0; j < K; j++) {
        const g = res.gIdx[j];
        const v = grid.scales[r * ng + g] * (grid.codes[r * K + j] - grid.zeros[r * ng + g]);
        assert.equal(res.weights[r * K + j], v);
      }
    }
    if (staticGroups || !actOrder) {
      for (let j = 0; j < K; j++) assert.equal(res.gIdx[j], Math.floor(j / 32), `g_idx[${j}]`);
    } else {
      // dynamic act-order: groups are runs of 32 in the permuted order
      const perm = res.perm!;
      assert.deepEqual(Array.from(perm), Array.from(actOrderPermutation(H, K)));
      for (let c = 0; c < K; c++) assert.equal(res.gIdx[perm[c]], Math.floor(c / 32));
      // each group has exactly 32 members
      const counts = new Map<number, number>();
      for (const g of res.gIdx) counts.set(g, (counts.get(g) ?? 0) + 1);
      assert.deepEqual([...counts.values()], [32, 32, 32]);
    }
  }
});

test('dead input columns are zeroed and the run is deterministic', () => {
  const N = 4, K = 8, T = 50;
  const rng = new Rng(9);
  const X = new Float64Array(T * K).map((_, i) => (i % K === 3 ? 0 : rng.normal()));
  const H = gramOf(X, T, K);
  const W = new Float64Array(N * K).map(() => rng.normal());
  const a = gptq(W, N, K, H, new IntGrid(N, K, { bits: 4, symmetric: true }));
  const b = gptq(W, N, K, H, new IntGrid(N, K, { bits: 4, symmetric: true }));
  for (let r = 0; r < N; r++) assert.equal(a.weights[r * K + 3], 0);
  assert.deepEqual(a.weights, b.weights);
});

test('an aborted signal stops GPTQ with an interrupted error', () => {
  const { N, K, W, H } = t4Inputs();
  const ac = new AbortController();
  ac.abort();
  assert.throws(() => gptq(W, N, K, H, new IntGrid(N, K, { bits: 4, symmetric: false }), { signal: ac.signal }), { code: 'interrupted' });
  assert.throws(() => gptq(W, N, K + 1, H, new IntGrid(N, K, { bits: 4, symmetric: false })), { code: 'shape_mismatch' });
});
