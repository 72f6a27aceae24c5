// `bitscale worker`: take jobs from the queue and run each in a child process (BullMQ's sandboxed
// processor). The child does the computing; this process only keeps the job's lock alive in Redis,
// so a long synchronous step (quantizing a big tensor, tokenizing a corpus) never looks like a dead
// worker, and a crash in the child fails one attempt instead of the worker. With --concurrency N,
// N children compute side by side. If this process dies, its locks lapse; after the stall timeout
// another worker's stall check puts the jobs back in the queue.
import { hostname } from 'node:os';
import { checkAborted } from '../../core/progress.js';
import { QUEUE_NAME, decodeJobError } from './jobs.js';
import { bullmqFor, parseQueueUrl, probeRedis } from './redis.js';

export interface WorkerJob {
  /** redis://HOST:PORT[/DB] */
  url: string;
  /** the sandboxed processor module (a file that default-exports `(job) => result`) */
  processorFile: string;
  /** jobs run at once, each in its own child process (default 1) */
  concurrency?: number;
  /**
   * ms without a lock renewal before a job counts as stalled and goes back to the queue; also the
   * interval of this worker's stall check (default 30000)
   */
  stallTimeoutMs?: number;
  /** times a job may stall before it fails for good (default 3) */
  maxStalls?: number;
  /** environment of the child processes (their configuration) */
  childEnv?: Record<string, string>;
  /** stop after this many jobs (finished or failed); default: run until the signal */
  maxJobs?: number;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

export interface WorkerSummary {
  name: string;
  completed: number;
  failed: number;
}

export async function runQueueWorker(o: WorkerJob): Promise<WorkerSummary> {
  checkAborted(o.signal);
  const target = parseQueueUrl(o.url);
  const version = await probeRedis(target);
  const { bullmq, connection } = await bullmqFor(target);
  const name = `${hostname()}:${process.pid}`;
  const stall = o.stallTimeoutMs ?? 30_000;
  const worker = new bullmq.Worker(QUEUE_NAME, o.processorFile, {
    connection,
    name,
    concurrency: o.concurrency ?? 1,
    lockDuration: stall,
    stalledInterval: stall,
    maxStalledCount: o.maxStalls ?? 3,
    useWorkerThreads: false,
    workerForkOptions: { env: { ...process.env, ...o.childEnv } },
    autorun: false,
  });
  const summary: WorkerSummary = { name, completed: 0, failed: 0 };
  let stop: () => void = () => {};
  const stopped = new Promise<void>((resolve) => (stop = resolve));
  const counted = () => {
    if (o.maxJobs !== undefined && summary.completed + summary.failed >= o.maxJobs) stop();
  };
  worker.on('active', (job) => o.log?.(`${job.id}: started`));
  worker.on('completed', (job) => {
    summary.completed++;
    o.log?.(`${job.id}: done in ${(((job.finishedOn ?? Date.now()) - (job.processedOn ?? Date.now())) / 1000).toFixed(1)} s`);
    counted();
  });
  worker.on('failed', (job, err) => {
    summary.failed++;
    const typed = decodeJobError(err.message);
    o.log?.(`${job?.id ?? '?'}: failed${typed ? '' : ` (attempt ${job?.attemptsMade ?? '?'})`}: ${typed ? `[${typed.code}] ${typed.message}` : err.message}`);
    counted();
  });
  worker.on('error', (e) => o.log?.(`queue ${target.url}: ${e.message}`));
  const onAbort = () => stop();
  o.signal?.addEventListener('abort', onAbort);
  try {
    o.log?.(`worker ${name}: Redis ${version} at ${target.url}, queue '${QUEUE_NAME}', concurrency ${o.concurrency ?? 1}, stall timeout ${stall / 1000} s`);
    const running = worker.run();
    await Promise.race([stopped, running]);
    return summary;
  } finally {
    o.signal?.removeEventListener('abort', onAbort);
    // waits for the jobs in hand to finish (a second Ctrl-C exits at once)
    await worker.close();
  }
}
