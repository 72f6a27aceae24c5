// The page's side of the job worker: one job at a time, progress callbacks, and cancel. Cancel asks
// the pipeline to stop (its AbortSignal); a step that does not return within CANCEL_GRACE_MS (a
// long matrix loop) is cut short by terminating the worker, and a fresh one is given the model's
// files and the outputs again (they live here as Blobs, so nothing is lost).
import type { ProgressEvent } from '../src/core/progress.js';
import type { ErrorInfo, InFile, Output, Reply, Request } from './protocol.js';

const CANCEL_GRACE_MS = 1500;

type Distribute<T> = T extends unknown ? Omit<T, 'id'> : never;
export type JobRequest = Distribute<Exclude<Request, { op: 'cancel' }>>;

export class JobError extends Error {
  constructor(readonly info: ErrorInfo) {
    super(info.message);
  }
}

interface Pending {
  id: number;
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
    return w;
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
    const p = this.pending;
    if (!p || r.id !== p.id) return;
    if (r.type === 'progress') {
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
      this.pending = { id, resolve: resolve as (r: Reply) => void, reject, onProgress };
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
