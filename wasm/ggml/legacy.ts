// Legacy 32-value block types without an importance matrix (see src/quant/ggml/legacy.ts for the
// byte layouts and rounding rules, which these kernels reproduce bit for bit):
//   Q8_0 d = amax/127, q = roundf(x/d);  Q4_0/Q5_0 d = max/−2^(b−1), q = trunc(x/d + 2^(b−1) + .5);
//   Q4_1/Q5_1 d = (max − min)/(2^b − 1), m = min, q = trunc((x − m)/d + .5).
// Each block's reduction (amax, signed max, min/max) is order-independent or resolved exactly
// (first index on ties), and the per-value arithmetic is element-wise, so SIMD runs within a
// block. Legend: nb = blocks, x = nb·32 f32, out = nb·W bytes.

import { cvtt4, putF16 } from './common';

/**
 * Largest / smallest of four lanes, in SIMD (pmax/pmin are maxps/minps). Not the scalar f32
 * max/min: WebAssembly's NaN and signed-zero rules make V8 emit compares and branches for
 * those, and which operand wins is a coin toss per block on real weights; the mispredictions
 * made Q4_0 and Q8_0 twice as slow on real data as on repetitive test data. Inputs here are
 * finite (checked before the kernels run); a ±0 tie may return either zero, which the callers
 * that care about the sign of zero resolve themselves.
 */
// @ts-ignore: decorator
@inline function hmax4(v: v128): f32 {
  v = f32x4.pmax(v, v128.shuffle<u32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.pmax(v, v128.shuffle<u32>(v, v, 1, 0, 3, 2)), 0);
}

// @ts-ignore: decorator
@inline function hmin4(v: v128): f32 {
  v = f32x4.pmin(v, v128.shuffle<u32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.pmin(v, v128.shuffle<u32>(v, v, 1, 0, 3, 2)), 0);
}

/** Max of |x| over the 32 values at p. */
// @ts-ignore: decorator
@inline function blockAmax(p: usize): f32 {
  let m = f32x4.abs(v128.load(p));
  for (let k = 16; k < 128; k += 16) m = f32x4.pmax(m, f32x4.abs(v128.load(p + k)));
  return hmax4(m);
}

/** blockMinMax's results (globals: one instance per worker, so no sharing; two f32 out of an inline helper). */
let blockMin: f32 = 0;
let blockMax: f32 = 0;

/** The min and max of a 32-value block by lanes (pmin/pmax: ±0 and NaN as the callers then check). */
// @ts-ignore: decorator
@inline function blockMinMax(p: usize): void {
  let vmin = v128.load(p);
  let vmax = vmin;
  for (let k = 16; k < 128; k += 16) {
    const v = v128.load(p + k);
    vmin = f32x4.pmin(vmin, v);
    vmax = f32x4.pmax(vmax, v);
  }
  blockMin = hmin4(vmin);
  blockMax = hmax4(vmax);
}

/**
 * The value of largest magnitude (the first on ties; +0 for an all-zero block), as ggml picks it.
 * One pass for the block's max and min: the larger magnitude of the two is the answer unless they
 * tie (+a and −a both present), where the first of them in order is found by a second look.
 */
// @ts-ignore: decorator
@inline function blockSignedMax(p: usize): f32 {
  blockMinMax(p);
  const mx = blockMax;
  const mn = blockMin;
  // the sign of the answer is a coin toss on real weights: a select, not a branch (a
  // mispredicted branch per block cost as much as the rest of the block)
  if (mx != -mn) return select<f32>(mx, mn, mx > -mn);
  // a tie between +a and −a, or an all-zero block: the first value of that magnitude in order
  const amax = mx;
  if (amax == 0) return 0;
  const a = f32x4.splat(amax);
  for (let k = 0; k < 128; k += 16) {
    const bits = i32x4.bitmask(f32x4.eq(f32x4.abs(v128.load(p + k)), a));
    if (bits) return load<f32>(p + k + (<usize>ctz(bits) << 2));
  }
  return 0; // unreachable
}

/** (int8_t)roundf(v) of each lane (half away from zero; 0 for ±Inf/NaN, see cvtt4) as i32 lanes. */
// @ts-ignore: decorator
@inline function roundAway4(v: v128): v128 {
  const t = f32x4.trunc(v);
  const frac = f32x4.abs(f32x4.sub(v, t));
  const sgn = v128.or(v128.and(v, f32x4.splat(-0.0)), f32x4.splat(1)); // ±1 with v's sign
  const adj = v128.and(sgn, f32x4.ge(frac, f32x4.splat(0.5)));
  return cvtt4(f32x4.add(t, adj));
}

