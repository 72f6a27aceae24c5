// IQ1_S and IQ1_M quantizers (layouts in iq-dequant.ts), bit-exact with ggml's. ggml requires an
// importance matrix for IQ1_S (quantizeGgml enforces it); IQ1_M falls back to weights x².
//
// Values are ternary: q ∈ {−1, 0, +1} shifted by ±δ (δ = 0.125), 8 at a time as one of 2048
// grid points. Per group (IQ1_S: 32 values, one shift; IQ1_M: 16 values, one shift per 8):
//   1. sort the group's values (stable); every split i1 ≤ i2 of the sorted order assigns the
//      levels −1/0/+1 (shifted by +δ or −δ) and gives a weighted least-squares scale (IQ1_S from
//      prefix sums, IQ1_M summed element by element, as ggml does: the float results differ);
//      keep the split and shift(s) with the largest (Σwxq)²/Σwq²;
//   2. an 8-tuple that is not a grid point is replaced by its nearest grid neighbour under
//      w-weighted squared error at that scale (neighbour lists: the grid points at the 3 smallest
//      lattice distances), then the scale is refitted;
//   3. the super-block d = max_scale/15; sub-scales are 3 bits: nearest((scale/d − 1)/2).
//      IQ1_S stores d×1.125. IQ1_M refits d over the whole super-block with the rounded
//      sub-scales and stores d×1.1125 spread over the top nibbles of its four scale words.
// Weights: qw·√(σ² + x²), σ² = 2·Σx²/256 over the super-block (x² for IQ1_M without imatrix).
// Legend: QK_K = 256, g = group, k = 8-tuple, u = lattice index Σ l_i·4^i (l = q + 1).

import { GgmlCodec, GROUP_MAX_EPS_IQ1_M, GROUP_MAX_EPS_IQ1_S, nearestInt as nearestInt_, putF16 } from './common.js';
import { lattice } from './iq2-quant.js';
import { neighbours, type IqLattice } from './iq-lattice.js';
import { f32ToF16 } from '../../numerics/float16.js';

const fr = Math.fround;
const nearestInt = nearestInt_;
const DELTA = 0.125;
const X_P = [fr(-1 + DELTA), DELTA, fr(1 + DELTA)];
const X_M = [fr(-1 - DELTA), -DELTA, fr(1 - DELTA)];
const NEG_FLT_MAX = -3.4028234663852886e38;

/** Order of a group's values, ascending (stable: equal values keep their position order). */
function sortedOrder(x: Float32Array, o: number, n: number): number[] {
  const idx = Array.from({ length: n }, (_, j) => j);
  return idx.sort((a, b) => x[o + a] - x[o + b]);
}

/** Replaces off-grid tuple k by the nearest grid point (levels into L); returns its grid index. */
function snap(t: IqLattice, u: number, x: Float32Array, o: number, w: Float32Array, k: number, scale: number, xx: number[], L: Int8Array): number {
  let best = Infinity;
  let gi = -1;
  for (const g of neighbours(t, u)) {
    let d2 = 0;
    for (let i = 0; i < 8; i++) {
      const q = xx[(t.pos[8 * g + i] - 1) >> 1];
      const diff = fr(fr(scale * q) - x[o + 8 * k + i]);
      d2 = fr(d2 + fr(fr(w[8 * k + i] * diff) * diff));
    }
    if (d2 < best) {
      best = d2;
      gi = g;
    }
  }
  for (let i = 0; i < 8; i++) L[8 * k + i] = (t.pos[8 * gi + i] - 1) >> 1;
  return gi;
}

