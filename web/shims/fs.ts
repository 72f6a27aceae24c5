// `node:fs` in the browser bundle: the sync calls (FileReaderSync, so Web Workers only) and
// streams bitscale's modules use, over the page's filesystem (web/shims/vfs.ts).
import { Buffer } from './buffer.js';
import * as v from './vfs.js';
import * as p from './fs-promises.js';

export const promises = p.default;
export const constants = p.constants;

const handles = new Map<number, { path: string; node: v.FileNode }>();
let nextFd = 3;

export function existsSync(path: string): boolean {
  return v.lookup(path) !== undefined;
}
export function statSync(path: string, opts?: { throwIfNoEntry?: boolean }): v.StatLike | undefined {
  if (opts?.throwIfNoEntry === false && !v.lookup(path)) return undefined;
  return v.statPath(path);
}
export const lstatSync = statSync;
export function readFileSync(path: string, enc?: string | { encoding?: string }): any {
  const b = Buffer.from(v.readFileNodeSync(path));
  const e = typeof enc === 'string' ? enc : enc?.encoding;
  return e ? b.toString(e) : b;
}
export function writeFileSync(path: string, data: Uint8Array | string): void {
  v.writeWhole(path, data);
}
export function appendFileSync(path: string, data: Uint8Array | string): void {
  const n = v.lookup(path);
  v.append(n && n.kind === 'file' ? n : v.createFile(path, false), typeof data === 'string' ? new TextEncoder().encode(data) : data);
}
export function mkdirSync(path: string, opts?: { recursive?: boolean }): void {
  v.mkdirOne(path, !!opts?.recursive);
}
export function mkdtempSync(prefix: string): string {
  const path = `${prefix}${Math.random().toString(36).slice(2, 8)}`;
  v.mkdirOne(path, true);
  return path;
}
export function readdirSync(path: string): string[] {
  return v.listDir(path);
}
export function rmSync(path: string, opts?: { recursive?: boolean; force?: boolean }): void {
  v.removePath(path, opts);
}
export function unlinkSync(path: string): void {
  v.removePath(path);
}
export function renameSync(a: string, b: string): void {
  v.renamePath(a, b);
}
export function realpathSync(path: string): string {
  v.statPath(path);
  return v.abs(path);
}
export function openSync(path: string, flags = 'r'): number {
  const exclusive = flags.includes('x');
  const node = flags.startsWith('r') ? v.fileNode(path, 'open') : v.createFile(path, exclusive);
  const fd = nextFd++;
  handles.set(fd, { path, node });
  return fd;
}
export function writeSync(fd: number, data: Uint8Array | string, offset = 0, length?: number, position?: number | null): number {
  const h = handles.get(fd);
  if (!h) throw v.fsError('EBADF', 'write', String(fd));
  const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data.subarray(offset, offset + (length ?? data.length - offset));
  if (position == null || position === v.fileSize(h.node)) v.append(h.node, bytes);
  else v.patchSync(h.node, bytes, position);
  return bytes.length;
}
export function readSync(fd: number, buf: Uint8Array, offset: number, length: number, position: number): number {
  const h = handles.get(fd);
  if (!h) throw v.fsError('EBADF', 'read', String(fd));
  const n = Math.max(0, Math.min(length, v.fileSize(h.node) - position));
  if (n) buf.set(v.readBlobSync(v.commit(h.node), position, n), offset);
  return n;
}
export function fstatSync(fd: number): v.StatLike {
  const h = handles.get(fd);
  if (!h) throw v.fsError('EBADF', 'fstat', String(fd));
  return v.statPath(h.path);
}
export function fsyncSync(fd: number): void {
  const h = handles.get(fd);
  if (h) v.commit(h.node);
}
export function closeSync(fd: number): void {
  const h = handles.get(fd);
  if (h) v.commit(h.node);
  handles.delete(fd);
}

/** Async-iterable chunks of a file (what sha256File and copies read). */
export function createReadStream(path: string, opts: { highWaterMark?: number; start?: number; end?: number } = {}): AsyncIterable<Uint8Array> {
  return {
    async *[Symbol.asyncIterator]() {
      const blob = v.fileBlob(path);
      const step = opts.highWaterMark ?? 1 << 20;
      const end = opts.end !== undefined ? opts.end + 1 : blob.size;
      // one buffer, read into again for each chunk (fresh chunks would pile up as garbage: see
      // vfs.ts); a chunk is valid until the next is asked for, which suits the page's one
      // consumer (sha256File hashes each chunk before it asks for the next)
      const buf = Buffer.alloc(Math.min(step, Math.max(0, end - (opts.start ?? 0))));
      for (let o = opts.start ?? 0; o < end; o += step) {
        const chunk = buf.subarray(0, Math.min(step, end - o));
        await v.readBlobInto(blob, o, chunk);
        yield chunk;
      }
    },
  };
}

export function createWriteStream(): never {
  throw new Error('createWriteStream is not available in the browser build');
}

export default {
  promises, constants, existsSync, statSync, lstatSync, readFileSync, writeFileSync, appendFileSync, mkdirSync, mkdtempSync, readdirSync, rmSync,
  unlinkSync, renameSync, realpathSync, openSync, writeSync, readSync, fstatSync, fsyncSync, closeSync, createReadStream, createWriteStream,
};
