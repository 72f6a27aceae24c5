// Importance-matrix files, both of llama.cpp's formats, read by content (GGUF magic or legacy).
export * from './types.js';
export { readImatrixLegacy, writeImatrixLegacy } from './legacy.js';
export { readImatrixGguf, writeImatrixGguf, isGgufImatrix } from './gguf.js';

import { isGgufImatrix, readImatrixGguf } from './gguf.js';
import { readImatrixLegacy } from './legacy.js';
import type { Imatrix } from './types.js';

/** Reads either format, choosing by the first four bytes. */
export async function readImatrix(bytes: Uint8Array, file = '<buffer>'): Promise<Imatrix> {
  return isGgufImatrix(bytes) ? readImatrixGguf(bytes, file) : readImatrixLegacy(bytes, file);
}
