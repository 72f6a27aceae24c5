// Fast GPTQ (float32, blocked factor, GEMM feedback; src/algorithms/gptq-fast.ts) against the
// float64 oracle (src/algorithms/gptq.ts): the layer loss Σ‖(W − Ŵ)X‖² within 0.5 % on every layer,
// the same values where the inputs are well conditioned, on int, NF4 and ggml grids, with and
// without act-order and groups; plus the blocked factor and the panel storage against linalg.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { CodebookGrid, IntGrid, type ColumnGrid } from '../../src/algorithms/grid.js';
import { GgmlGrid } from '../../src/algorithms/ggml-grid.js';
import { KQuantGrid } from '../../src/algorithms/ggml-hook-grid.js';
import { gptq } from '../../src/algorithms/gptq.js';
import { gptqFactor, gptqFast, lazySizes, outerSize, transposeInto } from '../../src/algorithms/gptq-fast.js';
import { gramOf, gramQuadForm, outputSqnrDb, weightedError } from '../../src/algorithms/stats.js';
import { UpperPanels } from '../../src/numerics/panels.js';
import { reverseCholeskyPanels } from '../../src/numerics/cholesky-blocked.js';
import { reverseCholesky } from '../../src/numerics/linalg.js';
import { gemmF32, transposeF32, transposeF32Into, type Gemm } from '../../src/numerics/gemm.js';

/** The bound: fast layer loss within 0.5 % of the oracle's. */
const LOSS_REL_TOL = 0.005;
/** float32 factor vs float64 factor, relative to the largest entry */
const FACTOR_REL_TOL = 1e-5;
/** float32 GEMM quadratic form vs the float64 plain loops */
const QUAD_REL_TOL = 1e-5;

/** Correlated inputs X = Z·M·diag(s) (a well-conditioned Hessian), weights N(0, 0.05²). */
function layer(seed: number, N: number, K: number, T: number): { W: Float32Array; G: Float64Array; T: number } {
  const rng = new Rng(seed);
  const M = new Float64Array(K * K).map(() => rng.normal() / Math.sqrt(K));
  for (let i = 0; i < K; i++) M[i * K + i] += 1;
  const s = Float64Array.from({ length: K }, () => Math.exp(rng.normal() * 0.7));
  const X = new Float64Array(T * K);
  const z = new Float64Array(K);
  for (let t = 0; t < T; t++) {
    for (let i = 0; i < K; i++) z[i] = rng.normal();
    for (let j = 0; j < K; j++) {
      let v = 0;
      for (let i = 0; i < K; i++) v += z[i] * M[i * K + j];
      X[t * K + j] = v * s[j];
    }
  }
  return { W: Float32Array.from({ length: N * K }, () => rng.normal() * 0.05), G: gramOf(X, T, K), T };
}

/** A GEMM that counts its calls, to check the fast path really batches its feedback. */
function countingGemm(): { gemm: Gemm; calls: () => number } {
  let n = 0;
  return { gemm: (g) => (n++, gemmF32(g)), calls: () => n };
}

const N = 48, K = 512;
const L = layer(21, N, K, 1536);
const H = L.G.map((v) => (2 * v) / L.T);

const CASES: { name: string; grid: () => ColumnGrid; actOrder: boolean; staticGroups?: boolean; sameValues: number }[] = [
  { name: 'int4 g128 asym', grid: () => new IntGrid(N, K, { bits: 4, symmetric: false, groupSize: 128, scaleF16: true }), actOrder: false, sameValues: 1 },
  { name: 'int4 g32 asym act-order (dynamic groups)', grid: () => new IntGrid(N, K, { bits: 4, symmetric: false, groupSize: 32, scaleF16: true }), actOrder: true, sameValues: 1 },
  { name: 'int4 g64 sym act-order, static groups', grid: () => new IntGrid(N, K, { bits: 4, symmetric: true, groupSize: 64, scaleF16: true }), actOrder: true, staticGroups: true, sameValues: 1 },
  { name: 'int3 per-row sym', grid: () => new IntGrid(N, K, { bits: 3, symmetric: true }), actOrder: false, sameValues: 1 },
  { name: 'int2 per-row asym act-order', grid: () => new IntGrid(N, K, { bits: 2, symmetric: false }), actOrder: true, sameValues: 1 },
  { name: 'nf4 g64', grid: () => new CodebookGrid(N, K, 64, undefined, true), actOrder: false, sameValues: 1 },
  { name: 'Q4_0', grid: () => new GgmlGrid('Q4_0', N, K), actOrder: false, sameValues: 1 },
  { name: 'Q5_1 act-order (static blocks)', grid: () => new GgmlGrid('Q5_1', N, K), actOrder: true, sameValues: 1 },
  // scale searches (imatrix fits, K-quants) pick among candidate scales: float32 rounding of the
  // inputs may flip a few blocks
  { name: 'Q4_0 with imatrix', grid: () => new GgmlGrid('Q4_0', N, K, Float32Array.from({ length: K }, (_, i) => 0.5 + (i % 7) / 7)), actOrder: false, sameValues: 0.99 },
  { name: 'Q4_K', grid: () => new KQuantGrid('Q4_K', N, K), actOrder: false, sameValues: 0.99 },
  { name: 'Q6_K act-order', grid: () => new KQuantGrid('Q6_K', N, K), actOrder: true, sameValues: 0.99 },
];

