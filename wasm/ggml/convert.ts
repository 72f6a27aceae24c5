// Element conversions to f32 for inputs stored as F16 or BF16 (what real checkpoints hold), so
// a worker converts and quantizes a chunk in one place. Exact: F16 → F32 by placing the 15
// magnitude bits at the f32 mantissa position and multiplying by 2^112 (exact for normals and
// subnormals alike), then fixing Inf/NaN; BF16 → F32 is a 16-bit shift.
// Legend: n values; src holds n u16, dst n f32 (8 values per step, a scalar tail).

import { f16ToF32 } from './common';

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
