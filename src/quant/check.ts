// Input validation shared by every codec: finiteness (with the offending index) and shapes.

import { ConfigError, NumericError, ShapeError } from '../core/errors.js';
import { numel } from '../core/tensor.js';

/** Throws NumericError 'non_finite' naming the tensor and the first NaN/±Inf element index. */
export function assertFinite(w: Float32Array, name: string | undefined): void {
  for (let i = 0; i < w.length; i++) {
    const v = w[i];
    // v - v is NaN for NaN and ±Inf, 0 otherwise: one compare per element
    if (v - v !== 0) {
      throw new NumericError('non_finite', 'cannot quantize a non-finite value', {
        tensor: name ?? '<unnamed>',
        index: i,
        expected: 'a finite number',
        found: String(v),
      });
    }
  }
}

export function assertShapeMatches(w: Float32Array, shape: readonly number[], name: string | undefined): void {
  if (!shape.every((d) => Number.isInteger(d) && d >= 0)) {
    throw new ShapeError('shape_mismatch', 'shape must be non-negative integers', {
      tensor: name ?? '<unnamed>',
      found: `[${shape.join(', ')}]`,
    });
  }
  const n = numel(shape);
  if (n !== w.length) {
    throw new ShapeError('shape_mismatch', 'data length does not match shape', {
      tensor: name ?? '<unnamed>',
      expected: n,
      found: w.length,
    });
  }
}

/** Per-scale clip ratios from opts.clipRatio (validated), or null when absent. */
export function clipRatios(opts: { clipRatio?: number | Float32Array; name?: string }, nScales: number): ArrayLike<number> | null {
  const r = opts.clipRatio;
  if (r === undefined) return null;
  const arr = typeof r === 'number' ? new Float32Array(nScales).fill(r) : r;
  if (arr.length !== nScales) {
    throw new ConfigError('bad_option', 'clipRatio needs one ratio per scale group', { tensor: opts.name, field: 'clipRatio', expected: nScales, found: arr.length });
  }
  for (let i = 0; i < arr.length; i++) {
    if (!(arr[i] > 0 && arr[i] <= 1)) {
      throw new ConfigError('bad_option', 'clipRatio must be in (0, 1]', { tensor: opts.name, field: 'clipRatio', index: i, found: arr[i] });
    }
  }
  return arr;
}
