// Four-lane scale searches: ggml's make_qkx2/qkx3_quants and make_qx_quants run on four
// independent groups at once, one group per f32x4 lane. Each lane performs exactly the scalar
// sequence of src/quant/ggml/fit.ts (same sums in the same order, same comparisons), so the
// result of every lane is bit-identical to the scalar routine on that group; data-dependent
// branches become per-lane selects.
// Layout ("transposed"): X, W, L hold n v128 values; lane g of entry i is value i of group g.
// Legend: n = values per group (16 or 32), nmax = largest level.

import { nearestInt, nearestInt4 } from './common';

/** Transposes four groups of n floats (at p0..p3) into n lanes-of-4 vectors at dst. */
export function transpose4(p0: usize, p1: usize, p2: usize, p3: usize, n: i32, dst: usize): void {
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    const a = v128.load(p0 + o);
    const b = v128.load(p1 + o);
    const c = v128.load(p2 + o);
    const d = v128.load(p3 + o);
    const t0 = v128.shuffle<f32>(a, b, 0, 4, 1, 5);
    const t1 = v128.shuffle<f32>(a, b, 2, 6, 3, 7);
    const t2 = v128.shuffle<f32>(c, d, 0, 4, 1, 5);
    const t3 = v128.shuffle<f32>(c, d, 2, 6, 3, 7);
    const q = dst + (<usize>i << 4);
    v128.store(q, v128.shuffle<f32>(t0, t2, 0, 1, 4, 5));
    v128.store(q, v128.shuffle<f32>(t0, t2, 2, 3, 6, 7), 16);
    v128.store(q, v128.shuffle<f32>(t1, t3, 0, 1, 4, 5), 32);
    v128.store(q, v128.shuffle<f32>(t1, t3, 2, 3, 6, 7), 48);
  }
}

/** Lane-wise a if mask else b. */
// @ts-ignore: decorator
@inline function sel(a: v128, b: v128, mask: v128): v128 {
  return v128.bitselect(a, b, mask);
}

/** clamp(nearest_int(v), lo, hi) (ggml's bit trick, i32 lo/hi lanes) as f32 lanes. */
// @ts-ignore: decorator
@inline function roundClamp(v: v128, lo: v128, hi: v128): v128 {
  return f32x4.convert_i32x4_s(i32x4.min_s(i32x4.max_s(nearestInt4(v), lo), hi));
}

/**
 * roundClamp in the float domain (f32 lo/hi lanes), valid when every |v| < 2^21: there ggml's
 * nearest_int is round-half-to-even (f32x4.nearest) and all lanes are finite. Fewer operations;
 * callers check the bound for the whole step and fall back to roundClamp otherwise.
 */
// @ts-ignore: decorator
@inline function roundClampF(v: v128, lo: v128, hi: v128): v128 {
  return f32x4.pmin(hi, f32x4.pmax(lo, f32x4.nearest(v)));
}

/** Whether every lane of |a|·b is below 2^21 (false for NaN). */
// @ts-ignore: decorator
@inline function small(a: v128, b: v128): bool {
  return i32x4.all_true(f32x4.lt(f32x4.mul(f32x4.abs(a), b), f32x4.splat(2097152.0)));
}

/** Results of the last makeQkx4 call: per-lane scale and (negated, ≥ 0) min. */
export let qkxScale: v128 = f32x4.splat(0);
export let qkxMin: v128 = f32x4.splat(0);

/**
 * make_qkx2_quants / make_qkx3_quants on four groups (see fit.ts makeQkxQuants). X, W: n
 * vectors each; L receives the levels as f32 lanes; Laux is scratch (n vectors). Results in
 * qkxScale / qkxMin.
 */