/** Grid indices of the group's tuples (snapping off-grid ones); refits the scale if any moved. */
function toGrid(t: IqLattice, x: Float32Array, o: number, w: Float32Array, nk: number, scale: number, shiftOf: (k: number) => number[], L: Int8Array, index: Uint16Array): number {
  let allOn = true;
  for (let k = 0; k < nk; k++) {
    let u = 0;
    for (let j = 0; j < 8; j++) u |= L[8 * k + j] << (2 * j);
    let gi = t.map[u];
    if (gi < 0) {
      allOn = false;
      gi = snap(t, u, x, o, w, k, scale, shiftOf(k), L);
    }
    index[k] = gi;
  }
  if (allOn) return scale;
  let sumqx = 0;
  let sumq2 = 0;
  for (let k = 0; k < nk; k++) {
    const xx = shiftOf(k);
    for (let j = 0; j < 8; j++) {
      const q = xx[(t.pos[8 * index[k] + j] - 1) >> 1];
      const wv = w[8 * k + j];
      sumqx = fr(sumqx + fr(fr(wv * q) * x[o + 8 * k + j]));
      sumq2 = fr(sumq2 + fr(fr(wv * q) * q));
    }
  }
  return sumqx > 0 && sumq2 > 0 ? fr(sumqx / sumq2) : scale;
}

function groupWeights(x: Float32Array, o: number, n: number, qw: Float32Array | undefined, sigma2: number, w: Float32Array): void {
  for (let i = 0; i < n; i++) {
    const v = x[o + i];
    w[i] = qw ? fr(qw[o + i] * fr(Math.sqrt(fr(sigma2 + fr(v * v))))) : fr(v * v);
  }
}

function superSigma2(x: Float32Array, o: number): number {
  let s = 0;
  for (let i = 0; i < 256; i++) s = fr(s + fr(x[o + i] * x[o + i]));
  return fr(fr(2 * s) / 256);
}

// ---- IQ1_S ---------------------------------------------------------------------------------

function quantizeRowIq1S(x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const t = lattice(2048);
  const w = new Float32Array(32);
  const L = new Int8Array(32);
  const index = new Uint16Array(4);
  const sumx = new Float32Array(33);
  const sumw = new Float32Array(33);
  const scales = new Float32Array(8);
  const shifts = new Int8Array(8);
  for (let ibl = 0; ibl < x.length / 256; ibl++) {
    const ob = ibl * 50;
    out.fill(0, ob, ob + 50);
    const o = ibl * 256;
    const sigma2 = superSigma2(x, o);
    let maxScale = 0;
    for (let g = 0; g < 8; g++) {
      const xo = o + 32 * g;
      groupWeights(x, xo, 32, qw, sigma2, w);
      let max = 0;
      for (let i = 0; i < 32; i++) max = Math.max(max, Math.abs(x[xo + i]));
      scales[g] = 0;
      shifts[g] = 1;
      if (max < GROUP_MAX_EPS_IQ1_S) continue;
      const order = sortedOrder(x, xo, 32);
      for (let j = 0; j < 32; j++) {
        const i = order[j];
        sumx[j + 1] = fr(sumx[j] + fr(w[i] * x[xo + i]));
        sumw[j + 1] = fr(sumw[j] + w[i]);
      }
      let best = NEG_FLT_MAX;
      let scale = max;
      let b1 = -1;
      let b2 = -1;
      let shift = 0;
      for (let i1 = 0; i1 <= 32; i1++) {
        for (let i2 = i1; i2 <= 32; i2++) {
          const a = sumx[i1];
          const b = fr(sumx[i2] - sumx[i1]);
          const c = fr(sumx[32] - sumx[i2]);
          const wa = sumw[i1];
          const wb = fr(sumw[i2] - sumw[i1]);
          const wc = fr(sumw[32] - sumw[i2]);
          for (const [xx, sh] of [[X_P, 1], [X_M, -1]] as const) {
            const sumqx = fr(fr(fr(a * xx[0]) + fr(b * xx[1])) + fr(c * xx[2]));
            const sumq2 = fr(fr(fr(fr(wa * xx[0]) * xx[0]) + fr(fr(wb * xx[1]) * xx[1])) + fr(fr(wc * xx[2]) * xx[2]));
            if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
              scale = fr(sumqx / sumq2);
              best = fr(scale * sumqx);
              b1 = i1;
              b2 = i2;
              shift = sh;
            }
          }
        }
      }
      if (b1 < 0 || b2 < 0 || shift === 0) continue;
      for (let j = 0; j < 32; j++) L[order[j]] = j < b1 ? 0 : j < b2 ? 1 : 2;
      if (scale < 0) {
        for (let j = 0; j < 32; j++) L[j] = 2 - L[j];
        scale = -scale;
        shift = -shift;
      }
      const xx = shift === 1 ? X_P : X_M;
      scale = toGrid(t, x, xo, w, 4, scale, () => xx, L, index);
      let h = 0;
      for (let k = 0; k < 4; k++) {
        out[ob + 2 + 4 * g + k] = index[k] & 255;
        h |= (index[k] >> 8) << (3 * k);
      }
      out[ob + 34 + 2 * g] = h & 0xff;
      out[ob + 35 + 2 * g] = h >> 8;
      scales[g] = scale;
      shifts[g] = shift;
      maxScale = Math.max(maxScale, scale);
    }
    if (maxScale === 0) continue;
    const d = fr(maxScale / 15);
    putF16(out, ob, fr(d * 1.125));
    const id = fr(1 / d);
    for (let g = 0; g < 8; g++) {
      let l = Math.max(0, Math.min(7, nearestInt(fr(0.5 * fr(fr(id * scales[g]) - 1)))));
      if (shifts[g] === -1) l |= 8;
      out[ob + 35 + 2 * g] |= l << 4;
    }
  }
}

