// Q2_K and Q3_K super-blocks (256 values in 16 groups of 16), with and without an importance
// matrix, bit-exact with src/quant/ggml/kquants-236.ts. Group searches run four groups at a time
// (fit.ts), sub-scale quantization and packing follow the scalar code.
//   Q2_K: 84 bytes  = scales[16] (low nibble scale, high nibble min) | qs[64] | d f16 | dmin f16
//   Q3_K: 110 bytes = hmask[32] | qs[64] | scales[12] (16 × 6 bits) | d f16
// Legend: x = one super-block's 256 f32, qw = its 256 importance weights (0 = none).

import { f16Round, nearestInt, putF16, GROUP_MAX_EPS } from './common';
import { makeQ3x4, makeQkx4, makeQx1, makeQx4, qkxMin, qkxScale, transpose4 } from './fit';
import { codes4, imatrixWeights, makeQp, searchLevel, sumSquares } from './kquants';
import { LB, LS, Laux, Lt, MINS, MN, MNI, SC, SCALES, SCI, SW, WROW, Wt, X, f32At } from './scratch';

// @ts-ignore: decorator
@inline function i32At(p: usize, i: i32): i32 {
  return load<i32>(p + (<usize>i << 2));
}

// @ts-ignore: decorator
@inline function setI32(p: usize, i: i32, v: i32): void {
  store<i32>(p + (<usize>i << 2), v);
}

/** Transposes the 4 quads of 16 groups × 16 values of `src` into dst (Q2/Q3/Q6 layout). */
function transposeQuads16(src: usize, dst: usize): void {
  for (let q = 0; q < 4; q++) {
    const g = src + <usize>q * 256;
    transpose4(g, g + 64, g + 128, g + 192, 16, dst + <usize>q * 256);
  }
}

/** Group weight sums of WROW (16 groups of 16) into SW. */
function groupSums16(): void {
  for (let j = 0; j < 16; j++) {
    let s: f32 = 0;
    for (let l = 0; l < 16; l++) s += f32At(WROW, 16 * j + l);
    store<f32>(SW + (<usize>j << 2), s);
  }
}

/** Packs 256 2-bit codes (values < 4) in LB: within each 128, byte l = e[l] | e[l+32]<<2 | e[l+64]<<4 | e[l+96]<<6. */
function pack2bit(o: usize): void {
  for (let j = 0; j < 256; j += 128) {
    for (let l = 0; l < 32; l += 16) {
      const a = v128.load(LB + <usize>(j + l));
      const b = v128.load(LB + <usize>(j + l + 32));
      const c = v128.load(LB + <usize>(j + l + 64));
      const e = v128.load(LB + <usize>(j + l + 96));
      v128.store(o + (<usize>j >> 2) + l, v128.or(v128.or(a, i8x16.shl(b, 2)), v128.or(i8x16.shl(c, 4), i8x16.shl(e, 6))));
    }
  }
}

// ---- Q2_K ---------------------------------------------------------------------------------

