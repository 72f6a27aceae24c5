// Scale storage: a scale is rounded to its storage dtype BEFORE codes are computed, so the stored
// scale is the one used. The direction is the caller's choice:
//   'nearest' (symmetric int, code books): what torch/HF do when they store fp16(scale);
//   'down'    (asymmetric int): the grid then spans slightly MORE than qmax steps, so an integer zero
//             point always exists that puts the group's min on code 0 and its max on code 2^b − 1,
//             which makes fakeQuant idempotent (see affine.ts);
//   'up'      (float formats): amax/s never exceeds the format's max, nothing saturates.
// F32 scales keep F32_SCALE_SIG_BITS significant bits so that s·q is exact in float32 for every
// code |q| ≤ 255 (and every FP8 value): dequantized values are exact products, never re-rounded.

import { f32ToBf16, bf16ToF32, f32ToF16, f16ToF32 } from '../numerics/float16.js';
import { roundHalfEven } from '../numerics/round.js';
import type { ScaleDType } from './scheme.js';

/** F32 scales keep 16 significant bits (24 − 8), so that products with 8-bit codes are exact in f32. */
export const F32_SCALE_SIG_BITS = 16;

/** Significant bits a stored scale keeps in the dtype's normal range (F16 11, BF16 8, F32 16). */
export const SCALE_SIG_BITS: Record<ScaleDType, number> = { F32: F32_SCALE_SIG_BITS, F16: 11, BF16: 8 };

export type ScaleRounding = 'nearest' | 'down' | 'up';

/** x rounded to `bits` significant bits in direction `dir` (x > 0, finite; nearest ties to even). */
function toSigBits(x: number, bits: number, dir: ScaleRounding): number {
  const e = Math.floor(Math.log2(x));
  // Math.log2 may be off by one near powers of two; correct so that 2^e ≤ x < 2^(e+1)
  let ee = e;
  if (2 ** ee > x) ee -= 1;
  else if (2 ** (ee + 1) <= x) ee += 1;
  const q = 2 ** (ee - bits + 1);
  const m = x / q; // exact: division by a power of two
  const r = dir === 'up' ? Math.ceil(m) : dir === 'down' ? Math.floor(m) : roundHalfEven(m);
  return r * q;
}

/** Round a positive scale to the storage dtype in direction `dir`. 0 stays 0; a value that would
 * round down to 0 rounds up instead (a zero scale would erase the group). Overflow gives the dtype max. */
export function roundScale(s: number, dtype: ScaleDType, dir: ScaleRounding = 'nearest'): number {
  if (!(s > 0)) return 0;
  let r: number;
  switch (dtype) {
    case 'F32': {
      const c = toSigBits(s, F32_SCALE_SIG_BITS, dir);
      r = Math.fround(c); // only inexact below the f32 normal range
      if (dir === 'up' && r < c) r = stepF32(r, 1);
      if (dir === 'down' && r > c) r = stepF32(r, -1);
      if (r === Infinity) r = F32_MAX;
      break;
    }
    case 'F16':
      r = viaBits(s, dir, f32ToF16, f16ToF32, 0x7bff);
      break;
    case 'BF16':
      r = viaBits(s, dir, f32ToBf16, bf16ToF32, 0x7f7f);
      break;
  }
  if (r === 0) r = roundScale(s, dtype, 'up');
  return r;
}

/** Upward rounding (kept for callers that need full range coverage). */
export function roundScaleUp(s: number, dtype: ScaleDType): number {
  return roundScale(s, dtype, 'up');
}

const F32_MAX = 3.4028234663852886e38;

function viaBits(
  s: number,
  dir: ScaleRounding,
  enc: (x: number) => number,
  dec: (h: number) => number,
  maxCode: number,
): number {
  let h = Math.min(enc(s), maxCode); // nearest (ties even); Inf code clamps to max finite
  if (dir === 'up' && dec(h) < s && h < maxCode) h++;
  if (dir === 'down' && dec(h) > s && h > 0) h--;
  return dec(h);
}

const f32b = new Float32Array(1);
const u32b = new Uint32Array(f32b.buffer);
function stepF32(x: number, dir: 1 | -1): number {
  f32b[0] = x;
  u32b[0] += dir; // x > 0 here: bit patterns are monotonic
  return f32b[0];
}
