// Sequential file writes that bypass the page cache where the filesystem allows it (Linux O_DIRECT),
// for AtomicFileSink. Why: on the machines measured (a VM, 2 cores), write() into fresh page-cache
// pages cost 2.8 CPU-s for 704 MB (the first touch of each page is slow there), as much CPU as
// quantizing the tensors, while the same bytes written with O_DIRECT from a reused page-aligned
// buffer cost 0.03 CPU-s and 0.4 s of wall time including the fsync (docs/performance.md, "RTN
// thread scaling, fourth round"; bench/output-write.bench.ts). The page-cache copy also competes
// with the quantizing threads for the cores.
// How: bytes are copied into one of two page-aligned staging buffers (STAGE_BYTES each); a full
// buffer is written at its (aligned) file offset on a second handle opened with O_DIRECT while the
// other fills. Whatever does not fill a whole buffer (the tail, and files smaller than one buffer,
// such as manifests) is written through the ordinary handle, so small files behave as before. Where
// O_DIRECT is missing (macOS, Windows) or refused (tmpfs, some network filesystems: EINVAL at open
// or at the first write), everything goes through the ordinary handle.
// The writer also takes the file's sha256 (a manifest's output hash) from the blocks as they go
// out: once a file fills a whole block, on a worker thread (stage-hasher.ts: why), the blocks being
// shared memory; a file smaller than one block, on the calling thread. NSTAGES blocks rotate, so the
// caller fills one while others are written and hashed.

import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { StageHasher } from './stage-hasher.js';

/** Bytes per staging buffer: a multiple of every block size O_DIRECT may require (512 B … 64 KiB). */
export const STAGE_BYTES = 8 << 20;
/** Staging buffers per file: one being filled, the others being written and hashed. */
const NSTAGES = 4;
/** Bytes written through the page cache between background flushes to disk. */
const SYNC_EVERY_BYTES = 128 << 20;
// fs write calls take at most 2^31 - 1 bytes
const MAX_IO_CALL = 1 << 30;

// Staging buffers reused from one file to the next (their pages stay mapped: no first-touch cost).
// WebAssembly memory is page-aligned, which O_DIRECT needs of the source address; plain
// ArrayBuffers give no alignment guarantee. Shared, so that the hash thread reads it in place.
const freeStages: Uint8Array[] = [];
const MAX_FREE_STAGES = NSTAGES;
function takeStage(): Uint8Array {
  return freeStages.pop() ?? new Uint8Array(new WebAssembly.Memory({ initial: STAGE_BYTES / 65536, maximum: STAGE_BYTES / 65536, shared: true }).buffer);
}
function giveStage(b: Uint8Array): void {
  if (freeStages.length < MAX_FREE_STAGES) freeStages.push(b);
}

async function writeAllAt(fh: FileHandle, b: Uint8Array, pos: number): Promise<void> {
  let off = 0;
  while (off < b.length) {
    const { bytesWritten } = await fh.write(b, off, Math.min(MAX_IO_CALL, b.length - off), pos + off);
    if (bytesWritten <= 0) throw Object.assign(new Error('write returned no progress'), { code: 'EIO' });
    off += bytesWritten;
  }
}

/** Front-to-back writes to a file already open as `fh`, and their sha256 (see the file comment). */
export class StagedWriter {
  private stages: Uint8Array[] = [];
  private cur = 0; // index in stages of the buffer being filled
  private fill = 0;
  private filePos = 0; // bytes handed to a write so far
  // per stage: its write and its hash, both done before it is filled again
  private pending: (Promise<void> | null)[] = [];
  private lastWrite: Promise<void> = Promise.resolve(); // writes go out one after another, in file order
  private direct: FileHandle | null;
  private unsynced = 0; // bytes written through the page cache since the last background flush
  private syncing: Promise<void> | null = null;
  private readonly hashHere = createHash('sha256'); // a file smaller than one block
  private hasher: StageHasher | null = null; // started at the first full block

  private constructor(
    private readonly fh: FileHandle,
    direct: FileHandle | null,
    private hashOffThread: boolean,
    private readonly startHasher: () => StageHasher | null,
  ) {
    this.direct = direct;
  }

  /**
   * `fh`: the file, open for writing, empty; `path`: its path, opened a second time with O_DIRECT
   * when `bypassCache` (default) and the platform and filesystem allow. `hashOffThread` (default
   * true): full blocks are hashed on a worker thread where one starts (`startHasher`), else here.
   */
  static async open(fh: FileHandle, path: string, bypassCache = true, hashOffThread = true, startHasher: () => StageHasher | null = () => StageHasher.tryStart()): Promise<StagedWriter> {
    let direct: FileHandle | null = null;
    const O_DIRECT = (constants as { O_DIRECT?: number }).O_DIRECT;
    if (bypassCache && O_DIRECT) direct = await open(path, constants.O_WRONLY | O_DIRECT).catch(() => null);
    return new StagedWriter(fh, direct, hashOffThread, startHasher);
  }

