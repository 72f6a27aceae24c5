// TQ1_0, TQ2_0, Q1_0, Q2_0, MXFP4 and NVFP4, bit-exact with src/quant/ggml/ternary-fp4.ts (byte
// layouts there): one scale per block, then per value a rounding (four values per step) or the
// nearest of 16 table entries (four values per step, the entries compared in ggml's order).
// Legend: x = values, o = output block, d = block scale.

import { putF16 } from './common';


function amaxOf(x: usize, n: i32): f32 {
  let a: f32 = 0;
  for (let j = 0; j < n; j++) a = max(a, abs(load<f32>(x + (<usize>j << 2))));
  return a;
}



/**
 * lroundf(x·id) + 1 of four values as i32 lanes (0, 1, 2 for |x·id| ≤ 1): half away from zero,
 * and 1 where x·id is ±Inf/NaN (lroundf gives LONG_MIN, whose low 32 bits are 0).
 */
// @ts-ignore: decorator
@inline function trit4(p: usize, vid: v128): v128 {
  const v = f32x4.mul(v128.load(p), vid);
  const t = f32x4.trunc(v);
  const sgn = v128.or(v128.and(v, f32x4.splat(-0.0)), f32x4.splat(1));
  const r = f32x4.add(t, v128.and(sgn, f32x4.ge(f32x4.abs(f32x4.sub(v, t)), f32x4.splat(0.5))));
  const finite = f32x4.lt(f32x4.abs(v), f32x4.splat(Infinity));
  return i32x4.add(v128.and(i32x4.trunc_sat_f32x4_s(r), finite), i32x4.splat(1));
}

/** ceil(q·256/243) of i32 lanes q ≤ 242 (exact in f32: a non-integer quotient is ≥ 1/243 from one). */
// @ts-ignore: decorator
@inline function packTrits4(q: v128): v128 {
  const a = f32x4.convert_i32x4_s(i32x4.add(i32x4.mul(q, i32x4.splat(256)), i32x4.splat(242)));
  return i32x4.trunc_sat_f32x4_s(f32x4.floor(f32x4.div(a, f32x4.splat(243))));
}

/** Stores the low bytes of four i32 lanes at o. */
// @ts-ignore: decorator
@inline function store4(o: usize, v: v128): void {
  store<u32>(o, <u32>i32x4.extract_lane(i8x16.shuffle(v, v, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12, 0, 4, 8, 12), 0));
}

export function quantizeTq1_0(x: usize, out: usize, nb: i32): void {
  for (let ib = 0; ib < nb; ib++) {
    let p = x + <usize>ib * 1024;
    const o = out + <usize>ib * 54;
    const d = amaxOf(p, 256);
    const vid = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    // qs[0..32): trits of elements m + 32n (n = 0..4, the first most significant)
    for (let m = 0; m < 32; m += 4) {
      let q = i32x4.splat(0);
      for (let n = 0; n < 5; n++) q = i32x4.add(i32x4.mul(q, i32x4.splat(3)), trit4(p + (<usize>(m + n * 32) << 2), vid));
      store4(o + m, packTrits4(q));
    }
    p += 640;
    for (let m = 0; m < 16; m += 4) {
      let q = i32x4.splat(0);
      for (let n = 0; n < 5; n++) q = i32x4.add(i32x4.mul(q, i32x4.splat(3)), trit4(p + (<usize>(m + n * 16) << 2), vid));
      store4(o + 32 + m, packTrits4(q));
    }
    p += 320;
    // qh[4]: elements j + 4m (m = 0..3) of the last 16, shifted up one trit
    let q = i32x4.splat(0);
    for (let m = 0; m < 4; m++) q = i32x4.add(i32x4.mul(q, i32x4.splat(3)), trit4(p + (<usize>(m * 4) << 2), vid));
    store4(o + 48, packTrits4(i32x4.mul(q, i32x4.splat(3))));
    putF16(o + 52, d);
  }
}

export function quantizeTq2_0(x: usize, out: usize, nb: i32): void {
  const three = i32x4.splat(3);
  for (let ib = 0; ib < nb; ib++) {
    const p = x + <usize>ib * 1024;
    const o = out + <usize>ib * 66;
    const d = amaxOf(p, 256);
    const vid = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    // byte j + m: elements m + 32n (n = 0..3) of the 128-value half, 2 bits each
    for (let j = 0; j < 64; j += 32) {
      const base = p + <usize>((j >> 5) * 128) * 4;
      for (let m = 0; m < 32; m += 4) {
        let q = i32x4.splat(0);
        for (let n = 0; n < 4; n++) q = v128.or(q, i32x4.shl(v128.and(trit4(base + (<usize>(m + n * 32) << 2), vid), three), 2 * n));
        store4(o + j + m, q);
      }
    }
    putF16(o + 64, d);
  }
}

export function quantizeQ1_0(x: usize, out: usize, nb: i32): void {
  for (let ib = 0; ib < nb; ib++) {
    const p = x + <usize>ib * 512;
    const o = out + <usize>ib * 18;
    let sumAbs: f32 = 0;
    for (let j = 0; j < 128; j++) sumAbs += abs(load<f32>(p + (<usize>j << 2)));
    putF16(o, sumAbs / 128);
    for (let k = 0; k < 16; k++) {
      let b = 0;
      for (let t = 0; t < 8; t++) if (load<f32>(p + (<usize>(8 * k + t) << 2)) >= 0) b |= 1 << t;
      store<u8>(o + 2 + k, <u8>b);
    }
  }
}

