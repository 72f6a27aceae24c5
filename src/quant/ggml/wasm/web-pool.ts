// Web Workers in the browser: ggml quantization with a tensor's rows split across workers over
// shared memory, the bytes identical to one thread (the Node counterpart is QuantPool in
// src/quant/node/worker-pool.ts; both schedule through worker-queue.ts). Each worker runs
// web-worker.ts (exported as `bitscale/browser-worker`), which loads the WebAssembly kernels.
// SharedArrayBuffer needs a cross-origin isolated page (COOP: same-origin, COEP: require-corp).
// Legend: R = rows, K = values per row, QK = block size, W = bytes per block.

import { ConfigError } from '../../../core/errors.js';
import type { GgmlType } from '../../../core/dtype.js';
import { ggmlRowBytes } from './rows-job.js';
import { WorkerQueue, runGgmlRows, type WorkerReply } from './worker-queue.js';

/** The part of the DOM Worker this pool uses (so tests and other hosts can supply their own). */
export interface WebWorkerLike {
  postMessage(msg: unknown): void;
  onmessage: ((e: { data: unknown }) => void) | null;
  terminate(): void;
}

export class GgmlWebPool {
  private readonly workers: WebWorkerLike[];
  private readonly queue: WorkerQueue;

  /**
   * `makeWorker` starts one worker on the bitscale/browser-worker module, e.g.
   * `() => new Worker(new URL('bitscale/browser-worker', import.meta.url), { type: 'module' })`.
   */
  constructor(makeWorker: () => WebWorkerLike, readonly threads: number) {
    if (typeof SharedArrayBuffer === 'undefined') {
      throw new ConfigError('unsupported', 'SharedArrayBuffer is not available: the page must be cross-origin isolated', { hint: 'serve it with Cross-Origin-Opener-Policy: same-origin and Cross-Origin-Embedder-Policy: require-corp' });
    }
    if (!Number.isInteger(threads) || threads < 1 || threads > 256) throw new ConfigError('bad_option', 'threads must be an integer from 1 to 256', { field: 'threads', found: threads });
    this.queue = new WorkerQueue((i, msg) => this.workers[i].postMessage(msg), threads);
    this.workers = Array.from({ length: threads }, (_, i) => {
      const w = makeWorker();
      w.onmessage = (e) => this.queue.reply(i, e.data as WorkerReply);
      return w;
    });
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

  close(): void {
    this.queue.closed = true;
    for (const w of this.workers) w.terminate();
  }
}