/**
 * roundf of each lane as i32 lanes when every lane is finite: trunc(v + copysign(0.49999997, v)).
 * Exact, not an approximation: for v = n + f (0 ≤ f < 1, |v| ≥ 1) with f < 0.5, f is at most
 * 0.5 − ulp(v), so the sum stays at least ulp(v) + 2^−25 below n + 1 and cannot round up to it;
 * with f ≥ 0.5 the sum is at least n + 1 − 2^−25, within half an ulp of n + 1 (ulp ≥ 2^−23), so it
 * rounds to n + 1 or beyond and truncates to n + 1 (f < 1 keeps it below n + 2). For |v| < 1 the
 * sum is below 1 − 2^−25 exactly when v < 0.5 (0.5 + 0.49999997 ties to 1.0, an even mantissa).
 * test/quant/ggml-wasm.test.ts checks it on every half-integer and its neighbouring ulps.
 */
// @ts-ignore: decorator
@inline function roundAway4Finite(v: v128): v128 {
  const half = v128.or(v128.and(v, f32x4.splat(-0.0)), f32x4.splat(0.49999997));
  return i32x4.trunc_sat_f32x4_s(f32x4.add(v, half));
}

/** Narrows 16 i32 lanes (a..d, values 0..255 or −128..127) to 16 bytes. */
// @ts-ignore: decorator
@inline function narrow16(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_s(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d));
}

// @ts-ignore: decorator
@inline function narrow16u(a: v128, b: v128, c: v128, d: v128): v128 {
  return i8x16.narrow_i16x8_u(i16x8.narrow_i32x4_s(a, b), i16x8.narrow_i32x4_s(c, d));
}

export function quantizeQ8_0(x: usize, out: usize, nb: i32): void {
  for (let ib = 0; ib < nb; ib++) {
    const p = x + <usize>ib * 128;
    const o = out + <usize>ib * 34;
    const d: f32 = blockAmax(p) / 127;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    putF16(o, d);
    const vid = f32x4.splat(id);
    // a finite 1/d keeps every |x/d| ≤ 127.0001; only a subnormal block (1/d = Inf) needs the casts' masking
    const finite = isFinite<f32>(id);
    for (let h = 0; h < 2; h++) {
      const q = p + <usize>h * 64;
      const r = finite
        ? narrow16(
            roundAway4Finite(f32x4.mul(v128.load(q), vid)),
            roundAway4Finite(f32x4.mul(v128.load(q, 16), vid)),
            roundAway4Finite(f32x4.mul(v128.load(q, 32), vid)),
            roundAway4Finite(f32x4.mul(v128.load(q, 48), vid)),
          )
        : narrow16(
            roundAway4(f32x4.mul(v128.load(q), vid)),
            roundAway4(f32x4.mul(v128.load(q, 16), vid)),
            roundAway4(f32x4.mul(v128.load(q, 32), vid)),
            roundAway4(f32x4.mul(v128.load(q, 48), vid)),
          );
      v128.store(o + 2 + <usize>h * 16, r);
    }
  }
}

/** Codes q = min(qmax, trunc(x·id + off)) of 16 values at q (i32 lanes → 16 bytes). */
// @ts-ignore: decorator
@inline function codes0(q: usize, vid: v128, off: v128, qmax: v128): v128 {
  return narrow16u(
    i32x4.min_s(cvtt4(f32x4.add(f32x4.mul(v128.load(q), vid), off)), qmax),
    i32x4.min_s(cvtt4(f32x4.add(f32x4.mul(v128.load(q, 16), vid), off)), qmax),
    i32x4.min_s(cvtt4(f32x4.add(f32x4.mul(v128.load(q, 32), vid), off)), qmax),
    i32x4.min_s(cvtt4(f32x4.add(f32x4.mul(v128.load(q, 48), vid), off)), qmax),
  );
}

/** codes0 when 1/d is finite (every lane bounded: a plain truncation). */
// @ts-ignore: decorator
@inline function codes0Finite(q: usize, vid: v128, off: v128, qmax: v128): v128 {
  return narrow16u(
    i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v128.load(q), vid), off)), qmax),
    i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v128.load(q, 16), vid), off)), qmax),
    i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v128.load(q, 32), vid), off)), qmax),
    i32x4.min_s(i32x4.trunc_sat_f32x4_s(f32x4.add(f32x4.mul(v128.load(q, 48), vid), off)), qmax),
  );
}

