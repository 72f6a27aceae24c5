// The page's side of the job worker: one job at a time, progress callbacks, and cancel. Cancel asks
// the pipeline to stop (its AbortSignal); a step that does not return within CANCEL_GRACE_MS (a
// long matrix loop) is cut short by terminating the worker, and a fresh one is given the model's
// files and the outputs again (they live here as Blobs, so nothing is lost).
import type { ProgressEvent } from '../src/core/progress.js';
import type { ErrorInfo, InFile, Output, Reply, Request, WorkerStatus } from './protocol.js';

const CANCEL_GRACE_MS = 1500;

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
export type JobRequest = Distribute<Exclude<Request, { op: 'cancel' | 'status' }>>;

export class JobError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }
}

interface Pending {
  id: number;
  op: string;
  /** when it was posted and when its last message (progress) came (ms, Date.now()) */
  at: number;
  lastReply: number;
  lastProgress?: string;
  resolve: (r: Reply) => void;
  reject: (e: Error) => void;
  onProgress?: (e: ProgressEvent) => void;
}

export class JobRunner {
  private worker: Worker;
  private nextId = 1;
  private pending: Pending | null = null;
  /** what a fresh worker needs to continue where the last one stopped */
  restoreState: () => { files: InFile[]; folder: string | null; outputs: Output[]; webgpu: boolean; threads: number } = () => ({ files: [], folder: null, outputs: [], webgpu: false, threads: 1 });

  constructor(private readonly url: URL) {
    this.worker = this.spawn();
  }

  private spawn(): Worker {
    const w = new Worker(this.url, { type: 'module', name: 'bitscale-jobs' });
    w.onmessage = (ev: MessageEvent<Reply>) => this.onReply(ev.data);
    w.onerror = (ev) => {
      ev.preventDefault();
      this.fail(new JobError({ code: 'internal', message: `the job worker failed: ${ev.message || 'unknown error'}`, context: {} }));
    };
    // a reply that could not be deserialized would otherwise be dropped, and its job wait forever
    w.onmessageerror = () => this.fail(new JobError({ code: 'internal', message: 'the job worker sent a message the page could not read', context: {} }));
    this.spawnedAt = Date.now();
    return w;
  }

  private spawnedAt = 0;
  private probes = new Map<number, (s: WorkerStatus) => void>();
  private nextProbe = -1;

  /** The worker's own status (WorkerStatus), or null if it does not answer within `timeoutMs` (a long synchronous step, or a dead worker). */
  probe(timeoutMs = 3000): Promise<WorkerStatus | null> {
    const id = this.nextProbe--;
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.probes.delete(id);
        resolve(null);
      }, timeoutMs);
      this.probes.set(id, (st) => {
        clearTimeout(t);
        resolve(st);
      });
      this.worker.postMessage({ id, op: 'status' } satisfies Request);
    });
  }

  /** The page's side of the job state machine, for a stall's dump (ages in ms). */
  debugState(): object {
    const now = Date.now();
    const p = this.pending;
    return {
      pending: p ? { id: p.id, op: p.op, ageMs: now - p.at, sinceLastMessageMs: now - p.lastReply, lastProgress: p.lastProgress ?? null } : null,
      restoring: this.restoring !== null,
      workerAgeMs: now - this.spawnedAt,
      nextId: this.nextId,
    };
  }

  get busy(): boolean {
    return this.pending !== null;
  }

  /** A worker replaced by cancel() is being given the files and outputs back; jobs wait for it (ready()). */
  private restoring: Promise<void> | null = null;

  get restoringWorker(): boolean {
    return this.restoring !== null;
  }

  /** Resolves once no restore after a cancel is in flight (its failure is the next job's to meet). */
  async ready(): Promise<void> {
    while (this.restoring) await this.restoring.catch(() => undefined);
  }

  private onReply(r: Reply): void {
    if (r.type === 'status') {
      this.probes.get(r.id)?.(r.status);
      this.probes.delete(r.id);
      return;
    }
    const p = this.pending;
    if (!p || r.id !== p.id) return;
    p.lastReply = Date.now();
    if (r.type === 'progress') {
      p.lastProgress = `${r.event.task} ${r.event.done}/${r.event.total}`;
      p.onProgress?.(r.event);
      return;
    }
    this.pending = null;
    if (r.type === 'error') p.reject(new JobError(r.error));
    else p.resolve(r);
  }

  private fail(e: Error): void {
    const p = this.pending;
    this.pending = null;
    p?.reject(e);
  }

  /** Runs one job; rejects with JobError (typed: code, message, context) on failure. */
  run<T extends Reply['type']>(req: JobRequest, onProgress?: (e: ProgressEvent) => void): Promise<Extract<Reply, { type: T }>> {
    if (this.pending) return Promise.reject(new JobError({ code: 'bad_option', message: 'another job is running', context: {} }));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending = { id, op: req.op, at: Date.now(), lastReply: Date.now(), resolve: resolve as (r: Reply) => void, reject, onProgress };
      this.worker.postMessage({ ...req, id } as Request);
    });
  }

  /** Stops the running job: politely first, then by replacing the worker. */
  async cancel(): Promise<void> {
    const p = this.pending;
    if (!p) return;
    this.worker.postMessage({ id: p.id, op: 'cancel' } satisfies Request);
    await new Promise((r) => setTimeout(r, CANCEL_GRACE_MS));
    if (this.pending !== p) return;
    this.worker.terminate();
    this.fail(new JobError({ code: 'interrupted', message: 'cancelled', context: { hint: 'the job was stopped; finished outputs were kept' } }));
    this.worker = this.spawn();
    const s = this.restoreState();
    const restore = (async () => {
      await this.run({ op: 'settings', webgpu: s.webgpu, threads: s.threads });
      await this.run({ op: 'restore', files: s.files, folder: s.folder, outputs: s.outputs });
    })();
    this.restoring = restore.catch(() => undefined).finally(() => {
      this.restoring = null;
    });
    await restore;
  }
}