export function makeQkx4(n: i32, nmax: i32, X: usize, W: usize, L: usize, Laux: usize, rmin: f32, rdelta: f32, nstep: i32, useMad: bool): void {
  const zero = f32x4.splat(0);
  let min = v128.load(X);
  let max = min;
  let sumW = v128.load(W);
  let sumX = f32x4.mul(sumW, min);
  for (let i = 1; i < n; i++) {
    const o = <usize>i << 4;
    const xi = v128.load(X + o);
    min = sel(xi, min, f32x4.lt(xi, min));
    max = sel(xi, max, f32x4.gt(xi, max));
    const wi = v128.load(W + o);
    sumW = f32x4.add(sumW, wi);
    sumX = f32x4.add(sumX, f32x4.mul(wi, xi));
  }
  min = sel(zero, min, f32x4.gt(min, zero));
  const min0 = min; // every value lies in [min0, max]
  // lanes with max <= min return all-zero levels, scale 0, −min (decided now, applied at the end)
  const dead = f32x4.le(max, min);
  const deadMin = f32x4.neg(min);
  const lo = i32x4.splat(0);
  const hi = i32x4.splat(nmax);
  const loF = f32x4.splat(0);
  const fnmax = f32x4.splat(<f32>nmax);
  let iscale = f32x4.div(fnmax, f32x4.sub(max, min));
  let scale = f32x4.div(f32x4.splat(1), iscale);
  let bestErr = zero;
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 4;
    const xi = v128.load(X + o);
    const l = roundClamp(f32x4.mul(iscale, f32x4.sub(xi, min)), lo, hi);
    v128.store(L + o, l);
    let diff = f32x4.sub(f32x4.add(f32x4.mul(scale, l), min), xi);
    diff = useMad ? f32x4.abs(diff) : f32x4.mul(diff, diff);
    bestErr = f32x4.add(bestErr, f32x4.mul(v128.load(W + o), diff));
  }
  if (nstep >= 1) {
    for (let is = 0; is <= nstep; is++) {
      const num: f32 = rmin + rdelta * <f32>is + <f32>nmax;
      iscale = f32x4.div(f32x4.splat(num), f32x4.sub(max, min));
      // |x − min| ≤ max(|max − min|, |min0 − min|): all lanes small → the float-domain rounding
      const fast = small(iscale, f32x4.max(f32x4.abs(f32x4.sub(max, min)), f32x4.abs(f32x4.sub(min0, min))));
      let sumL = zero;
      let sumL2 = zero;
      let sumXL = zero;
      // the two loops differ only in the rounding (a per-lane select would compute both)
      if (fast) {
        for (let i = 0; i < n; i++) {
          const o = <usize>i << 4;
          const xi = v128.load(X + o);
          const l = roundClampF(f32x4.mul(iscale, f32x4.sub(xi, min)), loF, fnmax);
          v128.store(Laux + o, l);
          const wl = f32x4.mul(v128.load(W + o), l);
          sumL = f32x4.add(sumL, wl);
          sumL2 = f32x4.add(sumL2, f32x4.mul(wl, l));
          sumXL = f32x4.add(sumXL, f32x4.mul(wl, xi));
        }
      } else {
        for (let i = 0; i < n; i++) {
          const o = <usize>i << 4;
          const xi = v128.load(X + o);
          const l = roundClamp(f32x4.mul(iscale, f32x4.sub(xi, min)), lo, hi);
          v128.store(Laux + o, l);
          const wl = f32x4.mul(v128.load(W + o), l);
          sumL = f32x4.add(sumL, wl);
          sumL2 = f32x4.add(sumL2, f32x4.mul(wl, l));
          sumXL = f32x4.add(sumXL, f32x4.mul(wl, xi));
        }
      }
      const D = f32x4.sub(f32x4.mul(sumW, sumL2), f32x4.mul(sumL, sumL));
      const live = f32x4.gt(D, zero);
      if (!v128.any_true(live)) continue;
      let thisScale = f32x4.div(f32x4.sub(f32x4.mul(sumW, sumXL), f32x4.mul(sumX, sumL)), D);
      let thisMin = f32x4.div(f32x4.sub(f32x4.mul(sumL2, sumX), f32x4.mul(sumL, sumXL)), D);
      const pos = f32x4.gt(thisMin, zero);
      thisMin = sel(zero, thisMin, pos);
      thisScale = sel(f32x4.div(sumXL, sumL2), thisScale, pos);
      let err = zero;
      for (let i = 0; i < n; i++) {
        const o = <usize>i << 4;
        let diff = f32x4.sub(f32x4.add(f32x4.mul(thisScale, v128.load(Laux + o)), thisMin), v128.load(X + o));
        diff = useMad ? f32x4.abs(diff) : f32x4.mul(diff, diff);
        err = f32x4.add(err, f32x4.mul(v128.load(W + o), diff));
      }
      const better = v128.and(live, f32x4.lt(err, bestErr));
      if (!v128.any_true(better)) continue;
      for (let i = 0; i < n; i++) {
        const o = <usize>i << 4;
        v128.store(L + o, sel(v128.load(Laux + o), v128.load(L + o), better));
      }
      bestErr = sel(err, bestErr, better);
      scale = sel(thisScale, scale, better);
      min = sel(thisMin, min, better);
    }
  }
  if (v128.any_true(dead)) {
    for (let i = 0; i < n; i++) {
      const o = <usize>i << 4;
      v128.store(L + o, sel(zero, v128.load(L + o), dead));
    }
  }
  qkxScale = sel(zero, scale, dead);
  qkxMin = sel(deadMin, f32x4.neg(min), dead);
}

/**
 * make_qx_quants with rmse_type 1 on four groups (see fit.ts makeQxQuants): weights W (n
 * vectors; pass W = 0 for x² weights), levels l + nmax written to L as f32 lanes; Laux scratch.
 * Returns the per-lane scale.
 */
