// The coordinator's side of the queue: enqueue jobs under stable ids, wait for each to finish on
// whichever worker takes it, and hand every result to the caller exactly once, in the order they
// arrive. The caller (sweep, law experiment) writes its resumable runs file in `onResult`; that
// file, not Redis, is the record of what is done.
//
// Semantics:
// - Job ids are stable (run id + point id). Adding an id that is already queued or running adds
//   nothing, so a restarted coordinator re-attaches to the jobs of its predecessor; a job that had
//   finished but was never recorded is recorded now; a job left failed is queued once more.
// - A worker that dies mid-job stops renewing its lock; after the stall timeout another worker's
//   stall check puts the job back in the queue and it runs again (BullMQ's stalled-job detection).
// - A typed error (bad option, corrupt or mismatching input) fails the job at once with that error;
//   any other failure (a crashed child process, say) is retried, `attempts` times in all.
// - Each result is recorded once: the first completion of an id is taken and the job removed.
// - A job Redis no longer holds (a server restarted without persistence) is queued again.
// - Interrupting the coordinator leaves the jobs queued; workers go on, and the next coordinator
//   run collects what they finished.
import { hostname } from 'node:os';
import { BitscaleError } from '../../core/errors.js';
import { ProgressTracker, checkAborted, type ProgressFn } from '../../core/progress.js';
import { QUEUE_NAME, decodeJobError, type QueueJobData } from './jobs.js';
import { bullmqFor, parseQueueUrl, probeRedis } from './redis.js';

export interface QueueSettings {
  /** redis://HOST:PORT[/DB] */
  url: string;
  /** tries per job for failures that are not typed errors (default 3) */
  attempts?: number;
}

export interface RemoteJob {
  /** stable id: the same work always gets the same id */
  id: string;
  /** a short label for progress lines */
  label: string;
  data: QueueJobData;
}

export interface RemoteRunOptions {
  queue: QueueSettings;
  jobs: RemoteJob[];
  /** called once per finished job, one call at a time, before the job is removed from Redis */
  onResult: (job: RemoteJob, result: unknown) => Promise<void>;
  /** progress in jobs (task name as given) */
  task?: string;
  onProgress?: ProgressFn;
  log?: (line: string) => void;
  signal?: AbortSignal;
}

/** When each job was enqueued, started, finished and recorded (ms since the epoch). */
export interface RemoteJobTiming {
  id: string;
  worker: string;
  enqueuedAt: number;
  startedAt: number;
  finishedAt: number;
  recordedAt: number;
}

const POLL_MS = 2000;

