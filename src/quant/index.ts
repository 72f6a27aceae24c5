// Public quantization API: one quantize/dequantize pair per scheme kind; fakeQuant is literally
// dequantize(quantize(…)), so PTQ, QAT fake-quant and export share one implementation.
// Legend: w is row-major with shape [N, K] (or any rank); granularity axes refer to that shape.

import { ConfigError } from '../core/errors.js';
import { dequantizeInt, intBitsPerWeight, quantizeInt } from './affine.js';
import { assertFinite, assertShapeMatches } from './check.js';
import type { QuantScheme } from './scheme.js';
import type { QuantizeOptions, QuantizedTensor } from './types.js';

export type * from './types.js';
export type * from './scheme.js';
export { parseScheme, formatScheme } from './parse.js';
export { intParams, intQuantizeValue, intRange, rounder } from './affine.js';
export { scaleLayout, type ScaleLayout } from './layout.js';
export { roundScale, roundScaleUp, type ScaleRounding } from './scale.js';

function unsupported(scheme: QuantScheme): never {
  throw new ConfigError('unsupported', `quantization scheme kind '${scheme.kind}' is not available yet`, {
    field: 'scheme',
    found: scheme,
  });
}

/** Quantize `w` (row-major, `shape`) with `scheme`. NaN/±Inf → NumericError 'non_finite' with the index. */
export function quantize(w: Float32Array, shape: number[], scheme: QuantScheme, opts: QuantizeOptions = {}): QuantizedTensor {
  assertShapeMatches(w, shape, opts.name);
  assertFinite(w, opts.name);
  switch (scheme.kind) {
    case 'int':
      return quantizeInt(w, shape, scheme, opts);
    default:
      return unsupported(scheme);
  }
}

/** Decode to float32, row-major with q.shape. */
export function dequantize(q: QuantizedTensor): Float32Array {
  switch (q.kind) {
    case 'int':
      return dequantizeInt(q);
    default:
      return unsupported(q.scheme);
  }
}

/** dequantize(quantize(w)): the value the model sees. */
export function fakeQuant(w: Float32Array, shape: number[], scheme: QuantScheme, opts: QuantizeOptions = {}): Float32Array {
  return dequantize(quantize(w, shape, scheme, opts));
}

/** Exact storage cost per weight, scales, zero points and block headers included. */
export function bitsPerWeight(scheme: QuantScheme, shape: number[]): number {
  switch (scheme.kind) {
    case 'int':
      return intBitsPerWeight(scheme, shape);
    default:
      return unsupported(scheme);
  }
}
