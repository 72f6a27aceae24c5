// The quantize/dequantize dispatch over scheme kinds (re-exported by index.ts); fakeQuant is literally
// dequantize(quantize(…)), so PTQ, QAT fake-quant and export share one implementation.
// Legend: w is row-major with shape [N, K] (or any rank); granularity axes refer to that shape;
// ggml types quantize rows of K (the last axis) as ggml does.

import { ggmlBitsPerWeight } from '../core/dtype.js';
import { numel } from '../core/tensor.js';
import { dequantizeInt, intBitsPerWeight, quantizeInt } from './affine.js';
import { assertFinite, assertShapeMatches } from './check.js';
import { codebookBitsPerWeight, dequantizeCodebook, quantizeCodebook } from './codebook.js';
import {
  dequantizeFloat,
  dequantizeMx,
  dequantizeNvFp4,
  floatBitsPerWeight,
  mxBitsPerWeight,
  nvfp4BitsPerWeight,
  quantizeFloat,
  quantizeMx,
  quantizeNvFp4,
} from './float-formats.js';
import { dequantizeGgml, quantizeGgml } from './ggml/index.js';
import { dequantizeLowBit, lowbitBitsPerWeight, quantizeLowBit } from './lowbit.js';
import type { QuantScheme } from './scheme.js';
import { validateQuantized } from './validate.js';
import type { QuantizeOptions, QuantizedTensor } from './types.js';

/** Quantize `w` (row-major, `shape`) with `scheme`. NaN/±Inf → NumericError 'non_finite' with the index. */
export function quantize(w: Float32Array, shape: number[], scheme: QuantScheme, opts: QuantizeOptions = {}): QuantizedTensor {
  assertShapeMatches(w, shape, opts.name);
  assertFinite(w, opts.name);
  switch (scheme.kind) {
    case 'int':
      return quantizeInt(w, shape, scheme, opts);
    case 'float':
      return quantizeFloat(w, shape, scheme, opts);
    case 'mx':
      return quantizeMx(w, shape, scheme, opts);
    case 'nvfp4':
      return quantizeNvFp4(w, shape, scheme, opts);
    case 'codebook':
      return quantizeCodebook(w, shape, scheme, opts);
    case 'lowbit':
      return quantizeLowBit(w, shape, scheme, opts);
    case 'ggml': {
      const k = shape.length ? shape[shape.length - 1] : 1;
      const rows = k ? w.length / k : 0;
      const bytes = quantizeGgml(scheme.type, w, rows, k, opts.importance);
      return { kind: 'ggml', scheme, shape: [...shape], bytes };
    }
  }
}

/** Decode to float32, row-major with q.shape. A malformed tensor (lengths, code range) → FormatError. */
export function dequantize(q: QuantizedTensor): Float32Array {
  validateQuantized(q);
  switch (q.kind) {
    case 'int':
      return dequantizeInt(q);
    case 'float':
      return dequantizeFloat(q);
    case 'mx':
      return dequantizeMx(q);
    case 'nvfp4':
      return dequantizeNvFp4(q);
    case 'codebook':
      return dequantizeCodebook(q);
    case 'lowbit':
      return dequantizeLowBit(q);
    case 'ggml':
      return dequantizeGgml(q.scheme.type, q.bytes, numel(q.shape));
  }
}

/** dequantize(quantize(w)): the value the model sees. */
export function fakeQuant(w: Float32Array, shape: number[], scheme: QuantScheme, opts: QuantizeOptions = {}): Float32Array {
  return dequantize(quantize(w, shape, scheme, opts));
}

/** Exact storage cost per weight, scales, zero points, code books and block headers included. */
export function bitsPerWeight(scheme: QuantScheme, shape: number[]): number {
  switch (scheme.kind) {
    case 'int':
      return intBitsPerWeight(scheme, shape);
    case 'float':
      return floatBitsPerWeight(scheme, shape);
    case 'mx':
      return mxBitsPerWeight(scheme);
    case 'nvfp4':
      return nvfp4BitsPerWeight(shape);
    case 'codebook':
      return codebookBitsPerWeight(scheme, shape);
    case 'lowbit':
      return lowbitBitsPerWeight(scheme, shape);
    case 'ggml':
      return ggmlBitsPerWeight(scheme.type);
  }
}