/** Runs `jobs` on the queue's workers; resolves when every job is recorded, throws the first typed failure after the rest finish. */
export async function runRemoteJobs(o: RemoteRunOptions): Promise<RemoteJobTiming[]> {
  checkAborted(o.signal);
  const target = parseQueueUrl(o.queue.url);
  await probeRedis(target);
  const { bullmq, connection } = await bullmqFor(target);
  const queue = new bullmq.Queue(QUEUE_NAME, { connection });
  const events = new bullmq.QueueEvents(QUEUE_NAME, { connection });
  const warn = (e: Error) => o.log?.(`queue ${target.url}: ${e.message}`);
  queue.on('error', warn);
  events.on('error', warn);
  const byId = new Map(o.jobs.map((j) => [j.id, j]));
  const settled = new Set<string>();
  const timings: RemoteJobTiming[] = [];
  const failures: { job: RemoteJob; error: Error }[] = [];
  const track = new ProgressTracker(o.task ?? 'queue', o.jobs.length, o.onProgress, 'job');
  let chain: Promise<void> = Promise.resolve();
  let wake: () => void = () => {};
  let fatal: Error | null = null;
  // set when the coordinator stops (done, failed or interrupted): no result is recorded after it
  let stopped = false;
  let inFlight = 0;

  // serialised: results are recorded one at a time, each id once
  const settle = (id: string) => {
    if (settled.has(id) || !byId.has(id)) return;
    settled.add(id);
    inFlight++;
    chain = chain.then(async () => {
      if (stopped || o.signal?.aborted) return;
      const rj = byId.get(id)!;
      const job = await queue.getJob(id);
      const state = job ? await job.getState() : 'missing';
      if (!job || state !== 'completed') {
        const error = decodeJobError(job?.failedReason) ?? new BitscaleError('internal', `job ${id} failed: ${job?.failedReason ?? 'it left the queue'}`, { hint: rj.label });
        failures.push({ job: rj, error });
        o.log?.(`${rj.label}: failed on ${job?.processedBy ?? 'a worker'}: ${error.message}`);
        await job?.remove().catch(() => {});
      } else {
        await o.onResult(rj, job.returnvalue);
        timings.push({ id, worker: job.processedBy ?? '', enqueuedAt: job.timestamp, startedAt: job.processedOn ?? 0, finishedAt: job.finishedOn ?? 0, recordedAt: Date.now() });
        await job.remove().catch(() => {});
      }
      track.tick(`${rj.label} (${state === 'completed' ? 'done' : 'failed'}${job?.processedBy ? ` on ${job.processedBy}` : ''})`);
    }).catch((e: Error) => {
      fatal ??= e;
    }).finally(() => {
      inFlight--;
      wake();
    });
  };

  const add = (rj: RemoteJob) =>
    queue.add(rj.label, rj.data, { jobId: rj.id, attempts: o.queue.attempts ?? 3, backoff: { type: 'fixed', delay: 2000 }, removeOnComplete: false, removeOnFail: false });

  /** A job counts as settled only in its final state (a failed attempt that will be retried does not). */
  const check = async (id: string, requeue = false) => {
    if (settled.has(id)) return;
    const job = await queue.getJob(id);
    if (!job) {
      // Redis lost it (restarted without persistence, or flushed): queue it again
      if (requeue) {
        o.log?.(`${byId.get(id)!.label}: no longer in Redis; queued again`);
        await add(byId.get(id)!);
      }
      return;
    }
    const state = await job.getState();
    if (state === 'completed' || state === 'failed') settle(id);
  };

  events.on('completed', ({ jobId }) => settle(jobId));
  events.on('failed', ({ jobId }) => void check(jobId).catch(() => {}));
  events.on('stalled', ({ jobId }) => byId.has(jobId) && o.log?.(`${byId.get(jobId)!.label}: its worker stopped answering; the job goes back to the queue`));
  events.on('progress', ({ jobId, data }) => {
    const rj = byId.get(jobId);
    if (rj && data && typeof data === 'object' && 'detail' in data) track.emit(`${rj.label}: ${String((data as { detail: unknown }).detail)}`);
  });

  const onAbort = () => wake();
  o.signal?.addEventListener('abort', onAbort);
  try {
    await events.waitUntilReady();
    for (const rj of o.jobs) {
      const prev = await queue.getJob(rj.id);
      const state = prev ? await prev.getState() : null;
      if (state === 'completed') {
        settle(rj.id);
        continue;
      }
      if (state === 'failed') await prev!.remove();
      else if (state !== null && state !== 'unknown') continue; // queued or running: attach to it
      await add(rj);
    }
    o.log?.(`queued ${o.jobs.length} job${o.jobs.length === 1 ? '' : 's'} on ${target.url} (coordinator ${hostname()}:${process.pid}); start workers with: bitscale worker --queue ${target.url}`);
    while (settled.size < o.jobs.length || inFlight > 0) {
      if (fatal) throw fatal;
      checkAborted(o.signal);
      // events are the fast path; the poll covers events missed while a connection was down
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, POLL_MS);
        wake = () => {
          clearTimeout(t);
          resolve();
        };
      });
      for (const rj of o.jobs) if (!settled.has(rj.id)) await check(rj.id, true).catch((e: Error) => warn(e));
    }
    await chain;
    if (fatal) throw fatal;
    if (failures.length) {
      const first = failures[0].error;
      if (failures.length > 1) first.message += `\n(${failures.length} of ${o.jobs.length} jobs failed; the first is shown)`;
      throw first;
    }
    return timings;
  } finally {
    stopped = true;
    await chain;
    o.signal?.removeEventListener('abort', onAbort);
    await events.close().catch(() => {});
    await queue.close().catch(() => {});
  }
}
