// Worker entry for QuantPool (src/pipeline/workers.ts): quantizes a block of rows with the public
// quant API and transfers the result arrays back. Node-only.
import { parentPort } from 'node:worker_threads';
import { quantize } from '../quant/index.js';
import type { QuantScheme, QuantizeOptions, QuantizedTensor } from '../quant/index.js';

export interface QuantJob {
  id: number;
  /** [rows, …rest] slice of the input, row-major */
  data: Float32Array;
  shape: number[];
  scheme: QuantScheme;
  opts: QuantizeOptions;
}

export type QuantReply = { id: number; ok: true; q: QuantizedTensor } | { id: number; ok: false; error: { name: string; message: string; code?: string; context?: unknown } };

function transferables(q: QuantizedTensor): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const v of Object.values(q)) if (ArrayBuffer.isView(v)) out.push(v.buffer as ArrayBuffer);
  return out;
}

parentPort?.on('message', (job: QuantJob) => {
  try {
    const q = quantize(job.data, job.shape, job.scheme, job.opts);
    parentPort!.postMessage({ id: job.id, ok: true, q } satisfies QuantReply, transferables(q));
  } catch (e) {
    const err = e as { name?: string; message?: string; code?: string; context?: unknown };
    parentPort!.postMessage({
      id: job.id,
      ok: false,
      error: { name: err.name ?? 'Error', message: err.message ?? String(e), code: err.code, context: err.context },
    } satisfies QuantReply);
  }
});
