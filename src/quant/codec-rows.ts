// A block of rows of one weight matrix to quantize with an int / float / code-book scheme, described
// over shared memory so that threads (Node worker_threads, browser Web Workers) each take a range of
// rows of the same tensor: the same job shape as the ggml rows (ggml/wasm/rows-job.ts), for the
// codecs behind `--scheme int4-g128`, `nf4-g64`, `fp8-e4m3`, …. Each thread reads its rows (from a
// file, itself, or from a shared input), decodes F16/BF16, quantizes them with quant's codec of the
// scheme (the WebAssembly kernels where the codec has one) and writes either the codes, scales and
// zero points (what packed containers store) or the dequantized float32 values (fake-quant
// folders) at the rows' place in shared outputs. Only row-separable schemes are split (quant/node's
// rowSplittable); the others run as one block, still off the calling thread. The result of any
// split is the result of one call on the whole tensor (test/pipeline/quantize/codec-stream.test.ts).
// Browser-safe (no node:*).
// Legend: R = rows, K = values per row, S = scales per row (groups along K; 1 per channel).

import { ConfigError, NumericError } from '../core/errors.js';
import { decodeBf16Array, decodeF16Array } from '../numerics/float16.js';
import { dequantize, quantize } from './api.js';
import type { KernelInput } from './ggml/wasm/kernels.js';
import type { OpenFileRows } from './ggml/wasm/rows-job.js';
import { splitRows } from './ggml/wasm/rows-job.js';
import { rebuildError, type WorkerQueue, type WorkerReply } from './ggml/wasm/worker-queue.js';
import type { QuantScheme } from './scheme.js';
import type { QuantizedTensor } from './types.js';

type Buf = SharedArrayBuffer | ArrayBuffer;

/** What a codec job writes: the stored codes (int schemes: packed containers) or ŵ in float32. */
export type CodecOutput =
  /** codes [N, K] one byte each (two's complement for symmetric int), scales [N, S] f32, zeros [N, S] (asymmetric) */
  | { kind: 'codes'; codes: Buf; scales: Buf; zeros: Buf | null }
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
  nPerRow: number;
  /** the rows [rowStart, rowEnd) of the tensor this job does */
  rowStart: number;
  rowEnd: number;
  /** row-separable (rowSplittable): false means one job holds every row */
  nRows: number;
}

/** Scales per row of a [N, K] tensor under an int scheme (groups along K, or one per channel). */
export function scalesPerRow(scheme: QuantScheme, K: number): number {
  if (scheme.kind !== 'int') throw new ConfigError('internal', 'codes output is for int schemes', { field: 'scheme', found: scheme.kind });
  const g = scheme.granularity;
  if (g.kind === 'group') return K / g.size;
  if (g.kind === 'channel' && g.axis === 0) return 1;
  throw new ConfigError('unsupported', 'codes output needs per-group or per-output-channel scales', { field: 'scheme', found: g });
}

/** The job's rows as float32 (read from its file through `openFile`, or viewed in `src` and decoded). */
function readRows(job: CodecRowsJob, openFile?: OpenFileRows): Float32Array {
  const { input, nPerRow: K, rowStart, rowEnd } = job;
  const n = (rowEnd - rowStart) * K;
  const el = input === 'F32' ? 4 : 2;
  let raw: Float32Array | Uint16Array;
  if (job.file) {
    if (!openFile) throw new ConfigError('internal', 'this thread cannot read files', { field: 'file', found: job.file.path });
    const f = openFile(job.file.path);
    try {
      const bytes = new Uint8Array(n * el);
      f.read(bytes, job.file.offset + rowStart * K * el);
      raw = input === 'F32' ? new Float32Array(bytes.buffer) : new Uint16Array(bytes.buffer);
    } finally {
      f.close();
    }
  } else {
    if (!job.src) throw new ConfigError('internal', 'a rows job needs src or file', { field: 'src' });
    const from = job.srcOffset + rowStart * K * el;
    raw = input === 'F32' ? new Float32Array(job.src, from, n).slice() : new Uint16Array(job.src, from, n);
  }
  return input === 'F32' ? (raw as Float32Array) : input === 'F16' ? decodeF16Array(raw as Uint16Array) : decodeBf16Array(raw as Uint16Array);
}

/**
 * Quantizes rows [rowStart, rowEnd) of the job into its shared outputs. A NaN/±Inf throws
 * NumericError('non_finite') with its index in the whole tensor and its row.
 */
export function runCodecRowsJob(job: CodecRowsJob, openFile?: OpenFileRows): void {
  const { nPerRow: K, rowStart, rowEnd, scheme } = job;
  const R = rowEnd - rowStart;
  if (R <= 0) return;
  const x = readRows(job, openFile);
  let q: QuantizedTensor;
  try {
    q = quantize(x, [R, K], scheme);
  } catch (e) {
    // indices are relative to this block of rows: name the value's place in the whole tensor
    if (e instanceof NumericError && typeof e.context.index === 'number') {
      const index = e.context.index + rowStart * K;
      throw new NumericError(e.code, 'tensor holds a non-finite value', { ...e.context, index, row: Math.floor(index / K) });
    }
    throw e;
  }
  const out = job.out;
  if (out.kind === 'dequant') {
    new Float32Array(out.values, rowStart * K * 4, R * K).set(dequantize(q));
    return;
  }
  if (q.kind !== 'int') throw new ConfigError('internal', 'codes output is for int schemes', { field: 'scheme', found: q.kind });
  const S = scalesPerRow(scheme, K);
  new Uint8Array(out.codes, rowStart * K, R * K).set(new Uint8Array(q.codes.buffer, q.codes.byteOffset, q.codes.length));
  new Float32Array(out.scales, rowStart * S * 4, R * S).set(q.scales);
  if (out.zeros) {
    if (!q.zeros) throw new ConfigError('internal', 'an asymmetric scheme gave no zero points', { field: 'zeros' });
    new Uint8Array(out.zeros, rowStart * S, R * S).set(q.zeros);
  }
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
