// Shared helpers of the ggml kernels (AssemblyScript → WebAssembly). Every float here is an f32
// and every operation rounds to f32 as ggml's C does (WebAssembly has no fused multiply-add
// unless relaxed SIMD is enabled, and it is not), so a straight transcription of ggml's order of
// operations is bit-exact. SIMD kernels put independent blocks or groups in the four lanes, so
// each lane performs one block's sequential sums in ggml's order.
// Memory: the host copies rows into linear memory at addresses it chooses (above heapBase()),
// calls a kernel with byte addresses, and copies the bytes out. Nothing is allocated here.

/** ggml's GROUP_MAX_EPS. */
// @ts-ignore: decorator
@inline export const GROUP_MAX_EPS: f32 = 1e-15;

/** float32 → binary16 bits, round-to-nearest-even (as src/numerics/float16.ts f32ToF16). */
export function f32ToF16(x: f32): u32 {
  const b = reinterpret<u32>(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp == 0xff) return mant ? sign | 0x7e00 : sign | 0x7c00;
  const e = <i32>exp - 127;
  if (e > 15) return sign | 0x7c00;
  if (e >= -14) {
    const h = (<u32>(e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    // round half to even without a branch: whether to round up is a coin toss per value, and a
    // mispredicted branch per block was a third of Q4_0's time on real weights
    return sign | (h + (<u32>(rest > 0x1000) | (<u32>(rest == 0x1000) & h & 1)));
  }
  if (e < -25) return sign;
  mant |= 0x800000;
  const shift = <u32>(-e - 14 + 13);
  let h = mant >>> shift;
  const rem = mant & ((<u32>1 << shift) - 1);
  const half = <u32>1 << (shift - 1);
  if (rem > half || (rem == half && (h & 1) != 0)) h += 1;
  return sign | h;
}

/** binary16 bits → float32 (exact). */
export function f16ToF32(h: u32): f32 {
  const sign = (h & 0x8000) << 16;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp == 0) {
    const v = <f32>mant * (<f32>1.0 / <f32>16777216.0); // mant · 2^-24, exact
    return reinterpret<f32>(reinterpret<u32>(v) | sign);
  }
  if (exp == 31) return reinterpret<f32>(sign | 0x7f800000 | (mant << 13));
  return reinterpret<f32>(sign | ((exp + 112) << 23) | (mant << 13));
}

/** Stores x as fp16 at p (little-endian); returns the stored value as f32. */
export function putF16(p: usize, x: f32): f32 {
  const h = f32ToF16(x);
  store<u16>(p, <u16>h);
  return f16ToF32(h);
}

/** The f32 value an fp16 field holds after storing x. */
// @ts-ignore: decorator
@inline export function f16Round(x: f32): f32 {
  return f16ToF32(f32ToF16(x));
}

/**
 * ggml's nearest_int, bit for bit: v + 1.5·2^23 in f32, then the low 23 mantissa bits − 2^22
 * (round half to even for |v| < 2^22; ggml's own values beyond, and 0 for NaN).
 */
// @ts-ignore: decorator
@inline export function nearestInt(v: f32): i32 {
  return (reinterpret<i32>(v + <f32>12582912.0) & 0x7fffff) - 0x400000;
}

/** nearestInt on four lanes (f32 in, i32 out). */
// @ts-ignore: decorator
@inline export function nearestInt4(v: v128): v128 {
  return i32x4.sub(v128.and(f32x4.add(v, f32x4.splat(12582912.0)), i32x4.splat(0x7fffff)), i32x4.splat(0x400000));
}

/**
 * C's (int8_t)(float) / (uint8_t)(float) on x86-64 before the byte is taken: truncation for
 * |v| < 2^31, else 0 (the cvttss2si "integer indefinite" 0x80000000 has a zero low byte).
 */
// @ts-ignore: decorator
@inline export function cvtt4(v: v128): v128 {
  return v128.and(i32x4.trunc_sat_f32x4_s(v), f32x4.lt(f32x4.abs(v), f32x4.splat(2147483648.0)));
}

/** C roundf: half away from zero (v ± 0.5 is exact in f64). */
// @ts-ignore: decorator
@inline export function roundAway(v: f32): i32 {
  const d = <f64>v;
  return <i32>(d < 0 ? -Math.floor(-d + 0.5) : Math.floor(d + 0.5));
}

/** Index of the first non-finite value among n f32 at x, or −1. */
export function firstNonFinite(x: usize, n: i32): i32 {
  const expMask = i32x4.splat(0x7f800000);
  let i = 0;
  for (; i + 16 <= n; i += 16) {
    const p = x + (<usize>i << 2);
    const a = v128.and(v128.load(p), expMask);
    const b = v128.and(v128.load(p, 16), expMask);
    const c = v128.and(v128.load(p, 32), expMask);
    const d = v128.and(v128.load(p, 48), expMask);
    const bad = v128.or(v128.or(i32x4.eq(a, expMask), i32x4.eq(b, expMask)), v128.or(i32x4.eq(c, expMask), i32x4.eq(d, expMask)));
    if (v128.any_true(bad)) break;
  }
  for (; i < n; i++) {
    if ((load<u32>(x + (<usize>i << 2)) & 0x7f800000) == 0x7f800000) return i;
  }
  return -1;
}