for (const c of CASES) {
  test(`fast GPTQ = float64 oracle: ${c.name}`, async () => {
    const ref = gptq(L.W, N, K, H, c.grid(), { actOrder: c.actOrder, staticGroups: c.staticGroups });
    const gram = UpperPanels.fromFull(L.G, K, 96, 'F32'); // another panel width than the factor's
    // panels of 256: diagonal blocks split at the default leaf of 128
    const f = await gptqFactor(gram, 2 / L.T, { actOrder: c.actOrder, panelWidth: 256 });
    const cg = countingGemm();
    // outer blocks of 256 (2 of them at K = 512): all three feedback levels run
    const fast = await gptqFast(L.W, N, K, f, c.grid(), { staticGroups: c.staticGroups, gemm: cg.gemm, outerSize: 256 });
    const lr = weightedError(L.W, ref.weights, L.G, N, K);
    const lf = weightedError(L.W, fast.weights, L.G, N, K);
    assert.ok(Math.abs(lf - lr) <= LOSS_REL_TOL * lr, `layer loss fast ${lf} vs oracle ${lr}`);
    assert.ok(Math.abs(fast.loss - ref.loss) <= LOSS_REL_TOL * ref.loss, `GPTQ loss ${fast.loss} vs ${ref.loss}`);
    let same = 0;
    for (let i = 0; i < N * K; i++) if (Math.fround(ref.weights[i]) === fast.weights[i]) same++;
    assert.ok(same >= c.sameValues * N * K, `${same} of ${N * K} values equal`);
    assert.deepEqual(Array.from(fast.gIdx), Array.from(ref.gIdx), 'g_idx');
    assert.deepEqual(fast.perm && Array.from(fast.perm), ref.perm && Array.from(ref.perm), 'column order');
    assert.ok(cg.calls() >= K / 128 - 1, 'feedback batched as GEMMs');
  });
}

test('fast GPTQ: returned weights are what the grid encodes; dead inputs are zeroed', async () => {
  const n = 16, k = 256;
  const rng = new Rng(4);
  const X = new Float64Array(600 * k).map((_, i) => (i % k === 5 || i % k === 77 ? 0 : rng.normal()));
  const G = gramOf(X, 600, k);
  const W = Float32Array.from({ length: n * k }, () => rng.normal() * 0.1);
  const f = await gptqFactor(UpperPanels.fromFull(G, k, 64, 'F32'), 2 / 600, { panelWidth: 64 });
  assert.deepEqual([...f.dead.keys()].filter((j) => f.dead[j]), [5, 77]);
  const grid = new KQuantGrid('Q4_K', n, k);
  const r = await gptqFast(W, n, k, f, grid);
  const ref = gptq(W, n, k, G.map((v) => (2 * v) / 600), new KQuantGrid('Q4_K', n, k));
  for (let r0 = 0; r0 < n; r0++) for (const j of [5, 77]) assert.equal(Math.abs(ref.weights[r0 * k + j] - r.weights[r0 * k + j]) < 1e-6, true);
  // the codes decode to exactly the weights returned (the tensor GPTQ reports is the tensor written)
  const { dequantizeGgml } = await import('../../src/quant/ggml/index.js');
  assert.deepEqual(dequantizeGgml('Q4_K', grid.encode(), n * k), r.weights);
});

