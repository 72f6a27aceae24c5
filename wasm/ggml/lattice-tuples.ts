// The tuple steps the IQ2 and IQ3 kernels share, parameterized by the tuple's width: IQ3 rounds
// 4-tuples of 3-bit levels (0..7, lattice index Σ l_i·8^i), IQ2 (and IQ1's slot of iq2.ts) 8-tuples
// of 2-bit levels (0..2 searched, Σ l_i·4^i). Each step is @inline and the widths are constants at
// every call site, so the optimizer specializes the loops as if they were written per width (the
// kernels' speed does not change; bench ggml-kernels). Float operations keep ggml's order, so both
// kernels stay bit-exact with src/quant/ggml/iq2-quant.ts and iq3-quant.ts.
// Legend: dim = values per tuple, bits = bits per level, k = tuple index in the group, u = lattice
// index, g = grid point, pos = i8 coordinates 2l+1 of each grid point [size·dim].

import { nearestInt } from './common';
import { f32At } from './scratch';

/**
 * Rounds tuple k of the group's |x| (f32 at xval) at inverse scale id to levels 0..lmax into Lp
 * (i8 per value); returns the tuple's lattice index.
 */
// @ts-ignore: decorator
@inline export function roundTuple(xval: usize, k: i32, dim: i32, bits: i32, lmax: i32, id: f32, Lp: usize): i32 {
  let u = 0;
  for (let i = 0; i < dim; i++) {
    const l = max(0, min(lmax, nearestInt(<f32>0.5 * (id * f32At(xval, dim * k + i) - 1))));
    store<i8>(Lp + <usize>(dim * k + i), <i8>l);
    u |= l << (bits * i);
  }
  return u;
}

/**
 * Snaps off-grid tuple k to the neighbour (u16 grid indices list[s0..s1)) with the least
 * √w-weighted squared error at `scale` (waux = √w per value); levels → Lp. When no neighbour
 * compares below Inf (NaN distances on overflowing values; ggml asserts there) the levels are 0,
 * as the reference writes them.
 */
// @ts-ignore: decorator
@inline export function snapTuple(pos: usize, list: usize, s0: i32, s1: i32, dim: i32, xval: usize, waux: usize, k: i32, scale: f32, Lp: usize): void {
  let best: f32 = Infinity;
  let gi = -1;
  for (let j = s0; j < s1; j++) {
    const g = <i32>load<u16>(list + (<usize>j << 1));
    let d2: f32 = 0;
    for (let i = 0; i < dim; i++) {
      const diff: f32 = scale * <f32>load<i8>(pos + <usize>(dim * g + i)) - f32At(xval, dim * k + i);
      d2 += f32At(waux, dim * k + i) * diff * diff;
    }
    if (d2 < best) {
      best = d2;
      gi = g;
    }
  }
  if (gi < 0) {
    for (let i = 0; i < dim; i++) store<i8>(Lp + <usize>(dim * k + i), 0);
    return;
  }
  for (let i = 0; i < dim; i++) store<i8>(Lp + <usize>(dim * k + i), <i8>((<i32>load<i8>(pos + <usize>(dim * gi + i)) - 1) >> 1));
}

// levelFit results
export let fitQx: f32 = 0;
export let fitQ2: f32 = 0;

/** Σ w·x·q and Σ w·q² over the n values, q = 2L + 1 (levels at Lp, |x| at xval, w at wgt) → fitQx, fitQ2. */
// @ts-ignore: decorator
@inline export function levelFit(n: i32, Lp: usize, xval: usize, wgt: usize): void {
  let sumqx: f32 = 0;
  let sumq2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const qi: i32 = 2 * <i32>load<i8>(Lp + i) + 1;
    const q: f32 = <f32>qi;
    const w = f32At(wgt, i);
    sumqx += w * f32At(xval, i) * q;
    sumq2 += w * q * q;
  }
  fitQx = sumqx;
  fitQ2 = sumq2;
}

/**
 * Signs of the 8 values x[8j..8j+8): |x| → xval, bit i set for a value not >= 0. With `evenParity`
 * (7 stored sign bits, the eighth implied), an odd count of negatives flips the least important
 * value (least w·x²) instead: its |x| is stored negated and its bit toggled.
 */
// @ts-ignore: decorator
@inline export function signsOf8(x: usize, j: i32, xval: usize, wgt: usize, evenParity: bool): i32 {
  let s = 0;
  let nflip = 0;
  for (let i = 0; i < 8; i++) {
    const v = f32At(x, 8 * j + i);
    store<f32>(xval + (<usize>(8 * j + i) << 2), abs(v));
    if (!(v >= 0)) {
      s |= 1 << i;
      nflip++;
    }
  }
  if (evenParity && nflip & 1) {
    let imin = 0;
    let mn: f32 = f32At(wgt, 8 * j) * f32At(x, 8 * j) * f32At(x, 8 * j);
    for (let i = 1; i < 8; i++) {
      const a: f32 = f32At(wgt, 8 * j + i) * f32At(x, 8 * j + i) * f32At(x, 8 * j + i);
      if (a < mn) {
        mn = a;
        imin = i;
      }
    }
    store<f32>(xval + (<usize>(8 * j + imin) << 2), -f32At(xval, 8 * j + imin));
    s ^= 1 << imin;
  }
  return s;
}

/**
 * Appends to `list` (u16, from entry `at`, at most `cap` entries written) the grid points at the
 * `nwant` (≤ 3) smallest distinct squared distances from off-grid lattice point u, by distance then
 * index (as ggml builds its neighbour lists); d2 is i32 scratch [size]. Returns the next free entry
 * (counting entries past `cap`, so that an undersized pool shows).
 */
// @ts-ignore: decorator
@inline export function appendNeighbours(pos: usize, size: i32, dim: i32, bits: i32, u: i32, nwant: i32, d2: usize, list: usize, at: i32, cap: i32): i32 {
  const mask = (1 << bits) - 1;
  let lv0 = i32.MAX_VALUE;
  let lv1 = i32.MAX_VALUE;
  let lv2 = i32.MAX_VALUE;
  for (let g = 0; g < size; g++) {
    let s = 0;
    for (let i = 0; i < dim; i++) {
      const diff = <i32>load<i8>(pos + <usize>(dim * g + i)) - (2 * ((u >> (bits * i)) & mask) + 1);
      s += diff * diff;
    }
    store<i32>(d2 + (<usize>g << 2), s);
    if (s == lv0 || s == lv1 || s == lv2) continue;
    if (s < lv0) {
      lv2 = lv1;
      lv1 = lv0;
      lv0 = s;
    } else if (s < lv1) {
      lv2 = lv1;
      lv1 = s;
    } else if (s < lv2) lv2 = s;
  }
  let n = at;
  for (let j = 0; j < nwant; j++) {
    const lv = j == 0 ? lv0 : j == 1 ? lv1 : lv2;
    if (lv == i32.MAX_VALUE) continue;
    for (let g = 0; g < size; g++) {
      if (load<i32>(d2 + (<usize>g << 2)) != lv) continue;
      if (n < cap) store<u16>(list + (<usize>n << 1), <u16>g);
      n++;
    }
  }
  return n;
}
