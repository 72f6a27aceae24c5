// The page's filesystem: what `node:fs` means inside the browser bundle. Files the user opened are
// mounted as Blobs (a File from <input type=file> or drag and drop) and read by Blob.slice, so a
// positional read of one tensor loads that tensor's bytes and nothing else. Files the pipeline
// writes (outputs, their temporaries, the engine's weight files) are kept as Blobs too: each write
// becomes one Blob part, which the browser may keep outside the JS heap. Paths are POSIX,
// absolute, normalised by the path shim. Sync reads use FileReaderSync, so they work in a Web
// Worker (where the pipeline runs) and nowhere else.
// Memory: the hot paths allocate no fresh ArrayBuffer per read or write. Each one would be garbage
// right after its copy, and V8 collects such buffers only when about 64 MB of them have piled up
// (its external-memory limit), which is what the tab grew by before (100M-parameter RTN job: the
// job worker's ArrayBuffers peaked at 65 MB). Async reads go through a byte stream's BYOB reader
// into a few reused scratch buffers; writes become Blobs at once (the Blob copies the bytes).

import { normalize, dirname } from './path.js';

interface FileNode {
  kind: 'file';
  /** committed content */
  blob: Blob;
  /** parts written since the last commit, each a Blob already (folded into `blob` before any read) */
  pending: Blob[];
  /** small writes gathered into a reused buffer (a Blob per small write would cost one IPC each) */
  stage: ArrayBuffer | null;
  staged: number;
  /** bytes in `pending` and `stage` */
  pendingBytes: number;
  mtimeMs: number;
  ino: number;
}
interface DirNode {
  kind: 'dir';
  mtimeMs: number;
  ino: number;
}
type Node = FileNode | DirNode;

const nodes = new Map<string, Node>([['/', { kind: 'dir', mtimeMs: Date.now(), ino: 1 }]]);
let nextIno = 2;

/** A Node-style error (the pipeline's io adapter maps codes such as ENOENT to typed errors). */
export function fsError(code: string, syscall: string, path: string): Error {
  const e = new Error(`${code}: ${syscall} '${path}'`) as Error & { code: string; syscall: string; path: string };
  e.code = code;
  e.syscall = syscall;
  e.path = path;
  return e;
}

export function abs(p: string): string {
  // relative to the current folder (process.chdir; the worker sets it to its texts' folder)
  return normalize(p.startsWith('/') ? p : `${process.cwd()}/${p}`);
}

export function lookup(p: string): Node | undefined {
  return nodes.get(abs(p));
}

function requireFile(p: string, syscall: string): FileNode {
  const n = lookup(p);
  if (!n) throw fsError('ENOENT', syscall, p);
  if (n.kind !== 'file') throw fsError('EISDIR', syscall, p);
  return n;
}

export function requireDirOf(p: string, syscall: string): void {
  const d = lookup(dirname(abs(p)));
  if (!d) throw fsError('ENOENT', syscall, p);
  if (d.kind !== 'dir') throw fsError('ENOTDIR', syscall, p);
}

export function mkdirp(p: string): void {
  const a = abs(p);
  if (a === '/') return;
  const n = nodes.get(a);
  if (n) {
    if (n.kind !== 'dir') throw fsError('EEXIST', 'mkdir', p);
    return;
  }
  mkdirp(dirname(a));
  nodes.set(a, { kind: 'dir', mtimeMs: Date.now(), ino: nextIno++ });
}

export function mkdirOne(p: string, recursive: boolean): void {
  if (recursive) return mkdirp(p);
  if (lookup(p)) throw fsError('EEXIST', 'mkdir', p);
  requireDirOf(p, 'mkdir');
  nodes.set(abs(p), { kind: 'dir', mtimeMs: Date.now(), ino: nextIno++ });
}

/** Puts a Blob (a user's File) at `p`, creating its folders. */
export function mount(p: string, blob: Blob): void {
  mkdirp(dirname(abs(p)));
  nodes.set(abs(p), { kind: 'file', blob, pending: [], stage: null, staged: 0, pendingBytes: 0, mtimeMs: Date.now(), ino: nextIno++ });
}

/** Creates or truncates a file. */
export function createFile(p: string, exclusive: boolean): FileNode {
  const existing = lookup(p);
  if (existing && exclusive) throw fsError('EEXIST', 'open', p);
  if (existing?.kind === 'dir') throw fsError('EISDIR', 'open', p);
  requireDirOf(p, 'open');
  const n: FileNode = { kind: 'file', blob: new Blob([]), pending: [], stage: null, staged: 0, pendingBytes: 0, mtimeMs: Date.now(), ino: nextIno++ };
  nodes.set(abs(p), n);
  return n;
}

export function fileSize(n: FileNode): number {
  return n.blob.size + n.pendingBytes;
}

