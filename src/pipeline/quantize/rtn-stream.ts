// Streaming RTN to GGUF with the stages overlapped: while the writer writes tensor i, tensor i+1 is
// being quantized on the worker threads and tensor i+2 read from the file. Each weight matrix in a
// local file is read by the workers themselves, each its rows straight into its kernel's memory
// (TensorSource.file; other sources are read into shared memory, TensorSource.readInto), converted
// from F16/BF16 and quantized by the WebAssembly kernels (bytes written in place), and
// handed to saveModel, which writes the file in tensor order as before (same bytes as quantizing
// on one thread: test/pipeline/quantize/rtn-stream.test.ts). The input's sha256 for the manifest is
// computed on another thread meanwhile (hashFilesOffThread).
// Memory: the tensors in flight (about `lookahead` bytes of inputs and outputs, at least one
// tensor), reusing the same shared buffers from tensor to tensor; a tensor whose output exceeds two
// pieces (`pieceBytes`: the 128k-row embedding) is quantized and written a piece at a time.
// The page runs the same writer with its own pool (`pool`: Web Workers, or the calling thread where
// the page has no shared memory, the buffers then plain ArrayBuffers) and a small lookahead.
// Legend: N = rows, K = values per row.

import { Worker } from 'node:worker_threads';
import { isDType, isGgmlType, type DType, type GgmlType } from '../../core/dtype.js';
import { NumericError } from '../../core/errors.js';
import { checkAborted, type ProgressFn } from '../../core/progress.js';
import type { QuantTensor, Tensor } from '../../core/tensor.js';
import { tensorFromBytes } from '../../formats/bytes.js';
import { tracePhase } from '../../core/phase-trace.js';
import { saveModel, type SaveOptions, type SaveResult, type StreamedQuantTensor } from '../../model/save.js';
import type { ModelWeights, TensorSource } from '../../model/weights.js';
import { ggmlRowBytes } from '../../quant/ggml/wasm/rows-job.js';
import type { KernelInput } from '../../quant/ggml/index.js';
import type { RowsPool } from '../../quant/ggml/wasm/worker-queue.js';
import { QuantPool } from '../../quant/node/worker-pool.js';
import { DEFAULT_PIECE_BYTES, oneAhead, storedInPieces } from './stored-pieces.js';
// the CLI bounds --threads by the pool's limit (cli/ imports pipeline/ only)
export { MAX_THREADS } from '../../quant/node/worker-pool.js';

/** What to do with one tensor: quantize to `type` (importance weights per column optional). */
export interface RtnTensorPlan {
  type: GgmlType;
  imatrix?: Float32Array;
  /** already stored in `type` (a quantized input, --allow-requantize): written as it is */
  copy?: boolean;
}

export interface RtnStreamOptions {
  /** the tensors to quantize (null: written as saveModel writes it by default, F16 matrices and F32 vectors) */
  plan: (name: string, src: TensorSource) => RtnTensorPlan | null;
  /** GGUF general.file_type and extra metadata (the llama.cpp file type's, pipeline/quantize/plan.ts) */
  fileType?: number;
  ggufMetadata?: SaveOptions['ggufMetadata'];
  /** worker threads that quantize (the main thread reads and writes); unused with `pool` */
  threads: number;
  /** quantize on this pool instead of `threads` new worker threads (the caller owns it and closes it) */
  pool?: RowsPool;
  /** bytes of tensors in flight at once (inputs + outputs); at least one tensor always is */
  lookahead?: number;
  /**
   * output bytes per piece of a large tensor read from a file: one whose output exceeds two pieces
   * is quantized and written a piece at a time, through two reused buffers (default 16 MiB)
   */
  pieceBytes?: number;
  overwrite?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

// a few layer matrices ahead of the writer. Every buffer the window needs at its fullest is fresh
// memory whose pages fault in once, and on the VMs measured a fault costs ≈ 14 µs (a fresh 512 MB
// mapping took 1.85 s to touch): 256 MiB (with the 279 MB Q8_0 embedding whole) faulted 180,000
// pages of Llama-3.2-1B's Q8_0 run; 64 MiB with the embedding in pieces, 76,000 (peak RSS 718 →
// 330 MB; docs/performance.md, eighth round)
const DEFAULT_LOOKAHEAD = 64 << 20;

/** Shared memory where the host has it (threads write into it), else plain buffers (one thread). */
type Buf = SharedArrayBuffer | ArrayBuffer;
const newBuffer = (bytes: number): Buf => (typeof SharedArrayBuffer === 'undefined' ? new ArrayBuffer(bytes) : new SharedArrayBuffer(bytes));

/** Reusable shared buffers: a tensor takes the smallest free one that fits. */
export class SharedBuffers {
  private free: Buf[] = [];

