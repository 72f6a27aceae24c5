// Error metrics between a reference x and an approximation y (same length), accumulated in float64.
// SQNR = 10·log10(Σx² / Σ(x − y)²) dB (torchao compute_error): +Infinity when y equals x exactly,
// and −Infinity when the reference is all zeros but y is not.

import { ShapeError } from '../core/errors.js';

type Vec = ArrayLike<number>;

function check(x: Vec, y: Vec): void {
  if (x.length !== y.length) {
    throw new ShapeError('shape_mismatch', 'metric operands differ in length', { expected: x.length, found: y.length });
  }
}

export function mse(x: Vec, y: Vec): number {
  check(x, y);
  let s = 0;
  for (let i = 0; i < x.length; i++) s += (x[i] - y[i]) ** 2;
  return x.length ? s / x.length : 0;
}

export function rmse(x: Vec, y: Vec): number {
  return Math.sqrt(mse(x, y));
}

export function maxAbsError(x: Vec, y: Vec): number {
  check(x, y);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs(x[i] - y[i]));
  return m;
}

/** ‖x − y‖₂ / ‖x‖₂ (0 when both are zero, Infinity when only x is). */
export function relativeError(x: Vec, y: Vec): number {
  check(x, y);
  let e = 0;
  let r = 0;
  for (let i = 0; i < x.length; i++) {
    e += (x[i] - y[i]) ** 2;
    r += x[i] ** 2;
  }
  if (e === 0) return 0;
  return r === 0 ? Infinity : Math.sqrt(e / r);
}

/** Signal-to-quantization-noise ratio in dB. */
export function sqnr(x: Vec, y: Vec): number {
  check(x, y);
  let e = 0;
  let r = 0;
  for (let i = 0; i < x.length; i++) {
    e += (x[i] - y[i]) ** 2;
    r += x[i] ** 2;
  }
  if (e === 0) return Infinity;
  return 10 * Math.log10(r / e);
}
