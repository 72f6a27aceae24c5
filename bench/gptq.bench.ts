// GPTQ wall time and achieved GFLOPS (float64, plain TS loops) on square layers, vs RTN on the
// same grid (the floor: no Hessian work). Usage: npm run bench gptq
import { Rng } from '../src/core/rng.js';
import { IntGrid } from '../src/algorithms/grid.js';
import { GgmlGrid } from '../src/algorithms/ggml-grid.js';
import { gptq, rtnOnGrid } from '../src/algorithms/gptq.js';
import { upperCholeskyOfInverse } from '../src/numerics/linalg.js';
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
}