/** The file's content as one Blob (folds pending writes in). */
export function fileBlob(p: string): Blob {
  return commit(requireFile(p, 'open'));
}

export function commit(n: FileNode): Blob {
  flushStage(n);
  if (n.stage) giveScratch(n.stage);
  n.stage = null;
  if (n.pending.length) {
    n.blob = new Blob([n.blob, ...n.pending]);
    n.pending = [];
    n.pendingBytes = 0;
  }
  return n.blob;
}

/** Pending parts above which they are folded into the file's Blob (keeps the part list short). */
const COMMIT_PARTS = 256;

/** Bytes of each scratch buffer (reads and the copies of shared memory into Blobs go through them). */
const SCRATCH_BYTES = 1 << 20;
const scratch: ArrayBuffer[] = [];
const takeScratch = (): ArrayBuffer => scratch.pop() ?? new ArrayBuffer(SCRATCH_BYTES);
/** at most a few kept (reads can run at once: a tensor and the input's hash) */
const giveScratch = (b: ArrayBuffer): void => void (b.byteLength === SCRATCH_BYTES && scratch.length < 4 && scratch.push(b));

/**
 * `bytes` as a Blob. The Blob constructor copies, so the caller may reuse its buffer; it refuses
 * views of shared memory (the streaming writer's tensors), which go through a scratch buffer.
 */
function toBlob(bytes: Uint8Array): Blob {
  if (!(bytes.buffer instanceof SharedArrayBuffer)) return new Blob([bytes as Uint8Array<ArrayBuffer>]);
  const parts: Blob[] = [];
  const s = takeScratch();
  try {
    for (let o = 0; o < bytes.length; o += SCRATCH_BYTES) {
      const n = Math.min(SCRATCH_BYTES, bytes.length - o);
      const view = new Uint8Array(s, 0, n);
      view.set(bytes.subarray(o, o + n));
      parts.push(new Blob([view]));
    }
  } finally {
    giveScratch(s);
  }
  return parts.length === 1 ? parts[0] : new Blob(parts);
}

/** Writes below this size are gathered in the file's stage buffer; larger ones become a Blob at once. */
const STAGE_BELOW = 64 << 10;

function flushStage(n: FileNode): void {
  if (!n.stage || !n.staged) return;
  n.pending.push(new Blob([new Uint8Array(n.stage, 0, n.staged)]));
  n.staged = 0;
}

/** Appends bytes (copied, into the stage or a Blob, now: callers reuse their buffers). */
export function append(n: FileNode, bytes: Uint8Array): void {
  if (bytes.length >= STAGE_BELOW) {
    flushStage(n);
    n.pending.push(toBlob(bytes));
  } else {
    if (n.stage && n.staged + bytes.length > n.stage.byteLength) flushStage(n);
    n.stage ??= takeScratch();
    new Uint8Array(n.stage, n.staged, bytes.length).set(bytes);
    n.staged += bytes.length;
  }
  n.pendingBytes += bytes.length;
  n.mtimeMs = Date.now();
  if (n.pending.length >= COMMIT_PARTS) commit(n);
}

/** Overwrites bytes at `pos` (rare: header back-patching); materialises the file once. */
export function patchSync(n: FileNode, bytes: Uint8Array, pos: number): void {
  const size = fileSize(n);
  const whole = new Uint8Array(Math.max(size, pos + bytes.length));
  whole.set(readBlobSync(commit(n), 0, size));
  whole.set(bytes, pos);
  n.blob = new Blob([whole]);
  n.mtimeMs = Date.now();
}

export function readBlobSync(blob: Blob, offset: number, length: number): Uint8Array {
  const R = (globalThis as { FileReaderSync?: new () => { readAsArrayBuffer(b: Blob): ArrayBuffer } }).FileReaderSync;
  if (!R) throw fsError('ENOSYS', 'read (synchronous reads need a Web Worker)', '');
  return new Uint8Array(new R().readAsArrayBuffer(blob.slice(offset, offset + length)));
}

/** Asynchronous Blob reads not yet settled (a stall's dump lists them: a read that never settles hangs its job). */
const reads = new Map<number, { offset: number; length: number; got: number; at: number; how: string }>();
let readSeq = 0;
/** reads given up on after blobReadTiming.stallMs and done again (the status dump shows the count) */
export const blobReadRetries = { count: 0 };

export function blobReadsInFlight(now: number): { offset: number; length: number; got: number; ageMs: number; how: string }[] {
  return [...reads.values()].map((r) => ({ offset: r.offset, length: r.length, got: r.got, ageMs: now - r.at, how: r.how }));
}

/**
 * The longest one step of a Blob read may take (ms). Chromium has been seen to leave a read of a
 * user's file pending for good (a BYOB read of a File's slice, measured in the stall hunt: 1 run
 * in 8 of the default model's page flow under load, the job worker idle, no error); a read that
 * makes no progress for this long is cancelled and done again on a fresh stream (tests shorten it).
 */
