// Worker entry for QuantPool (src/quant/node/worker-pool.ts): quantizes a block of rows with the public
// quant API and transfers the result arrays back, or runs a ggml rows job over shared memory
// (the bytes land in the shared output; nothing is sent back but the outcome). Node-only.
// The quant API (every codec) is imported on the first job that needs it: a worker that only runs
// WebAssembly kernels starts with the kernels' module alone (issue 12's start-up cost).
// A rows job that names a file has its input rows read here, straight into the kernel's memory.
import { closeSync, openSync, readSync } from 'node:fs';
import { parentPort } from 'node:worker_threads';
import { IoError } from '../../core/errors.js';
import type { QuantScheme, QuantizeOptions, QuantizedTensor } from '../index.js';
import { needsGgmlCodec, runGgmlRowsJob, type FileRows, type GgmlRowsJob } from '../ggml/wasm/rows-job.js';
import { ggmlKernelsReady } from '../ggml/wasm/kernels.js';
import { errorReply, type WorkerReply } from '../ggml/wasm/worker-queue.js';
import type { CodecRowsJob } from '../codec-rows.js';

export interface QuantJob {
  id: number;
  kind: 'quantize';
  /** [rows, …rest] slice of the input, row-major */
  data: Float32Array;
  shape: number[];
  scheme: QuantScheme;
  opts: QuantizeOptions;
}

export type WorkerMessage = QuantJob | { id: number; kind: 'ggml-rows'; job: GgmlRowsJob } | { id: number; kind: 'codec-rows'; job: CodecRowsJob };

function transferables(q: QuantizedTensor): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  for (const v of Object.values(q)) if (ArrayBuffer.isView(v)) out.push(v.buffer as ArrayBuffer);
  return out;
}

/** Synchronous positional reads (the worker has nothing else to do while it waits). */
function openFileRows(path: string): FileRows {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (e) {
    throw new IoError('io', `cannot open: ${(e as Error).message}`, { file: path });
  }
  return {
    read(into, offset) {
      let done = 0;
      while (done < into.length) {
        const n = readSync(fd, into, done, into.length - done, offset + done);
        if (n === 0) throw new IoError('truncated', 'the file ends inside a tensor', { file: path, offset: offset + done, expected: `${into.length - done} more bytes`, found: 'end of file' });
        done += n;
      }
    },
    close: () => closeSync(fd),
  };
}

let quantApi: typeof import('../index.js') | null = null;
let codecRows: typeof import('../codec-rows.js') | null = null;

async function handle(m: WorkerMessage): Promise<void> {
  try {
    if (m.kind === 'ggml-rows') {
      if (needsGgmlCodec(m.job)) quantApi ??= await import('../index.js');
      runGgmlRowsJob(m.job, quantApi?.quantizeGgml ?? null, openFileRows);
      parentPort!.postMessage({ id: m.id, ok: true } satisfies WorkerReply);
      return;
    }
    if (m.kind === 'codec-rows') {
      // int / float / code-book rows (quant/codec-rows.ts), imported with the codecs it runs
      codecRows ??= await import('../codec-rows.js');
      codecRows.runCodecRowsJob(m.job, openFileRows);
      parentPort!.postMessage({ id: m.id, ok: true } satisfies WorkerReply);
      return;
    }
    quantApi ??= await import('../index.js');
    const q = quantApi.quantize(m.data, m.shape, m.scheme, m.opts);
    parentPort!.postMessage({ id: m.id, ok: true, q } satisfies WorkerReply, transferables(q));
  } catch (e) {
    parentPort!.postMessage({ id: m.id, ok: false, error: errorReply(e) } satisfies WorkerReply);
  }
}

parentPort?.on('message', (m: WorkerMessage) => void handle(m));

// the kernels are compiled as the thread boots, not on its first job: a pool started early (the
// streaming RTN run starts it before reading the model's headers) is then ready when the first
// tensor comes; a failure here surfaces on the job that needs the kernels, as before
void ggmlKernelsReady().catch(() => {});
