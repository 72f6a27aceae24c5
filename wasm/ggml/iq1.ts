// IQ1_S (50 bytes / 256) and IQ1_M (56), bit-exact with src/quant/ggml/iq1-quant.ts (the
// algorithm is described there; IQ1_S needs an importance matrix, which the host enforces).
// Scalar: per group, a stable sort of 32 (16) values and a search over every split of the sorted
// order from prefix sums, then grid look-ups on the 2048-point lattice of iq2.ts (slot 3).
// Legend: g = group (32 values for IQ1_S, 16 for IQ1_M), k = 8-tuple, u = lattice index Σ l_i·4^i
// (l = value + 1), xx = the three shifted levels of a tuple (X_P: +δ, X_M: −δ, δ = 0.125).

import { f32ToF16, nearestInt, putF16 } from './common';
import { f32At } from './scratch';
import { latticeMap, latticePos, neighbourCount, neighbourList, neighbourStart } from './iq2';

const GROUP_MAX_EPS_IQ1_S: f32 = 1e-12;
const GROUP_MAX_EPS_IQ1_M: f32 = 1e-7;
const SLOT = 3;
const DELTA: f32 = 0.125;
const XP0: f32 = <f32>-1 + DELTA;
const XP1: f32 = DELTA;
const XP2: f32 = <f32>1 + DELTA;
const XM0: f32 = <f32>-1 - DELTA;
const XM1: f32 = -DELTA;
const XM2: f32 = <f32>1 - DELTA;

// one group's scratch
const WGT = memory.data(32 * 4);
const L = memory.data(32);
const ORDER = memory.data(32 * 4);
const INDEX = memory.data(4 * 2);
const SUMX = memory.data(33 * 4);
const SUMW = memory.data(33 * 4);
const PX = memory.data(2 * 17 * 4); // IQ1_M prefix sums per half group
const PW = memory.data(2 * 17 * 4);
const SCALES = memory.data(16 * 4);
const SHIFTS = memory.data(16);

/** Level l (0..2) of a tuple whose shift is +δ (plus) or −δ. */
// @ts-ignore: decorator
@inline function level(plus: bool, l: i32): f32 {
  return plus ? (l == 0 ? XP0 : l == 1 ? XP1 : XP2) : l == 0 ? XM0 : l == 1 ? XM1 : XM2;
}

/** ORDER[0..n) = indices of x[0..n) ascending, equal values in index order (insertion sort: stable). */
function sortedOrder(x: usize, n: i32): void {
  for (let j = 0; j < n; j++) {
    const v = f32At(x, j);
    let i = j - 1;
    while (i >= 0 && f32At(x, load<i32>(ORDER + (<usize>i << 2))) > v) {
      store<i32>(ORDER + (<usize>(i + 1) << 2), load<i32>(ORDER + (<usize>i << 2)));
      i--;
    }
    store<i32>(ORDER + (<usize>(i + 1) << 2), j);
  }
}

/** Weights of n values at x: qw·√(σ² + x²), or x² without an importance matrix. */
function groupWeights(x: usize, n: i32, qw: usize, sigma2: f32): void {
  for (let i = 0; i < n; i++) {
    const v = f32At(x, i);
    store<f32>(WGT + (<usize>i << 2), qw ? f32At(qw, i) * Mathf.sqrt(sigma2 + v * v) : v * v);
  }
}

/** Shift of tuple k: IQ1_S one shift per group (code 1: +δ); IQ1_M code bit 1 → first tuple −δ, bit 0 → second. */
// @ts-ignore: decorator
@inline function plusOf(m: bool, code: i32, k: i32): bool {
  return m ? (k == 0 ? code < 2 : (code & 1) == 0) : code == 1;
}

