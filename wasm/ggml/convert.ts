// Element conversions to f32 for inputs stored as F16 or BF16 (what real checkpoints hold), so
// a worker converts and quantizes a chunk in one place. Exact: F16 → F32 by placing the 15
// magnitude bits at the f32 mantissa position and multiplying by 2^112 (exact for normals and
// subnormals alike), then fixing Inf/NaN; BF16 → F32 is a 16-bit shift.
// Legend: n values; src holds n u16, dst n f32 (8 values per step, a scalar tail).

import { f16ToF32, f32ToF16 } from './common';

/**
 * convertF16, and the index of the first non-finite value (exponent bits all ones), or −1: the
 * check the host would otherwise make in a second pass over the f32 values. One pass where no
 * value is Inf/NaN (the usual case): the conversion without the special-value fix-up, the check
 * folded into it; a chunk that holds one is converted again in full and scanned.
 */
export function convertF16Checked(src: usize, dst: usize, n: i32): i32 {
  const inf = i16x8.splat(0x7c00);
  const magMask = i32x4.splat(0x7fff);
  const signMask = i32x4.splat(0x8000);
  const scale = f32x4.splat(reinterpret<f32>(0x77800000)); // 2^112
  let special = i16x8.splat(0);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    special = v128.or(special, i16x8.eq(v128.and(h, inf), inf));
    const lo = i32x4.extend_low_i16x8_u(h);
    const hi = i32x4.extend_high_i16x8_u(h);
    const p = dst + (<usize>i << 2);
    v128.store(p, v128.or(f32x4.mul(i32x4.shl(v128.and(lo, magMask), 13), scale), i32x4.shl(v128.and(lo, signMask), 16)));
    v128.store(p, v128.or(f32x4.mul(i32x4.shl(v128.and(hi, magMask), 13), scale), i32x4.shl(v128.and(hi, signMask), 16)), 16);
  }
  let tail = false;
  for (let j = i; j < n; j++) {
    const h = <u32>load<u16>(src + (<usize>j << 1));
    store<f32>(dst + (<usize>j << 2), f16ToF32(h));
    if ((h & 0x7c00) == 0x7c00) tail = true;
  }
  if (!v128.any_true(special) && !tail) return -1;
  convertF16(src, dst, n);
  for (let j = 0; j < n; j++) if ((load<u16>(src + (<usize>j << 1)) & 0x7c00) == 0x7c00) return j;
  return -1;
}

export function convertF16(src: usize, dst: usize, n: i32): void {
  const magMask = i32x4.splat(0x7fff);
  const signMask = i32x4.splat(0x8000);
  const infExp = i32x4.splat(0x7c00);
  const scale = f32x4.splat(reinterpret<f32>(0x77800000)); // 2^112
  const expAll = i32x4.splat(0x7f800000);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    for (let half = 0; half < 2; half++) {
      const u = half == 0 ? i32x4.extend_low_i16x8_u(h) : i32x4.extend_high_i16x8_u(h);
      const mag = v128.and(u, magMask);
      let f = f32x4.mul(i32x4.shl(mag, 13), scale);
      // exponent 31 (Inf/NaN): force the f32 exponent to all ones, keep the mantissa bits
      const special = i32x4.eq(v128.and(u, infExp), infExp);
      f = v128.bitselect(v128.or(i32x4.shl(mag, 13), expAll), f, special);
      f = v128.or(f, i32x4.shl(v128.and(u, signMask), 16));
      v128.store(dst + (<usize>(i + half * 4) << 2), f);
    }
  }
  for (; i < n; i++) store<f32>(dst + (<usize>i << 2), f16ToF32(<u32>load<u16>(src + (<usize>i << 1))));
}

