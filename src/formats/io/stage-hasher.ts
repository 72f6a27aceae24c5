// sha256 of a file's bytes computed on a worker thread, block by block in the order they are written
// (StagedWriter, staged-writes.ts). Why: a 1.3 GB Q8_0 output's sha256 is ≈ 0.7 CPU-s; on the
// writing thread it made the writer the slowest stage of streaming RTN, so the last tensors waited
// for it while the quantizing workers idled (docs/performance.md, sixth round). The blocks are
// shared memory: the worker reads them in place (no copy); the writer refills a block only after
// the worker has answered for it. Node only; plain JavaScript, so it needs no TypeScript loader.
import { Worker } from 'node:worker_threads';

const CODE = `
const { parentPort } = require('node:worker_threads');
const { createHash } = require('node:crypto');
const h = createHash('sha256');
parentPort.on('message', (m) => {
  try {
    if (m.buf) h.update(new Uint8Array(m.buf, 0, m.len));
    parentPort.postMessage(m.buf ? { seq: m.seq } : { seq: m.seq, hex: h.digest('hex') });
  } catch (e) {
    parentPort.postMessage({ seq: m.seq, error: String((e && e.message) || e) });
  }
});
`;

type Reply = { seq: number; hex?: string; error?: string };

/** One running sha256 on its own thread: update() blocks in order, digest() once at the end. */
export class StageHasher {
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: (hex: string) => void; reject: (e: Error) => void }>();
  private failed: Error | null = null;
  private done = false;
  /** bytes handed to the worker so far */
  bytes = 0;

  private constructor(private readonly worker: Worker) {
    // the thread keeps the process alive only while an answer is awaited (a sink that is never
    // closed must not hold the process open)
    worker.unref();
    worker.on('message', (r: Reply) => {
      const w = this.waiting.get(r.seq);
      this.waiting.delete(r.seq);
      if (this.waiting.size === 0) worker.unref();
      if (r.error !== undefined) this.fail(new Error(`output hash: ${r.error}`));
      else w?.resolve(r.hex ?? '');
    });
    worker.on('error', (e: Error) => this.fail(e));
    worker.on('exit', (code) => {
      if (!this.done) this.fail(new Error(`output hash thread exited (code ${code})`));
    });
  }

  /**
   * The hash thread, or null where none can start: the browser build's worker_threads throws (the
   * page hashes on its job worker instead), as would a host out of threads. `WorkerCtor` is for tests.
   */
  static tryStart(WorkerCtor: typeof Worker = Worker): StageHasher | null {
    try {
      return new StageHasher(new WorkerCtor(CODE, { eval: true }));
    } catch {
      return null;
    }
  }

  private fail(e: Error): void {
    this.failed ??= e;
    for (const w of this.waiting.values()) w.reject(this.failed);
    this.waiting.clear();
    this.worker.unref();
  }

  private ask(msg: { buf?: SharedArrayBuffer; len?: number }): Promise<string> {
    if (this.failed) return Promise.reject(this.failed);
    const seq = this.seq++;
    return new Promise((resolve, reject) => {
      if (this.waiting.size === 0) this.worker.ref();
      this.waiting.set(seq, { resolve, reject });
      this.worker.postMessage({ ...msg, seq });
    });
  }

  /** Adds bytes [0, len) of `buf`; resolves once they are hashed (`buf` must not change before). */
  async update(buf: SharedArrayBuffer, len: number): Promise<void> {
    this.bytes += len;
    await this.ask({ buf, len });
  }

  /** The lowercase hex sha256 of everything added; the thread then ends. */
  async digest(): Promise<string> {
    try {
      return await this.ask({});
    } finally {
      await this.close();
    }
  }

  /** Ends the thread (abort); safe to call more than once. */
  async close(): Promise<void> {
    if (this.done) return;
    this.done = true;
    await this.worker.terminate();
  }
}