/** Q5 high bits: bit j of the u32 = bit 4 of code j (lo = codes 0..15, hi = codes 16..31). */
// @ts-ignore: decorator
@inline function qhBits(lo: v128, hi: v128): u32 {
  const b4lo = i8x16.bitmask(i8x16.shl(lo, 3)); // bit 4 → sign bit
  const b4hi = i8x16.bitmask(i8x16.shl(hi, 3));
  return <u32>b4lo | (<u32>b4hi << 16);
}

/** Q4_0 (bits 4) / Q5_0 (bits 5) without an importance matrix. */
export function quantizeQx_0(bits: i32, x: usize, out: usize, nb: i32): void {
  const W: usize = bits == 4 ? 18 : 22;
  const off = f32x4.splat(bits == 4 ? 8.5 : 16.5);
  const qmax = i32x4.splat((1 << bits) - 1);
  const div: f32 = bits == 4 ? -8 : -16;
  const nib = v128.splat<u8>(15);
  for (let ib = 0; ib < nb; ib++) {
    const p = x + <usize>ib * 128;
    const o = out + <usize>ib * W;
    const d: f32 = blockSignedMax(p) / div;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    putF16(o, d);
    const vid = f32x4.splat(id);
    const finite = isFinite<f32>(id);
    const lo = finite ? codes0Finite(p, vid, off, qmax) : codes0(p, vid, off, qmax);
    const hi = finite ? codes0Finite(p + 64, vid, off, qmax) : codes0(p + 64, vid, off, qmax);
    if (bits == 5) {
      store<u32>(o + 2, qhBits(lo, hi));
      v128.store(o + 6, v128.or(v128.and(lo, nib), i16x8.shl(v128.and(hi, nib), 4)));
    } else {
      v128.store(o + 2, v128.or(lo, i16x8.shl(hi, 4)));
    }
  }
}

/** Codes q = min(qmax, trunc((x − m)·id + 0.5)) of 16 values at q → 16 bytes. */
// @ts-ignore: decorator
@inline function codes1(q: usize, vm: v128, vid: v128, half: v128, qmax: v128): v128 {
  return narrow16u(
    i32x4.min_s(cvtt4(f32x4.add(f32x4.mul(f32x4.sub(v128.load(q), vm), vid), half)), qmax),
    i32x4.min_s(cvtt4(f32x4.add(f32x4.mul(f32x4.sub(v128.load(q, 16), vm), vid), half)), qmax),
    i32x4.min_s(cvtt4(f32x4.add(f32x4.mul(f32x4.sub(v128.load(q, 32), vm), vid), half)), qmax),
    i32x4.min_s(cvtt4(f32x4.add(f32x4.mul(f32x4.sub(v128.load(q, 48), vm), vid), half)), qmax),
  );
}

/** Q4_1 (bits 4) / Q5_1 (bits 5) without an importance matrix. */
export function quantizeQx_1(bits: i32, x: usize, out: usize, nb: i32): void {
  const W: usize = bits == 4 ? 20 : 24;
  const half = f32x4.splat(0.5);
  const qmax = i32x4.splat(bits == 4 ? 15 : 255);
  const nib = v128.splat<u8>(15);
  const levels: f32 = <f32>((1 << bits) - 1);
  for (let ib = 0; ib < nb; ib++) {
    const p = x + <usize>ib * 128;
    const o = out + <usize>ib * W;
    blockMinMax(p);
    let mn = blockMin;
    let mx = blockMax;
    if (mn == 0 || mx == 0) {
      // a signed zero may be the extreme: take the first one in order, as the scalar scan does
      mn = Infinity;
      mx = -Infinity;
      for (let j = 0; j < 32; j++) {
        const v = load<f32>(p + (<usize>j << 2));
        if (v < mn) mn = v;
        if (v > mx) mx = v;
      }
    }
    const d: f32 = (mx - mn) / levels;
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    putF16(o, d);
    putF16(o + 2, mn);
    const vid = f32x4.splat(id);
    const vm = f32x4.splat(mn);
    const lo = codes1(p, vm, vid, half, qmax);
    const hi = codes1(p + 64, vm, vid, half, qmax);
    if (bits == 5) {
      store<u32>(o + 4, qhBits(lo, hi));
      v128.store(o + 8, v128.or(v128.and(lo, nib), i16x8.shl(v128.and(hi, nib), 4)));
    } else {
      v128.store(o + 4, v128.or(lo, i16x8.shl(hi, 4)));
    }
  }
}