// ---- IQ1_M ---------------------------------------------------------------------------------

const MASKS = [0x00, 0x80, 0x08, 0x88];

/** Shift table of tuple k for IQ1_M's shift code (bit 1: first tuple −δ, bit 0: second −δ). */
const shiftFor = (code: number, k: number): number[] => (k === 0 ? (code < 2 ? X_P : X_M) : code % 2 === 0 ? X_P : X_M);

function quantizeRowIq1M(x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const t = lattice(2048);
  const w = new Float32Array(16);
  const L = new Int8Array(16);
  const index = new Uint16Array(2);
  const scales = new Float32Array(16);
  const shifts = new Int8Array(16);
  const qx = new Float32Array(4);
  const q2 = new Float32Array(4);
  for (let ibl = 0; ibl < x.length / 256; ibl++) {
    const ob = ibl * 56;
    out.fill(0, ob, ob + 56);
    const o = ibl * 256;
    const sigma2 = superSigma2(x, o);
    let maxScale = 0;
    for (let g = 0; g < 16; g++) {
      const xo = o + 16 * g;
      groupWeights(x, xo, 16, qw, sigma2, w);
      let max = 0;
      for (let i = 0; i < 16; i++) max = Math.max(max, Math.abs(x[xo + i]));
      scales[g] = 0;
      shifts[g] = 0;
      if (max < GROUP_MAX_EPS_IQ1_M) continue;
      const order = sortedOrder(x, xo, 16);
      let best = NEG_FLT_MAX;
      let scale = max;
      let b1 = -1;
      let b2 = -1;
      let bk = -1;
      // every split of the sorted order, accumulated element by element (in ggml's order) for the
      // four shift combinations (first/second tuple at +δ or −δ)
      for (let i1 = 0; i1 <= 16; i1++) {
        for (let i2 = i1; i2 <= 16; i2++) {
          qx.fill(0);
          q2.fill(0);
          for (let j = 0; j < 16; j++) {
            const i = order[j];
            const lv = j < i1 ? 0 : j < i2 ? 1 : 2;
            const wi = w[i];
            const xi = x[xo + i];
            const p = X_P[lv];
            const m = X_M[lv];
            const wp = fr(wi * p);
            const wm = fr(wi * m);
            const sxp = fr(wp * xi);
            const sxm = fr(wm * xi);
            const sqp = fr(wp * p);
            const sqm = fr(wm * m);
            // combination k: bit 1 set → first tuple −δ, bit 0 set → second tuple −δ
            const first = i < 8;
            qx[0] = fr(qx[0] + sxp);
            qx[3] = fr(qx[3] + sxm);
            q2[0] = fr(q2[0] + sqp);
            q2[3] = fr(q2[3] + sqm);
            qx[1] = fr(qx[1] + (first ? sxp : sxm));
            qx[2] = fr(qx[2] + (first ? sxm : sxp));
            q2[1] = fr(q2[1] + (first ? sqp : sqm));
            q2[2] = fr(q2[2] + (first ? sqm : sqp));
          }
          for (let k = 0; k < 4; k++) {
            if (q2[k] > 0 && fr(qx[k] * qx[k]) > fr(best * q2[k])) {
              scale = fr(qx[k] / q2[k]);
              best = fr(scale * qx[k]);
              b1 = i1;
              b2 = i2;
              bk = k;
            }
          }
        }
      }
      if (b1 < 0 || b2 < 0 || bk < 0) continue;
      for (let j = 0; j < 16; j++) L[order[j]] = j < b1 ? 0 : j < b2 ? 1 : 2;
      if (scale < 0) {
        for (let j = 0; j < 16; j++) L[j] = 2 - L[j];
        scale = -scale;
        bk = 3 - bk;
      }
      const code = bk;
      scale = toGrid(t, x, xo, w, 2, scale, (k) => shiftFor(code, k), L, index);
      out[ob + 2 * g] = index[0] & 255;
      out[ob + 2 * g + 1] = index[1] & 255;
      out[ob + 32 + g] = (index[0] >> 8) | ((index[1] >> 8) << 4);
      scales[g] = scale;
      shifts[g] = bk;
      maxScale = Math.max(maxScale, scale);
    }
    if (maxScale === 0) continue;
    let d = fr(maxScale / 15);
    const id = fr(1 / d);
    const sc = new Uint16Array(4);
    let sumqx = 0;
    let sumq2 = 0;
    for (let g = 0; g < 16; g++) {
      const l = Math.max(0, Math.min(7, nearestInt(fr(0.5 * fr(fr(id * scales[g]) - 1)))));
      sc[g >> 2] |= l << (3 * (g % 4));
      out[ob + 32 + g] |= MASKS[shifts[g]];
      const xo = o + 16 * g;
      groupWeights(x, xo, 16, qw, sigma2, w);
      for (let k = 0; k < 2; k++) {
        const xx = shiftFor(shifts[g], k);
        const gi = out[ob + 2 * g + k] | ((out[ob + 32 + g] << (8 - 4 * k)) & 0x700);
        for (let j = 0; j < 8; j++) {
          const q = fr(xx[(t.pos[8 * gi + j] - 1) >> 1] * (2 * l + 1));
          const wv = w[8 * k + j];
          sumqx = fr(sumqx + fr(fr(wv * q) * x[xo + 8 * k + j]));
          sumq2 = fr(sumq2 + fr(fr(wv * q) * q));
        }
      }
    }
    if (sumq2 > 0) d = fr(sumqx / sumq2);
    const h = f32ToF16(fr(d * fr(1.1125)));
    sc[0] |= (h & 0x000f) << 12;
    sc[1] |= (h & 0x00f0) << 8;
    sc[2] |= (h & 0x0f00) << 4;
    sc[3] |= h & 0xf000;
    for (let k = 0; k < 4; k++) {
      out[ob + 48 + 2 * k] = sc[k] & 0xff;
      out[ob + 49 + 2 * k] = sc[k] >> 8;
    }
  }
}

export const IQ1_QUANTIZERS = {
  IQ1_S: quantizeRowIq1S,
  IQ1_M: quantizeRowIq1M,
} satisfies Record<string, NonNullable<GgmlCodec['quantizeRow']>>;
