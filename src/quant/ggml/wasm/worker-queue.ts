// The scheduling both thread pools share (Node worker_threads in src/quant/node/worker-pool.ts, browser
// Web Workers in web-pool.ts): messages wait in a queue and go to whichever worker is free, each
// worker answers every message with one reply carrying its id, and a tensor's rows are cut into a
// few chunks per worker so a thread slowed by other load does not hold the others back. Errors
// come back as plain objects and are rebuilt as the typed error they were thrown as.
// Browser-safe (no node:*).
// Legend: R = rows, K = values per row.

import { BitscaleError, ConfigError, FormatError, IoError, NumericError, ShapeError, type ErrorCode, type ErrorContext } from '../../../core/errors.js';
import { runGgmlRowsJob, splitRows, type GgmlCodec, type GgmlRowsJob } from './rows-job.js';

/** A worker's error as it crosses the thread boundary. */
export interface ErrorReply {
  name: string;
  message: string;
  code?: string;
  context?: unknown;
}

export type WorkerReply = { id: number; ok: true; [k: string]: unknown } | { id: number; ok: false; error: ErrorReply };

const ERROR_CLASSES: Record<string, new (code: ErrorCode, what: string, ctx?: ErrorContext) => BitscaleError> = {
  NumericError,
  ConfigError,
  ShapeError,
  FormatError,
  IoError,
};

/** An error object for posting (structured clone drops the class). */
export function errorReply(e: unknown): ErrorReply {
  const err = e as { name?: string; message?: string; code?: string; context?: unknown };
  return { name: err.name ?? 'Error', message: err.message ?? String(e), code: err.code, context: err.context };
}

/** A worker's error as the error class it was thrown as, `index` shifted by `indexShift`. */
export function rebuildError(err: ErrorReply, indexShift = 0): Error {
  const ctx = { ...((err.context ?? {}) as ErrorContext) };
  if (ctx.index !== undefined) ctx.index += indexShift;
  const Cls = ERROR_CLASSES[err.name];
  if (Cls && err.code) return new Cls(err.code as ErrorCode, err.message.split(' (')[0].split(': expected')[0], ctx);
  return new Error(err.message);
}

/** Messages to `n` workers, each given to the next free one. */
export class WorkerQueue {
  private readonly idle: number[];
  private readonly queue: { msg: { id: number }; done: (r: WorkerReply) => void }[] = [];
  private readonly running = new Map<number, (r: WorkerReply) => void>();
  private nextId = 0;
  closed = false;

  /** `post(i, msg)` sends a message to worker i; the platform calls reply(i, r) with its answer. */
  constructor(
    private readonly post: (worker: number, msg: unknown) => void,
    readonly size: number,
  ) {
    this.idle = Array.from({ length: size }, (_, i) => size - 1 - i);
  }

  /** when each busy worker was given its message (ms, the host's clock), for the answer timeout and dumps */
  private readonly since = new Map<number, number>();
  /** set once the pool cannot go on (a worker died): every message then fails with it */
  private broken: ErrorReply | null = null;

  reply(worker: number, r: WorkerReply): void {
    const done = this.running.get(worker);
    this.running.delete(worker);
    this.since.delete(worker);
    if (!this.broken) this.idle.push(worker);
    done?.(r);
    this.pump();
  }

  /**
   * A worker that died (its script failed to load, an uncaught error, a message it could not read)
   * answers nothing more: every message in flight or queued fails with `error`, and so does every
   * later one, instead of waiting for a reply that will never come.
   */
  fail(error: ErrorReply): void {
    this.broken ??= error;
    this.idle.length = 0;
    const waiting = [...this.running.values(), ...this.queue.map((q) => q.done)];
    this.running.clear();
    this.since.clear();
    this.queue.length = 0;
    for (const done of waiting) done({ id: -1, ok: false, error: this.broken });
  }

