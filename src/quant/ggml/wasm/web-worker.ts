// A Web Worker's entry for GgmlWebPool (exported as `bitscale/browser-worker`): runs ggml rows jobs
// over shared memory with the WebAssembly kernels (compiled in the worker, where synchronous
// compilation is allowed) and answers each with its outcome.
import { quantizeGgml } from '../index.js';
import { runGgmlRowsJob, type GgmlRowsJob } from './rows-job.js';
import { errorReply, type WorkerReply } from './worker-queue.js';

interface Scope {
  onmessage: ((e: { data: { id: number; kind: 'ggml-rows'; job: GgmlRowsJob } }) => void) | null;
  postMessage(msg: WorkerReply): void;
}

const scope = globalThis as unknown as Scope;
scope.onmessage = (e) => {
  const { id, job } = e.data;
  try {
    runGgmlRowsJob(job, quantizeGgml);
    scope.postMessage({ id, ok: true });
  } catch (err) {
    scope.postMessage({ id, ok: false, error: errorReply(err) });
  }
};