export function quantizeQ2_0(x: usize, out: usize, nb: i32): void {
  const three = i32x4.splat(3);
  for (let ib = 0; ib < nb; ib++) {
    const p = x + <usize>ib * 256;
    const o = out + <usize>ib * 18;
    const d = amaxOf(p, 64);
    const vid = f32x4.splat(d != 0 ? <f32>1 / d : 0);
    putF16(o, d);
    // byte k: elements 4k..4k+3, 2 bits each, the first in the low bits
    for (let k = 0; k < 16; k++) {
      const t = v128.and(trit4(p + (<usize>k << 4), vid), three);
      const b = i32x4.extract_lane(t, 0) | (i32x4.extract_lane(t, 1) << 2) | (i32x4.extract_lane(t, 2) << 4) | (i32x4.extract_lane(t, 3) << 6);
      store<u8>(o + 2 + k, <u8>b);
    }
  }
}

// E2M1 values ×2 (ggml's kvalues_mxfp4)
const KV = memory.data<f32>([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

/** bestFp4 of four values (i32 lanes): the same comparisons, entry by entry, per lane. */
// @ts-ignore: decorator
@inline function bestFp4x4(v: v128, d: f32): v128 {
  let best = i32x4.splat(0);
  let bestErr = f32x4.abs(f32x4.sub(f32x4.splat(load<f32>(KV) * d), v));
  for (let i = 1; i < 16; i++) {
    const err = f32x4.abs(f32x4.sub(f32x4.splat(load<f32>(KV + (<usize>i << 2)) * d), v));
    const lt = f32x4.lt(err, bestErr);
    best = v128.bitselect(i32x4.splat(i), best, lt);
    bestErr = v128.bitselect(err, bestErr, lt);
  }
  return best;
}


/** E8M0 exponent byte → 2^(e−128) (half the E8M0 value), as ggml decodes it. */
function e8m0Half(e: i32): f32 {
  return reinterpret<f32>(e < 2 ? <u32>0x00200000 << e : <u32>(e - 1) << 23);
}

export function quantizeMxfp4(x: usize, out: usize, nb: i32): void {
  for (let ib = 0; ib < nb; ib++) {
    const p = x + <usize>ib * 128;
    const o = out + <usize>ib * 17;
    const amax = amaxOf(p, 32);
    // floorf(log2f(amax)): log2 rounded to f32 first (it can round up to the next integer)
    const e = amax > 0 ? (<i32>Mathf.floor(<f32>Math.log2(<f64>amax)) - 2 + 127) & 0xff : 0;
    const d = e8m0Half(e);
    store<u8>(o, <u8>e);
    // byte j: entry of element j (low nibble) and j + 16 (high)
    for (let j = 0; j < 16; j += 4) {
      const a = bestFp4x4(v128.load(p + (<usize>j << 2)), d);
      const b = bestFp4x4(v128.load(p + (<usize>(j + 16) << 2)), d);
      store4(o + 1 + j, v128.or(a, i32x4.shl(b, 4)));
    }
  }
}

/** float → UE4M3 byte as ggml_fp32_to_ue4m3 (see ternary-fp4.ts toUe4m3). */
function toUe4m3(v: f32): i32 {
  if (!(v > 0)) return 0;
  if (v > 448) v = 448;
  const bits = reinterpret<u32>(v);
  let exp = <i32>((bits >>> 23) & 0xff) - 127 + 7;
  if (exp <= 0) {
    const man = <i32>(v * 512 + <f32>0.5);
    if (man > 7) return 7;
    return man < 1 ? 0 : man;
  }
  if (exp >= 15) return 0x7e;
  let man = <i32>((bits >>> 20) & 7) + <i32>((bits >>> 19) & 1);
  if (man > 7) {
    man = 0;
    exp++;
    if (exp >= 15) return 0x7e;
  }
  return (exp << 3) | man;
}

/** UE4M3 byte → value × 0.5 (0 and 0x7F → 0). */
function ue4m3Half(u: i32): f32 {
  if (u == 0 || u == 0x7f) return 0;
  const exp = (u >> 3) & 0xf;
  const man = u & 7;
  const raw: f64 = exp == 0 ? <f64>man * 0.001953125 : (1 + <f64>man / 8) * Math.pow(2, <f64>(exp - 7));
  return <f32>(raw * 0.5);
}

export function quantizeNvfp4(x: usize, out: usize, nb: i32): void {
  for (let ib = 0; ib < nb; ib++) {
    const o = out + <usize>ib * 36;
    for (let s = 0; s < 4; s++) {
      const p = x + <usize>(ib * 64 + s * 16) * 4;
      const ue = toUe4m3(amaxOf(p, 16) / 6);
      store<u8>(o + s, <u8>ue);
      const d = ue4m3Half(ue);
      for (let j = 0; j < 8; j += 4) {
        const a = bestFp4x4(v128.load(p + (<usize>j << 2)), d);
        const b = bestFp4x4(v128.load(p + (<usize>(j + 8) << 2)), d);
        store4(o + 4 + s * 8 + j, v128.or(a, i32x4.shl(b, 4)));
      }
    }
  }
}