  /** The oldest message still unanswered: its worker and how long ago it was posted (ms), or null. */
  oldest(now: number): { worker: number; ageMs: number } | null {
    let best: { worker: number; ageMs: number } | null = null;
    for (const [w, t] of this.since) if (!best || now - t > best.ageMs) best = { worker: w, ageMs: now - t };
    return best;
  }

  /** What the queue holds, for a stall's dump. */
  state(now: number): { size: number; idle: number; running: { worker: number; ageMs: number }[]; queued: number; closed: boolean; broken: string | null } {
    return {
      size: this.size,
      idle: this.idle.length,
      running: [...this.since].map(([worker, t]) => ({ worker, ageMs: Math.round(now - t) })),
      queued: this.queue.length,
      closed: this.closed,
      broken: this.broken?.message ?? null,
    };
  }

  private pump(): void {
    while (this.idle.length && this.queue.length) {
      const w = this.idle.pop()!;
      const p = this.queue.shift()!;
      this.running.set(w, p.done);
      this.since.set(w, Date.now());
      this.post(w, p.msg);
    }
  }

  submit<M extends object>(msg: M): Promise<WorkerReply> {
    if (this.closed) return Promise.reject(new ConfigError('internal', 'the worker pool is closed'));
    if (this.broken) return Promise.resolve({ id: -1, ok: false, error: this.broken });
    const id = this.nextId++;
    return new Promise((done) => {
      this.queue.push({ msg: { ...msg, id }, done });
      this.pump();
    });
  }
}

/** One shared-memory ggml job over all rows (the pools split it into GgmlRowsJob chunks). */
export type SharedRowsJob = Omit<GgmlRowsJob, 'rowStart' | 'rowEnd'> & { nRows: number };

/**
 * What the streaming RTN writer (src/pipeline/rtn-stream.ts) quantizes on: Node worker threads
 * (QuantPool), the page's Web Workers (GgmlWebPool) or the calling thread (InlineRowsPool). Every
 * one writes the bytes of one thread into `dst`.
 */
export interface RowsPool {
  readonly threads: number;
  /** whether its threads read a job's input from a file themselves (jobs with `file`) */
  readonly readsFiles?: boolean;
  quantizeGgmlRows(j: SharedRowsJob): Promise<void>;
  close(): Promise<void> | void;
}

/**
 * The rows of a job quantized on the calling thread: for hosts without shared memory (a page
 * served without cross-origin isolation), where the buffers are plain ArrayBuffers.
 */
export class InlineRowsPool implements RowsPool {
  readonly threads = 1;

  /** `codec`: the TypeScript codecs, for types no kernel covers (rows-job.ts needsGgmlCodec) */
  constructor(private readonly codec: GgmlCodec | null = null) {}

  async quantizeGgmlRows(j: SharedRowsJob): Promise<void> {
    const { nRows, ...rest } = j;
    runGgmlRowsJob({ ...rest, rowStart: 0, rowEnd: nRows }, this.codec);
  }

  close(): void {}
}

/**
 * Runs a tensor's rows as chunks on the queue's workers ({ kind: 'ggml-rows', job } messages) and
 * rejects with the error of the first failing row in row order, once every chunk has answered
 * (so no worker still writes into the buffers when this settles).
 */
export async function runGgmlRows(q: WorkerQueue, j: SharedRowsJob): Promise<void> {
  const minRows = Math.max(1, Math.ceil(16384 / Math.max(1, j.nPerRow))); // ≥ 16K values a chunk
  const { nRows, ...rest } = j;
  const chunks = splitRows(nRows, q.size * 4, minRows);
  const replies = await Promise.all(chunks.map(([rowStart, rowEnd]) => q.submit({ kind: 'ggml-rows', job: { ...rest, rowStart, rowEnd } satisfies GgmlRowsJob })));
  const bad = replies.filter((r): r is Extract<WorkerReply, { ok: false }> => !r.ok);
  if (bad.length) {
    const at = (r: Extract<WorkerReply, { ok: false }>): number => (r.error.context as ErrorContext | undefined)?.index ?? Infinity;
    throw rebuildError(bad.sort((a, b) => at(a) - at(b))[0].error);
  }
}