test('fast GPTQ writes Ŵ over W when asked and hands back (W − Ŵ)ᵀ in the original column order', async () => {
  const f = await gptqFactor(UpperPanels.fromFull(L.G, K, 128, 'F32'), 2 / L.T, { actOrder: true });
  const mk = () => new IntGrid(N, K, { bits: 4, symmetric: false, groupSize: 64, scaleF16: true });
  const ref = await gptqFast(L.W, N, K, f, mk());
  const w = L.W.slice();
  const r = await gptqFast(w, N, K, f, mk(), { out: w, keepErrors: true });
  assert.equal(r.weights, w);
  assert.deepEqual(w, ref.weights);
  for (let i = 0; i < N; i++) for (let j = 0; j < K; j++) assert.equal(r.errorsT![j * N + i], Math.fround(L.W[i * K + j] - ref.weights[i * K + j]));
  // the factor of a float32 Gram matrix can replace it (no act-order)
  const g = UpperPanels.fromFull(L.G, K, 256, 'F32');
  const f2 = await gptqFactor(g, 2 / L.T, { inPlace: true });
  assert.equal(f2.r, g);
  assert.deepEqual((await gptqFast(L.W, N, K, f2, mk())).weights, (await gptqFast(L.W, N, K, await gptqFactor(UpperPanels.fromFull(L.G, K, 256, 'F32'), 2 / L.T), mk())).weights);
});

test('fast GPTQ stops between column blocks when aborted, with an interrupted error', async () => {
  const f = await gptqFactor(UpperPanels.fromFull(L.G, K, 128, 'F32'), 2 / L.T);
  const ac = new AbortController();
  let blocks = 0;
  await assert.rejects(
    gptqFast(L.W, N, K, f, new IntGrid(N, K, { bits: 4, symmetric: false, groupSize: 128 }), {
      signal: ac.signal,
      onBlock: (done, total) => {
        blocks++;
        assert.ok(done <= total);
        if (done === 256) ac.abort();
      },
    }),
    { code: 'interrupted' },
  );
  assert.equal(blocks, 2);
  await assert.rejects(gptqFast(L.W, N, K + 1, f, new IntGrid(N, K + 1, { bits: 4, symmetric: false })), { code: 'shape_mismatch' });
});

test('lazy-batch sizes keep every dynamic group inside the fully updated columns', () => {
  for (const G of [8, 16, 32, 48, 64, 96, 128, 192, 256, 1024]) {
    for (const [B0, b0] of [[128, 16], [64, 32], [100, 12]]) {
      const { B, b } = lazySizes(G, true, B0, b0);
      assert.equal(B % b, 0, `leaves of ${b} tile blocks of ${B}`);
      // a group lies inside one leaf, or is whole leaves inside one block, or whole blocks
      assert.ok(b % G === 0 || (G % b === 0 && B % G === 0) || G % B === 0, `G=${G} B=${B} b=${b}`);
      // outer blocks: whole lazy batches, and whole groups or whole outer blocks inside one group
      for (const O0 of [512, 300, 64]) {
        const O = outerSize(G, true, B, O0);
        assert.equal(O % B, 0, `batches of ${B} tile outer blocks of ${O}`);
        assert.ok(O % G === 0 || G % O === 0, `G=${G} O=${O}`);
      }
    }
  }
  assert.equal(outerSize(48, true, 16, 512), 528); // 33 batches of 16 = 11 groups of 48
  assert.equal(outerSize(96, true, 32, 512), 480);
  assert.equal(outerSize(1024, true, 128, 512), 512);
  assert.equal(outerSize(192, true, 64, 512), 576);
  assert.equal(outerSize(40, false, 128, 512), 512); // static groups: any multiple of B
  assert.throws(() => outerSize(32, true, 128, 0), { code: 'bad_option' });
});

test('the outer feedback level changes only rounding: same loss as two levels, fewer GEMM flops at rank B', async () => {
  const f = await gptqFactor(UpperPanels.fromFull(L.G, K, 128, 'F32'), 2 / L.T);
  // an int grid: K-quant scale searches can flip a block on the last bit of a weight, which moves the loss by more than rounding
  const mk = () => new IntGrid(N, K, { bits: 4, symmetric: false, groupSize: 128, scaleF16: true });
  const ranks: number[] = [];
  const gemm: Gemm = (g) => (g.transA || ranks.push(g.k), gemmF32(g)); // not the group fits' solves (transA)
  const two = await gptqFast(L.W, N, K, f, mk(), { outerSize: 128 });
  const three = await gptqFast(L.W, N, K, f, mk(), { outerSize: 256, gemm });
  assert.ok(Math.abs(three.loss - two.loss) <= 1e-4 * two.loss, `${three.loss} vs ${two.loss}`);
  // K = 512 in outer blocks of 256: one rank-256 update of the second block; rank-128 updates only inside a block
  assert.deepEqual(ranks.filter((r) => r > 16).sort((a, b) => a - b), [128, 128, 256]);
});

