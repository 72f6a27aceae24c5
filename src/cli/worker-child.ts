// The child process of `bitscale worker` (BullMQ's sandboxed processor): runs one job at a time
// through pipeline/queue/exec.ts. Its configuration comes from the parent in BITSCALE_WORKER_CONFIG.
// A typed error becomes BullMQ's UnrecoverableError (the job fails once, with that error); any
// other error is left to BullMQ's retries.
import { isBitscaleError } from '../core/errors.js';
import { executeQueueJob, type ExecContext } from '../pipeline/queue/exec.js';
import { UNRECOVERABLE, encodeJobError, type QueueJobData } from '../pipeline/queue/jobs.js';

// the parent is gone (killed, or its machine lost): stop rather than compute for nobody
process.on('disconnect', () => process.exit(1));

const config = JSON.parse(process.env.BITSCALE_WORKER_CONFIG ?? '{}') as Pick<ExecContext, 'pathMap' | 'threads'>;

interface SandboxedJob {
  data: QueueJobData;
  updateProgress(value: object): Promise<void>;
}

export default async function processJob(job: SandboxedJob): Promise<unknown> {
  let last = 0;
  const progress = (detail: string) => {
    const now = Date.now();
    if (now - last < 1000) return;
    last = now;
    void job.updateProgress({ detail }).catch(() => {});
  };
  try {
    return await executeQueueJob(job.data, { ...config, progress });
  } catch (e) {
    if (!isBitscaleError(e)) throw e;
    const u = new Error(encodeJobError(e));
    // an own property: the sandbox copies own properties back to the parent
    Object.defineProperty(u, 'name', { value: UNRECOVERABLE, enumerable: true });
    throw u;
  }
}