/** The grid level of value i of grid point gi (gi ≥ 2048: the reference's missing neighbour reads level 0). */
// @ts-ignore: decorator
@inline function gridLevel(gi: i32, i: i32): i32 {
  return gi >= 2048 ? 0 : (<i32>load<i8>(latticePos(SLOT) + <usize>(8 * gi + i)) - 1) >> 1;
}

/** Nearest grid neighbour of off-grid tuple k (lattice u) under w-weighted error at `scale`; levels → L. */
function snap(u: i32, x: usize, k: i32, scale: f32, plus: bool): i32 {
  const s0 = neighbourStart(SLOT, u);
  const s1 = s0 + neighbourCount(SLOT, u);
  const list = neighbourList(SLOT);
  let best: f32 = Infinity;
  let gi = -1;
  for (let j = s0; j < s1; j++) {
    const g = <i32>load<u16>(list + (<usize>j << 1));
    let d2: f32 = 0;
    for (let i = 0; i < 8; i++) {
      const diff: f32 = scale * level(plus, gridLevel(g, i)) - f32At(x, 8 * k + i);
      d2 += f32At(WGT, 8 * k + i) * diff * diff;
    }
    if (d2 < best) {
      best = d2;
      gi = g;
    }
  }
  for (let i = 0; i < 8; i++) store<i8>(L + <usize>(8 * k + i), <i8>(gi < 0 ? 0 : gridLevel(gi, i)));
  return gi;
}

/** Grid indices of the group's nk tuples into INDEX (snapping off-grid ones); the refitted scale if any moved. */
function toGrid(x: usize, nk: i32, scale: f32, m: bool, code: i32): f32 {
  const map = latticeMap(SLOT);
  let allOn = true;
  for (let k = 0; k < nk; k++) {
    let u = 0;
    for (let j = 0; j < 8; j++) u |= <i32>load<i8>(L + <usize>(8 * k + j)) << (2 * j);
    let gi = <i32>load<i16>(map + (<usize>u << 1));
    if (gi < 0) {
      allOn = false;
      gi = snap(u, x, k, scale, plusOf(m, code, k));
    }
    store<u16>(INDEX + (<usize>k << 1), <u16>gi);
  }
  if (allOn) return scale;
  let sumqx: f32 = 0;
  let sumq2: f32 = 0;
  for (let k = 0; k < nk; k++) {
    const plus = plusOf(m, code, k);
    const gi = <i32>load<u16>(INDEX + (<usize>k << 1));
    for (let j = 0; j < 8; j++) {
      const q = level(plus, gridLevel(gi, j));
      const wv = f32At(WGT, 8 * k + j);
      sumqx += wv * q * f32At(x, 8 * k + j);
      sumq2 += wv * q * q;
    }
  }
  return sumqx > 0 && sumq2 > 0 ? sumqx / sumq2 : scale;
}

function superSigma2(x: usize): f32 {
  let s: f32 = 0;
  for (let i = 0; i < 256; i++) s += f32At(x, i) * f32At(x, i);
  return (<f32>2 * s) / <f32>256;
}

function absMax(x: usize, n: i32): f32 {
  let mx: f32 = 0;
  for (let i = 0; i < n; i++) mx = max(mx, abs(f32At(x, i)));
  return mx;
}

