// Scale/min search routines shared by the ggml quantizers (REFERENCE §6.2). All arithmetic is
// float32 (`fr` at every C float step) so the chosen levels and scales match ggml bit for bit.
//
// Legend: n = values in the group, nmax = largest level, L = output levels ([n]),
// w = per-value weights ([n]).

import { GROUP_MAX_EPS, nearestInt as nearestInt_ } from './common.js';

// Local bindings: calls through an imported binding can cost a getter per call under some loaders.
const fr = Math.fround;
const nearestInt = nearestInt_;

const F_0_1 = fr(0.1);
// per-call weight scratch (single-threaded module state; every call overwrites what it reads)
const SCRATCH_W = new Float32Array(256);
const SCRATCH_W2 = new Float32Array(256);

/** Weight of value x for make_qx_quants' rmse_type when no importance weights are given. */
function rmseWeight(x: number, rmseType: number): number {
  switch (rmseType) {
    case 1:
      return fr(x * x);
    case 2:
      return 1;
    case 3:
      return Math.abs(x);
    default:
      return fr(Math.sqrt(Math.abs(x)));
  }
}

/** The element of largest magnitude, with its sign (the first one on ties), as ggml's group scans pick it. */
function signedAbsMax(x: Float32Array, xo: number, n: number): number {
  let max = 0;
  let amax = 0;
  for (let i = 0; i < n; i++) {
    const ax = Math.abs(x[xo + i]);
    if (ax > amax) {
      amax = ax;
      max = x[xo + i];
    }
  }
  return max;
}

/**
 * Symmetric signed levels: L[i] = clamp(round(x·iscale), −nmax, nmax−1) + nmax, with iscale
 * = −nmax/max (max = signed element of largest magnitude), then the weighted least-squares scale,
 * then 18 perturbed iscales keeping the one with the largest (Σwxl)²/Σwl². Returns the scale.
 * rmseType < 0 returns early (mean of the LS scale and 1/iscale); 0 skips the search.
 */
export function makeQxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  L: Int8Array | Uint8Array,
  rmseType: number,
  qw: Float32Array | undefined,
  xo = 0,
  qo = 0,
): number {
  const max = signedAbsMax(x, xo, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[i] = 0;
    return 0;
  }
  let iscale = fr(-nmax / max);
  if (rmseType === 0) {
    for (let i = 0; i < n; i++) {
      const l = nearestInt(fr(iscale * x[xo + i]));
      L[i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
    }
    return fr(1 / iscale);
  }
  let returnEarly = false;
  if (rmseType < 0) {
    rmseType = -rmseType;
    returnEarly = true;
  }
  // weights once per call (float32 values, so storing them in a Float32Array is exact)
  const W = n <= SCRATCH_W.length ? SCRATCH_W : new Float32Array(n);
  for (let i = 0; i < n; i++) W[i] = qw ? qw[qo + i] : rmseWeight(x[xo + i], rmseType);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    let l = nearestInt(fr(iscale * xi));
    l = Math.max(-nmax, Math.min(nmax - 1, l));
    L[i] = l + nmax;
    const w = W[i];
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  let scale = suml2 !== 0 ? fr(sumlx / suml2) : 0; // C: a NaN sum is "true"
  if (returnEarly) return suml2 > 0 ? fr(0.5 * fr(scale + fr(1 / iscale))) : fr(1 / iscale);
  let best = fr(scale * sumlx);
  for (let is = -9; is <= 9; is++) {
    if (is === 0) continue;
    iscale = fr(-fr(nmax + fr(F_0_1 * is)) / max);
    sumlx = 0;
    suml2 = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      let l = nearestInt(fr(iscale * xi));
      l = Math.max(-nmax, Math.min(nmax - 1, l));
      const w = W[i];
      sumlx = fr(sumlx + fr(fr(w * xi) * l));
      suml2 = fr(suml2 + fr(fr(w * l) * l));
    }
    if (suml2 > 0 && fr(sumlx * sumlx) > fr(best * suml2)) {
      for (let i = 0; i < n; i++) {
        const l = nearestInt(fr(iscale * x[xo + i]));
        L[i] = nmax + Math.max(-nmax, Math.min(nmax - 1, l));
      }
      scale = fr(sumlx / suml2);
      best = fr(scale * sumlx);
    }
  }
  return scale;
}

