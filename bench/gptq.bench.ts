// GPTQ wall time and GFLOPS. Part 1: the float64 oracle (plain TS loops, src/algorithms/gptq.ts)
// on square layers vs RTN on the same grid. Part 2: the fast path (src/algorithms/gptq-fast.ts:
// float32, blocked factor, feedback as onnxruntime GEMMs) at real widths, Q4_K with an imatrix,
// split into its parts: the factor, the GEMMs of the feedback, and the rest (the sequential
// column loop: the grid's group fits and rounding, the in-leaf updates), next to onnxruntime
// MatMul's GFLOPS and the oracle on the same layer, measured in the same run.
// Usage: npm run bench gptq. GPTQ_FAST_SHAPES="N×K,…" (default 2048×2048,8192×2048,2048×8192).
import { Rng } from '../src/core/rng.js';
import { IntGrid } from '../src/algorithms/grid.js';
import { GgmlGrid } from '../src/algorithms/ggml-grid.js';
import { KQuantGrid } from '../src/algorithms/ggml-hook-grid.js';
import { gptq, rtnOnGrid } from '../src/algorithms/gptq.js';
import { gptqFactor, gptqFast } from '../src/algorithms/gptq-fast.js';
import { upperCholeskyOfInverse } from '../src/numerics/linalg.js';
import { UpperPanels } from '../src/numerics/panels.js';
import { OrtGemm } from '../src/engine/gemm.js';
import { fmt, timeMs } from './util.js';

function layer(n: number, k: number, seed: number) {
  const rng = new Rng(seed);
  const t = 2 * k;
  const x = new Float64Array(t * k).map(() => rng.normal());
  // H = 2/T·XᵀX (upper then mirrored): a well-conditioned SPD matrix
  const h = new Float64Array(k * k);
  for (let r = 0; r < t; r++) {
    for (let i = 0; i < k; i++) {
      const v = x[r * k + i];
      for (let j = i; j < k; j++) h[i * k + j] += v * x[r * k + j];
    }
  }
  for (let i = 0; i < k; i++) for (let j = 0; j < i; j++) h[i * k + j] = h[j * k + i];
  for (let i = 0; i < h.length; i++) h[i] *= 2 / t;
  const w = Float32Array.from({ length: n * k }, () => rng.normal() * 0.02);
  return { w, h };
}

/** A Gram matrix of T = 512 random tokens with a few loud channels, as upper panels, via the GEMM. */
async function gram(k: number, og: OrtGemm, rng: Rng): Promise<{ g: UpperPanels<Float32Array>; t: number }> {
  const T = 512;
  const x = Float32Array.from({ length: T * k }, (_, i) => rng.normal() * (i % k < k / 64 ? 8 : 1));
  const g = UpperPanels.zeros(k, 256, 'F32');
  for (let p = 0; p < g.count; p++) {
    const rows = g.rows(p), w = g.width(p);
    const a = new Float32Array(T * rows), b = new Float32Array(T * w);
    for (let r = 0; r < T; r++) {
      a.set(x.subarray(r * k, r * k + rows), r * rows);
      b.set(x.subarray(r * k + p * 256, r * k + p * 256 + w), r * w);
    }
    await og.gemm({ m: rows, n: w, k: T, a, b, c: g.panel(p), transA: true });
  }
  return { g, t: T };
}

async function matmulGflops(og: OrtGemm): Promise<number> {
  const m = 2048, k = 2048, n = 2048;
  const a = Float32Array.from({ length: m * k }, (_, i) => (i % 13) / 13 - 0.5), b = Float32Array.from({ length: k * n }, (_, i) => (i % 7) / 7 - 0.5);
  const c = new Float32Array(m * n);
  const ms = await timeMs(() => og.gemm({ m, n, k, a, b, c }), 3, 1);
  return (2 * m * n * k) / ms / 1e6;
}