function q2Block(x: usize, qw: usize, o: usize): void {
  transposeQuads16(x, X);
  let d: f32 = 0;
  let dmin: f32 = 0;
  if (qw) {
    imatrixWeights(x, qw, sumSquares(x, 256) / <f32>256);
    groupSums16();
    transposeQuads16(WROW, Wt);
    for (let q = 0; q < 4; q++) {
      makeQkx4(16, 3, X + <usize>q * 256, Wt + <usize>q * 256, Lt + <usize>q * 256, Laux, -0.9, 0.05, 36, false);
      v128.store(SCALES + <usize>q * 16, qkxScale);
      v128.store(MINS + <usize>q * 16, qkxMin);
    }
    d = makeQp(16, 15, SCALES, SC, SW);
    dmin = makeQp(16, 15, MINS, MN, SW);
    for (let j = 0; j < 16; j++) {
      setI32(SCI, j, load<u8>(SC + j));
      setI32(MNI, j, load<u8>(MN + j));
    }
  } else {
    for (let q = 0; q < 4; q++) {
      const xq = X + <usize>q * 256;
      const wq = Wt + <usize>q * 256;
      for (let i = 0; i < 16; i++) v128.store(wq + (<usize>i << 4), f32x4.abs(v128.load(xq + (<usize>i << 4))));
      makeQkx4(16, 3, xq, wq, Lt + <usize>q * 256, Laux, -0.5, 0.1, 15, true);
      v128.store(SCALES + <usize>q * 16, qkxScale);
      v128.store(MINS + <usize>q * 16, qkxMin);
    }
    let maxScale: f32 = 0;
    let maxMin: f32 = 0;
    for (let j = 0; j < 16; j++) {
      if (f32At(SCALES, j) > maxScale) maxScale = f32At(SCALES, j);
      if (f32At(MINS, j) > maxMin) maxMin = f32At(MINS, j);
    }
    for (let j = 0; j < 16; j++) {
      setI32(SCI, j, 0);
      setI32(MNI, j, 0);
    }
    if (maxScale > 0) {
      const iscale: f32 = <f32>15 / maxScale;
      for (let j = 0; j < 16; j++) setI32(SCI, j, nearestInt(iscale * f32At(SCALES, j)));
      d = maxScale / 15;
    }
    if (maxMin > 0) {
      const iscale: f32 = <f32>15 / maxMin;
      for (let j = 0; j < 16; j++) setI32(MNI, j, nearestInt(iscale * f32At(MINS, j)));
      dmin = maxMin / 15;
    }
  }
  // codes from the stored (fp16) scales; a group whose scale rounds to 0 keeps its search levels
  const d16 = f16Round(d);
  const dmin16 = f16Round(dmin);
  const lo = i32x4.splat(0);
  const hi = i32x4.splat(3);
  for (let j = 0; j < 16; j++) {
    const dd: f32 = d16 * <f32>(i32At(SCI, j) & 15);
    const lb = LB + <usize>j * 16;
    if (dd == 0) {
      for (let i = 0; i < 16; i++) store<u8>(lb + i, searchLevel(16, j, i));
      continue;
    }
    const vd = f32x4.splat(dd);
    const vdm = f32x4.splat(dmin16 * <f32>(i32At(MNI, j) & 15));
    const p = x + <usize>j * 64;
    v128.store(
      lb,
      i8x16.narrow_i16x8_u(
        i16x8.narrow_i32x4_s(codes4(v128.load(p), vdm, vd, lo, hi), codes4(v128.load(p, 16), vdm, vd, lo, hi)),
        i16x8.narrow_i32x4_s(codes4(v128.load(p, 32), vdm, vd, lo, hi), codes4(v128.load(p, 48), vdm, vd, lo, hi)),
      ),
    );
  }
  for (let j = 0; j < 16; j++) store<u8>(o + j, <u8>(((i32At(SCI, j) & 0xff) | (i32At(MNI, j) << 4)) & 0xff));
  pack2bit(o + 16);
  putF16(o + 80, d);
  putF16(o + 82, dmin);
}

export function quantizeQ2_K(x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const nb = nPerRow >> 8;
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const i = r * nb + b;
      q2Block(x + <usize>i * 1024, qw ? qw + <usize>b * 1024 : 0, out + <usize>i * 84);
    }
  }
}

// ---- Q3_K ---------------------------------------------------------------------------------