  /** Whether full buffers currently go around the page cache (false after a refusal). */
  get bypassesCache(): boolean {
    return this.direct !== null;
  }

  /** Bytes hashed on the hash thread so far (0 while the file is smaller than one block, or with hashOffThread false). */
  get bytesHashedOffThread(): number {
    return this.hasher?.bytes ?? 0;
  }

  /** Bytes taken so far (written or staged). */
  get position(): number {
    return this.filePos + this.fill;
  }

  async write(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) {
      if (this.stages.length <= this.cur) this.stages.push(takeStage());
      if (this.fill === 0 && this.pending[this.cur]) {
        // this buffer's last write and hash must be done before it is filled again
        const p = this.pending[this.cur];
        this.pending[this.cur] = null;
        await p;
      }
      const stage = this.stages[this.cur];
      const n = Math.min(STAGE_BYTES - this.fill, chunk.length - off);
      stage.set(chunk.subarray(off, off + n), this.fill);
      this.fill += n;
      off += n;
      if (this.fill === STAGE_BYTES) {
        const pos = this.filePos;
        const w = this.lastWrite.then(() => this.writeStage(stage, pos));
        this.lastWrite = w;
        const p = Promise.all([w, this.hashStage(stage, STAGE_BYTES)]).then(() => undefined);
        p.catch(() => {}); // awaited before this buffer is filled again or in finish()
        this.pending[this.cur] = p;
        this.filePos += STAGE_BYTES;
        this.fill = 0;
        this.cur = (this.cur + 1) % NSTAGES;
      }
    }
  }

  /** Bytes [0, len) of a stage into the digest, in file order: on the hash thread from the first full block on. */
  private hashStage(stage: Uint8Array, len: number): Promise<void> {
    if (!this.hasher && this.hashOffThread && len === STAGE_BYTES && stage.buffer instanceof SharedArrayBuffer) {
      this.hasher = this.startHasher();
      // no thread (the browser build): every block on this thread, from this first one on
      if (!this.hasher) this.hashOffThread = false;
    }
    if (this.hasher) return this.hasher.update(stage.buffer as SharedArrayBuffer, len);
    this.hashHere.update(stage.subarray(0, len));
    return Promise.resolve();
  }

  private async writeStage(stage: Uint8Array, pos: number): Promise<void> {
    let written = false;
    if (this.direct) {
      try {
        await writeAllAt(this.direct, stage, pos);
        written = true;
      } catch (e) {
        // refused (alignment rules of this filesystem): the page cache from here on; any other error is real
        if ((e as NodeJS.ErrnoException)?.code !== 'EINVAL') throw e;
        await this.closeDirect();
      }
    }
    if (!written) await writeAllAt(this.fh, stage, pos);
    // synced as it goes on either path: direct writes skip the page cache, but a virtual disk may
    // still hold them in its own cache until a flush (seen: the one fsync at close took 0.3–0.76 s
    // for a 1.3 GB output written with O_DIRECT, on a VM whose disk takes 1.7 GB/s)
    this.unsynced += stage.length;
    if (this.unsynced >= SYNC_EVERY_BYTES && !this.syncing) {
      this.unsynced = 0;
      // the disk writes what is written so far while the caller goes on,
      // so the fsync at close waits only for the last part (a failure shows again at that fsync)
      this.syncing = this.fh.datasync().then(
        () => void (this.syncing = null),
        () => void (this.syncing = null),
      );
    }
  }

  private async closeDirect(): Promise<void> {
    const d = this.direct;
    this.direct = null;
    await d?.close().catch(() => undefined);
  }

  /**
   * Writes what is staged and waits for every write; the file then holds all bytes (not yet
   * fsynced). Resolves with their sha256 (lowercase hex).
   */
  async finish(): Promise<string> {
    try {
      await Promise.all(this.pending);
      this.pending = [];
      let hashed: Promise<void> = Promise.resolve();
      if (this.fill > 0) {
        const tail = this.stages[this.cur];
        hashed = this.hashStage(tail, this.fill);
        await writeAllAt(this.fh, tail.subarray(0, this.fill), this.filePos);
      }
      await hashed;
      this.filePos += this.fill;
      this.fill = 0;
      return this.hasher ? await this.hasher.digest() : this.hashHere.digest('hex');
    } finally {
      await this.release();
    }
  }

  /** Waits for running writes and hashes (their errors ignored) and gives the buffers back; for abort. */
  async release(): Promise<void> {
    await Promise.allSettled(this.pending);
    this.pending = [];
    await this.syncing;
    await this.closeDirect();
    await this.hasher?.close();
    for (const s of this.stages) giveStage(s);
    this.stages = [];
  }
}