  take(bytes: number): Buf {
    let best = -1;
    for (let i = 0; i < this.free.length; i++) {
      if (this.free[i].byteLength >= bytes && (best < 0 || this.free[i].byteLength < this.free[best].byteLength)) best = i;
    }
    if (best >= 0) return this.free.splice(best, 1)[0];
    return newBuffer(Math.max(16, bytes));
  }

  give(b: Buf): void {
    this.free.push(b);
  }
}

const KERNEL_INPUTS: Partial<Record<DType | GgmlType, KernelInput>> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };

/** The type saveModel writes a tensor as when it is not quantized (see saveGguf). */
function defaultType(src: TensorSource): DType | GgmlType {
  if (isGgmlType(src.dtype) && !['F32', 'F16', 'BF16'].includes(src.dtype)) return src.dtype;
  return src.shape.length === 1 ? 'F32' : 'F16';
}


interface Job {
  promise: Promise<Tensor | QuantTensor | StreamedQuantTensor | null>;
  bytes: number;
  release: () => void;
  /** resolves when no thread writes into the job's buffers any more (a streamed tensor's pieces) */
  settled?: () => Promise<unknown>;
}

/**
 * Writes `weights` as GGUF to `out` (atomically, via saveModel) with the tensors `plan` names
 * quantized on `threads` worker threads, reading, quantizing and writing in overlap.
 */