export const blobReadTiming = { stallMs: 20_000 };
/** attempts of one read (the first and the retries) before it fails with EIO */
const BLOB_READ_TRIES = 3;

const STALLED = Symbol('stalled');

/** `p`, or STALLED if it has not settled within `ms`. */
function orStall<T>(p: Promise<T>, ms: number): Promise<T | typeof STALLED> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  return Promise.race([p, new Promise<typeof STALLED>((r) => (timer = setTimeout(() => r(STALLED), ms)))]).finally(() => clearTimeout(timer));
}

/**
 * Bytes [offset, offset + dst.length) of `blob` into `dst`, each attempt by `attempt(part, into, t)`
 * (which records its progress in t.got and returns the bytes it read), retried from where it got
 * to when a step stalls; EIO naming the offsets when every attempt stalls.
 */
async function guardedRead(blob: Blob, offset: number, dst: Uint8Array, how: string, attempt: (part: Blob, into: Uint8Array, t: { got: number; step: Promise<unknown> | null; cancel: (() => void) | null }) => Promise<number>): Promise<void> {
  const id = readSeq++;
  const r = { offset, length: dst.length, got: 0, at: Date.now(), how };
  reads.set(id, r);
  try {
    for (let tries = 0; r.got < dst.length; tries++) {
      if (tries === BLOB_READ_TRIES) throw fsError('EIO', `read (${r.got} of ${dst.length} bytes at offset ${offset}: the browser's Blob read made no progress for ${blobReadTiming.stallMs / 1000} s, ${BLOB_READ_TRIES} times)`, '');
      const from = r.got;
      const t = { got: 0, step: null as Promise<unknown> | null, cancel: null as (() => void) | null };
      const run = attempt(blob.slice(offset + from, offset + dst.length), dst.subarray(from), t);
      // watch the attempt: each stretch of blobReadTiming.stallMs must show progress
      let seen = 0;
      let out: number | typeof STALLED = STALLED;
      for (;;) {
        out = await orStall(run, blobReadTiming.stallMs);
        r.got = from + t.got;
        if (out !== STALLED || t.got === seen) break;
        seen = t.got;
      }
      if (out === STALLED) {
        blobReadRetries.count++;
        console.warn(`bitscale: a Blob read stalled at ${r.got} of ${dst.length} bytes (offset ${offset}); reading it again`);
        t.cancel?.();
        run.catch(() => undefined);
        continue;
      }
      r.got = from + out;
      if (out === 0 && r.got < dst.length) throw fsError('EIO', `read (${r.got} of ${dst.length} bytes at offset ${offset})`, '');
    }
  } finally {
    reads.delete(id);
  }
}

/** Bytes [offset, offset + length) of `blob` (fewer at its end), in one arrayBuffer() watched as guardedRead watches its steps. */
export async function readBlob(blob: Blob, offset: number, length: number): Promise<Uint8Array> {
  const id = readSeq++;
  reads.set(id, { offset, length, got: 0, at: Date.now(), how: 'arrayBuffer' });
  try {
    for (let tries = 0; tries < BLOB_READ_TRIES; tries++) {
      const got = await orStall(blob.slice(offset, offset + length).arrayBuffer(), blobReadTiming.stallMs);
      if (got !== STALLED) return new Uint8Array(got);
      blobReadRetries.count++;
      console.warn(`bitscale: a Blob read of ${length} bytes (offset ${offset}) stalled; reading it again`);
    }
    throw fsError('EIO', `read (${length} bytes at offset ${offset}: the browser's Blob read did not finish in ${blobReadTiming.stallMs / 1000} s, ${BLOB_READ_TRIES} times)`, '');
  } finally {
    reads.delete(id);
  }
}

/** One attempt in one arrayBuffer() (small reads, and browsers without BYOB reads of Blob streams); nothing written once cancelled. */
async function oneShot(part: Blob, into: Uint8Array, t: { cancel: (() => void) | null }): Promise<number> {
  let cancelled = false;
  t.cancel = () => void (cancelled = true);
  const b = new Uint8Array(await part.arrayBuffer());
  if (cancelled) return 0;
  into.set(b.subarray(0, into.length));
  return Math.min(b.length, into.length);
}

/** Whether Blob.stream() gives a byte stream (BYOB reads); checked once. */
let byob: boolean | null = null;

/**
 * Bytes [offset, offset + dst.length) of `blob` copied into `dst` (any buffer, shared memory too)
 * through a reused scratch buffer: no fresh ArrayBuffer per read. Falls back to one
 * `arrayBuffer()` where the browser has no BYOB reader for Blob streams.
 */