test('blocked float32 factor H = R·Rᵀ equals the float64 reverse Cholesky', async () => {
  // leaf 16: diagonal blocks split in halves (recursively, 256 → 128 → … → 16) with GEMMs between them
  for (const [k, nb, leaf] of [[200, 64, 128], [256, 256, 128], [130, 17, 128], [256, 256, 16], [200, 64, 9], [130, 130, 40]]) {
    const { G } = layer(k, 4, k, 3 * k);
    for (let i = 0; i < k; i++) G[i * k + i] += 1e-3;
    const ref = reverseCholesky(G, k);
    const p = UpperPanels.fromFull(G, k, nb, 'F32') as UpperPanels<Float32Array>;
    await reverseCholeskyPanels(p, { gemm: gemmF32, leaf });
    const got = p.toFullUpper();
    let md = 0, mx = 0;
    for (let i = 0; i < k * k; i++) {
      md = Math.max(md, Math.abs(got[i] - ref[i]));
      mx = Math.max(mx, Math.abs(ref[i]));
    }
    assert.ok(md <= FACTOR_REL_TOL * mx, `K=${k} nb=${nb} leaf=${leaf}: max |ΔR| ${md} of ${mx}`);
  }
  // not positive definite in the second panel's block: the error names the global column
  const bad = UpperPanels.fromFull([2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 2, 0, 0, 2, 1], 4, 2, 'F32') as UpperPanels<Float32Array>;
  await assert.rejects(reverseCholeskyPanels(bad), (e: { code: string; context: { index: number } }) => e.code === 'diverged' && e.context.index === 2);
  // inside a split diagonal block (4 wide, leaves of 1): the first half's pivot fails after the second's Schur update
  const bad2 = UpperPanels.fromFull([2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 1, 2, 0, 0, 2, 1], 4, 4, 'F32') as UpperPanels<Float32Array>;
  await assert.rejects(reverseCholeskyPanels(bad2, { leaf: 1 }), (e: { code: string; context: { index: number } }) => e.code === 'diverged' && e.context.index === 2);
  const bad3 = UpperPanels.fromFull([1, 2, 0, 0, 2, 1, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2], 4, 4, 'F32') as UpperPanels<Float32Array>;
  await assert.rejects(reverseCholeskyPanels(bad3, { leaf: 1 }), (e: { code: string; context: { index: number } }) => e.code === 'diverged' && e.context.index === 0);
});

test('upper panels round-trip a symmetric matrix; the GEMM quadratic form equals the plain loops', async () => {
  const k = 70, n = 9;
  const { W, G } = layer(8, n, k, 200);
  const p = UpperPanels.fromFull(G, k, 32, 'F64');
  assert.deepEqual(p.toFullSymmetric(), G);
  assert.equal(p.data.length, UpperPanels.size(k, 32));
  const q = await gramQuadForm(transposeF32(W, n, k), n, p);
  const ref = weightedError(W, new Float32Array(n * k), G, n, k);
  assert.ok(Math.abs(q - ref) <= QUAD_REL_TOL * ref, `${q} vs ${ref}`);
  const wq = W.map((v) => Math.round(v * 20) / 20);
  const s = await outputSqnrDb(W, wq, n, k, p);
  const sRef = 10 * Math.log10(ref / weightedError(W, wq, G, n, k));
  assert.ok(Math.abs(s - sRef) < 1e-3, `SQNR ${s} vs ${sRef} dB`);
});

test('the float32 transpose equals the plain loops on shapes that are not whole tiles', () => {
  for (const [r, c] of [[1, 1], [70, 131], [64, 64], [129, 3], [3, 200]]) {
    const x = Float32Array.from({ length: r * c }, (_, i) => i * 0.5 - 7);
    const want = new Float32Array(r * c);
    for (let i = 0; i < r; i++) for (let j = 0; j < c; j++) want[j * r + i] = x[i * c + j];
    const got = new Float32Array(r * c).fill(NaN);
    transposeF32Into(x, r, c, got);
    assert.deepEqual(got, want, `${r}×${c}`);
    assert.deepEqual(transposeF32(x, r, c), want);
    const viaGeneric = new Float32Array(r * c).fill(NaN);
    transposeInto(x, r, c, viaGeneric);
    assert.deepEqual(viaGeneric, want);
    const u8 = new Uint8Array(r * c);
    transposeInto(Float64Array.from(x, (v) => Math.abs(v) % 256), r, c, u8);
    for (let t = 0; t < r * c; t++) assert.equal(u8[t], Math.abs(want[t]) % 256 | 0);
  }
});
