// A block of rows of one weight matrix to quantize with an int / float / code-book scheme, described
// over shared memory so that threads (Node worker_threads, browser Web Workers) each take a range of
// rows of the same tensor: the same job shape as the ggml rows (ggml/wasm/rows-job.ts), for the
// codecs behind `--scheme int4-g128`, `nf4-g64`, `fp8-e4m3`, …. Each thread reads its rows (from a
// file, itself, or from a shared input), decodes F16/BF16, quantizes them with quant's codec of the
// scheme (the WebAssembly kernels where the codec has one: quant/codec-kernel.ts for int and fixed
// code books, minifloat-kernel.ts for FP8/FP4) and writes, at the rows' place in shared outputs,
// either the codes packed into the container's int32 words (numerics/pack-words.ts) with scales
// and zero points (GPTQ-packed or compressed-tensors folders) or the dequantized float32 values
// (fake-quant folders), so that the calling thread only writes files. Only row-separable schemes are split (quant/node's
// rowSplittable); the others run as one block, still off the calling thread. The result of any
// split is the result of one call on the whole tensor (test/pipeline/quantize/codec-stream.test.ts).
// Browser-safe (no node:*).
// Legend: R = rows, K = values per row, S = scales per row (groups along K; 1 per channel).

import { ConfigError, NumericError } from '../core/errors.js';
import { firstNonFinite } from '../numerics/finite.js';
import { decodeBf16Array, decodeF16Array } from '../numerics/float16.js';
import { packCtRowsInto, packGptqColumnsInto } from '../numerics/pack-words.js';
import { toUnsignedCodes } from './pack.js';
import { codecKernelGroup, runCodecKernel } from './codec-kernel.js';
import { dequantize, quantize } from './api.js';
import type { KernelInput } from './ggml/wasm/kernels.js';
import type { OpenFileRows } from './ggml/wasm/rows-job.js';
import { splitRows } from './ggml/wasm/rows-job.js';
import { rebuildError, type WorkerQueue, type WorkerReply } from './ggml/wasm/worker-queue.js';
import type { IntScheme, QuantScheme } from './scheme.js';
import type { QuantizedTensor } from './types.js';

type Buf = SharedArrayBuffer | ArrayBuffer;

/**
 * What a codec job writes: an int scheme's codes packed into the container's int32 words, with
 * scales and unsigned zero points per row (packed folders), or ŵ in float32 (fake-quant folders).
 */
export type CodecOutput =
  /**
   * words: GPTQ qweight int32 [K·b/32, N] or compressed-tensors weight_packed int32 [N, ⌈K·b/32⌉]
   * (numerics/pack-words.ts); scales [N, S] f32; zeros [N, S] unsigned (2^(b−1) for symmetric schemes)
   */
  | { kind: 'packed'; layout: 'gptq' | 'ct'; words: Buf; scales: Buf; zeros: Buf }
  /** dequantized values [N, K] f32 */
  | { kind: 'dequant'; values: Buf };

export interface CodecRowsJob {
  scheme: QuantScheme;
  /** element type of the input rows */
  input: KernelInput;
  /** R·K elements of `input` from byte srcOffset (row-major); unused with `file` */
  src: Buf | null;
  srcOffset: number;
  /** the rows read by the thread itself from a file instead (R·K elements from byte `offset`) */
  file?: { path: string; offset: number };
  out: CodecOutput;
  /**
   * Output row p holds source row rowOrder[p] (a q/k projection written in another rotary layout):
   * rows are independent, so quantizing them in that order is the same as permuting the result.
   */
  rowOrder?: Int32Array;
  nPerRow: number;
  /** the rows [rowStart, rowEnd) of the tensor this job does */
  rowStart: number;
  rowEnd: number;
  /** row-separable (rowSplittable): false means one job holds every row */
  nRows: number;
}

/** Scales per row of a [N, K] tensor under an int scheme (groups along K, or one per channel). */
export function scalesPerRow(scheme: QuantScheme, K: number): number {
  if (scheme.kind !== 'int') throw new ConfigError('internal', 'packed output is for int schemes', { field: 'scheme', found: scheme.kind });
  const g = scheme.granularity;
  if (g.kind === 'group') return K / g.size;
  if (g.kind === 'channel' && g.axis === 0) return 1;
  throw new ConfigError('unsupported', 'packed output needs per-group or per-output-channel scales', { field: 'scheme', found: g });
}