export function convertBf16(src: usize, dst: usize, n: i32): void {
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    const h = v128.load(src + (<usize>i << 1));
    v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_low_i16x8_u(h), 16));
    v128.store(dst + (<usize>i << 2), i32x4.shl(i32x4.extend_high_i16x8_u(h), 16), 16);
  }
  for (; i < n; i++) store<u32>(dst + (<usize>i << 2), <u32>load<u16>(src + (<usize>i << 1)) << 16);
}

/**
 * f32 → F16 bits, round to nearest even (as src/numerics/float16.ts f32ToF16): Inf and values
 * ≥ 65536 → ±Inf (the rounding of [65520, 65536) carries into Inf too), NaN → ±0x7e00, subnormal
 * results by adding 0.5 in f32 (which rounds on the F16 subnormal grid). After F. Giesen's
 * float_to_half_fast3_rtne. n values at src → n u16 at dst.
 */
export function encodeF16(src: usize, dst: usize, n: i32): void {
  const signMask = i32x4.splat(0x80000000);
  const f16max = i32x4.splat((127 + 16) << 23);
  const f32inf = i32x4.splat(255 << 23);
  const minNormal = i32x4.splat(113 << 23);
  const magic = i32x4.splat(126 << 23); // 0.5f
  const rebias = i32x4.splat(((15 - 127) << 23) + 0xfff);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    let pair = v128.splat<i32>(0);
    for (let h = 0; h < 2; h++) {
      const b = v128.load(src + (<usize>(i + 4 * h) << 2));
      const sign = v128.and(b, signMask);
      const f = v128.xor(b, sign);
      const big = i32x4.ge_s(f, f16max);
      const special = v128.bitselect(i32x4.splat(0x7e00), i32x4.splat(0x7c00), i32x4.gt_s(f, f32inf));
      const sub = i32x4.sub(f32x4.add(f, magic), magic);
      const odd = v128.and(i32x4.shr_u(f, 13), i32x4.splat(1));
      const norm = i32x4.shr_u(i32x4.add(i32x4.add(f, rebias), odd), 13);
      let o = v128.bitselect(sub, norm, i32x4.lt_s(f, minNormal));
      o = v128.bitselect(special, o, big);
      o = v128.or(o, i32x4.shr_u(sign, 16));
      pair = h == 0 ? o : i16x8.narrow_i32x4_u(pair, o);
    }
    v128.store(dst + (<usize>i << 1), pair);
  }
  for (; i < n; i++) store<u16>(dst + (<usize>i << 1), <u16>f32ToF16(load<f32>(src + (<usize>i << 2))));
}

/** f32 → BF16 bits, round to nearest even; NaN → quiet NaN keeping the sign (f32ToBf16). */
export function encodeBf16(src: usize, dst: usize, n: i32): void {
  const absMask = i32x4.splat(0x7fffffff);
  const inf = i32x4.splat(0x7f800000);
  let i = 0;
  for (; i + 8 <= n; i += 8) {
    let pair = v128.splat<i32>(0);
    for (let h = 0; h < 2; h++) {
      const b = v128.load(src + (<usize>(i + 4 * h) << 2));
      const rounded = i32x4.shr_u(i32x4.add(b, i32x4.add(i32x4.splat(0x7fff), v128.and(i32x4.shr_u(b, 16), i32x4.splat(1)))), 16);
      const nan = v128.or(i32x4.shr_u(b, 16), i32x4.splat(0x40));
      const o = v128.and(v128.bitselect(nan, rounded, i32x4.gt_s(v128.and(b, absMask), inf)), i32x4.splat(0xffff));
      pair = h == 0 ? o : i16x8.narrow_i32x4_u(pair, o);
    }
    v128.store(dst + (<usize>i << 1), pair);
  }
  for (; i < n; i++) {
    const b = load<u32>(src + (<usize>i << 2));
    const h = (b & 0x7fffffff) > 0x7f800000 ? ((b >>> 16) | 0x40) & 0xffff : ((b + (0x7fff + ((b >>> 16) & 1))) >>> 16) & 0xffff;
    store<u16>(dst + (<usize>i << 1), <u16>h);
  }
}