/** IQ1_S super-blocks; qw = importance weights per column. */
export function quantizeIq1S(x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const nb = nPerRow >> 8;
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const p = x + <usize>(r * nb + b) * 1024;
      const ob = out + <usize>(r * nb + b) * 50;
      memory.fill(ob, 0, 50);
      const sigma2 = superSigma2(p);
      let maxScale: f32 = 0;
      for (let g = 0; g < 8; g++) {
        const xg = p + <usize>g * 128;
        groupWeights(xg, 32, qw ? qw + (<usize>((b << 8) + 32 * g) << 2) : 0, sigma2);
        const mx = absMax(xg, 32);
        store<f32>(SCALES + (<usize>g << 2), 0);
        store<i8>(SHIFTS + g, 1);
        if (mx < GROUP_MAX_EPS_IQ1_S) continue;
        sortedOrder(xg, 32);
        store<f32>(SUMX, 0);
        store<f32>(SUMW, 0);
        for (let j = 0; j < 32; j++) {
          const i = load<i32>(ORDER + (<usize>j << 2));
          store<f32>(SUMX + (<usize>(j + 1) << 2), f32At(SUMX, j) + f32At(WGT, i) * f32At(xg, i));
          store<f32>(SUMW + (<usize>(j + 1) << 2), f32At(SUMW, j) + f32At(WGT, i));
        }
        let best: f32 = -f32.MAX_VALUE;
        let scale = mx;
        let b1 = -1;
        let b2 = -1;
        let shift = 0;
        for (let i1 = 0; i1 <= 32; i1++) {
          for (let i2 = i1; i2 <= 32; i2++) {
            const a = f32At(SUMX, i1);
            const bb: f32 = f32At(SUMX, i2) - f32At(SUMX, i1);
            const c: f32 = f32At(SUMX, 32) - f32At(SUMX, i2);
            const wa = f32At(SUMW, i1);
            const wb: f32 = f32At(SUMW, i2) - f32At(SUMW, i1);
            const wc: f32 = f32At(SUMW, 32) - f32At(SUMW, i2);
            for (let t = 0; t < 2; t++) {
              const plus = t == 0;
              const x0 = level(plus, 0), x1 = level(plus, 1), x2 = level(plus, 2);
              const sumqx: f32 = a * x0 + bb * x1 + c * x2;
              const sumq2: f32 = wa * x0 * x0 + wb * x1 * x1 + wc * x2 * x2;
              if (sumq2 > 0 && sumqx * sumqx > best * sumq2) {
                scale = sumqx / sumq2;
                best = scale * sumqx;
                b1 = i1;
                b2 = i2;
                shift = plus ? 1 : -1;
              }
            }
          }
        }
        if (b1 < 0 || b2 < 0 || shift == 0) continue;
        for (let j = 0; j < 32; j++) store<i8>(L + <usize>load<i32>(ORDER + (<usize>j << 2)), <i8>(j < b1 ? 0 : j < b2 ? 1 : 2));
        if (scale < 0) {
          for (let j = 0; j < 32; j++) store<i8>(L + j, <i8>(2 - <i32>load<i8>(L + j)));
          scale = -scale;
          shift = -shift;
        }
        scale = toGrid(xg, 4, scale, false, shift == 1 ? 1 : 0);
        let h: u32 = 0;
        for (let k = 0; k < 4; k++) {
          const gi = <u32>load<u16>(INDEX + (<usize>k << 1));
          store<u8>(ob + 2 + <usize>(4 * g + k), <u8>(gi & 255));
          h |= (gi >> 8) << (3 * k);
        }
        store<u8>(ob + 34 + <usize>(2 * g), <u8>(h & 0xff));
        store<u8>(ob + 35 + <usize>(2 * g), <u8>(h >> 8));
        store<f32>(SCALES + (<usize>g << 2), scale);
        store<i8>(SHIFTS + g, <i8>shift);
        maxScale = max(maxScale, scale);
      }
      if (maxScale == 0) continue;
      const d: f32 = maxScale / 15;
      putF16(ob, d * <f32>1.125);
      const id: f32 = <f32>1 / d;
      for (let g = 0; g < 8; g++) {
        let l = max(0, min(7, nearestInt(<f32>0.5 * (id * f32At(SCALES, g) - 1))));
        if (load<i8>(SHIFTS + g) == -1) l |= 8;
        const at = ob + 35 + <usize>(2 * g);
        store<u8>(at, load<u8>(at) | <u8>(l << 4));
      }
    }
  }
}

