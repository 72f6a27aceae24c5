// Structural checks on a QuantizedTensor before decoding: a tensor assembled from a file (or by an
// importer) must have as many codes as its shape says, one scale (and zero point) per scale group,
// and codes inside the scheme's range, or decoding would read out of bounds or produce garbage.
// Cost: one pass over the codes (cheap next to decoding).

import { FormatError } from '../core/errors.js';
import { numel } from '../core/tensor.js';
import { intRange } from './affine.js';
import { scaleLayout } from './layout.js';
import type { QuantizedTensor } from './types.js';

function bad(what: string, field: string, expected: unknown, found: unknown, index?: number): never {
  throw new FormatError('shape_mismatch', `quantized tensor: ${what}`, { field, expected, found, index });
}

function checkLen(field: string, got: number, want: number): void {
  if (got !== want) bad(`${field} has the wrong length`, field, want, got);
}

export function validateQuantized(q: QuantizedTensor): void {
  const n = numel(q.shape);
  switch (q.kind) {
    case 'ggml':
      return; // dequantizeGgml checks its byte count
    case 'mx':
      checkLen('codes', q.codes.length, n);
      checkLen('scales', q.scales.length, n / 32);
      return;
    case 'nvfp4':
      checkLen('codes', q.codes.length, n);
      checkLen('scales', q.scales.length, n / 16);
      for (let i = 0; i < n; i++) if (q.codes[i] > 15) bad('E2M1 code out of range', 'codes', '0–15', q.codes[i], i);
      return;
    case 'float':
      checkLen('codes', q.codes.length, n);
      if (q.scales && q.scheme.granularity) checkLen('scales', q.scales.length, scaleLayout(q.shape, q.scheme.granularity).nScales);
      return;
    case 'int': {
      checkLen('codes', q.codes.length, n);
      const S = scaleLayout(q.shape, q.scheme.granularity).nScales;
      checkLen('scales', q.scales.length, S);
      if (!q.scheme.symmetric) {
        if (!q.zeros) bad('asymmetric scheme without zero points', 'zeros', `Uint8Array[${S}]`, 'none');
        checkLen('zeros', q.zeros.length, S);
      }
      const { qmin, qmax } = intRange(q.scheme);
      for (let i = 0; i < n; i++) {
        const c = q.codes[i];
        if (c < qmin || c > qmax) bad('code out of range', 'codes', `${qmin}–${qmax}`, c, i);
      }
      return;
    }
    case 'codebook': {
      checkLen('codes', q.codes.length, n);
      const S = scaleLayout(q.shape, q.scheme.granularity).nScales;
      checkLen('scales', q.scales.length, S);
      const L = 2 ** q.scheme.bits;
      if (q.codebook.length !== L && q.codebook.length !== L * S) bad('code book has the wrong length', 'codebook', `${L} or ${L * S}`, q.codebook.length);
      for (let i = 0; i < n; i++) if (q.codes[i] >= L) bad('code out of range', 'codes', `0–${L - 1}`, q.codes[i], i);
      return;
    }
    case 'lowbit':
      checkLen('codes', q.codes.length, n);
      checkLen('scales', q.scales.length, scaleLayout(q.shape, q.scheme.granularity).nScales);
      return;
  }
}
