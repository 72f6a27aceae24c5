// The filesystem adapter: the only code under formats/ that touches node:fs. Readers get
// positional reads through a file handle (never a whole-file read), writers get an atomic sink
// (temporary file in the same directory, fsync, rename; the temporary is deleted on error/abort).

import { Buffer, constants } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { createReadStream, readFileSync, statSync } from 'node:fs';
import { lstat, open, readdir, readFile, rename, stat, unlink, realpath, type FileHandle } from 'node:fs/promises';
import { basename, dirname, join, resolve, sep } from 'node:path';
import { BitscaleError, FormatError, IoError } from '../../core/errors.js';
import { checkRange, type ByteSink, type ByteSource } from '../bytes.js';
import { decodeUtf8Strict } from '../text.js';
import { StagedWriter } from './staged-writes.js';
import { tracePhase } from '../../core/phase-trace.js';

// fs read/write calls take at most 2^31 - 1 bytes; larger tensors go in pieces.
const MAX_IO_CALL = 1 << 30;

function ioError(e: unknown, file: string, what: string): BitscaleError {
  if (e instanceof BitscaleError) return e;
  const err = e as NodeJS.ErrnoException;
  if (err?.code === 'ENOENT') return new IoError('missing_file', `${what}: no such file`, { file });
  if (err?.code === 'EISDIR') return new IoError('io', `${what}: it is a folder, not a file`, { file });
  return new IoError('io', `${what}: ${err?.message ?? String(e)}`, { file, found: err?.code });
}

export interface FileSource extends ByteSource {
  close(): Promise<void>;
}

/** Opens `path` for positional reads. Call `close()` when done. */
export async function openFileSource(path: string): Promise<FileSource> {
  let fh: FileHandle;
  let size: number;
  try {
    fh = await open(path, 'r');
    const st = await fh.stat();
    if (!st.isFile()) {
      await fh.close();
      throw new IoError('io', 'not a regular file', { file: path });
    }
    size = st.size;
  } catch (e) {
    throw ioError(e, path, 'cannot open');
  }
  let closed = false;
  /** Reads buf.length bytes at offset into buf (in ≤ 1 GiB calls). */
  const fill = async (buf: Uint8Array, offset: number): Promise<void> => {
    const length = buf.length;
    let done = 0;
    while (done < length) {
      let n: number;
      try {
        ({ bytesRead: n } = await fh.read(buf, done, Math.min(MAX_IO_CALL, length - done), offset + done));
      } catch (e) {
        throw ioError(e, path, 'read failed');
      }
      if (n === 0) {
        throw new FormatError('truncated', 'file ended early (changed while reading?)', {
          file: path,
          offset: offset + done,
          expected: length,
          found: done,
        });
      }
      done += n;
    }
  };
  return {
    name: path,
    size,
    filePath: path,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(path, size, offset, length);
      if (closed) throw new IoError('io', 'read after close', { file: path, offset });
      if (length > constants.MAX_LENGTH) {
        throw new IoError('too_large', 'a single read is larger than Node can allocate', {
          file: path,
          offset,
          expected: `<= ${constants.MAX_LENGTH} bytes`,
          found: length,
          hint: 'read the tensor in parts (source.read with smaller ranges)',
        });
      }
      // uninitialised memory (no zero fill): every byte is overwritten below or we throw.
      // Re-wrapped as a plain Uint8Array so callers get Uint8Array semantics (slice copies).
      const buf = new Uint8Array(Buffer.allocUnsafeSlow(length).buffer, 0, length);
      await fill(buf, offset);
      return buf;
    },
    async readInto(offset: number, dst: Uint8Array): Promise<void> {
      checkRange(path, size, offset, dst.length);
      if (closed) throw new IoError('io', 'read after close', { file: path, offset });
      await fill(dst, offset);
    },
    async close(): Promise<void> {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

export async function fileExists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Reads and parses a JSON file; errors name the file (missing_file, bad_header). */
export async function readJsonFile<T = unknown>(path: string): Promise<T> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw ioError(e, path, 'cannot read JSON');
  }
  const text = decodeUtf8Strict(bytes, path);
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new FormatError('bad_header', 'invalid JSON', { file: path, found: (e as Error).message });
  }
}

/** The largest text file read whole (a JS string holds at most about 2^29 UTF-16 units). */
export const MAX_TEXT_BYTES = 512 * 2 ** 20;

function textBytesChecked(path: string, size: number): void {
  if (size > MAX_TEXT_BYTES) throw new IoError('too_large', 'text file too large to read whole', { file: path, expected: `<= ${MAX_TEXT_BYTES} bytes`, found: size, hint: 'use a shorter excerpt' });
}

/** A UTF-8 text file (refused with the byte offset when it is not UTF-8); errors name the file. */
export async function readTextFile(path: string, what = 'cannot read the text'): Promise<string> {
  let bytes: Uint8Array;
  try {
    const st = await stat(path);
    if (st.isDirectory()) throw new IoError('io', `${what}: it is a folder, not a file`, { file: path });
    textBytesChecked(path, st.size);
    bytes = await readFile(path);
  } catch (e) {
    throw ioError(e, path, what);
  }
  return decodeUtf8Strict(bytes, path);
}

