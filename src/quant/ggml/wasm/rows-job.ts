// A block of rows to quantize to a ggml type, described over shared memory so that threads (Node
// worker_threads, browser Web Workers) can each take a range of rows of the same tensor and write
// their bytes straight into the shared output: ggml rows are independent, so any split gives the
// bytes of one thread. Browser-safe (no node:*); the pools that post these jobs live with their
// platform (src/quant/node/worker-pool.ts for Node).
// Legend: R = rows, K = values per row, QK = block size, W = bytes per block.

import type { GgmlType } from '../../../core/dtype.js';
import { GGML_TYPES } from '../../../core/dtype.js';
import { NumericError } from '../../../core/errors.js';
import { decodeBf16Array, decodeF16Array } from '../../../numerics/float16.js';
import { quantizeGgml } from '../index.js';
import { hasGgmlKernel, quantizeWithKernel, type KernelInput } from './kernels.js';

export interface GgmlRowsJob {
  type: GgmlType;
  /** element type of the input rows */
  input: KernelInput;
  /** input buffer: R·K elements of `input` from byte `srcOffset` (row-major) */
  src: SharedArrayBuffer | ArrayBuffer;
  srcOffset: number;
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

/**
 * Quantizes rows [rowStart, rowEnd) of the job into its output (WebAssembly kernel where one
 * covers the type, else the TypeScript codec). A NaN/±Inf throws NumericError('non_finite') with
 * the index in the whole tensor.
 */
export function runGgmlRowsJob(job: GgmlRowsJob): void {
  const { type, input, nPerRow: K, rowStart, rowEnd } = job;
  const rows = rowEnd - rowStart;
  if (rows <= 0) return;
  const rowBytes = ggmlRowBytes(type, K);
  const elBytes = input === 'F32' ? 4 : 2;
  const from = job.srcOffset + rowStart * K * elBytes;
  const out = new Uint8Array(job.dst, job.dstOffset + rowStart * rowBytes, rows * rowBytes);
  const x = input === 'F32' ? new Float32Array(job.src, from, rows * K) : new Uint16Array(job.src, from, rows * K);
  try {
    if (hasGgmlKernel(type, !!job.imatrix)) {
      quantizeWithKernel(type, x, input, rows, K, job.imatrix, out);
      return;
    }
    const f = input === 'F32' ? (x as Float32Array) : input === 'F16' ? decodeF16Array(x as Uint16Array) : decodeBf16Array(x as Uint16Array);
    out.set(quantizeGgml(type, f, rows, K, job.imatrix));
  } catch (e) {
    // indices are relative to this block of rows: name the value's place in the whole tensor
    if (e instanceof NumericError && typeof e.context.index === 'number') throw new NumericError(e.code, 'x holds a non-finite value', { ...e.context, index: e.context.index + rowStart * K });
    throw e;
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