export default async function (): Promise<void> {
  for (const [n, k] of [[512, 512], [1024, 1024], [2048, 2048]] as const) {
    const { w, h } = layer(n, k, 1);
    const reps = k >= 2048 ? 1 : 3;
    const tChol = await timeMs(() => upperCholeskyOfInverse(h, k), reps, 0);
    let flops = 0;
    const tG = await timeMs(() => {
      flops = gptq(w, n, k, h, new IntGrid(n, k, { bits: 4, symmetric: false, groupSize: 128 })).flops;
    }, reps, 0);
    const tQ = await timeMs(() => gptq(w, n, k, h, new GgmlGrid('Q4_0', n, k), { actOrder: true }), reps, 0);
    const tR = await timeMs(() => rtnOnGrid(w, n, k, new IntGrid(n, k, { bits: 4, symmetric: false, groupSize: 128 })), reps, 0);
    console.log(
      `GPTQ ${n}x${k} int4-g128: ${fmt(tG)} ms (${fmt(flops / tG / 1e6, 2)} GFLOPS; Cholesky-of-inverse ${fmt(tChol)} ms = ` +
        `${fmt((4 * k ** 3) / 3 / tChol / 1e6, 2)} GFLOPS) | Q4_0 act-order ${fmt(tQ)} ms | RTN same grid ${fmt(tR)} ms | GPTQ/RTN ${fmt(tG / tR, 1)}x`,
    );
  }

  // fast path at real widths
  const og = new OrtGemm();
  const rng = new Rng(2);
  try {
    const mm = await matmulGflops(og);
    console.log(`fast GPTQ (float32, onnxruntime GEMMs), Q4_K with an imatrix; onnxruntime MatMul 2048³: ${fmt(mm, 1)} GFLOPS`);
    const shapes = (process.env.GPTQ_FAST_SHAPES ?? '2048x2048,8192x2048,2048x8192').split(',').map((s) => s.split(/[x×]/).map(Number) as [number, number]);
    const grams = new Map<number, { g: UpperPanels<Float32Array>; t: number }>();
    for (const [n, k] of shapes) {
      if (!grams.has(k)) grams.set(k, await gram(k, og, rng));
      const { g, t } = grams.get(k)!;
      og.seconds = 0;
      og.flops = 0;
      let t0 = performance.now();
      const f = await gptqFactor(g, 2 / t, { gemm: og.gemm });
      const tf = (performance.now() - t0) / 1000;
      og.seconds = 0;
      og.flops = 0;
      const w = Float32Array.from({ length: n * k }, () => rng.normal() * 0.02);
      const im = Float32Array.from({ length: k }, () => 0.5 + rng.next());
      t0 = performance.now();
      // group fits (the codec's scale search per super-block) timed apart from the column loop
      const grid = new KQuantGrid('Q4_K', n, k, im);
      const fitT = grid.fitGroupT.bind(grid);
      let tFit = 0;
      grid.fitGroupT = (...args: Parameters<typeof fitT>) => {
        const t = performance.now();
        fitT(...args);
        tFit += (performance.now() - t) / 1000;
      };
      t0 = performance.now();
      const r = await gptqFast(w, n, k, f, grid, { gemm: og.gemm });
      const ts = (performance.now() - t0) / 1000;
      const rest = ts - og.seconds - tFit;
      const total = tf + ts;
      console.log(
        `  N=${n} K=${k}: ${fmt(total, 1)} s = ${fmt((f.flops + r.flops) / total / 1e9, 1)} GFLOPS (${fmt((100 * (f.flops + r.flops)) / total / 1e9 / mm, 0)}% of MatMul) | ` +
          `factor ${fmt(tf, 1)} s (${fmt((100 * tf) / total, 0)}%, ${fmt(f.flops / tf / 1e9, 1)} GFLOPS) | feedback GEMMs ${fmt(og.seconds, 1)} s ` +
          `(${fmt((100 * og.seconds) / total, 0)}%, ${fmt(og.flops / og.seconds / 1e9, 1)} GFLOPS) | group fits ${fmt(tFit, 1)} s (${fmt((100 * tFit) / total, 0)}%) | ` +
          `column loop ${fmt(rest, 1)} s (${fmt((100 * rest) / total, 0)}%)`,
      );
      if (n === 2048 && k === 2048) {
        const H = g.toFullSymmetric().map((v) => (2 * v) / t);
        t0 = performance.now();
        gptq(w, n, k, H, new KQuantGrid('Q4_K', n, k, im));
        const to = (performance.now() - t0) / 1000;
        console.log(`  N=${n} K=${k} float64 oracle: ${fmt(to, 1)} s; fast / oracle speed ${fmt(to / total, 1)}×`);
      }
    }
  } finally {
    await og.close();
  }
}