export function makeQx4(n: i32, nmax: i32, X: usize, W: usize, L: usize, Laux: usize): v128 {
  const zero = f32x4.splat(0);
  let amax = zero;
  let max = zero;
  for (let i = 0; i < n; i++) {
    const xi = v128.load(X + (<usize>i << 4));
    const ax = f32x4.abs(xi);
    const gt = f32x4.gt(ax, amax);
    amax = sel(ax, amax, gt);
    max = sel(xi, max, gt);
  }
  const dead = f32x4.lt(f32x4.abs(max), f32x4.splat(GROUP_EPS));
  const lo = i32x4.splat(-nmax);
  const hi = i32x4.splat(nmax - 1);
  const loF = f32x4.splat(<f32>-nmax);
  const hiF = f32x4.splat(<f32>(nmax - 1));
  const off = f32x4.splat(<f32>nmax);
  let iscale = f32x4.div(f32x4.splat(<f32>-nmax), max);
  let sumlx = zero;
  let suml2 = zero;
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 4;
    const xi = v128.load(X + o);
    const l = roundClamp(f32x4.mul(iscale, xi), lo, hi);
    v128.store(L + o, f32x4.add(l, off));
    const w = W ? v128.load(W + o) : f32x4.mul(xi, xi);
    sumlx = f32x4.add(sumlx, f32x4.mul(f32x4.mul(w, xi), l));
    suml2 = f32x4.add(suml2, f32x4.mul(f32x4.mul(w, l), l));
  }
  let scale = sel(f32x4.div(sumlx, suml2), zero, f32x4.ne(suml2, zero));
  let best = f32x4.mul(scale, sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is == 0) continue;
    const num: f32 = -(<f32>nmax + <f32>0.1 * <f32>is);
    iscale = f32x4.div(f32x4.splat(num), max);
    const fast = small(iscale, amax); // |x| ≤ amax
    sumlx = zero;
    suml2 = zero;
    if (fast) {
      for (let i = 0; i < n; i++) {
        const o = <usize>i << 4;
        const xi = v128.load(X + o);
        const l = roundClampF(f32x4.mul(iscale, xi), loF, hiF);
        v128.store(Laux + o, l);
        const w = W ? v128.load(W + o) : f32x4.mul(xi, xi);
        sumlx = f32x4.add(sumlx, f32x4.mul(f32x4.mul(w, xi), l));
        suml2 = f32x4.add(suml2, f32x4.mul(f32x4.mul(w, l), l));
      }
    } else {
      for (let i = 0; i < n; i++) {
        const o = <usize>i << 4;
        const xi = v128.load(X + o);
        const l = roundClamp(f32x4.mul(iscale, xi), lo, hi);
        v128.store(Laux + o, l);
        const w = W ? v128.load(W + o) : f32x4.mul(xi, xi);
        sumlx = f32x4.add(sumlx, f32x4.mul(f32x4.mul(w, xi), l));
        suml2 = f32x4.add(suml2, f32x4.mul(f32x4.mul(w, l), l));
      }
    }
    const better = v128.and(f32x4.gt(suml2, zero), f32x4.gt(f32x4.mul(sumlx, sumlx), f32x4.mul(best, suml2)));
    if (!v128.any_true(better)) continue;
    for (let i = 0; i < n; i++) {
      const o = <usize>i << 4;
      v128.store(L + o, sel(f32x4.add(v128.load(Laux + o), off), v128.load(L + o), better));
    }
    scale = sel(f32x4.div(sumlx, suml2), scale, better);
    best = sel(f32x4.mul(scale, sumlx), best, better);
  }
  if (v128.any_true(dead)) {
    for (let i = 0; i < n; i++) {
      const o = <usize>i << 4;
      v128.store(L + o, sel(zero, v128.load(L + o), dead));
    }
    scale = sel(zero, scale, dead);
  }
  return scale;
}

// @ts-ignore: decorator
@inline const GROUP_EPS: f32 = 1e-15;

/**
 * make_q3_quants on four groups (see fit.ts makeQ3Quants): x²-weighted levels with up to five
 * coordinate-descent passes. A pass that changes nothing in a lane leaves that lane's state as
 * it was, so later passes change nothing there either: running passes until no lane changes is
 * the scalar loop with its early break. L receives l + nmax (0 for an all-zero group) as f32.
 */
