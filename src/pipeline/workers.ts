// QuantPool: quantize a tensor across worker threads, splitting it into blocks of rows. The result is
// identical (bit for bit) to quant.quantize on one thread because only row-separable schemes are split:
// groups along K, per-output-channel (axis 0) scales, MX blocks, ggml rows, element-wise casts.
// Everything else (per-tensor scales, NVFP4's tensor scale, channel axes ≠ 0, k-means books whose
// seeds follow the group order) runs on the calling thread. Node-only (worker_threads).
// Legend: N = rows (axis 0), R = rows per worker block, rest = the other axes.

import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { BitscaleError, ConfigError, FormatError, IoError, NumericError, ShapeError, type ErrorCode, type ErrorContext } from '../core/errors.js';
import { numel } from '../core/tensor.js';
import { quantize } from '../quant/index.js';
import type { QuantScheme, QuantizeOptions, QuantizedTensor } from '../quant/index.js';
import type { QuantJob, QuantReply } from './quant-worker.js';

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

const ERROR_CLASSES: Record<string, new (code: ErrorCode, what: string, ctx?: ErrorContext) => BitscaleError> = {
  NumericError,
  ConfigError,
  ShapeError,
  FormatError,
  IoError,
};

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

export class QuantPool {
  private readonly workers: Worker[];
  private nextId = 0;
  private readonly waiting = new Map<number, (r: QuantReply) => void>();

  /** `threads` defaults to the machine's available parallelism. Call close() when done (workers keep the process alive). */
  constructor(readonly threads = availableParallelism()) {
    if (!Number.isInteger(threads) || threads < 1) {
      throw new ConfigError('bad_option', 'threads must be a positive integer', { field: 'threads', found: threads });
    }
    this.workers = Array.from({ length: threads }, () => {
      const w = workerFor();
      w.on('message', (r: QuantReply) => {
        this.waiting.get(r.id)?.(r);
        this.waiting.delete(r.id);
      });
      return w;
    });
  }

  private submit(i: number, job: Omit<QuantJob, 'id'>): Promise<QuantReply> {
    const id = this.nextId++;
    return new Promise((resolve) => {
      this.waiting.set(id, resolve);
      this.workers[i % this.workers.length].postMessage({ ...job, id });
    });
  }

  /** Same result as quantize(w, shape, scheme, opts); rows are spread over the workers when that is exact. */
  async quantize(w: Float32Array, shape: number[], scheme: QuantScheme, opts: QuantizeOptions = {}): Promise<QuantizedTensor> {
    const N = shape[0] ?? 1;
    if (!rowSplittable(scheme, shape) || N < 2 || this.threads < 2 || numel(shape) !== w.length) return quantize(w, shape, scheme, opts);
    const rowLen = numel(shape.slice(1));
    const blocks = Math.min(this.threads, N);
    const per = Math.ceil(N / blocks);
    const replies: Promise<QuantReply>[] = [];
    const starts: number[] = [];
    for (let b = 0; b < blocks; b++) {
      const r0 = b * per;
      const r1 = Math.min(N, r0 + per);
      if (r0 >= r1) break;
      starts.push(r0);
      // the slice is copied into the message (structured clone): the caller's array stays untouched
      const data = w.slice(r0 * rowLen, r1 * rowLen);
      const sub = { ...opts, name: opts.name };
      replies.push(this.submit(b, { data, shape: [r1 - r0, ...shape.slice(1)], scheme, opts: sub }));
    }
    const got = await Promise.all(replies);
    const parts: QuantizedTensor[] = [];
    for (let b = 0; b < got.length; b++) {
      const r = got[b];
      if (!r.ok) {
        const ctx = (r.error.context ?? {}) as ErrorContext;
        if (ctx.index !== undefined) ctx.index += starts[b] * rowLen; // worker indices are block-relative
        const Cls = ERROR_CLASSES[r.error.name];
        if (Cls && r.error.code) throw new Cls(r.error.code as ErrorCode, r.error.message.split(' (')[0], ctx);
        throw new Error(r.error.message);
      }
      parts.push(r.q);
    }
    return merge(parts, [...shape]);
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => w.terminate()));
  }
}