/** The input bytes of the job's rows: fill(into, p0, n) puts rows [p0, p0 + n) of the job (in rowOrder's order) into `into`. */
function rowReader(job: CodecRowsJob, openFile?: OpenFileRows): { fill: (into: Uint8Array, p0: number, n: number) => void; close: () => void } {
  const { input, nPerRow: K, rowStart, rowOrder } = job;
  const rowBytes = K * (input === 'F32' ? 4 : 2);
  // contiguous source rows [from, from + n) into `into` from row `at` on
  let copy: (into: Uint8Array, at: number, from: number, n: number) => void;
  let close = (): void => {};
  if (job.file) {
    if (!openFile) throw new ConfigError('internal', 'this thread cannot read files', { field: 'file', found: job.file.path });
    const f = openFile(job.file.path);
    const base = job.file.offset;
    close = () => f.close();
    copy = (into, at, from, n) => f.read(into.subarray(at * rowBytes, (at + n) * rowBytes), base + from * rowBytes);
  } else {
    if (!job.src) throw new ConfigError('internal', 'a rows job needs src or file', { field: 'src' });
    const src = new Uint8Array(job.src, job.srcOffset);
    copy = (into, at, from, n) => into.set(src.subarray(from * rowBytes, (from + n) * rowBytes), at * rowBytes);
  }
  const fill = (into: Uint8Array, p0: number, n: number): void => {
    if (!rowOrder) copy(into, 0, rowStart + p0, n);
    else for (let p = 0; p < n; p++) copy(into, p, rowOrder[rowStart + p0 + p], 1);
  };
  return { fill, close };
}

/** The job's rows as float32 (read from its file through `openFile`, or from `src`; in rowOrder's order) and decoded. */
function readRows(job: CodecRowsJob, openFile?: OpenFileRows): Float32Array {
  const { input, nPerRow: K, rowStart, rowEnd } = job;
  const R = rowEnd - rowStart;
  const bytes = new Uint8Array(R * K * (input === 'F32' ? 4 : 2));
  const rows = rowReader(job, openFile);
  try {
    rows.fill(bytes, 0, R);
  } finally {
    rows.close();
  }
  if (input === 'F32') return new Float32Array(bytes.buffer);
  const raw = new Uint16Array(bytes.buffer);
  return input === 'F16' ? decodeF16Array(raw) : decodeBf16Array(raw);
}

/** Packs unsigned codes [n, K] of the tensor's rows [r0, r0 + n) into the output's words (numerics/pack-words.ts). */
function packRows(out: Extract<CodecOutput, { kind: 'packed' }>, codes: Uint8Array, r0: number, n: number, K: number, N: number, bits: number): void {
  if (out.layout === 'gptq') packGptqColumnsInto(codes, n, K, bits, new Int32Array(out.words, 0, ((K * bits) / 32) * N), N, r0);
  else packCtRowsInto(codes, n, K, bits, new Int32Array(out.words, 0, Math.ceil((K * bits) / 32) * N), r0);
}

/**
 * The job on the WebAssembly kernels (quant/codec-kernel.ts); false where they met a non-finite
 * value (their partial output is then overwritten by the reference, which reports it).
 */
function runWithKernel(job: CodecRowsJob, openFile?: OpenFileRows): boolean {
  const { nPerRow: K, rowStart, rowEnd, scheme, out } = job;
  const rows = rowReader(job, openFile);
  try {
    return runCodecKernel({
      scheme, input: job.input, R: rowEnd - rowStart, K, fill: rows.fill, values: out.kind === 'dequant',
      emit: (p0, n, b) => {
        const r0 = rowStart + p0;
        if (out.kind === 'dequant') {
          new Float32Array(out.values, r0 * K * 4, n * K).set(b.values!);
          return;
        }
        const S = b.scales.length / n;
        packRows(out, b.codes, r0, n, K, job.nRows, (scheme as IntScheme).bits);
        new Float32Array(out.scales, r0 * S * 4, n * S).set(b.scales);
        new Uint8Array(out.zeros, r0 * S, n * S).set(b.zeros);
      },
    });
  } finally {
    rows.close();
  }
}