/** Result of an asymmetric fit: y ≈ scale·L − min (min ≥ 0 is stored negated, as ggml does). */
export interface ScaleMin {
  scale: number;
  min: number;
}

/**
 * Asymmetric levels L ∈ [0, nmax] with an offset (make_qkx2_quants / make_qkx3_quants): start
 * from min/max, try iscale = (rmin + rdelta·is + nmax)/(max − min) for is = 0..nstep, solve the
 * weighted 2×2 least squares for (scale, min ≤ 0) and keep the lowest weighted error (L1 when
 * useMad, else L2). `w` undefined means weights x² (qkx3's default). `zeroIfEqual` selects
 * qkx2's `max == min` test versus qkx3's `max <= min` (identical for finite input).
 */
export function makeQkxQuants(
  n: number,
  nmax: number,
  x: Float32Array,
  w: Float32Array | undefined,
  L: Uint8Array,
  Laux: Uint8Array,
  rmin: number,
  rdelta: number,
  nstep: number,
  useMad: boolean,
  xo = 0,
  wo = 0,
): ScaleMin {
  const W = n <= SCRATCH_W2.length ? SCRATCH_W2 : new Float32Array(n);
  for (let i = 0; i < n; i++) W[i] = w ? w[wo + i] : fr(x[xo + i] * x[xo + i]);
  let min = x[xo];
  let max = x[xo];
  let sumW = W[0];
  let sumX = fr(sumW * x[xo]);
  for (let i = 1; i < n; i++) {
    const xi = x[xo + i];
    if (xi < min) min = xi;
    if (xi > max) max = xi;
    const wi = W[i];
    sumW = fr(sumW + wi);
    sumX = fr(sumX + fr(wi * xi));
  }
  if (min > 0) min = 0;
  if (max <= min) {
    for (let i = 0; i < n; i++) L[i] = 0;
    return { scale: 0, min: -min };
  }
  let iscale = fr(nmax / fr(max - min));
  let scale = fr(1 / iscale);
  let bestErr = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const l = nearestInt(fr(iscale * fr(xi - min)));
    L[i] = Math.max(0, Math.min(nmax, l));
    let diff = fr(fr(fr(scale * L[i]) + min) - xi);
    diff = useMad ? Math.abs(diff) : fr(diff * diff);
    bestErr = fr(bestErr + fr(W[i] * diff));
  }
  if (nstep < 1) return { scale, min: -min };
  for (let is = 0; is <= nstep; is++) {
    // rmin, rdelta: float32 values. `min` may have moved to an earlier candidate's fitted
    // offset: ggml keeps searching from there (both the range and the origin shift).
    iscale = fr(fr(fr(rmin + fr(rdelta * is)) + nmax) / fr(max - min));
    let sumL = 0;
    let sumL2 = 0;
    let sumXL = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      let l = nearestInt(fr(iscale * fr(xi - min)));
      l = Math.max(0, Math.min(nmax, l));
      Laux[i] = l;
      const wi = W[i];
      const wl = fr(wi * l);
      sumL = fr(sumL + wl);
      sumL2 = fr(sumL2 + fr(wl * l));
      sumXL = fr(sumXL + fr(wl * xi));
    }
    const D = fr(fr(sumW * sumL2) - fr(sumL * sumL));
    if (D > 0) {
      let thisScale = fr(fr(fr(sumW * sumXL) - fr(sumX * sumL)) / D);
      let thisMin = fr(fr(fr(sumL2 * sumX) - fr(sumL * sumXL)) / D);
      if (thisMin > 0) {
        thisMin = 0;
        thisScale = fr(sumXL / sumL2);
      }
      let err = 0;
      for (let i = 0; i < n; i++) {
        let diff = fr(fr(fr(thisScale * Laux[i]) + thisMin) - x[xo + i]);
        diff = useMad ? Math.abs(diff) : fr(diff * diff);
        err = fr(err + fr(W[i] * diff));
      }
      if (err < bestErr) {
        for (let i = 0; i < n; i++) L[i] = Laux[i];
        bestErr = err;
        scale = thisScale;
        min = thisMin;
      }
    }
  }
  return { scale, min: -min };
}

/**
 * Symmetric levels with an x²-weighted coordinate-descent refinement (make_q3_quants): start at
 * iscale = −nmax/max, then up to 5 passes that move single levels when that raises
 * (Σwxl)²/Σwl². L gets l + nmax ∈ [0, 2·nmax). Returns the least-squares scale.
 */
