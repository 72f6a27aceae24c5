// Small helpers over formats/io for the model loaders: a bounded whole-file read for side files
// (vocabularies), refusing oversized files before allocating.

import { IoError } from '../core/errors.js';
import { openFileSource, type FileSource } from '../formats/io/index.js';

export type Source = FileSource;
export const openSource = openFileSource;

/** Whole small file, refusing anything above `maxBytes` before allocating. */
export async function readWhole(path: string, maxBytes: number): Promise<Uint8Array> {
  const src = await openFileSource(path);
  try {
    if (src.size > maxBytes) throw new IoError('too_large', 'file too large for a side file', { file: path, expected: `<= ${maxBytes} bytes`, found: src.size });
    return await src.read(0, src.size);
  } finally {
    await src.close();
  }
}
