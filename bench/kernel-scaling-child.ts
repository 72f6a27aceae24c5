// Child process of scale.bench.ts: the ggml kernel alone on the worker pool, with no file, no hash
// and no writer, so the bench can print what this machine's cores give the kernel next to what
// they give the whole command. Why: on a shared VM two vCPUs may share execution units (the sixth
// round measured independent 256-bit FMAs at 1.6× on two cores), and a whole command cannot scale
// better than its kernel does; the ceiling belongs in the same run as the figure it bounds.
// Work: 4 jobs of R = 8,192 rows × K = 4,096 F16 values (128 M values, 256 MB read) from one
// SharedArrayBuffer into another, after 2 untimed jobs; 5 repeats, median. Prints one JSON line.
// Usage: taskset -c CPUS node --import tsx bench/kernel-scaling-child.ts <threads> <ggml type>
import { QuantPool } from '../src/quant/node/worker-pool.js';
import { ggmlRowBytes } from '../src/quant/ggml/wasm/rows-job.js';
import { hasGgmlKernel } from '../src/quant/ggml/index.js';
import type { GgmlType } from '../src/core/dtype.js';
import { median } from './util.js';

const threads = Number(process.argv[2]);
const type = process.argv[3] as GgmlType;
if (!(threads >= 1) || !hasGgmlKernel(type, false)) throw new Error(`usage: kernel-scaling-child.ts <threads ≥ 1> <ggml type with a kernel>; got ${process.argv.slice(2).join(' ')}`);

const R = 8192;
const K = 4096;
const src = new SharedArrayBuffer(R * K * 2);
const u16 = new Uint16Array(src);
// F16 values of magnitude 1–2 with varied mantissas and signs: every block has a real scale search
for (let i = 0; i < u16.length; i++) u16[i] = 0x3c00 ^ (((i * 2654435761) >>> 20) & 0x3ff) ^ ((i & 1) << 15);
const dst = new SharedArrayBuffer(R * ggmlRowBytes(type, K));
new Uint8Array(dst).fill(1); // touched before timing, as the command's reused window is

const pool = new QuantPool(threads);
const job = (): Promise<void> => pool.quantizeGgmlRows({ type, input: 'F16', src, srcOffset: 0, dst, dstOffset: 0, nRows: R, nPerRow: K });
try {
  await job();
  await job();
  const ms: number[] = [];
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    for (let k = 0; k < 4; k++) await job();
    ms.push(performance.now() - t0);
  }
  console.log(JSON.stringify({ type, threads, ms: median(ms) }));
} finally {
  await pool.close();
}
