// QuantPool: quantization on worker threads (Node worker_threads). Two kinds of work:
// - ggml rows over shared memory (quantizeGgmlRows): the output bytes live in a
//   SharedArrayBuffer, the input in another or in a file each worker reads its rows from
//   (`file`: positional reads into its kernel's memory); each worker takes chunks of rows, runs
//   the WebAssembly kernel on them and writes its bytes into the output at their row offset. The
//   bytes are those of one thread (ggml rows are independent; test/quant/node/worker-pool.test.ts).
// - any scheme (quantize): blocks of rows are posted (structured clone) and the results merged.
//   Only row-separable schemes are split: groups along K, per-output-channel (axis 0) scales, MX
//   blocks, ggml rows, element-wise casts. Everything else (per-tensor scales, NVFP4's tensor
//   scale, channel axes ≠ 0, k-means books whose seeds follow the group order) runs on the
//   calling thread.
// Chunks are handed out as workers free up (a few per worker), so a thread slowed down by other
// load on the machine does not hold the rest back. Node-only.
// Legend: N = rows (axis 0), K = values per row, rest = the other axes.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BitscaleError, ConfigError } from '../../core/errors.js';
import { numel } from '../../core/tensor.js';
import { quantize } from '../index.js';
import type { QuantScheme, QuantizeOptions, QuantizedTensor } from '../index.js';
import { ggmlRowBytes } from '../ggml/wasm/rows-job.js';
import { WorkerQueue, rebuildError, runGgmlRows, type RowsPool, type WorkerReply } from '../ggml/wasm/worker-queue.js';
import type { GgmlType } from '../../core/dtype.js';
import type { KernelInput } from '../ggml/index.js';
import type { QuantJob } from './quant-worker.js';
import { runCodecRows, type SharedCodecJob } from '../codec-rows.js';

/** The most worker threads a pool may start (a typo like --threads 1000 is refused, not obeyed). */
export const MAX_THREADS = 256;

/** True when quantizing blocks of rows separately gives exactly the whole-tensor result. */
export function rowSplittable(scheme: QuantScheme, shape: readonly number[]): boolean {
  if (shape.length < 2) return false;
  switch (scheme.kind) {
    case 'ggml':
    case 'mx':
      return true;
    case 'nvfp4':
      return false;
    case 'float':
      return scheme.granularity === null || scheme.granularity.kind === 'group' || (scheme.granularity.kind === 'channel' && scheme.granularity.axis === 0);
    case 'codebook':
      if (scheme.book === 'kmeans') return false;
      return scheme.granularity.kind === 'group' || (scheme.granularity.kind === 'channel' && scheme.granularity.axis === 0);
    case 'int':
    case 'lowbit':
      return scheme.granularity.kind === 'group' || (scheme.granularity.kind === 'channel' && scheme.granularity.axis === 0);
  }
}

function concat<T extends Float32Array | Uint8Array | Int8Array | Uint16Array>(parts: T[]): T {
  const n = parts.reduce((a, p) => a + p.length, 0);
  const out = new (parts[0].constructor as new (n: number) => T)(n);
  let o = 0;
  for (const p of parts) {
    out.set(p as never, o);
    o += p.length;
  }
  return out;
}

/** Joins per-block results (rows in order) into one tensor of `shape`. */
function merge(parts: QuantizedTensor[], shape: number[]): QuantizedTensor {
  const first = parts[0];
  const cat = <K extends string>(k: K): never => concat(parts.map((p) => (p as unknown as Record<K, Float32Array>)[k])) as never;
  const rowsScale = (p: QuantizedTensor): number[] => ('scaleShape' in p && p.scaleShape ? p.scaleShape : []);
  const scaleShape = (): number[] => {
    const s = rowsScale(first);
    return s.length ? [parts.reduce((a, p) => a + rowsScale(p)[0], 0), ...s.slice(1)] : s;
  };
  switch (first.kind) {
    case 'ggml':
      return { ...first, shape, bytes: cat('bytes') };
    case 'mx':
      return { ...first, shape, codes: cat('codes'), scales: cat('scales') };
    case 'float':
      return first.scales ? { ...first, shape, codes: cat('codes'), scales: cat('scales'), scaleShape: scaleShape() } : { ...first, shape, codes: cat('codes') };
    case 'int':
      return first.zeros
        ? { ...first, shape, codes: cat('codes'), scales: cat('scales'), zeros: cat('zeros'), scaleShape: scaleShape() }
        : { ...first, shape, codes: cat('codes'), scales: cat('scales'), scaleShape: scaleShape() };
    case 'codebook':
      return { ...first, shape, codes: cat('codes'), scales: cat('scales'), scaleShape: scaleShape() };
    case 'lowbit':
      return { ...first, shape, codes: cat('codes'), scales: cat('scales'), scaleShape: scaleShape() };
    case 'nvfp4':
      throw new ConfigError('internal', 'NVFP4 is not row-separable');
  }
}

