// Opening files for the model loaders: positional reads through formats/io (never whole files
// for weights), plus a bounded whole-file read for small side files (vocabularies, JSON).

import { open, stat } from 'node:fs/promises';
import { IoError } from '../core/errors.js';

export interface Source {
  readonly name: string;
  readonly size: number;
  read(offset: number, length: number): Promise<Uint8Array>;
  close(): Promise<void>;
}

export async function openSource(path: string): Promise<Source> {
  let fh;
  try {
    fh = await open(path, 'r');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new IoError(code === 'ENOENT' ? 'missing_file' : 'io', code === 'ENOENT' ? 'no such file' : `cannot open: ${(e as Error).message}`, { file: path });
  }
  const size = (await fh.stat()).size;
  const h = fh;
  return {
    name: path,
    size,
    async read(offset, length) {
      if (offset < 0 || length < 0 || offset + length > size) {
        throw new IoError('io', 'read outside the file', { file: path, offset, expected: `<= ${size}`, found: offset + length });
      }
      const buf = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await h.read(buf, done, length - done, offset + done);
        if (bytesRead === 0) throw new IoError('io', 'file ended early (changed while reading?)', { file: path, offset: offset + done });
        done += bytesRead;
      }
      return buf;
    },
    close: () => h.close(),
  };
}

/** Whole small file, refusing anything above `maxBytes` before allocating. */
export async function readWhole(path: string, maxBytes: number): Promise<Uint8Array> {
  let size: number;
  try {
    size = (await stat(path)).size;
  } catch {
    throw new IoError('missing_file', 'no such file', { file: path });
  }
  if (size > maxBytes) throw new IoError('too_large', 'file too large for a side file', { file: path, expected: `<= ${maxBytes} bytes`, found: size });
  const src = await openSource(path);
  try {
    return await src.read(0, size);
  } finally {
    await src.close();
  }
}
