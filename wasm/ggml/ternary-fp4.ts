// TQ1_0, TQ2_0, Q1_0, Q2_0, MXFP4 and NVFP4, bit-exact with src/quant/ggml/ternary-fp4.ts (byte
// layouts there). These are cheap per value (one scale per block, then a rounding or a nearest-
// entry lookup), so they are plain scalar WebAssembly.
// Legend: x = values, o = output block, d = block scale.

import { putF16 } from './common';

/** C (int)lroundf(v) as glibc gives it: half away from zero; 0 for ±Inf/NaN (LONG_MIN's low bits). */
// @ts-ignore: decorator
@inline function lroundf(v: f32): i32 {
  if (!isFinite<f32>(v)) return 0;
  const d = <f64>v;
  return <i32>(d < 0 ? -Math.floor(-d + 0.5) : Math.floor(d + 0.5));
}

function amaxOf(x: usize, n: i32): f32 {
  let a: f32 = 0;
  for (let j = 0; j < n; j++) a = max(a, abs(load<f32>(x + (<usize>j << 2))));
  return a;
}

// @ts-ignore: decorator
@inline function trit(x: usize, j: i32, id: f32): i32 {
  return lroundf(load<f32>(x + (<usize>j << 2)) * id) + 1;
}

/** ceil(q·256/243): base-3 digits packed into a byte. */
// @ts-ignore: decorator
@inline function packTrits(q: i32): u8 {
  return <u8>((q * 256 + 242) / 243);
}

export function quantizeTq1_0(x: usize, out: usize, nb: i32): void {
  for (let ib = 0; ib < nb; ib++) {
    let p = x + <usize>ib * 1024;
    const o = out + <usize>ib * 54;
    const d = amaxOf(p, 256);
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    for (let m = 0; m < 32; m++) {
      let q = 0;
      for (let n = 0; n < 5; n++) q = q * 3 + trit(p, m + n * 32, id);
      store<u8>(o + m, packTrits(q));
    }
    p += 640;
    for (let m = 0; m < 16; m++) {
      let q = 0;
      for (let n = 0; n < 5; n++) q = q * 3 + trit(p, m + n * 16, id);
      store<u8>(o + 32 + m, packTrits(q));
    }
    p += 320;
    for (let j = 0; j < 4; j++) {
      let q = 0;
      for (let m = 0; m < 4; m++) q = q * 3 + trit(p, j + m * 4, id);
      store<u8>(o + 48 + j, packTrits(q * 3));
    }
    putF16(o + 52, d);
  }
}

export function quantizeTq2_0(x: usize, out: usize, nb: i32): void {
  for (let ib = 0; ib < nb; ib++) {
    const p = x + <usize>ib * 1024;
    const o = out + <usize>ib * 66;
    const d = amaxOf(p, 256);
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    for (let j = 0; j < 64; j += 32) {
      const base = (j >> 5) * 128;
      for (let m = 0; m < 32; m++) {
        let q = 0;
        for (let n = 0; n < 4; n++) q += (trit(p, base + m + n * 32, id) & 3) << (2 * n);
        store<u8>(o + j + m, <u8>q);
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
  for (let ib = 0; ib < nb; ib++) {
    const p = x + <usize>ib * 256;
    const o = out + <usize>ib * 18;
    const d = amaxOf(p, 64);
    const id: f32 = d != 0 ? <f32>1 / d : 0;
    putF16(o, d);
    for (let k = 0; k < 16; k++) {
      let b = 0;
      for (let t = 0; t < 4; t++) b |= (trit(p, 4 * k + t, id) & 3) << (2 * t);
      store<u8>(o + 2 + k, <u8>b);
    }
  }
}

// E2M1 values ×2 (ggml's kvalues_mxfp4)
const KV = memory.data<f32>([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

/** Index of the entry closest to v at scale d (|kv·d − v| in f32, first index on ties). */
function bestFp4(v: f32, d: f32): i32 {
  let best = 0;
  let bestErr = abs(load<f32>(KV) * d - v);
  for (let i = 1; i < 16; i++) {
    const err = abs(load<f32>(KV + (<usize>i << 2)) * d - v);
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
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
    for (let j = 0; j < 16; j++) {
      const a = bestFp4(load<f32>(p + (<usize>j << 2)), d);
      const b = bestFp4(load<f32>(p + (<usize>(j + 16) << 2)), d);
      store<u8>(o + 1 + j, <u8>(a | (b << 4)));
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
      for (let j = 0; j < 8; j++) {
        const a = bestFp4(load<f32>(p + (<usize>j << 2)), d);
        const b = bestFp4(load<f32>(p + (<usize>(j + 8) << 2)), d);
        store<u8>(o + 4 + s * 8 + j, <u8>(a | (b << 4)));
      }
    }
  }
}