export async function writeRtnGguf(weights: ModelWeights, out: string, o: RtnStreamOptions): Promise<SaveResult> {
  tracePhase('rtn: start');
  const order = [...weights.tensors.values()];
  const plans = new Map(order.map((s) => [s.name, o.plan(s.name, s)] as const));
  const lookahead = o.lookahead ?? DEFAULT_LOOKAHEAD;
  const pool: RowsPool = o.pool ?? new QuantPool(o.threads);
  const buffers = new SharedBuffers();
  const jobs = new Map<string, Job>();
  let next = 0; // next tensor (in file order) to start
  let inFlight = 0; // bytes held by started, not yet released jobs
  let current: Job | null = null; // the tensor the writer holds (released when it asks for the next)

  const pieceBytes = o.pieceBytes ?? DEFAULT_PIECE_BYTES;
  // the workers only know rows: name the tensor and the file, the index counted from its first value
  const named = (e: unknown, src: TensorSource, indexShift = 0): unknown => {
    if (!(e instanceof NumericError)) return e;
    const index = typeof e.context.index === 'number' ? e.context.index + indexShift : e.context.index;
    return new NumericError(e.code, 'tensor holds a non-finite value', { ...e.context, index, field: undefined, tensor: src.name, file: weights.source.path });
  };

  // a large tensor in pieces: rows [r0, r0 + rows) of piece i quantized into buffer i mod 2, piece
  // i + 1 started when piece i is handed to the writer (which has then written piece i − 1)
  const streamed = (src: TensorSource, p: RtnTensorPlan, input: KernelInput, file: { path: string; offset: number }): Job => {
    const [N, K] = src.shape;
    const rowBytes = ggmlRowBytes(p.type, K);
    const rowsPer = Math.max(1, Math.floor(pieceBytes / rowBytes));
    const pieces = Math.ceil(N / rowsPer);
    const elBytes = input === 'F32' ? 4 : 2;
    const bufs = [buffers.take(rowsPer * rowBytes), buffers.take(rowsPer * rowBytes)];
    const piece = (i: number): Promise<Uint8Array> => {
      const r0 = i * rowsPer;
      const rows = Math.min(rowsPer, N - r0);
      const dst = bufs[i % 2];
      return pool
        .quantizeGgmlRows({ type: p.type, input, src: null, srcOffset: 0, file: { path: file.path, offset: file.offset + r0 * K * elBytes }, dst, dstOffset: 0, nRows: rows, nPerRow: K, imatrix: p.imatrix })
        .then(
          () => new Uint8Array(dst, 0, rows * rowBytes),
          (e) => Promise.reject(named(e, src, r0 * K)),
        );
    };
    const { chunks, settled } = oneAhead(pieces, piece, () => tracePhase(`rtn: quantized ${src.name}`));
    const t: StreamedQuantTensor = { type: p.type, shape: [...src.shape], chunks };
    return { promise: Promise.resolve(t), bytes: 2 * rowsPer * rowBytes, release: () => bufs.forEach((b) => buffers.give(b)), settled };
  };

  const quantized = (src: TensorSource, p: RtnTensorPlan): Job => {
    const [N, K] = src.shape;
    const outBytes = N * ggmlRowBytes(p.type, K);
    const input = KERNEL_INPUTS[src.dtype];
    // a float tensor in a local file: each worker reads its own rows into its kernel's memory
    const file = input && src.file && pool.readsFiles ? src.file : undefined;
    if (file && input && outBytes > 2 * pieceBytes) return streamed(src, p, input, file);
    const inBytes = file ? 0 : input ? src.byteLength : N * K * 4;
    const srcBuf = file ? null : buffers.take(inBytes);
    const dstBuf = buffers.take(outBytes);
    const promise = (async (): Promise<QuantTensor> => {
      if (srcBuf) {
        if (input && src.readInto) await src.readInto(new Uint8Array(srcBuf, 0, inBytes));
        else if (input) {
          const t = (await src.read()) as Tensor;
          const d = t.data as Float32Array | Uint16Array;
          new Uint8Array(srcBuf, 0, inBytes).set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        } else new Float32Array(srcBuf, 0, N * K).set(await src.readF32()); // stored in a block type: dequantized first
      }
      try {
        await pool.quantizeGgmlRows({ type: p.type, input: input ?? 'F32', src: srcBuf, srcOffset: 0, ...(file ? { file } : {}), dst: dstBuf, dstOffset: 0, nRows: N, nPerRow: K, imatrix: p.imatrix });
      } catch (e) {
        throw named(e, src);
      }
      tracePhase(`rtn: quantized ${src.name}`);
      return { type: p.type, shape: [...src.shape], bytes: new Uint8Array(dstBuf, 0, outBytes) };
    })();
    return {
      promise,
      bytes: inBytes + outBytes,
      release: () => {
        if (srcBuf) buffers.give(srcBuf);
        buffers.give(dstBuf);
      },
    };
  };

  // a tensor written as it is stored (an F16 embedding kept, --allow-requantize's copies): a large
  // one a piece of rows at a time (stored-pieces.ts), else whole
  const copied = (src: TensorSource): Job => {
    const pieces = storedInPieces(src, pieceBytes);
    if (!pieces) return { promise: src.read(), bytes: src.byteLength, release: () => {} };
    return { promise: Promise.resolve(pieces.tensor), bytes: pieces.bytes, release: () => {}, settled: pieces.settled };
  };

  const passThrough = (src: TensorSource): Job => {
    // a float matrix written as F16 from F32/BF16: converted on the workers like a quantized tensor
    if (src.shape.length === 2 && defaultType(src) === 'F16' && src.dtype !== 'F16' && KERNEL_INPUTS[src.dtype]) return quantized(src, { type: 'F16' });
    // stored as the output type already: read now (in overlap), written unchanged; else saveModel converts it
    const same = src.dtype === defaultType(src);
    if (!same) return { promise: Promise.resolve(null), bytes: 0, release: () => {} };
    if (src.shape.length === 2 && src.byteLength > 2 * pieceBytes && src.readRange) return copied(src);
    if (!src.readInto || !isDType(src.dtype)) return { promise: src.read(), bytes: src.byteLength, release: () => {} };
    // into a pooled buffer: the embedding's buffer then serves the tensors after it (no fresh pages)
    const buf = buffers.take(src.byteLength);
    const dtype = src.dtype;
    const promise = (async (): Promise<Tensor> => {
      const view = new Uint8Array(buf, 0, src.byteLength);
      await src.readInto!(view);
      return tensorFromBytes(dtype, src.shape, view);
    })();
    return { promise, bytes: src.byteLength, release: () => buffers.give(buf) };
  };

  const startMore = (): void => {
    // the tensor the writer holds does not count: while a large one (a 128k-row embedding) is
    // being written, the workers go on with the next ones instead of waiting for the writer
    const ahead = (): number => inFlight - (current?.bytes ?? 0);
    while (next < order.length && (ahead() === 0 || ahead() < lookahead)) {
      const src = order[next++];
      const p = plans.get(src.name);
      const job = p?.copy ? copied(src) : p ? quantized(src, p) : passThrough(src);
      job.promise.catch(() => {}); // a failure surfaces when the writer asks for this tensor
      jobs.set(src.name, job);
      inFlight += job.bytes;
    }
  };

  try {
    // the first tensors are read and quantized while saveModel builds and writes the header
    startMore();
    const r = await saveModel(weights, out, {
      format: 'gguf',
      dtype: 'F16',
      overwrite: o.overwrite,
      fileType: o.fileType,
      ggufMetadata: o.ggufMetadata,
      signal: o.signal,
      onProgress: o.onProgress,
      tensorType: (n, src) => plans.get(n)?.type ?? defaultType(src),
      tensor: async (n) => {
        checkAborted(o.signal);
        // the writer has written the previous tensor: its buffers can be reused
        if (current) {
          current.release();
          inFlight -= current.bytes;
          current = null;
        }
        startMore();
        const job = jobs.get(n);
        if (!job) return null; // a tensor saveModel adds itself
        jobs.delete(n);
        current = job;
        const t = await job.promise;
        tracePhase(`rtn: writing ${n}`);
        startMore();
        return t;
      },
    });
    tracePhase('rtn: saved');
    return r;
  } finally {
    // settle whatever is still running (an error or abort stopped the writer) before the workers go
    await Promise.allSettled([...jobs.values(), ...(current ? [current] : [])].map((j) => (j.settled ? j.settled() : j.promise)));
    if (!o.pool) await pool.close();
    tracePhase('rtn: pool closed');
  }
}

