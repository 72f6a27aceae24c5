// Worker entry for QuantPool (src/quant/node/worker-pool.ts): quantizes a block of rows with the public
// quant API and transfers the result arrays back, or runs a ggml rows job over shared memory
// (the bytes land in the shared output; nothing is sent back but the outcome). Node-only.
import { parentPort } from 'node:worker_threads';
import { quantize } from '../index.js';
import type { QuantScheme, QuantizeOptions, QuantizedTensor } from '../index.js';
import { runGgmlRowsJob, type GgmlRowsJob } from '../ggml/wasm/rows-job.js';
import { errorReply, type WorkerReply } from '../ggml/wasm/worker-queue.js';

export interface QuantJob {
  id: number;
  kind: 'quantize';
  /** [rows, …rest] slice of the input, row-major */
  data: Float32Array;
  shape: number[];
  scheme: QuantScheme;
  opts: QuantizeOptions;
}

export type WorkerMessage = QuantJob | { id: number; kind: 'ggml-rows'; job: GgmlRowsJob };

function transferables(q: QuantizedTensor): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const v of Object.values(q)) if (ArrayBuffer.isView(v)) out.push(v.buffer as ArrayBuffer);
  return out;
}

parentPort?.on('message', (m: WorkerMessage) => {
  try {
    if (m.kind === 'ggml-rows') {
      runGgmlRowsJob(m.job);
      parentPort!.postMessage({ id: m.id, ok: true } satisfies WorkerReply);
      return;
    }
    const q = quantize(m.data, m.shape, m.scheme, m.opts);
    parentPort!.postMessage({ id: m.id, ok: true, q } satisfies WorkerReply, transferables(q));
  } catch (e) {
    parentPort!.postMessage({ id: m.id, ok: false, error: errorReply(e) } satisfies WorkerReply);
  }
});