function workerFor(): Worker {
  const here = import.meta.url;
  if (here.endsWith('.ts')) {
    // running from source through tsx: the worker must register tsx before loading TypeScript
    const api = import.meta.resolve('tsx/esm/api');
    const entry = new URL('./quant-worker.ts', here).href;
    const code = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); });`;
    return new Worker(code, { eval: true });
  }
  return new Worker(new URL('./quant-worker.js', here));
}

/** Shared-memory ggml quantization of R = nRows rows of K = nPerRow values (see quantizeGgmlRows). */
export interface SharedGgmlRows {
  type: GgmlType;
  input: KernelInput;
  /** R·K input elements from byte srcOffset (null: read from `file` by the workers) */
  src: SharedArrayBuffer | null;
  srcOffset: number;
  file?: { path: string; offset: number };
  /** R·K/QK·W output bytes from byte dstOffset */
  dst: SharedArrayBuffer;
  dstOffset: number;
  nRows: number;
  nPerRow: number;
  imatrix?: Float32Array;
}

export class QuantPool implements RowsPool {
  readonly readsFiles = true;
  private readonly workers: Worker[];
  private readonly queue: WorkerQueue;

  /** `threads` (1…MAX_THREADS) defaults to the machine's available parallelism. Call close() when done (workers keep the process alive). */
  constructor(readonly threads = availableParallelism()) {
    if (!Number.isInteger(threads) || threads < 1 || threads > MAX_THREADS) {
      throw new ConfigError('bad_option', 'threads must be an integer from 1 to ' + MAX_THREADS, { field: 'threads', expected: `1…${MAX_THREADS}`, found: threads });
    }
    this.queue = new WorkerQueue((i, msg) => this.workers[i].postMessage(msg), threads);
    this.workers = Array.from({ length: threads }, (_, i) => {
      const w = workerFor();
      w.on('message', (r: WorkerReply) => this.queue.reply(i, r));
      // a worker that threw is gone: everything in flight or queued fails (a reply would put it back in the idle list)
      w.on('error', (e: Error) => this.queue.fail({ name: 'Error', message: `quantization worker failed: ${e.message}` }));
      // one that ends without an error (killed, out of memory) answers nothing more either
      w.on('exit', (code: number) => {
        if (!this.queue.closed) this.queue.fail({ name: 'Error', message: `quantization worker ${i} exited (code ${code})` });
      });
      w.on('messageerror', (e: Error) => this.queue.fail({ name: 'Error', message: `quantization worker ${i} sent a message that could not be read: ${e.message}` }));
      return w;
    });
  }

  /**
   * Quantizes rows of a tensor held in shared memory to a ggml type, writing the bytes into `dst`
   * (identical to quantizeGgml on one thread). Rejects with the first error (NaN/Inf: the index in
   * the whole tensor); the other chunks still finish writing before it settles.
   */
  quantizeGgmlRows(j: SharedGgmlRows): Promise<void> {
    return runGgmlRows(this.queue, j);
  }

  /**
   * Quantizes rows of a tensor with an int / float / code-book scheme into shared outputs (codes,
   * scales, zeros or dequantized values: quant/codec-rows.ts), identical to one call on the whole
   * tensor. Rejects with the first error in row order once every chunk has finished.
   */
  quantizeCodecRows(j: SharedCodecJob): Promise<void> {
    return runCodecRows(this.queue, j);
  }

  /** Same result as quantize(w, shape, scheme, opts); rows are spread over the workers when that is exact. */
  async quantize(w: Float32Array, shape: number[], scheme: QuantScheme, opts: QuantizeOptions = {}): Promise<QuantizedTensor> {
    const N = shape[0] ?? 1;
    if (!rowSplittable(scheme, shape) || N < 2 || this.threads < 2 || numel(shape) !== w.length) return quantize(w, shape, scheme, opts);
    const rowLen = numel(shape.slice(1));
    if (scheme.kind === 'ggml' && shape.length === 2) {
      // shared memory: one copy in, each worker writes its rows' bytes in place
      quantize(new Float32Array(0), [0, rowLen], scheme, opts); // argument checks (block multiple, imatrix length) before any work
      const src = new SharedArrayBuffer(w.byteLength);
      new Float32Array(src).set(w);
      const rowBytes = ggmlRowBytes(scheme.type, rowLen);
      const dst = new SharedArrayBuffer(N * rowBytes);
      try {
        await this.quantizeGgmlRows({ type: scheme.type, input: 'F32', src, srcOffset: 0, dst, dstOffset: 0, nRows: N, nPerRow: rowLen, imatrix: opts.importance });
      } catch (e) {
        if (e instanceof BitscaleError && opts.name !== undefined) throw rebuildError({ name: e.name, message: e.message, code: e.code, context: { ...e.context, tensor: opts.name } });
        throw e;
      }
      return { kind: 'ggml', scheme, shape: [...shape], bytes: new Uint8Array(dst).slice() };
    }
    const blocks = Math.min(this.threads, N);
    const per = Math.ceil(N / blocks);
    const replies: Promise<WorkerReply>[] = [];
    const starts: number[] = [];
    for (let b = 0; b < blocks; b++) {
      const r0 = b * per;
      const r1 = Math.min(N, r0 + per);
      if (r0 >= r1) break;
      starts.push(r0);
      // the slice is copied into the message (structured clone): the caller's array stays untouched
      const data = w.slice(r0 * rowLen, r1 * rowLen);
      replies.push(this.queue.submit({ kind: 'quantize', data, shape: [r1 - r0, ...shape.slice(1)], scheme, opts: { ...opts } } satisfies Omit<QuantJob, 'id'>));
    }
    const got = await Promise.all(replies);
    const parts: QuantizedTensor[] = [];
    for (let b = 0; b < got.length; b++) {
      const r = got[b];
      if (!r.ok) throw rebuildError(r.error, starts[b] * rowLen); // worker indices are block-relative
      parts.push(r.q as QuantizedTensor);
    }
    return merge(parts, [...shape]);
  }

  async close(): Promise<void> {
    this.queue.closed = true;
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
