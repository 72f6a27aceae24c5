// Importance-matrix files, both of llama.cpp's formats, read by content (GGUF magic or legacy).
export * from './types.js';
export { readImatrixLegacy, writeImatrixLegacy } from './dat.js';
export { readImatrixGguf, writeImatrixGguf, isGgufImatrix } from './gguf.js';

import { FormatError } from '../../core/errors.js';
import { isGgufImatrix, readImatrixGguf } from './gguf.js';
import { readImatrixLegacy } from './dat.js';
import type { Imatrix } from './types.js';

/**
 * Reads either format, choosing by the first four bytes. Sums of squares and counts must be finite
 * and ≥ 0: a NaN here would become NaN weights in every tensor quantized with it.
 */
export async function readImatrix(bytes: Uint8Array, file = '<buffer>'): Promise<Imatrix> {
  const im = isGgufImatrix(bytes) ? await readImatrixGguf(bytes, file) : await readImatrixLegacy(bytes, file);
  for (const [name, e] of im.entries) {
    for (let i = 0; i < e.sums.length; i++) {
      const x = e.sums[i];
      if (!Number.isFinite(x)) throw new FormatError('non_finite', 'imatrix holds a non-finite value', { file, tensor: name, index: i, found: x });
      if (x < 0) throw new FormatError('bad_header', 'imatrix sum of squares is negative', { file, tensor: name, index: i, expected: '>= 0', found: x });
    }
    e.counts.forEach((c, i) => {
      if (!(Number.isFinite(c) && c >= 0)) throw new FormatError('bad_header', 'imatrix count is not a count', { file, tensor: name, field: 'counts', index: i, expected: 'a finite number >= 0', found: c });
    });
  }
  return im;
}
