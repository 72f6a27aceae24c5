// onnxruntime's Gemm behind the numerics Gemm signature (src/engine/gemm.ts) against the plain
// TypeScript GEMM, every variant the algorithms use (in-place C included), and fast GPTQ driven by
// it against the float64 oracle.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { OrtGemm } from '../../src/engine/gemm.js';
import { gemmF32 } from '../../src/numerics/gemm.js';
import { UpperPanels } from '../../src/numerics/panels.js';
import { IntGrid } from '../../src/algorithms/grid.js';
import { KQuantGrid } from '../../src/algorithms/ggml-hook-grid.js';
import { gptq } from '../../src/algorithms/gptq.js';
import { gptqFactor, gptqFast } from '../../src/algorithms/gptq-fast.js';
import { gramOf, weightedError } from '../../src/algorithms/stats.js';

/** float32 products of length ≤ 300 in another summation order, relative to the largest |C| */
const GEMM_REL_TOL = 1e-6;
const LOSS_REL_TOL = 0.005;

test('onnxruntime Gemm equals the TypeScript GEMM in every variant, C updated in place', async () => {
  const og = new OrtGemm();
  const rng = new Rng(7);
  try {
    for (const [m, n, k] of [[1, 1, 1], [7, 5, 3], [64, 48, 300], [130, 9, 17]]) {
      for (const transA of [false, true]) {
        for (const transB of [false, true]) {
          for (const [alpha, beta] of [[1, 0], [-1, 1], [0.5, 2]]) {
            const a = Float32Array.from({ length: m * k }, () => rng.normal());
            const b = Float32Array.from({ length: k * n }, () => rng.normal());
            const c0 = Float32Array.from({ length: m * n + 8 }, () => rng.normal());
            const want = c0.slice(4, 4 + m * n);
            gemmF32({ m, n, k, a, b, c: want, transA, transB, alpha, beta });
            const guard = [c0[3], c0[4 + m * n]];
            const c = c0.subarray(4, 4 + m * n); // a view: results must land in the caller's memory
            await og.gemm({ m, n, k, a, b, c, transA, transB, alpha, beta });
            let md = 0, mx = 1e-30;
            for (let i = 0; i < m * n; i++) {
              md = Math.max(md, Math.abs(c[i] - want[i]));
              mx = Math.max(mx, Math.abs(want[i]));
            }
            assert.ok(md <= GEMM_REL_TOL * mx * Math.sqrt(k), `[${m}, ${n}, ${k}] tA=${transA} tB=${transB} α=${alpha} β=${beta}: ${md}`);
            assert.deepEqual([c0[3], c0[4 + m * n]], guard, 'memory around C untouched');
          }
        }
      }
    }
    // a C larger than one onnxruntime call takes (bands of rows)
    const [m, n, k] = [2100, 2048, 3];
    const a = Float32Array.from({ length: m * k }, () => rng.normal()), b = Float32Array.from({ length: k * n }, () => rng.normal());
    const c = Float32Array.from({ length: m * n }, () => rng.normal());
    const want = c.slice();
    gemmF32({ m, n, k, a, b, c: want, transB: false, alpha: -1, beta: 1 });
    const calls = og.calls;
    await og.gemm({ m, n, k, a, b, c, alpha: -1, beta: 1 });
    assert.ok(og.calls - calls > 1, 'split into bands');
    let md = 0;
    for (let i = 0; i < m * n; i++) md = Math.max(md, Math.abs(c[i] - want[i]));
    assert.ok(md < 1e-5, `banded: ${md}`);
    assert.ok(og.calls > 0 && og.flops > 0);
    await assert.rejects(async () => og.gemm({ m: 2, n: 2, k: 2, a: new Float32Array(3), b: new Float32Array(4), c: new Float32Array(4) }), { code: 'shape_mismatch' });
  } finally {
    await og.close();
  }
});

test('fast GPTQ on onnxruntime GEMMs stays within 0.5 % of the float64 oracle', async () => {
  const N = 32, K = 512, T = 1200;
  const rng = new Rng(12);
  const X = new Float64Array(T * K).map((_, i) => rng.normal() * (1 + (i % K) / K) + (i % 3 === 0 ? 0.3 : 0));
  const G = gramOf(X, T, K);
  const W = Float32Array.from({ length: N * K }, () => rng.normal() * 0.05);
  const og = new OrtGemm();
  try {
    for (const [name, mk, actOrder] of [
      ['int4 g128', () => new IntGrid(N, K, { bits: 4, symmetric: false, groupSize: 128, scaleF16: true }), true],
      ['Q4_K', () => new KQuantGrid('Q4_K', N, K), false],
    ] as const) {
      const ref = gptq(W, N, K, G.map((v) => (2 * v) / T), mk(), { actOrder });
      const f = await gptqFactor(UpperPanels.fromFull(G, K, 128, 'F32'), 2 / T, { actOrder, gemm: og.gemm });
      const fast = await gptqFast(W, N, K, f, mk(), { gemm: og.gemm });
      const lr = weightedError(W, ref.weights, G, N, K);
      const lf = weightedError(W, fast.weights, G, N, K);
      assert.ok(Math.abs(lf - lr) <= LOSS_REL_TOL * lr, `${name}: layer loss ${lf} vs ${lr}`);
    }
  } finally {
    await og.close();
  }
});
