// Finiteness checks: one NaN in an embedding or a norm used to pass quantize with "max |Δ logit|
// NaN" and exit 0. Weights are checked when they are read (model/load.ts) and narrowing casts are
// checked when they are written (model/save.ts); the error names the tensor, the index and the value.

import { NumericError, type ErrorContext } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { bf16ToF32, f16ToF32 } from './float16.js';

/** Index of the first NaN or ±Inf, or -1. */
export function firstNonFinite(x: ArrayLike<number>): number {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    // v - v is NaN exactly for NaN and ±Inf; a plain comparison keeps the loop cheap
    if (v - v !== 0) return i;
  }
  return -1;
}

/** The first non-finite element of a float tensor (F64, F32, F16, BF16), or null; other dtypes are not checked. */
export function firstNonFiniteElement(t: Tensor): { index: number; value: number } | null {
  if (t.dtype === 'F32' || t.dtype === 'F64') {
    const i = firstNonFinite(t.data as Float32Array);
    return i < 0 ? null : { index: i, value: (t.data as Float32Array)[i] };
  }
  if (t.dtype === 'F16' || t.dtype === 'BF16') {
    const h = t.data as Uint16Array;
    const mask = t.dtype === 'F16' ? 0x7c00 : 0x7f80;
    for (let i = 0; i < h.length; i++) {
      if ((h[i] & mask) === mask) return { index: i, value: t.dtype === 'F16' ? f16ToF32(h[i]) : bf16ToF32(h[i]) };
    }
  }
  return null;
}

/** Throws NumericError 'non_finite' naming `where` (file, tensor), the index and the value. */
export function assertFinite(x: ArrayLike<number>, where: ErrorContext, what = 'the weights hold a non-finite value'): void {
  const i = firstNonFinite(x);
  if (i >= 0) throw new NumericError('non_finite', what, { ...where, index: i, found: x[i], hint: where.hint ?? 'the checkpoint is damaged or was saved from a diverged run; bitscale does not quantize, convert or evaluate it' });
}

/**
 * Half-precision codes (F16 or BF16) that are ±Inf where the float32 source was finite: an
 * overflow of the narrowing cast. Throws NumericError 'overflow' naming the first.
 */
export function assertNoNarrowingOverflow(src: ArrayLike<number>, halves: Uint16Array, dtype: 'F16' | 'BF16', where: ErrorContext): void {
  const mask = dtype === 'F16' ? 0x7c00 : 0x7f80;
  for (let i = 0; i < halves.length; i++) {
    if ((halves[i] & mask) === mask && Number.isFinite(src[i])) {
      throw new NumericError('overflow', `a value does not fit in ${dtype}`, {
        ...where,
        index: i,
        expected: dtype === 'F16' ? '|x| <= 65504' : '|x| <= 3.39e38',
        found: src[i],
        hint: dtype === 'F16' ? 'keep this tensor in a wider type (--dtype bf16 or f32)' : 'keep this tensor in f32',
      });
    }
  }
}
