// IQ4_NL (18 bytes / 32) and IQ4_XS (136 bytes / 256) with and without an importance matrix,
// bit-exact with src/quant/ggml/iq4.ts: per 32 values a scale search over 16 trial scales, each
// value mapped to the nearest entry of the non-linear table kvalues_iq4nl (ggml's
// best_index_int8). Four 32-value blocks run at once, one per lane; the nearest-entry lookup is
// done per lane by counting precomputed decision thresholds, the entry gathered with a swizzle.
// Legend: x = values, L = table indices (u8), o = output block.

import { nearestInt, putF16 } from './common';
import { transpose4 } from './fit';
import { LB, Laux, SCALES, WROW, Wt, X, f32At } from './scratch';

// kvalues_iq4nl as bytes (int8) for swizzle gathers, and as f32 for the comparisons
const TABLE = v128(-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113);
const TF = memory.data<f32>([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);
const EPS: f32 = 1e-15;

// @ts-ignore: decorator
@inline function sel(a: v128, b: v128, m: v128): v128 {
  return v128.bitselect(a, b, m);
}

/** Table bytes at the i32 lane indices (0..15) as f32 lanes. */
// @ts-ignore: decorator
@inline function gather(idx: v128): v128 {
  const b = i8x16.swizzle(TABLE, v128.or(idx, i32x4.splat(0xffffff00)));
  return f32x4.convert_i32x4_s(i32x4.shr_s(i32x4.shl(b, 24), 24));
}

// f32 values ordered as integers (−0 and +0 share 0), for a binary search over floats
// @ts-ignore: decorator
@inline function keyOf(f: f32): i32 {
  const b = reinterpret<i32>(f);
  return b >= 0 ? b : -(b & 0x7fffffff);
}
// @ts-ignore: decorator
@inline function fromKey(k: i32): f32 {
  return k >= 0 ? reinterpret<f32>(k) : reinterpret<f32>(-k | 0x80000000);
}

/**
 * Decision thresholds: between table entries a = T[k−1] and b = T[k], ggml picks b exactly when
 * !(fl(v − a) < fl(b − v)), a predicate monotone in v (rounding is monotone), so it holds from the
 * smallest such f32, THR[k], on. Found once by bisection over the f32 values in (a, b].
 */
const THR = memory.data(64, 16);
for (let k = 1; k < 16; k++) {
  const a = load<f32>(TF + (<usize>(k - 1) << 2));
  const b = load<f32>(TF + (<usize>k << 2));
  // i64: across zero the keys span more than 2^31
  let lo = <i64>keyOf(a); // predicate false here
  let hi = <i64>keyOf(b); // predicate true here
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    const v = fromKey(<i32>mid);
    if (!(v - a < b - v)) hi = mid;
    else lo = mid;
  }
  store<f32>(THR + (<usize>k << 2), fromKey(<i32>hi));
}

/**
 * best_index_int8 on four lanes: index (i32 lanes) of the nearest table value to v, as ggml's
 * binary search and f32 comparison pick it (an exact tie goes up; ≤ first → 0, ≥ last → 15, NaN
 * → 15): the number of thresholds THR[1..15] that v reaches.
 */
function bestIndex4(v: v128): v128 {
  let cnt = i32x4.splat(0);
  for (let k = 1; k < 16; k++) cnt = i32x4.sub(cnt, f32x4.ge(v, f32x4.splat(load<f32>(THR + (<usize>k << 2)))));
  return sel(i32x4.splat(15), cnt, f32x4.ne(v, v));
}

/**
 * The scale search of four 32-value blocks (transposed X, W at xq, wq): per lane the least-squares
 * scale of the best of 16 trials, 0 for a block whose max |x| < 1e-15.
 */
function searchQuad(xq: usize, wq: usize): v128 {
  const zero = f32x4.splat(0);
  let amax = zero;
  let max = zero;
  for (let j = 0; j < 32; j++) {
    const v = v128.load(xq + (<usize>j << 4));
    const ax = f32x4.abs(v);
    const gt = f32x4.gt(ax, amax);
    amax = sel(ax, amax, gt);
    max = sel(v, max, gt);
  }
  const dead = f32x4.lt(amax, f32x4.splat(EPS));
  let d = f32x4.div(f32x4.neg(max), f32x4.splat(-127));
  let id = f32x4.div(f32x4.splat(1), d);
  let sumqx = zero;
  let sumq2 = zero;
  for (let j = 0; j < 32; j++) {
    const o = <usize>j << 4;
    const x = v128.load(xq + o);
    const q = gather(bestIndex4(f32x4.mul(id, x)));
    const wqv = f32x4.mul(v128.load(wq + o), q);
    sumqx = f32x4.add(sumqx, f32x4.mul(wqv, x));
    sumq2 = f32x4.add(sumq2, f32x4.mul(wqv, q));
  }
  d = sel(f32x4.div(sumqx, sumq2), zero, f32x4.gt(sumq2, zero));
  let best = f32x4.mul(d, sumqx);
  for (let itry = -7; itry <= 7; itry++) {
    id = f32x4.div(f32x4.splat(<f32>(itry - 127)), max);
    sumqx = zero;
    sumq2 = zero;
    for (let j = 0; j < 32; j++) {
      const o = <usize>j << 4;
      const x = v128.load(xq + o);
      const q = gather(bestIndex4(f32x4.mul(id, x)));
      const wqv = f32x4.mul(v128.load(wq + o), q);
      sumqx = f32x4.add(sumqx, f32x4.mul(wqv, x));
      sumq2 = f32x4.add(sumq2, f32x4.mul(wqv, q));
    }
    const better = v128.and(f32x4.gt(sumq2, zero), f32x4.gt(f32x4.mul(sumqx, sumqx), f32x4.mul(best, sumq2)));
    d = sel(f32x4.div(sumqx, sumq2), d, better);
    best = sel(f32x4.mul(d, sumqx), best, better);
  }
  return sel(zero, d, dead);
}