/** readTextFile, synchronously. */
export function readTextFileSync(path: string, what = 'cannot read the text'): string {
  let bytes: Uint8Array;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw new IoError('io', `${what}: it is a folder, not a file`, { file: path });
    textBytesChecked(path, st.size);
    bytes = readFileSync(path);
  } catch (e) {
    throw ioError(e, path, what);
  }
  return decodeUtf8Strict(bytes, path);
}

/** readJsonFile, synchronously (small configuration files). */
export function readJsonFileSync(path: string): unknown {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw ioError(e, path, 'cannot read JSON');
  }
  const text = decodeUtf8Strict(bytes, path);
  try {
    return JSON.parse(text) as unknown;
  } catch (e) {
    throw new FormatError('bad_header', 'invalid JSON', { file: path, found: (e as Error).message });
  }
}

/** SHA-256 of a file, streamed (for manifests). Lowercase hex. */
/**
 * Digests of files this process wrote through an AtomicFileSink, by absolute path, with the
 * identity the file had then (device, inode, size, change time in ns): a file that changed since
 * (rewritten, replaced, touched) no longer matches and is read again.
 */
const writtenDigests = new Map<string, { id: string; hex: string }>();

type FileStat = { dev: bigint; ino: bigint; size: bigint; mtimeNs: bigint; ctimeNs: bigint };
const fileIdentity = (st: FileStat): string => `${st.dev}:${st.ino}:${st.size}:${st.mtimeNs}:${st.ctimeNs}`;

async function rememberDigest(path: string, hex: string): Promise<void> {
  const st = await stat(path, { bigint: true }).catch(() => null);
  if (st) writtenDigests.set(resolve(path), { id: fileIdentity(st), hex });
}

/**
 * Tells the digest memo that `from` (a file, or a folder with files in it) was just renamed to
 * `to`: a rename changes the change time, so without this the file would be read and hashed
 * again (an output staged inside another output's staging folder is renamed once per level). A
 * digest moves only when the file is the same inode with the same size and modification time.
 */
export async function noteRenamed(from: string, to: string): Promise<void> {
  const [a, b] = [resolve(from), resolve(to)];
  for (const [p, known] of [...writtenDigests]) {
    if (p !== a && !p.startsWith(a + sep)) continue;
    writtenDigests.delete(p);
    const q = b + p.slice(a.length);
    const st = await stat(q, { bigint: true }).catch(() => null);
    const was = known.id.split(':');
    if (st && was[0] === `${st.dev}` && was[1] === `${st.ino}` && was[2] === `${st.size}` && was[3] === `${st.mtimeNs}`) writtenDigests.set(q, { id: fileIdentity(st), hex: known.hex });
  }
}

/** Lowercase hex sha256 of a file (from the digest taken while this process wrote it, when the file is unchanged since). */
export async function sha256File(path: string): Promise<string> {
  const known = writtenDigests.get(resolve(path));
  if (known) {
    const st = await stat(path, { bigint: true }).catch(() => null);
    if (st && fileIdentity(st) === known.id) return known.hex;
    writtenDigests.delete(resolve(path));
  }
  const h = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer);
  } catch (e) {
    throw ioError(e, path, 'cannot hash');
  }
  return h.digest('hex');
}

/**
 * Whether a process with this id is running (a pid of another user counts as running). A zombie
 * (dead, not yet reaped: a killed process whose parent died too waits there until init reaps it,
 * which a container's minimal init may never do) is not running: it holds no lock and writes nothing.
 */
