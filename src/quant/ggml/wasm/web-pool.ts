// Web Workers in the browser: ggml quantization with a tensor's rows split across workers over
// shared memory, the bytes identical to one thread (the Node counterpart is QuantPool in
// src/quant/node/worker-pool.ts; both schedule through worker-queue.ts). Each worker runs
// web-worker.ts (exported as `bitscale/browser-worker`), which loads the WebAssembly kernels.
// SharedArrayBuffer needs a cross-origin isolated page (COOP: same-origin, COEP: require-corp).
// Legend: R = rows, K = values per row, QK = block size, W = bytes per block.

import { ConfigError } from '../../../core/errors.js';
import type { GgmlType } from '../../../core/dtype.js';
import { ggmlRowBytes } from './rows-job.js';
import { WorkerQueue, runGgmlRows, type RowsPool, type SharedRowsJob, type WorkerReply } from './worker-queue.js';

/** The part of the DOM Worker this pool uses (so tests and other hosts can supply their own). */
export interface WebWorkerLike {
  postMessage(msg: unknown): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  /** a worker whose script failed to load or threw outside a job */
  onerror?: ((e: { message?: string; preventDefault?(): void }) => void) | null;
  /** a message the worker could not deserialize */
  onmessageerror?: ((e: unknown) => void) | null;
  terminate(): void;
}

/**
 * The longest a chunk of rows may go unanswered (ms) before the pool gives up on its worker. A chunk
 * is ≥ 16K values and takes milliseconds; the first one also waits for the worker's module and
 * WebAssembly compile, seconds at worst on a loaded machine. A worker that never answers (its
 * script never ran, it died without an error event) would otherwise leave the job waiting forever.
 */
export const WEB_POOL_ANSWER_TIMEOUT_MS = 60_000;

export class GgmlWebPool implements RowsPool {
  private readonly workers: WebWorkerLike[];
  private readonly queue: WorkerQueue;

  /**
   * `makeWorker` starts one worker on the bitscale/browser-worker module, e.g.
   * `() => new Worker(new URL('bitscale/browser-worker', import.meta.url), { type: 'module' })`.
   */
  private readonly watchdog: ReturnType<typeof setInterval>;

  constructor(
    makeWorker: () => WebWorkerLike,
    readonly threads: number,
    answerTimeoutMs = WEB_POOL_ANSWER_TIMEOUT_MS,
  ) {
    if (typeof SharedArrayBuffer === 'undefined') {
      throw new ConfigError('unsupported', 'SharedArrayBuffer is not available: the page must be cross-origin isolated', { hint: 'serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp' });
    }
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new ConfigError('bad_option', 'threads must be an integer from 1 to 256', { field: 'threads', found: threads });
    this.queue = new WorkerQueue((i, msg) => this.workers[i].postMessage(msg), threads);
    this.workers = Array.from({ length: threads }, (_, i) => {
      const w = makeWorker();
      w.onmessage = (e) => this.queue.reply(i, e.data as WorkerReply);
      // a dead worker answers nothing more: fail what waits on the pool rather than hang
      w.onerror = (e) => {
        e.preventDefault?.();
        this.broken(`kernel worker ${i} failed: ${e.message || 'its script did not load or threw'}`);
      };
      w.onmessageerror = () => this.broken(`kernel worker ${i} could not read a message`);
      return w;
    });
    this.watchdog = setInterval(() => {
      const late = this.queue.oldest(Date.now());
      if (late && late.ageMs > answerTimeoutMs) this.broken(`kernel worker ${late.worker} did not answer within ${answerTimeoutMs / 1000} s`);
    }, Math.min(5000, Math.max(10, answerTimeoutMs / 4)));
  }

  private broken(message: string): void {
    clearInterval(this.watchdog);
    this.queue.fail({ name: 'Error', message });
    for (const w of this.workers) w.terminate();
  }

  /** The queue's state, for a stall's dump. */
  state(): ReturnType<WorkerQueue['state']> {
    return this.queue.state(Date.now());
  }

  /**
   * R = nRows rows of K = nPerRow values ([R, K] row-major) to ggml `type`, the same bytes as
   * quantizeGgml. `x` is copied into shared memory unless it already lives there.
   */
  async quantize(type: GgmlType, x: Float32Array, nRows: number, nPerRow: number, imatrix?: Float32Array): Promise<Uint8Array> {
    if (x.length !== nRows * nPerRow) throw new ConfigError('shape_mismatch', 'input length does not match nRows × nPerRow', { field: 'x', expected: nRows * nPerRow, found: x.length });
    let src = x.buffer as SharedArrayBuffer;
    let srcOffset = x.byteOffset;
    if (!(x.buffer instanceof SharedArrayBuffer)) {
      src = new SharedArrayBuffer(x.byteLength);
      new Float32Array(src).set(x);
      srcOffset = 0;
    }
    const dst = new SharedArrayBuffer(nRows * ggmlRowBytes(type, nPerRow));
    await runGgmlRows(this.queue, { type, input: 'F32', src, srcOffset, dst, dstOffset: 0, nRows, nPerRow, imatrix });
    return new Uint8Array(dst).slice();
  }

  /** Rows of a tensor already in shared memory, quantized in place into `j.dst` (the streaming RTN writer's call). */
  quantizeGgmlRows(j: SharedRowsJob): Promise<void> {
    return runGgmlRows(this.queue, j);
  }

  close(): void {
    clearInterval(this.watchdog);
    this.queue.closed = true;
    for (const w of this.workers) w.terminate();
  }
}