// sha256 of files on a worker thread (plain JavaScript, so it needs no TypeScript loader): the
// manifest's input hashes are computed while the model is quantized instead of after it.
// The digest is one sequential chain (≈ 1.4 CPU-s for a 2.47 GB model, the longest of the run on two
// cores: docs/performance.md, sixth round), so the reads are taken off it: the next 4 MiB block is
// read on a libuv thread while this one is hashed. Two buffers are read into again and again (a
// stream would allocate, and fault in, a fresh buffer per chunk).
const HASH_WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const { openSync, read, closeSync } = require('node:fs');
const bufs = [Buffer.allocUnsafeSlow(4 << 20), Buffer.allocUnsafeSlow(4 << 20)];
const readAt = (fd, buf, pos) => new Promise((res, rej) => read(fd, buf, 0, buf.length, pos, (e, n) => (e ? rej(e) : res(n))));
async function hashFile(p) {
  const h = createHash('sha256');
  const fd = openSync(p, 'r');
  let next = Promise.resolve(0);
  try {
    let i = 0;
    let pos = 0;
    next = readAt(fd, bufs[0], 0);
    for (;;) {
      const n = await next;
      if (n === 0) break;
      pos += n;
      next = readAt(fd, bufs[i ^ 1], pos);
      h.update(bufs[i].subarray(0, n));
      i ^= 1;
    }
    return h.digest('hex');
  } finally {
    await next.catch(() => 0);
    closeSync(fd);
  }
}
(async () => {
  const out = [];
  for (const p of workerData) out.push(await hashFile(p));
  parentPort.postMessage({ ok: true, out });
})().catch((e) => parentPort.postMessage({ ok: false, message: String((e && e.message) || e), code: e && e.code }));
`;

/** Lowercase hex sha256 of each file, computed on a worker thread; `signal` ends the thread (rejects with the reason). */
export function hashFilesOffThread(paths: readonly string[], signal?: AbortSignal): Promise<string[]> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    tracePhase('input hash: start');
    const w = new Worker(HASH_WORKER, { eval: true, workerData: [...paths] });
    const stop = (): void => {
      void w.terminate();
      reject(signal!.reason);
    };
    signal?.addEventListener('abort', stop, { once: true });
    w.once('exit', () => signal?.removeEventListener('abort', stop));
    w.once('message', (m: { ok: true; out: string[] } | { ok: false; message: string; code?: string }) => {
      tracePhase('input hash: done');
      void w.terminate();
      if (m.ok) resolve(m.out);
      else reject(Object.assign(new Error(m.message), { code: m.code }));
    });
    w.once('error', reject);
  });
}