/** IQ1_M super-blocks; qw = importance weights per column, or 0 (weights x²). */
export function quantizeIq1M(x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const nb = nPerRow >> 8;
  const P2 = XP2;
  const M2 = XM2;
  const CP1: f32 = XP0 * XP0 - XP1 * XP1;
  const CP2: f32 = XP1 * XP1 - XP2 * XP2;
  const CM1: f32 = XM0 * XM0 - XM1 * XM1;
  const CM2: f32 = XM1 * XM1 - XM2 * XM2;
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const p = x + <usize>(r * nb + b) * 1024;
      const ob = out + <usize>(r * nb + b) * 56;
      memory.fill(ob, 0, 56);
      const sigma2 = superSigma2(p);
      let maxScale: f32 = 0;
      for (let g = 0; g < 16; g++) {
        const xg = p + <usize>g * 64;
        groupWeights(xg, 16, qw ? qw + (<usize>((b << 8) + 16 * g) << 2) : 0, sigma2);
        const mx = absMax(xg, 16);
        store<f32>(SCALES + (<usize>g << 2), 0);
        store<i8>(SHIFTS + g, 0);
        if (mx < GROUP_MAX_EPS_IQ1_M) continue;
        sortedOrder(xg, 16);
        // prefix sums per half group (PX/PW [2, 17]); see the reference for the split formulas
        store<f32>(PX, 0);
        store<f32>(PX + 68, 0);
        store<f32>(PW, 0);
        store<f32>(PW + 68, 0);
        for (let j = 0; j < 16; j++) {
          const i = load<i32>(ORDER + (<usize>j << 2));
          const h: usize = i < 8 ? 0 : 68;
          const o: usize = i < 8 ? 68 : 0;
          const at = <usize>(j + 1) << 2;
          const prev = <usize>j << 2;
          store<f32>(PX + h + at, load<f32>(PX + h + prev) + f32At(WGT, i) * f32At(xg, i));
          store<f32>(PX + o + at, load<f32>(PX + o + prev));
          store<f32>(PW + h + at, load<f32>(PW + h + prev) + f32At(WGT, i));
          store<f32>(PW + o + at, load<f32>(PW + o + prev));
        }
        let best: f32 = -f32.MAX_VALUE;
        let scale = mx;
        let b1 = -1;
        let b2 = -1;
        let bk = -1;
        for (let i1 = 0; i1 <= 16; i1++) {
          for (let i2 = i1; i2 <= 16; i2++) {
            const a1 = <usize>i1 << 2, a2 = <usize>i2 << 2;
            // half 0
            let sx: f32 = load<f32>(PX + a1) + load<f32>(PX + a2);
            const qxp0: f32 = load<f32>(PX + 64) * P2 - sx;
            const qxm0: f32 = load<f32>(PX + 64) * M2 - sx;
            const q2p0: f32 = load<f32>(PW + 64) * P2 * P2 + load<f32>(PW + a1) * CP1 + load<f32>(PW + a2) * CP2;
            const q2m0: f32 = load<f32>(PW + 64) * M2 * M2 + load<f32>(PW + a1) * CM1 + load<f32>(PW + a2) * CM2;
            // half 1
            sx = load<f32>(PX + 68 + a1) + load<f32>(PX + 68 + a2);
            const qxp1: f32 = load<f32>(PX + 68 + 64) * P2 - sx;
            const qxm1: f32 = load<f32>(PX + 68 + 64) * M2 - sx;
            const q2p1: f32 = load<f32>(PW + 68 + 64) * P2 * P2 + load<f32>(PW + 68 + a1) * CP1 + load<f32>(PW + 68 + a2) * CP2;
            const q2m1: f32 = load<f32>(PW + 68 + 64) * M2 * M2 + load<f32>(PW + 68 + a1) * CM1 + load<f32>(PW + 68 + a2) * CM2;
            for (let k = 0; k < 4; k++) {
              // combination k: bit 1 set → first half −δ, bit 0 set → second half −δ
              const qx: f32 = (k & 2 ? qxm0 : qxp0) + (k & 1 ? qxm1 : qxp1);
              const q2: f32 = (k & 2 ? q2m0 : q2p0) + (k & 1 ? q2m1 : q2p1);
              if (q2 > 0 && qx * qx > best * q2) {
                scale = qx / q2;
                best = scale * qx;
                b1 = i1;
                b2 = i2;
                bk = k;
              }
            }
          }
        }
        if (b1 < 0 || b2 < 0 || bk < 0) continue;
        for (let j = 0; j < 16; j++) store<i8>(L + <usize>load<i32>(ORDER + (<usize>j << 2)), <i8>(j < b1 ? 0 : j < b2 ? 1 : 2));
        if (scale < 0) {
          for (let j = 0; j < 16; j++) store<i8>(L + j, <i8>(2 - <i32>load<i8>(L + j)));
          scale = -scale;
          bk = 3 - bk;
        }
        scale = toGrid(xg, 2, scale, true, bk);
        const i0 = <u32>load<u16>(INDEX), i1 = <u32>load<u16>(INDEX + 2);
        store<u8>(ob + <usize>(2 * g), <u8>(i0 & 255));
        store<u8>(ob + <usize>(2 * g + 1), <u8>(i1 & 255));
        store<u8>(ob + 32 + <usize>g, <u8>((i0 >> 8) | ((i1 >> 8) << 4)));
        store<f32>(SCALES + (<usize>g << 2), scale);
        store<i8>(SHIFTS + g, <i8>bk);
        maxScale = max(maxScale, scale);
      }
      if (maxScale == 0) continue;
      let d: f32 = maxScale / 15;
      const id: f32 = <f32>1 / d;
      let sc0: u32 = 0, sc1: u32 = 0, sc2: u32 = 0, sc3: u32 = 0;
      let sumqx: f32 = 0;
      let sumq2: f32 = 0;
      for (let g = 0; g < 16; g++) {
        const l = max(0, min(7, nearestInt(<f32>0.5 * (id * f32At(SCALES, g) - 1))));
        const bits = <u32>l << (3 * (g & 3));
        if (g < 4) sc0 |= bits;
        else if (g < 8) sc1 |= bits;
        else if (g < 12) sc2 |= bits;
        else sc3 |= bits;
        const code = <i32>load<i8>(SHIFTS + g);
        const hb = ob + 32 + <usize>g;
        store<u8>(hb, load<u8>(hb) | <u8>(code == 0 ? 0 : code == 1 ? 0x80 : code == 2 ? 0x08 : 0x88));
        const xg = p + <usize>g * 64;
        groupWeights(xg, 16, qw ? qw + (<usize>((b << 8) + 16 * g) << 2) : 0, sigma2);
        const odd: i32 = 2 * l + 1;
        const mul: f32 = <f32>odd;
        for (let k = 0; k < 2; k++) {
          const plus = plusOf(true, code, k);
          const gi = <i32>load<u8>(ob + <usize>(2 * g + k)) | ((<i32>load<u8>(hb) << (8 - 4 * k)) & 0x700);
          for (let j = 0; j < 8; j++) {
            const q: f32 = level(plus, gridLevel(gi, j)) * mul;
            const wv = f32At(WGT, 8 * k + j);
            sumqx += wv * q * f32At(xg, 8 * k + j);
            sumq2 += wv * q * q;
          }
        }
      }
      if (sumq2 > 0) d = sumqx / sumq2;
      const h = f32ToF16(d * <f32>1.1125);
      sc0 |= (h & 0x000f) << 12;
      sc1 |= (h & 0x00f0) << 8;
      sc2 |= (h & 0x0f00) << 4;
      sc3 |= h & 0xf000;
      store<u16>(ob + 48, <u16>sc0);
      store<u16>(ob + 50, <u16>sc1);
      store<u16>(ob + 52, <u16>sc2);
      store<u16>(ob + 54, <u16>sc3);
    }
  }
}
