// Quantization throughput in MB/s of f32 input, single-threaded and across worker threads, with the
// ratio to a plain memory copy (TypedArray.set) of the same data measured in the same run.
// Cases come from bench/quant-cases.ts; the threaded figure runs src/quant/node/worker-pool.ts's QuantPool
// (schemes that are not row-separable fall back to one thread). Usage: npm run bench quant-throughput
import { availableParallelism } from 'node:os';
import { Rng } from '../src/core/rng.js';
import { quantize, parseScheme } from '../src/quant/index.js';
import { QuantPool } from '../src/quant/node/worker-pool.js';
import { QUANT_CASES, type QuantCase } from './quant-cases.js';
import { fmt, timeMs } from './util.js';

const DEFAULT_SHAPE: [number, number] = [2048, 4096];

function data(shape: [number, number]): Float32Array {
  return new Rng(1).fillNormal(new Float32Array(shape[0] * shape[1]), 0, 0.02);
}

export default async function (): Promise<void> {
  const threads = Math.max(1, availableParallelism());
  const pool = new QuantPool(threads);
  console.log(`threads: ${threads}; figures are medians of 5 runs after a warm-up`);
  try {
    for (const c of QUANT_CASES as QuantCase[]) {
      const shape = c.shape ?? DEFAULT_SHAPE;
      const w = data(shape);
      const mb = w.byteLength / 1e6;
      const scheme = parseScheme(c.scheme);
      const importance = c.needsImportance ? new Float32Array(shape[1]).fill(1) : undefined;
      const dst = new Float32Array(w.length);
      const tCopy = await timeMs(() => dst.set(w), 5, 1);
      const t1 = await timeMs(() => quantize(w, shape, scheme, { importance }), 5, 1);
      // QuantPool (src/quant/node/worker-pool.ts): rows split over workers, slices copied in, results transferred back
      const tN = await timeMs(() => pool.quantize(w, shape, scheme, { importance }), 5, 1);
      const copyMBs = mb / (tCopy / 1e3);
      const oneMBs = mb / (t1 / 1e3);
      const nMBs = mb / (tN / 1e3);
      console.log(
        `${c.name} [${shape.join('x')}]: 1 thread ${fmt(oneMBs)} MB/s (${fmt(t1)} ms), ` +
          `${threads} threads ${fmt(nMBs)} MB/s (${fmt(tN)} ms, ×${fmt(nMBs / oneMBs, 2)}); ` +
          `memcpy ${fmt(copyMBs)} MB/s → quantize/memcpy ${fmt(oneMBs / copyMBs, 4)} (1 thread), ${fmt(nMBs / copyMBs, 4)} (${threads})`,
      );
    }
  } finally {
    await pool.close();
  }
}