export function makeQ3Quants(n: number, nmax: number, x: Float32Array, xo: number, L: Int8Array): number {
  const max = signedAbsMax(x, xo, n);
  if (Math.abs(max) < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[i] = 0;
    return 0;
  }
  const iscale = fr(-nmax / max);
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const xi = x[xo + i];
    const l = Math.max(-nmax, Math.min(nmax - 1, nearestInt(fr(iscale * xi))));
    L[i] = l;
    const w = fr(xi * xi);
    sumlx = fr(sumlx + fr(fr(w * xi) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const xi = x[xo + i];
      const w = fr(xi * xi);
      let slx = fr(sumlx - fr(fr(w * xi) * L[i]));
      if (slx > 0) {
        let sl2 = fr(suml2 - fr(fr(w * L[i]) * L[i]));
        let nl = nearestInt(fr(fr(xi * sl2) / slx));
        nl = Math.max(-nmax, Math.min(nmax - 1, nl));
        if (nl !== L[i]) {
          slx = fr(slx + fr(fr(w * xi) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (sl2 > 0 && fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  for (let i = 0; i < n; i++) L[i] += nmax;
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}

/**
 * Positive levels 0..nmax for non-negative values (make_qp_quants, used on K-quant sub-scales
 * and mins with weights qw = per-group weight sums): best of 9 trial scales by weighted MSE, then
 * up to 5 coordinate-descent passes. Returns the least-squares scale.
 */
export function makeQpQuants(n: number, nmax: number, x: Float32Array, L: Uint8Array, qw: Float32Array): number {
  let max = 0;
  for (let i = 0; i < n; i++) max = Math.max(max, x[i]);
  if (max < GROUP_MAX_EPS) {
    for (let i = 0; i < n; i++) L[i] = 0;
    return 0;
  }
  let iscale = fr(nmax / max);
  for (let i = 0; i < n; i++) L[i] = nearestInt(fr(iscale * x[i]));
  const scale = fr(1 / iscale);
  let bestMse = 0;
  for (let i = 0; i < n; i++) {
    const diff = fr(x[i] - fr(scale * L[i]));
    bestMse = fr(bestMse + fr(fr(qw[i] * diff) * diff));
  }
  for (let is = -4; is <= 4; is++) {
    if (is === 0) continue;
    const iscaleIs = fr(fr(fr(F_0_1 * is) + nmax) / max);
    const scaleIs = fr(1 / iscaleIs);
    let mse = 0;
    for (let i = 0; i < n; i++) {
      const l = Math.min(nmax, nearestInt(fr(iscaleIs * x[i])));
      const diff = fr(x[i] - fr(scaleIs * l));
      mse = fr(mse + fr(fr(qw[i] * diff) * diff));
    }
    if (mse < bestMse) {
      bestMse = mse;
      iscale = iscaleIs;
    }
  }
  let sumlx = 0;
  let suml2 = 0;
  for (let i = 0; i < n; i++) {
    const l = Math.min(nmax, nearestInt(fr(iscale * x[i])));
    L[i] = l;
    const w = qw[i];
    sumlx = fr(sumlx + fr(fr(w * x[i]) * l));
    suml2 = fr(suml2 + fr(fr(w * l) * l));
  }
  for (let itry = 0; itry < 5; itry++) {
    let changed = 0;
    for (let i = 0; i < n; i++) {
      const w = qw[i];
      const xi = x[i];
      let slx = fr(sumlx - fr(fr(w * xi) * L[i]));
      let sl2 = fr(suml2 - fr(fr(w * L[i]) * L[i]));
      if (slx > 0 && sl2 > 0) {
        const nl = Math.min(nmax, nearestInt(fr(fr(xi * sl2) / slx)));
        if (nl !== L[i]) {
          slx = fr(slx + fr(fr(w * xi) * nl));
          sl2 = fr(sl2 + fr(fr(w * nl) * nl));
          if (fr(fr(slx * slx) * suml2) > fr(fr(sumlx * sumlx) * sl2)) {
            L[i] = nl;
            sumlx = slx;
            suml2 = sl2;
            changed++;
          }
        }
      }
    }
    if (!changed) break;
  }
  return suml2 > 0 ? fr(sumlx / suml2) : 0;
}