export function processAlive(pid: number): boolean {
  if (!Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
  } catch (e) {
    return (e as NodeJS.ErrnoException)?.code === 'EPERM';
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S …", the state after the last ')' (comm may hold one)
    const st = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return st.slice(st.lastIndexOf(')') + 2, st.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return true; // no /proc (not Linux): the signal check above is all there is
  }
}

export function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

const TEMP_FILE_RE = (base: string) => new RegExp(`^${escapeRe(base)}\\.tmp-(\\d+)-[0-9a-f]+$`);
/**
 * Removes stray `<base>.tmp-<pid>-<hex>` files of processes that no longer run (an atomic write
 * killed before its rename). Best effort: errors are ignored.
 */
export async function removeStaleTempFiles(parent: string, base: string): Promise<string[]> {
  const removed: string[] = [];
  let names: string[];
  try {
    names = await readdir(parent);
  } catch {
    return removed;
  }
  const re = TEMP_FILE_RE(base);
  for (const n of names) {
    const m = re.exec(n);
    if (!m || processAlive(Number(m[1]))) continue;
    try {
      const st = await lstat(join(parent, n));
      if (!st.isFile()) continue;
      await unlink(join(parent, n));
      removed.push(join(parent, n));
    } catch {
      // another run cleaned it first
    }
  }
  return removed;
}


export interface AtomicWriteOptions {
  /** replace an existing output file (default false: IoError 'exists') */
  overwrite?: boolean;
  /** input paths that must not be overwritten (IoError 'would_overwrite_input') */
  inputs?: readonly string[];
  /** AtomicFileSink: write every byte through the page cache (default false: whole 8 MiB blocks bypass it where the filesystem allows) */
  pageCache?: boolean;
}

async function sameFile(a: string, b: string): Promise<boolean> {
  if (resolve(a) === resolve(b)) return true;
  try {
    const [sa, sb] = await Promise.all([stat(a), stat(b)]);
    return sa.dev === sb.dev && sa.ino === sb.ino;
  } catch {
    try {
      return (await realpath(a)) === (await realpath(b));
    } catch {
      return false;
    }
  }
}

/** Checks the refusal rules before any byte is written. */
export async function checkOutputPath(path: string, opts: AtomicWriteOptions = {}): Promise<void> {
  for (const input of opts.inputs ?? []) {
    if (await sameFile(path, input)) {
      throw new IoError('would_overwrite_input', 'the output path is one of the inputs', {
        file: path,
        found: input,
        hint: 'choose a different output path',
      });
    }
  }
  if (!opts.overwrite && (await fileExists(path))) {
    throw new IoError('exists', 'output file already exists', { file: path, hint: 'pass overwrite: true (--force) to replace it' });
  }
}

/**
 * Writes to `<path>.tmp-<pid>-<rand>` in the same directory, then fsyncs and renames onto
 * `path` in `close()`. `abort()` (or any failed write) deletes the temporary file, so a
 * failed run never leaves a partial output. Bytes go out in 8 MiB blocks, around the page cache
 * where the filesystem allows (StagedWriter, staged-writes.ts: why).
 */
export class AtomicFileSink implements ByteSink {
  // the StagedWriter takes the sha256 of the bytes as they go out (the file is written front to
  // back, on a hash thread once the file is larger than a block): sha256File answers from it
  // afterwards instead of reading the file again (a manifest's output hash)
  private state: 'open' | 'closed' | 'aborted' = 'open';

  private constructor(
    readonly name: string,
    readonly tempPath: string,
    private readonly fh: FileHandle,
    private readonly out: StagedWriter,
  ) {}

  static async create(path: string, opts: AtomicWriteOptions = {}): Promise<AtomicFileSink> {
    await checkOutputPath(path, opts);
    // temporaries of killed runs writing this same file
    await removeStaleTempFiles(dirname(resolve(path)), basename(path));
    const tmp = join(dirname(resolve(path)), `${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
    let fh: FileHandle;
    try {
      fh = await open(tmp, 'wx');
    } catch (e) {
      throw ioError(e, path, 'cannot create temporary output file');
    }
    return new AtomicFileSink(path, tmp, fh, await StagedWriter.open(fh, tmp, opts.pageCache !== true));
  }

  get position(): number {
    return this.out.position;
  }

  /** Bytes of the output's sha256 taken on the hash thread so far (not on the writing thread). */
  get bytesHashedOffThread(): number {
    return this.out.bytesHashedOffThread;
  }

  /** Whether whole blocks are written around the page cache (O_DIRECT) at this point. */
  get bypassesPageCache(): boolean {
    return this.out.bypassesCache;
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.state !== 'open') throw new IoError('io', `write after ${this.state}`, { file: this.name });
    try {
      await this.out.write(chunk);
    } catch (e) {
      await this.abort();
      throw ioError(e, this.name, 'write failed');
    }
  }

  /** Flushes, fsyncs and renames the temporary file onto the output path. */
  async close(): Promise<void> {
    if (this.state !== 'open') throw new IoError('io', `close after ${this.state}`, { file: this.name });
    try {
      tracePhase(`sink: closing ${basename(this.name)}`);
      const hex = await this.out.finish();
      tracePhase('sink: written');
      await this.fh.sync();
      tracePhase('sink: fsynced');
      await this.fh.close();
      this.state = 'closed';
      await rename(this.tempPath, this.name);
      await rememberDigest(this.name, hex);
      tracePhase('sink: renamed');
    } catch (e) {
      if (this.state === 'open') await this.abort();
      else await unlink(this.tempPath).catch(() => undefined);
      throw ioError(e, this.name, 'cannot finish the output file');
    }
  }

  /** Discards everything written; safe to call more than once. */
  async abort(): Promise<void> {
    if (this.state === 'aborted') return;
    const wasOpen = this.state === 'open';
    this.state = 'aborted';
    await this.out.release();
    if (wasOpen) await this.fh.close().catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }
}

/**
 * Runs `body` against an AtomicFileSink for `path`: commits on success, deletes the temporary
 * file if `body` throws (the error is rethrown).
 */
export async function withAtomicFile<T>(
  path: string,
  opts: AtomicWriteOptions,
  body: (sink: AtomicFileSink) => Promise<T>,
): Promise<T> {
  const sink = await AtomicFileSink.create(path, opts);
  try {
    const r = await body(sink);
    await sink.close();
    return r;
  } catch (e) {
    await sink.abort();
    throw e;
  }
}

/** Writes a whole buffer or string atomically. */
export async function atomicWriteFile(path: string, data: Uint8Array | string, opts: AtomicWriteOptions = {}): Promise<void> {
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data;
  await withAtomicFile(path, opts, (sink) => sink.write(bytes));
}