export async function readBlobInto(blob: Blob, offset: number, dst: Uint8Array): Promise<void> {
  // a small read in one arrayBuffer(): little garbage, and a stream per read would cost more
  if (byob === null) {
    try {
      void new Blob([]).stream().getReader({ mode: 'byob' }).cancel();
      byob = true;
    } catch {
      byob = false;
    }
  }
  if (!byob || dst.length < STAGE_BELOW) return guardedRead(blob, offset, dst, 'arrayBuffer', oneShot);
  return guardedRead(blob, offset, dst, 'byob', readByob);
}

async function readByob(part: Blob, dst: Uint8Array, t: { got: number; cancel: (() => void) | null }): Promise<number> {
  const reader = part.stream().getReader({ mode: 'byob' });
  let cancelled = false;
  t.cancel = () => {
    cancelled = true;
    void reader.cancel().catch(() => undefined);
  };
  let s = takeScratch();
  let got = 0;
  try {
    while (got < dst.length && !cancelled) {
      // the read transfers the scratch buffer and hands it back as value.buffer (same memory)
      const { value, done } = await reader.read(new Uint8Array(s, 0, Math.min(SCRATCH_BYTES, dst.length - got)));
      if (value) s = value.buffer as ArrayBuffer;
      if (done || !value || cancelled) break;
      dst.set(value, got);
      got += value.length;
      t.got = got;
    }
  } finally {
    if (!cancelled) {
      reader.releaseLock();
      giveScratch(s);
    }
  }
  return got;
}

export function readFileNodeSync(p: string): Uint8Array {
  const b = fileBlob(p);
  return readBlobSync(b, 0, b.size);
}

export async function readFileNode(p: string): Promise<Uint8Array> {
  const b = fileBlob(p);
  return readBlob(b, 0, b.size);
}

export function writeWhole(p: string, data: Uint8Array | string, exclusive = false): void {
  const n = createFile(p, exclusive);
  append(n, typeof data === 'string' ? new TextEncoder().encode(data) : data);
}

export function listDir(p: string): string[] {
  const a = abs(p);
  const d = nodes.get(a);
  if (!d) throw fsError('ENOENT', 'scandir', p);
  if (d.kind !== 'dir') throw fsError('ENOTDIR', 'scandir', p);
  const prefix = a === '/' ? '/' : `${a}/`;
  const out: string[] = [];
  for (const k of nodes.keys()) {
    if (k !== a && k.startsWith(prefix) && !k.slice(prefix.length).includes('/')) out.push(k.slice(prefix.length));
  }
  return out.sort();
}

export function removePath(p: string, opts: { recursive?: boolean; force?: boolean } = {}): void {
  const a = abs(p);
  const n = nodes.get(a);
  if (!n) {
    if (opts.force) return;
    throw fsError('ENOENT', 'rm', p);
  }
  if (n.kind === 'dir') {
    const kids = listDir(a);
    if (kids.length && !opts.recursive) throw fsError('ENOTEMPTY', 'rmdir', p);
    for (const k of kids) removePath(`${a}/${k}`, { recursive: true, force: true });
  }
  nodes.delete(a);
}

export function renamePath(from: string, to: string): void {
  const a = abs(from);
  const b = abs(to);
  const n = nodes.get(a);
  if (!n) throw fsError('ENOENT', 'rename', from);
  requireDirOf(b, 'rename');
  const target = nodes.get(b);
  if (target?.kind === 'dir') {
    if (n.kind !== 'dir') throw fsError('EISDIR', 'rename', to);
    if (listDir(b).length) throw fsError('ENOTEMPTY', 'rename', to);
  }
  if (n.kind === 'dir') {
    // move every node under the folder
    const prefix = `${a}/`;
    for (const [k, v] of [...nodes]) {
      if (k.startsWith(prefix)) {
        nodes.delete(k);
        nodes.set(b + k.slice(a.length), v);
      }
    }
  }
  nodes.delete(a);
  nodes.set(b, n);
}

export interface StatLike {
  size: number;
  mtimeMs: number;
  mtime: Date;
  dev: number;
  ino: number;
  mode: number;
  isFile(): boolean;
  isDirectory(): boolean;
  isSymbolicLink(): boolean;
}

export function statPath(p: string): StatLike {
  const n = lookup(p);
  if (!n) throw fsError('ENOENT', 'stat', p);
  const size = n.kind === 'file' ? fileSize(n) : 0;
  return {
    size,
    mtimeMs: n.mtimeMs,
    mtime: new Date(n.mtimeMs),
    dev: 1,
    ino: n.ino,
    mode: n.kind === 'file' ? 0o100644 : 0o040755,
    isFile: () => n.kind === 'file',
    isDirectory: () => n.kind === 'dir',
    isSymbolicLink: () => false,
  };
}

export function fileNode(p: string, syscall: string): FileNode {
  return requireFile(p, syscall);
}

export type { FileNode };