/** Indices of 32 values at x (contiguous) for inverse scale id → LB[at..at+32). */
function indices32(x: usize, id: f32, at: usize): void {
  const vid = f32x4.splat(id);
  for (let j = 0; j < 32; j += 4) {
    const i = bestIndex4(f32x4.mul(vid, v128.load(x + (<usize>j << 2))));
    store<u8>(LB + at + j, <u8>i32x4.extract_lane(i, 0));
    store<u8>(LB + at + j + 1, <u8>i32x4.extract_lane(i, 1));
    store<u8>(LB + at + j + 2, <u8>i32x4.extract_lane(i, 2));
    store<u8>(LB + at + j + 3, <u8>i32x4.extract_lane(i, 3));
  }
}

/** Weights of n values at x into WROW: qw·√(σ² + x²) with σ² = 2·Σx²/n, or x² without qw. */
function weights(x: usize, qw: usize, n: i32): void {
  let s2: f32 = 0;
  for (let j = 0; j < n; j++) {
    const v = f32At(x, j);
    s2 += v * v;
  }
  const sigma2: f32 = s2 * (<f32>2 / <f32>n);
  for (let j = 0; j < n; j++) {
    const v = f32At(x, j);
    store<f32>(WROW + (<usize>j << 2), qw ? f32At(qw, j) * Mathf.sqrt(sigma2 + v * v) : v * v);
  }
}

/** Nibbles of 32 indices at LB[at..]: byte j = L[j] | L[j+16] << 4. */
function pack16(at: usize, o: usize): void {
  v128.store(o, v128.or(v128.load(LB + at), i16x8.shl(v128.load(LB + at + 16), 4)));
}

/** IQ4_XS super-blocks. */
export function quantizeIq4Xs(x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const nb = nPerRow >> 8;
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const xs = x + <usize>(r * nb + b) * 1024;
      const o = out + <usize>(r * nb + b) * 136;
      weights(xs, qw ? qw + <usize>b * 1024 : 0, 256);
      for (let q = 0; q < 2; q++) {
        const g = xs + <usize>q * 512;
        const w = WROW + <usize>q * 512;
        transpose4(g, g + 128, g + 256, g + 384, 32, X);
        transpose4(w, w + 128, w + 256, w + 384, 32, Wt);
        v128.store(SCALES + <usize>q * 16, searchQuad(X, Wt));
      }
      let maxScale: f32 = 0;
      let amaxScale: f32 = 0;
      for (let ib = 0; ib < 8; ib++) {
        const s = f32At(SCALES, ib);
        if (abs(s) > amaxScale) {
          amaxScale = abs(s);
          maxScale = s;
        }
      }
      const d: f32 = -maxScale / 32;
      const id: f32 = d != 0 ? <f32>1 / d : 0;
      let sh: u32 = 0;
      for (let ib = 0; ib < 8; ib++) {
        const l = max(-32, min(31, nearestInt(id * f32At(SCALES, ib))));
        const dl: f32 = d * <f32>l;
        indices32(xs + <usize>ib * 128, dl != 0 ? <f32>1 / dl : 0, <usize>ib * 32);
        const sub = <u32>(l + 32);
        sh |= (sub >> 4) << (2 * ib);
        const p = o + 4 + (ib >> 1);
        if (ib & 1) store<u8>(p, load<u8>(p) | <u8>((sub & 15) << 4));
        else store<u8>(p, <u8>(sub & 15));
      }
      putF16(o, d);
      store<u16>(o + 2, <u16>sh);
      for (let ib = 0; ib < 8; ib++) pack16(<usize>ib * 32, o + 8 + <usize>ib * 16);
    }
  }
}

/** IQ4_NL blocks (each 32 values its own super-block: σ² over the block, scale not re-quantized). */
export function quantizeIq4Nl(x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const nb = nPerRow >> 5;
  for (let r = 0; r < nRows; r++) {
    for (let b0 = 0; b0 < nb; b0 += 4) {
      const n = min(4, nb - b0);
      // up to four blocks in the lanes; missing lanes repeat the last block and are ignored
      for (let k = 0; k < 4; k++) {
        const b = b0 + min(k, n - 1);
        weights(x + <usize>(r * nb + b) * 128, qw ? qw + <usize>b * 128 : 0, 32);
        memory.copy(Laux + <usize>k * 128, WROW, 128);
      }
      transpose4(blk(x, r, nb, b0, 0, n), blk(x, r, nb, b0, 1, n), blk(x, r, nb, b0, 2, n), blk(x, r, nb, b0, 3, n), 32, X);
      transpose4(Laux, Laux + 128, Laux + 256, Laux + 384, 32, Wt);
      v128.store(SCALES, searchQuad(X, Wt));
      for (let k = 0; k < n; k++) {
        const xs = x + <usize>(r * nb + b0 + k) * 128;
        const d = f32At(SCALES, k);
        indices32(xs, d != 0 ? <f32>1 / d : 0, 0);
        const o = out + <usize>(r * nb + b0 + k) * 18;
        putF16(o, d);
        pack16(0, o + 2);
      }
    }
  }
}

// @ts-ignore: decorator
@inline function blk(x: usize, r: i32, nb: i32, b0: i32, k: i32, n: i32): usize {
  return x + <usize>(r * nb + b0 + min(k, n - 1)) * 128;
}

/** best_index_int8 of one value (lane 0 of bestIndex4), exported for the tests. */
export function iq4BestIndex(v: f32): i32 {
  return i32x4.extract_lane(bestIndex4(f32x4.splat(v)), 0);
}