export function makeQ3x4(n: i32, nmax: i32, X: usize, L: usize): v128 {
  const zero = f32x4.splat(0);
  let amax = zero;
  let max = zero;
  for (let i = 0; i < n; i++) {
    const xi = v128.load(X + (<usize>i << 4));
    const ax = f32x4.abs(xi);
    const gt = f32x4.gt(ax, amax);
    amax = sel(ax, amax, gt);
    max = sel(xi, max, gt);
  }
  const dead = f32x4.lt(f32x4.abs(max), f32x4.splat(GROUP_EPS));
  const lo = i32x4.splat(-nmax);
  const hi = i32x4.splat(nmax - 1);
  const iscale = f32x4.div(f32x4.splat(<f32>-nmax), max);
  let sumlx = zero;
  let suml2 = zero;
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 4;
    const xi = v128.load(X + o);
    const l = roundClamp(f32x4.mul(iscale, xi), lo, hi);
    v128.store(L + o, l);
    const w = f32x4.mul(xi, xi);
    sumlx = f32x4.add(sumlx, f32x4.mul(f32x4.mul(w, xi), l));
    suml2 = f32x4.add(suml2, f32x4.mul(f32x4.mul(w, l), l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = v128.splat<i32>(0);
    for (let i = 0; i < n; i++) {
      const o = <usize>i << 4;
      const xi = v128.load(X + o);
      const li = v128.load(L + o);
      const w = f32x4.mul(xi, xi);
      const wx = f32x4.mul(w, xi);
      const slx = f32x4.sub(sumlx, f32x4.mul(wx, li));
      const sl2 = f32x4.sub(suml2, f32x4.mul(f32x4.mul(w, li), li));
      const nl = roundClamp(f32x4.div(f32x4.mul(xi, sl2), slx), lo, hi);
      const slxN = f32x4.add(slx, f32x4.mul(wx, nl));
      const sl2N = f32x4.add(sl2, f32x4.mul(f32x4.mul(w, nl), nl));
      const better = f32x4.gt(f32x4.mul(f32x4.mul(slxN, slxN), suml2), f32x4.mul(f32x4.mul(sumlx, sumlx), sl2N));
      const accept = v128.and(v128.and(f32x4.gt(slx, zero), f32x4.ne(nl, li)), v128.and(f32x4.gt(sl2N, zero), better));
      v128.store(L + o, sel(nl, li, accept));
      sumlx = sel(slxN, sumlx, accept);
      suml2 = sel(sl2N, suml2, accept);
      changed = v128.or(changed, accept);
    }
    if (!v128.any_true(changed)) break;
  }
  const off = f32x4.splat(<f32>nmax);
  for (let i = 0; i < n; i++) {
    const o = <usize>i << 4;
    v128.store(L + o, sel(zero, f32x4.add(v128.load(L + o), off), dead));
  }
  return sel(zero, sel(f32x4.div(sumlx, suml2), zero, f32x4.gt(suml2, zero)), dead);
}

/**
 * make_qx_quants with rmse_type 1 and weights, one group (scalar; fit.ts makeQxQuants): n f32
 * at xp, weights at wp, levels l + nmax (u8) at Lp. Returns the scale.
 */
export function makeQx1(n: i32, nmax: i32, xp: usize, wp: usize, Lp: usize): f32 {
  let amax: f32 = 0;
  let mx: f32 = 0;
  for (let i = 0; i < n; i++) {
    const v = load<f32>(xp + (<usize>i << 2));
    if (abs(v) > amax) {
      amax = abs(v);
      mx = v;
    }
  }
  if (abs(mx) < GROUP_EPS) {
    for (let i = 0; i < n; i++) store<u8>(Lp + i, 0);
    return 0;
  }
  let iscale: f32 = <f32>-nmax / mx;
  let sumlx: f32 = 0;
  let suml2: f32 = 0;
  for (let i = 0; i < n; i++) {
    const xi = load<f32>(xp + (<usize>i << 2));
    const l = max(-nmax, min(nmax - 1, nearestInt(iscale * xi)));
    store<u8>(Lp + i, <u8>(l + nmax));
    const w = load<f32>(wp + (<usize>i << 2));
    sumlx += w * xi * <f32>l;
    suml2 += w * <f32>l * <f32>l;
  }
  let scale: f32 = suml2 != 0 ? sumlx / suml2 : 0;
  let best: f32 = scale * sumlx;
  for (let is = -9; is <= 9; is++) {
    if (is == 0) continue;
    iscale = -(<f32>nmax + <f32>0.1 * <f32>is) / mx;
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = load<f32>(xp + (<usize>i << 2));
      const l = <f32>max(-nmax, min(nmax - 1, nearestInt(iscale * xi)));
      const w = load<f32>(wp + (<usize>i << 2));
      sumlx += w * xi * l;
      suml2 += w * l * l;
    }
    if (suml2 > 0 && sumlx * sumlx > best * suml2) {
      for (let i = 0; i < n; i++) {
        const l = max(-nmax, min(nmax - 1, nearestInt(iscale * load<f32>(xp + (<usize>i << 2)))));
        store<u8>(Lp + i, <u8>(l + nmax));
      }
      scale = sumlx / suml2;
      best = scale * sumlx;
    }
  }
  return scale;
}