function q3Block(x: usize, qw: usize, o: usize): void {
  transposeQuads16(x, X);
  let d: f32 = 0;
  for (let j = 0; j < 16; j++) setI32(SCI, j, 0);
  if (qw) {
    imatrixWeights(x, qw, (<f32>2 * sumSquares(x, 256)) / <f32>256);
    groupSums16();
    transposeQuads16(WROW, Wt);
    for (let q = 0; q < 4; q++) v128.store(SCALES + <usize>q * 16, makeQx4(16, 4, X + <usize>q * 256, Wt + <usize>q * 256, Lt + <usize>q * 256, Laux));
    d = makeQx1(16, 32, SCALES, SW, LS);
    for (let j = 0; j < 16; j++) setI32(SCI, j, load<u8>(LS + j));
  } else {
    for (let q = 0; q < 4; q++) v128.store(SCALES + <usize>q * 16, makeQ3x4(16, 4, X + <usize>q * 256, Lt + <usize>q * 256));
    let maxScale: f32 = 0;
    let amax: f32 = 0;
    for (let j = 0; j < 16; j++) {
      const s = f32At(SCALES, j);
      if (abs(s) > amax) {
        amax = abs(s);
        maxScale = s;
      }
    }
    if (maxScale != 0) {
      const iscale: f32 = <f32>-32 / maxScale;
      for (let j = 0; j < 16; j++) setI32(SCI, j, max(-32, min(31, <i32><i8>nearestInt(iscale * f32At(SCALES, j)))) + 32);
      d = <f32>1 / iscale;
    }
  }
  const d16 = f16Round(d);
  const lo = i32x4.splat(-4);
  const hi = i32x4.splat(3);
  const zero = f32x4.splat(0);
  const four = v128.splat<u8>(4);
  for (let j = 0; j < 16; j++) {
    const dd: f32 = d16 * <f32>(i32At(SCI, j) - 32);
    const lb = LB + <usize>j * 16;
    if (dd == 0) {
      for (let i = 0; i < 16; i++) store<u8>(lb + i, searchLevel(16, j, i));
      continue;
    }
    const vd = f32x4.splat(dd);
    const p = x + <usize>j * 64;
    const c = i8x16.narrow_i16x8_s(
      i16x8.narrow_i32x4_s(codes4(v128.load(p), zero, vd, lo, hi), codes4(v128.load(p, 16), zero, vd, lo, hi)),
      i16x8.narrow_i32x4_s(codes4(v128.load(p, 32), zero, vd, lo, hi), codes4(v128.load(p, 48), zero, vd, lo, hi)),
    );
    v128.store(lb, i8x16.add(c, four));
  }
  memory.fill(o, 0, 110);
  // 6-bit scales: low nibbles in bytes 0..7 (groups j and j+8), top 2 bits in bytes 8..11
  const sc = o + 96;
  for (let j = 0; j < 16; j++) {
    const l = i32At(SCI, j);
    if (j < 8) store<u8>(sc + j, <u8>(l & 15));
    else store<u8>(sc + j - 8, load<u8>(sc + j - 8) | <u8>((l & 15) << 4));
    store<u8>(sc + 8 + (j & 3), load<u8>(sc + 8 + (j & 3)) | <u8>((l >> 4) << (2 * (j >> 2))));
  }
  putF16(o + 108, d);
  // hmask bit b of byte m: element m + 32b has level > 3 (then stored as level − 4)
  const three = v128.splat<u8>(3);
  for (let b = 0; b < 8; b++) {
    const bit: i32 = 1 << b;
    for (let h = 0; h < 2; h++) {
      const p = LB + <usize>(32 * b + 16 * h);
      const v = v128.load(p);
      const high = i8x16.gt_u(v, three);
      const m = o + <usize>(16 * h);
      v128.store(m, v128.or(v128.load(m), v128.and(high, v128.splat<u8>(<u8>bit))));
      v128.store(p, i8x16.sub(v, v128.and(high, four)));
    }
  }
  pack2bit(o + 32);
}

export function quantizeQ3_K(x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const nb = nPerRow >> 8;
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const i = r * nb + b;
      q3Block(x + <usize>i * 1024, qw ? qw + <usize>b * 1024 : 0, out + <usize>i * 110);
    }
  }
}
