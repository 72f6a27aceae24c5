// Quantization throughput in MB/s of f32 input, single-threaded and across worker threads, with the
// ratio to a plain memory copy (TypedArray.set) of the same data measured in the same run.
// Cases come from bench/quant-cases.ts. Usage: npm run bench quant-throughput
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { Rng } from '../src/core/rng.js';
import { quantize, parseScheme } from '../src/quant/index.js';
import { QUANT_CASES, type QuantCase } from './quant-cases.js';
import { fmt, timeMs } from './util.js';

const DEFAULT_SHAPE: [number, number] = [2048, 4096];

class Pool {
  private readonly workers: Worker[];
  private next = 0;
  private readonly pending = new Map<number, () => void>();

  constructor(readonly size: number) {
    this.workers = Array.from({ length: size }, () => {
      // the worker is TypeScript: the .mjs entry registers tsx first
      const w = new Worker(new URL('./quant-worker-boot.mjs', import.meta.url));
      w.on('message', (m: { id: number }) => {
        this.pending.get(m.id)?.();
        this.pending.delete(m.id);
      });
      return w;
    });
  }

  /** Split rows evenly over the workers and wait for all slices. */
  run(buf: SharedArrayBuffer, rows: number, cols: number, scheme: string, importance?: Float32Array): Promise<void[]> {
    const per = Math.ceil(rows / this.size);
    const jobs: Promise<void>[] = [];
    for (let t = 0; t < this.size; t++) {
      const row0 = t * per;
      const row1 = Math.min(rows, row0 + per);
      if (row0 >= row1) break;
      const id = this.next++;
      jobs.push(new Promise<void>((resolve) => this.pending.set(id, resolve)));
      this.workers[t].postMessage({ id, buf, row0, row1, cols, scheme, importance });
    }
    return Promise.all(jobs);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}

function data(shape: [number, number]): { buf: SharedArrayBuffer; w: Float32Array } {
  const buf = new SharedArrayBuffer(shape[0] * shape[1] * 4);
  const w = new Float32Array(buf);
  new Rng(1).fillNormal(w, 0, 0.02);
  return { buf, w };
}

export default async function (): Promise<void> {
  const threads = Math.max(1, availableParallelism());
  const pool = new Pool(threads);
  console.log(`threads: ${threads}; figures are medians of 5 runs after a warm-up`);
  try {
    for (const c of QUANT_CASES as QuantCase[]) {
      const shape = c.shape ?? DEFAULT_SHAPE;
      const { buf, w } = data(shape);
      const mb = w.byteLength / 1e6;
      const scheme = parseScheme(c.scheme);
      const importance = c.needsImportance ? new Float32Array(shape[1]).fill(1) : undefined;
      const dst = new Float32Array(w.length);
      const tCopy = await timeMs(() => dst.set(w), 5, 1);
      const t1 = await timeMs(() => quantize(w, shape, scheme, { importance }), 5, 1);
      const tN = await timeMs(() => pool.run(buf, shape[0], shape[1], c.scheme, importance), 5, 1);
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
