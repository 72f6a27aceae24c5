// A block of rows to quantize to a ggml type, described over shared memory so that threads (Node
// worker_threads, browser Web Workers) can each take a range of rows of the same tensor and write
// their bytes straight into the shared output: ggml rows are independent, so any split gives the
// bytes of one thread. Browser-safe (no node:*); the pools that post these jobs live with their
// platform (src/quant/node/worker-pool.ts for Node).
// Legend: R = rows, K = values per row, QK = block size, W = bytes per block.

import type { GgmlType } from '../../../core/dtype.js';
import { GGML_TYPES } from '../../../core/dtype.js';
import { ConfigError, NumericError } from '../../../core/errors.js';
import { decodeBf16Array, decodeF16Array } from '../../../numerics/float16.js';
import type { quantizeGgml } from '../index.js';
import { hasGgmlKernel, quantizeWithKernel, quantizeWithKernelFrom, type KernelInput } from './kernels.js';

/**
 * The TypeScript codecs (quantizeGgml), for a type no kernel covers. Passed in rather than imported
 * here, so that a worker that only runs kernels starts without loading every codec (a Node worker
 * imports them when a job needs them: needsGgmlCodec).
 */
export type GgmlCodec = typeof quantizeGgml;

export interface GgmlRowsJob {
  type: GgmlType;
  /** element type of the input rows */
  input: KernelInput;
  /** input buffer: R·K elements of `input` from byte `srcOffset` (row-major); unused with `file` */
  src: SharedArrayBuffer | ArrayBuffer | null;
  srcOffset: number;
  /**
   * The input rows read by the thread itself from a file instead (R·K elements of `input` from
   * byte `offset`): no shared input buffer, no copy (threads that can open files: OpenFileRows).
   */
  file?: { path: string; offset: number };
  /** output buffer: R·K/QK·W bytes from `dstOffset` */
  dst: SharedArrayBuffer | ArrayBuffer;
  dstOffset: number;
  nPerRow: number;
  /** the rows [rowStart, rowEnd) of the tensor this job does */
  rowStart: number;
  rowEnd: number;
  /** per-column importance weights [K] */
  imatrix?: Float32Array;
}

/** Output bytes of one row of `type` with K values. */
export function ggmlRowBytes(type: GgmlType, nPerRow: number): number {
  const g = GGML_TYPES[type];
  return (nPerRow / g.blockSize) * g.typeSize;
}

/** Positional reads of one open file (a Node worker's, src/quant/node/quant-worker.ts). */
export interface FileRows {
  /** exactly into.length bytes at byte `offset` of the file into `into` (IoError otherwise) */
  read(into: Uint8Array, offset: number): void;
  close(): void;
}
export type OpenFileRows = (path: string) => FileRows;

/** Whether `job` needs the TypeScript codecs on this thread (no kernel covers its type). */
export function needsGgmlCodec(job: GgmlRowsJob): boolean {
  return !hasGgmlKernel(job.type, !!job.imatrix);
}

/**
 * Quantizes rows [rowStart, rowEnd) of the job into its output (WebAssembly kernel where one
 * covers the type, else `codec`, which must then be given), the input taken from `job.src` or,
 * for a job with `file`, read through `openFile`. A NaN/±Inf throws NumericError('non_finite')
 * with the index in the whole tensor.
 */
export function runGgmlRowsJob(job: GgmlRowsJob, codec: GgmlCodec | null, openFile?: OpenFileRows): void {
  const { type, input, nPerRow: K, rowStart, rowEnd } = job;
  const rows = rowEnd - rowStart;
  if (rows <= 0) return;
  const rowBytes = ggmlRowBytes(type, K);
  const elBytes = input === 'F32' ? 4 : 2;
  const out = new Uint8Array(job.dst, job.dstOffset + rowStart * rowBytes, rows * rowBytes);
  const kernel = hasGgmlKernel(type, !!job.imatrix);
  if (!kernel && !codec) throw new ConfigError('internal', 'no kernel for this type and no codec given', { field: 'type', found: type });
  let file: FileRows | null = null;
  try {
    let x: Float32Array | Uint16Array;
    if (job.file) {
      if (!openFile) throw new ConfigError('internal', 'this thread cannot read files', { field: 'file', found: job.file.path });
      file = openFile(job.file.path);
      const base = job.file.offset + rowStart * K * elBytes;
      if (kernel) {
        const f = file;
        quantizeWithKernelFrom(type, (into, from) => f.read(into, base + from * elBytes), input, rows, K, job.imatrix, out);
        return;
      }
      const bytes = new Uint8Array(rows * K * elBytes);
      file.read(bytes, base);
      x = input === 'F32' ? new Float32Array(bytes.buffer) : new Uint16Array(bytes.buffer);
    } else {
      if (!job.src) throw new ConfigError('internal', 'a rows job needs src or file', { field: 'src' });
      const from = job.srcOffset + rowStart * K * elBytes;
      x = input === 'F32' ? new Float32Array(job.src, from, rows * K) : new Uint16Array(job.src, from, rows * K);
    }
    if (kernel) {
      quantizeWithKernel(type, x, input, rows, K, job.imatrix, out);
      return;
    }
    const f = input === 'F32' ? (x as Float32Array) : input === 'F16' ? decodeF16Array(x as Uint16Array) : decodeBf16Array(x as Uint16Array);
    out.set(codec!(type, f, rows, K, job.imatrix));
  } catch (e) {
    // indices are relative to this block of rows: name the value's place in the whole tensor
    if (e instanceof NumericError && typeof e.context.index === 'number') throw new NumericError(e.code, 'x holds a non-finite value', { ...e.context, index: e.context.index + rowStart * K });
    throw e;
  } finally {
    file?.close();
  }
}

/**
 * Splits R rows into about `parts` contiguous ranges (at least `minRows` rows each, except the
 * last): the unit of work the pools hand out, more than one per thread so a busy thread does not
 * hold the others back.
 */
export function splitRows(R: number, parts: number, minRows = 1): [number, number][] {
  const n = Math.max(1, Math.min(parts, Math.floor(R / Math.max(1, minRows)) || 1));
  const per = Math.ceil(R / n);
  const out: [number, number][] = [];
  for (let r = 0; r < R; r += per) out.push([r, Math.min(R, r + per)]);
  return out;
}
