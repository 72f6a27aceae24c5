// K-quant super-blocks (256 values) with and without an importance matrix, bit-exact with
// src/quant/ggml/kquants-45.ts (Q4_K, Q5_K: 8 groups of 32) and kquants-236.ts (Q6_K: 16 groups
// of 16). The per-group scale searches run four groups at a time (one per lane, fit.ts); the
// sub-scale quantization, the codes and the packing follow the scalar code.
// Legend: x = one super-block's 256 f32, qw = its 256 importance weights (0 = none),
// L = 256 code bytes, o = output block.

import { f16Round, nearestInt, nearestInt4, putF16, GROUP_MAX_EPS } from './common';
import { makeQkx4, makeQx4, qkxMin, qkxScale, transpose4 } from './fit';
import { LB, Laux, Lt, MINS, MN, SC, SCALES, SW, WROW, Wt, X, f32At } from './scratch';

/** Level of value i of group g from a transposed search (groups of n; 4 groups per quad). */
// @ts-ignore: decorator
@inline export function searchLevel(n: i32, g: i32, i: i32): u8 {
  const q = g >> 2;
  return <u8><i32>load<f32>(Lt + <usize>(q * n + i) * 16 + (<usize>(g & 3) << 2));
}

/** make_qp_quants (fit.ts makeQpQuants) on f32[n] at xp with weights qwp → levels at Lp; returns the scale. */
export function makeQp(n: i32, nmax: i32, xp: usize, Lp: usize, qwp: usize): f32 {
  let mx: f32 = 0;
  for (let i = 0; i < n; i++) mx = max(mx, f32At(xp, i));
  if (mx < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) store<u8>(Lp + i, 0);
    return 0;
  }
  let iscale: f32 = <f32>nmax / mx;
  for (let i = 0; i < n; i++) store<u8>(Lp + i, <u8>nearestInt(iscale * f32At(xp, i)));
  const scale: f32 = <f32>1 / iscale;
  let bestMse: f32 = 0;
  for (let i = 0; i < n; i++) {
    const diff: f32 = f32At(xp, i) - scale * <f32>load<u8>(Lp + i);
    bestMse += f32At(qwp, i) * diff * diff;
  }
  for (let is = -4; is <= 4; is++) {
    if (is == 0) continue;
    const iscaleIs: f32 = (<f32>0.1 * <f32>is + <f32>nmax) / mx;
    const scaleIs: f32 = <f32>1 / iscaleIs;
    let mse: f32 = 0;
    for (let i = 0; i < n; i++) {
      const l = min(nmax, nearestInt(iscaleIs * f32At(xp, i)));
      const diff: f32 = f32At(xp, i) - scaleIs * <f32>l;
      mse += f32At(qwp, i) * diff * diff;
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const xi = f32At(xp, i);
    const l = min(nmax, nearestInt(iscale * xi));
    store<u8>(Lp + i, <u8>l);
    const w = f32At(qwp, i);
    sumlx += w * xi * <f32>l;
    suml2 += w * <f32>l * <f32>l;
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = f32At(qwp, i);
      const xi = f32At(xp, i);
      const li = <f32>load<u8>(Lp + i);
      let slx: f32 = sumlx - w * xi * li;
      let sl2: f32 = suml2 - w * li * li;
      if (slx > 0 && sl2 > 0) {
        const nl = min(nmax, nearestInt((xi * sl2) / slx));
        if (nl != <i32>li) {
          slx = slx + w * xi * <f32>nl;
          sl2 = sl2 + w * <f32>nl * <f32>nl;
          if (slx * slx * suml2 > sumlx * sumlx * sl2) {
            store<u8>(Lp + i, <u8>nl);
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  return suml2 > 0 ? sumlx / suml2 : 0;
}

// ---- Q4_K / Q5_K -------------------------------------------------------------------------

/** Per-value weights qw·√(σ² + x²) for a super-block (K-quant imatrix rule) into WROW. */
export function imatrixWeights(x: usize, qw: usize, sigma2: f32): void {
  for (let l = 0; l < 256; l++) {
    const v = f32At(x, l);
    store<f32>(WROW + (<usize>l << 2), f32At(qw, l) * Mathf.sqrt(sigma2 + v * v));
  }
}

export function sumSquares(x: usize, n: i32): f32 {
  let s: f32 = 0;
  for (let l = 0; l < n; l++) {
    const v = f32At(x, l);
    s += v * v;
  }
  return s;
}

/** Q4_K (nmax 15) / Q5_K (nmax 31) super-block at x → block at o. */
function k45Block(nmax: i32, x: usize, qw: usize, o: usize): void {
  // the two quads: groups 0..3 and 4..7, 32 values each
  for (let q = 0; q < 2; q++) {
    const g = x + <usize>q * 512;
    transpose4(g, g + 128, g + 256, g + 384, 32, X + <usize>q * 512);
  }
  let d: f32;
  let dmin: f32;
  if (qw) {
    const sigma2: f32 = (<f32>2 * sumSquares(x, 256)) / <f32>256;
    imatrixWeights(x, qw, sigma2);
    for (let j = 0; j < 8; j++) {
      let s: f32 = 0;
      for (let l = 0; l < 32; l++) s += f32At(WROW, 32 * j + l);
      store<f32>(SW + (<usize>j << 2), s);
    }
    for (let q = 0; q < 2; q++) {
      const g = WROW + <usize>q * 512;
      transpose4(g, g + 128, g + 256, g + 384, 32, Wt + <usize>q * 512);
      makeQkx4(32, nmax, X + <usize>q * 512, Wt + <usize>q * 512, Lt + <usize>q * 512, Laux, -0.9, 0.05, 36, false);
      v128.store(SCALES + <usize>q * 16, qkxScale);
      v128.store(MINS + <usize>q * 16, qkxMin);
    }
    d = makeQp(8, 63, SCALES, SC, SW);
    dmin = makeQp(8, 63, MINS, MN, SW);
    for (let j = 0; j < 8; j++) {
      store<u8>(SC + j, min(63, load<u8>(SC + j)));
      store<u8>(MN + j, min(63, load<u8>(MN + j)));
    }
  } else {
    for (let q = 0; q < 2; q++) {
      const xq = X + <usize>q * 512;
      const wq = Wt + <usize>q * 512;
      let s2 = f32x4.splat(0);
      for (let i = 0; i < 32; i++) {
        const v = v128.load(xq + (<usize>i << 4));
        s2 = f32x4.add(s2, f32x4.mul(v, v));
      }
      const av = f32x4.sqrt(f32x4.div(s2, f32x4.splat(32)));
      for (let i = 0; i < 32; i++) v128.store(wq + (<usize>i << 4), f32x4.add(av, f32x4.abs(v128.load(xq + (<usize>i << 4)))));
      if (nmax == 15) makeQkx4(32, 15, xq, wq, Lt + <usize>q * 512, Laux, -1, 0.1, 20, false);
      else makeQkx4(32, 31, xq, wq, Lt + <usize>q * 512, Laux, -0.5, 0.1, 15, false);
      v128.store(SCALES + <usize>q * 16, qkxScale);
      v128.store(MINS + <usize>q * 16, qkxMin);
    }
    let maxScale: f32 = 0;
    let maxMin: f32 = 0;
    for (let j = 0; j < 8; j++) {
      const s = f32At(SCALES, j);
      const m = f32At(MINS, j);
      if (s > maxScale) maxScale = s;
      if (m > maxMin) maxMin = m;
    }
    const invScale: f32 = maxScale > 0 ? <f32>63 / maxScale : 0;
    const invMin: f32 = maxMin > 0 ? <f32>63 / maxMin : 0;
    for (let j = 0; j < 8; j++) {
      store<u8>(SC + j, <u8>min(63, nearestInt(invScale * f32At(SCALES, j)) & 0xff));
      store<u8>(MN + j, <u8>min(63, nearestInt(invMin * f32At(MINS, j)) & 0xff));
    }
    d = maxScale / 63;
    dmin = maxMin / 63;
  }
  // codes from the stored (fp16) scales; a group whose scale rounds to 0 keeps its search levels
  const d16 = f16Round(d);
  const dmin16 = f16Round(dmin);
  const lo = i32x4.splat(0);
  const hi = i32x4.splat(nmax);
  for (let j = 0; j < 8; j++) {
    const dd: f32 = d16 * <f32>load<u8>(SC + j);
    const lb = LB + <usize>j * 32;
    if (dd == 0) {
      for (let i = 0; i < 32; i++) store<u8>(lb + i, searchLevel(32, j, i));
      continue;
    }
    const vd = f32x4.splat(dd);
    const vdm = f32x4.splat(dmin16 * <f32>load<u8>(MN + j));
    const xg = x + <usize>j * 128;
    for (let k = 0; k < 32; k += 16) {
      v128.store(lb + k, codes16(xg + (<usize>k << 2), vdm, vd, lo, hi));
    }
  }
  k45Encode(nmax, d, dmin, o);
}

/** 16 codes clamp(nearest((x + dm)/d), lo, hi) → bytes. */
// @ts-ignore: decorator
@inline function codes16(p: usize, vdm: v128, vd: v128, lo: v128, hi: v128): v128 {
  return i8x16.narrow_i16x8_u(
    i16x8.narrow_i32x4_s(codes4(v128.load(p), vdm, vd, lo, hi), codes4(v128.load(p, 16), vdm, vd, lo, hi)),
    i16x8.narrow_i32x4_s(codes4(v128.load(p, 32), vdm, vd, lo, hi), codes4(v128.load(p, 48), vdm, vd, lo, hi)),
  );
}

// @ts-ignore: decorator
@inline export function codes4(v: v128, vdm: v128, vd: v128, lo: v128, hi: v128): v128 {
  return i32x4.min_s(i32x4.max_s(nearestInt4(f32x4.div(f32x4.add(v, vdm), vd)), lo), hi);
}

function k45Encode(nmax: i32, d: f32, dmin: f32, o: usize): void {
  putF16(o, d);
  putF16(o + 2, dmin);
  // 6-bit scales and mins: groups 0..3 plain, 4..7 split into nibbles + top 2 bits
  for (let j = 0; j < 4; j++) {
    store<u8>(o + 4 + j, load<u8>(SC + j) | ((load<u8>(SC + j + 4) >> 4) << 6));
    store<u8>(o + 8 + j, load<u8>(MN + j) | ((load<u8>(MN + j + 4) >> 4) << 6));
    store<u8>(o + 12 + j, (load<u8>(SC + j + 4) & 15) | ((load<u8>(MN + j + 4) & 15) << 4));
  }
  const nib = v128.splat<u8>(15);
  if (nmax == 15) {
    for (let j = 0; j < 256; j += 64) {
      const q = o + 16 + (<usize>j >> 1);
      for (let l = 0; l < 32; l += 16) {
        const a = v128.load(LB + <usize>(j + l));
        const b = v128.load(LB + <usize>(j + l + 32));
        v128.store(q + l, v128.or(a, i16x8.shl(b, 4)));
      }
    }
    return;
  }
  // Q5_K: qh bit 2k / 2k+1 of byte l = 5th bit of element 64k + l / 64k + 32 + l
  let qh0 = v128.splat<u8>(0);
  let qh1 = v128.splat<u8>(0);
  for (let k = 0; k < 4; k++) {
    const n = k * 64;
    for (let h = 0; h < 2; h++) {
      const a = v128.load(LB + <usize>(n + 16 * h));
      const b = v128.load(LB + <usize>(n + 32 + 16 * h));
      const ha = v128.and(i8x16.shr_u(a, 4), v128.splat<u8>(1));
      const hb = v128.and(i8x16.shr_u(b, 4), v128.splat<u8>(1));
      const bits = v128.or(i8x16.shl(ha, <u32>(2 * k)), i8x16.shl(hb, <u32>(2 * k + 1)));
      if (h == 0) qh0 = v128.or(qh0, bits);
      else qh1 = v128.or(qh1, bits);
      v128.store(o + 48 + <usize>(n >> 1) + <usize>(16 * h), v128.or(v128.and(a, nib), i16x8.shl(v128.and(b, nib), 4)));
    }
  }
  v128.store(o + 16, qh0);
  v128.store(o + 32, qh1);
}

/** Q4_K (nmax 15) / Q5_K (nmax 31) over nRows rows of nPerRow values. */
export function quantizeK45(nmax: i32, x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const W: usize = nmax == 15 ? 144 : 176;
  const nb = nPerRow >> 8;
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const i = r * nb + b;
      k45Block(nmax, x + <usize>i * 1024, qw ? qw + <usize>b * 1024 : 0, out + <usize>i * W);
    }
  }
}

// ---- Q6_K ---------------------------------------------------------------------------------

function q6Block(x: usize, qw: usize, o: usize): void {
  for (let q = 0; q < 4; q++) {
    const g = x + <usize>q * 256;
    transpose4(g, g + 64, g + 128, g + 192, 16, X + <usize>q * 256);
    let wq: usize = 0;
    if (qw) {
      const h = qw + <usize>q * 256;
      wq = Wt + <usize>q * 256;
      transpose4(h, h + 64, h + 128, h + 192, 16, wq);
    }
    v128.store(SCALES + <usize>q * 16, makeQx4(16, 32, X + <usize>q * 256, wq, Lt + <usize>q * 256, Laux));
  }
  let maxScale: f32 = 0;
  let maxAbs: f32 = 0;
  for (let j = 0; j < 16; j++) {
    const s = f32At(SCALES, j);
    if (abs(s) > maxAbs) {
      maxAbs = abs(s);
      maxScale = s;
    }
  }
  if (maxAbs < GROUP_MAX_EPS) {
    memory.fill(o, 0, 210);
    return;
  }
  const iscale: f32 = <f32>-128 / maxScale;
  const d: f32 = <f32>1 / iscale;
  for (let j = 0; j < 16; j++) store<i8>(SC + j, <i8>min(127, nearestInt(iscale * f32At(SCALES, j))));
  const d16 = f16Round(d);
  const lo = i32x4.splat(-32);
  const hi = i32x4.splat(31);
  const zero = f32x4.splat(0);
  const off = v128.splat<u8>(32);
  for (let j = 0; j < 16; j++) {
    const dd: f32 = d16 * <f32>load<i8>(SC + j);
    const lb = LB + <usize>j * 16;
    if (dd == 0) {
      for (let i = 0; i < 16; i++) store<u8>(lb + i, searchLevel(16, j, i));
      continue;
    }
    const c = i8x16.narrow_i16x8_s(
      i16x8.narrow_i32x4_s(codes4(v128.load(x + <usize>j * 64), zero, f32x4.splat(dd), lo, hi), codes4(v128.load(x + <usize>j * 64, 16), zero, f32x4.splat(dd), lo, hi)),
      i16x8.narrow_i32x4_s(codes4(v128.load(x + <usize>j * 64, 32), zero, f32x4.splat(dd), lo, hi), codes4(v128.load(x + <usize>j * 64, 48), zero, f32x4.splat(dd), lo, hi)),
    );
    v128.store(lb, i8x16.add(c, off));
  }
  // ql/qh: per 128 values, ql[l] = a | c<<4, ql[l+32] = b | e<<4, qh[l] = a>>4 | b>>4<<2 | c>>4<<4 | e>>4<<6
  const nib = v128.splat<u8>(15);
  for (let j = 0; j < 256; j += 128) {
    const ql = o + (<usize>j >> 1);
    const qh = o + 128 + (<usize>j >> 2);
    for (let l = 0; l < 32; l += 16) {
      const a = v128.load(LB + <usize>(j + l));
      const b = v128.load(LB + <usize>(j + l + 32));
      const c = v128.load(LB + <usize>(j + l + 64));
      const e = v128.load(LB + <usize>(j + l + 96));
      v128.store(ql + l, v128.or(v128.and(a, nib), i16x8.shl(v128.and(c, nib), 4)));
      v128.store(ql + l + 32, v128.or(v128.and(b, nib), i16x8.shl(v128.and(e, nib), 4)));
      const h = v128.or(
        v128.or(i8x16.shr_u(a, 4), i8x16.shl(i8x16.shr_u(b, 4), 2)),
        v128.or(i8x16.shl(i8x16.shr_u(c, 4), 4), i8x16.shl(i8x16.shr_u(e, 4), 6)),
      );
      v128.store(qh + l, h);
    }
  }
  v128.store(o + 192, v128.load(SC));
  putF16(o + 208, d);
}

/** Q6_K over nRows rows of nPerRow values (qw: importance weights per column, or 0). */
export function quantizeQ6_K(x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const nb = nPerRow >> 8;
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const i = r * nb + b;
      q6Block(x + <usize>i * 1024, qw ? qw + <usize>b * 1024 : 0, out + <usize>i * 210);
    }
  }
}