/**
 * Quantizes rows [rowStart, rowEnd) of the job into its shared outputs. A NaN/±Inf throws
 * NumericError('non_finite') with its index in the whole tensor and its row.
 */
export function runCodecRowsJob(job: CodecRowsJob, openFile?: OpenFileRows): void {
  const { nPerRow: K, rowStart, rowEnd, scheme } = job;
  const R = rowEnd - rowStart;
  if (R <= 0) return;
  const packed = job.out.kind === 'packed';
  if ((scheme.kind === 'int' || !packed) && codecKernelGroup(scheme, K) !== null && runWithKernel(job, openFile)) return;
  const x = readRows(job, openFile);
  // an index among this block's (possibly reordered) rows → its place in the stored tensor
  const at = (i: number): { index: number; row: number } => {
    const p = rowStart + Math.floor(i / K);
    const row = job.rowOrder ? job.rowOrder[p] : p;
    return { index: row * K + (i % K), row };
  };
  let q: QuantizedTensor;
  try {
    q = quantize(x, [R, K], scheme);
  } catch (e) {
    if (e instanceof NumericError && typeof e.context.index === 'number') throw new NumericError(e.code, 'tensor holds a non-finite value', { ...e.context, ...at(e.context.index) });
    throw e;
  }
  const out = job.out;
  if (out.kind === 'dequant') {
    const v = dequantize(q);
    // a scheme whose range a weight overflows gives ±Inf
    const bad = firstNonFinite(v);
    if (bad >= 0) throw new NumericError('non_finite', 'the quantized weights hold a non-finite value', { ...at(bad), found: v[bad] });
    new Float32Array(out.values, rowStart * K * 4, R * K).set(v);
    return;
  }
  if (q.kind !== 'int') throw new ConfigError('internal', 'packed output is for int schemes', { field: 'scheme', found: q.kind });
  const S = scalesPerRow(scheme, K);
  const bad = firstNonFinite(q.scales);
  if (bad >= 0) throw new NumericError('non_finite', 'the quantized weights hold a non-finite value', { ...at(Math.floor(bad / S) * K), found: q.scales[bad] });
  const u = toUnsignedCodes(q);
  packRows(out, u.codes, rowStart, R, K, job.nRows, (scheme as IntScheme).bits);
  new Float32Array(out.scales, rowStart * S * 4, R * S).set(q.scales);
  new Uint8Array(out.zeros, rowStart * S, R * S).set(u.zeros);
}

/** One codec job over all N rows (the pools cut it into chunks); `split`: whether rows may be split. */
export type SharedCodecJob = Omit<CodecRowsJob, 'rowStart' | 'rowEnd'> & { split: boolean };

/**
 * Runs a tensor's rows as chunks on the queue's workers ({ kind: 'codec-rows', job } messages) and
 * rejects with the error of the first failing row in row order once every chunk has answered (so
 * no worker still writes into the buffers when this settles).
 */
export async function runCodecRows(q: WorkerQueue, j: SharedCodecJob): Promise<void> {
  const { split, ...rest } = j;
  const minRows = Math.max(1, Math.ceil(16384 / Math.max(1, j.nPerRow))); // ≥ 16K values a chunk
  const chunks = split ? splitRows(j.nRows, q.size * 4, minRows) : [[0, j.nRows] as [number, number]];
  const replies = await Promise.all(chunks.map(([rowStart, rowEnd]) => q.submit({ kind: 'codec-rows', job: { ...rest, rowStart, rowEnd } satisfies CodecRowsJob })));
  const bad = replies.filter((r): r is Extract<WorkerReply, { ok: false }> => !r.ok);
  if (bad.length) {
    const at = (r: Extract<WorkerReply, { ok: false }>): number => (r.error.context as { index?: number } | undefined)?.index ?? Infinity;
    throw rebuildError(bad.sort((a, b) => at(a) - at(b))[0].error);
  }
}
