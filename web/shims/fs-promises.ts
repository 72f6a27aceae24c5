// `node:fs/promises` in the browser bundle, over the page's filesystem (web/shims/vfs.ts).
import { Buffer } from './buffer.js';
import * as v from './vfs.js';

type Enc = BufferEncoding | { encoding?: string | null } | null | undefined;
type BufferEncoding = 'utf8' | 'utf-8' | 'hex' | 'base64' | 'latin1';
const encOf = (e: Enc): string | null => (typeof e === 'string' ? e : (e?.encoding ?? null));

const wrap = <T>(f: () => T): Promise<T> => {
  try {
    return Promise.resolve(f());
  } catch (e) {
    return Promise.reject(e);
  }
};

/** A Node-style FileHandle: positional reads by Blob.slice, appends or patches for writes. */
export class FileHandle {
  private pos = 0;
  private closed = false;
  constructor(
    readonly path: string,
    private readonly node: v.FileNode,
    private readonly writable: boolean,
  ) {
    if (writable) this.pos = v.fileSize(node);
  }
  async read(buf: Uint8Array, offset = 0, length = buf.length - offset, position: number | null = null): Promise<{ bytesRead: number; buffer: Uint8Array }> {
    const at = position ?? this.pos;
    const size = v.fileSize(this.node);
    const n = Math.max(0, Math.min(length, size - at));
    if (n > 0) await v.readBlobInto(v.commit(this.node), at, buf.subarray(offset, offset + n));
    if (position === null) this.pos += n;
    return { bytesRead: n, buffer: buf };
  }
  async write(data: Uint8Array | string, offset = 0, length?: number, position: number | null = null): Promise<{ bytesWritten: number }> {
    if (!this.writable) throw v.fsError('EBADF', 'write', this.path);
    const bytes = typeof data === 'string' ? new TextEncoder().encode(data) : data.subarray(offset, offset + (length ?? data.length - offset));
    const at = position ?? this.pos;
    if (at === v.fileSize(this.node)) v.append(this.node, bytes);
    else v.patchSync(this.node, bytes, at);
    if (position === null) this.pos = at + bytes.length;
    return { bytesWritten: bytes.length };
  }
  async writeFile(data: Uint8Array | string): Promise<void> {
    await this.write(data);
  }
  async readFile(enc?: Enc): Promise<Uint8Array | string> {
    const b = Buffer.from(await v.readBlob(v.commit(this.node), 0, v.fileSize(this.node)));
    const e = encOf(enc);
    return e ? b.toString(e) : b;
  }
  async stat(): Promise<v.StatLike> {
    return v.statPath(this.path);
  }
  async truncate(len = 0): Promise<void> {
    const keep = await v.readBlob(v.commit(this.node), 0, Math.min(len, v.fileSize(this.node)));
    this.node.blob = new Blob([keep as Uint8Array<ArrayBuffer>, new Uint8Array(Math.max(0, len - keep.length))]);
  }
  async sync(): Promise<void> {
    v.commit(this.node);
  }
  async datasync(): Promise<void> {
    v.commit(this.node);
  }
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    v.commit(this.node);
  }
}

export function openHandle(path: string, flags: string | number = 'r'): FileHandle {
  const f = String(flags);
  if (f.startsWith('r') && !f.includes('+')) return new FileHandle(path, v.fileNode(path, 'open'), false);
  if (f.startsWith('r')) return new FileHandle(path, v.fileNode(path, 'open'), true);
  if (f.startsWith('a')) {
    const n = v.lookup(path);
    return new FileHandle(path, n && n.kind === 'file' ? n : v.createFile(path, false), true);
  }
  return new FileHandle(path, v.createFile(path, f.includes('x')), true);
}

export const open = (path: string, flags: string | number = 'r'): Promise<FileHandle> => wrap(() => openHandle(path, flags));

export async function readFile(path: string | FileHandle, enc?: Enc): Promise<any> {
  if (path instanceof FileHandle) return path.readFile(enc);
  const b = Buffer.from(await v.readFileNode(path));
  const e = encOf(enc);
  return e ? b.toString(e) : b;
}

export const writeFile = (path: string, data: Uint8Array | string, opts?: { flag?: string } | string): Promise<void> =>
  wrap(() => v.writeWhole(path, data, typeof opts === 'object' && opts?.flag === 'wx'));
export const appendFile = (path: string, data: Uint8Array | string): Promise<void> =>
  wrap(() => void openHandle(path, 'a').write(data));
export const stat = (path: string): Promise<v.StatLike> => wrap(() => v.statPath(path));
export const lstat = stat;
export const access = (path: string): Promise<void> => wrap(() => void v.statPath(path));
export const realpath = (path: string): Promise<string> => wrap(() => (v.statPath(path), v.abs(path)));
export const mkdir = (path: string, opts?: { recursive?: boolean }): Promise<string | undefined> => wrap(() => (v.mkdirOne(path, !!opts?.recursive), undefined));
export const mkdtemp = (prefix: string): Promise<string> =>
  wrap(() => {
    const p = `${prefix}${Math.random().toString(36).slice(2, 8)}`;
    v.mkdirOne(p, true);
    return p;
  });
export async function readdir(path: string, opts?: { withFileTypes?: boolean }): Promise<any[]> {
  const names = v.listDir(path);
  if (!opts?.withFileTypes) return names;
  return names.map((name) => {
    const s = v.statPath(`${v.abs(path)}/${name}`);
    return { name, parentPath: v.abs(path), path: v.abs(path), isFile: s.isFile, isDirectory: s.isDirectory, isSymbolicLink: () => false };
  });
}
export const rename = (a: string, b: string): Promise<void> => wrap(() => v.renamePath(a, b));
export const rm = (p: string, opts?: { recursive?: boolean; force?: boolean }): Promise<void> => wrap(() => v.removePath(p, opts));
export const rmdir = (p: string, opts?: { recursive?: boolean }): Promise<void> => wrap(() => v.removePath(p, { recursive: opts?.recursive }));
export const unlink = (p: string): Promise<void> =>
  wrap(() => {
    v.fileNode(p, 'unlink');
    v.removePath(p);
  });
export const copyFile = (a: string, b: string): Promise<void> => wrap(() => v.mount(b, v.fileBlob(a)));
export const symlink = (target: string, p: string): Promise<void> => wrap(() => v.mount(p, v.fileBlob(target)));
// a hard link shares the file's bytes; blobs are immutable and a replaced file is unlinked first, so sharing the blob is a link
export const link = (existing: string, p: string): Promise<void> => wrap(() => v.mount(p, v.fileBlob(existing)));
export const utimes = (): Promise<void> => Promise.resolve();
export const chmod = (): Promise<void> => Promise.resolve();
export const constants = { F_OK: 0, R_OK: 4, W_OK: 2, X_OK: 1 };

export default { open, readFile, writeFile, appendFile, stat, lstat, access, realpath, mkdir, mkdtemp, readdir, rename, rm, rmdir, unlink, copyFile, symlink, link, utimes, chmod, constants };
