// IQ2_XXS, IQ2_XS and IQ2_S quantizers (layouts in iq-dequant.ts), bit-exact with ggml's. ggml
// requires an importance matrix for IQ2_XXS/IQ2_XS (quantizeGgml enforces it).
//
// 8 magnitudes at a time are one point of the lattice {1,3,5}⁸ (levels l ∈ 0..2, q = 2l + 1)
// restricted to a grid of 256 (IQ2_XXS) or 512 (IQ2_XS) points; 7 sign bits per 8 values (odd
// parity is fixed by flipping the least important value, smallest w·x²). Weights are
// qw·√(σ² + x²) with σ² = Σx²/256 over the super-block.
//   IQ2_XXS, per 32 values: start from make_qp_quants(32, 4) on |x|, try id = (5 + 0.1·is)/(3·s)
//     for is = −6..6 (off-grid 8-tuples take their best grid neighbour), keep the best
//     (Σwxq)²/Σwq², then re-round every tuple at that scale and refit; 4-bit sub-scale
//     nearest((scale/d − 1)/2) with d = max_scale/31.
//   IQ2_XS, per 16 values: start from max/5, try id = (5 + 0.1·is)/max for is = −9..9, redo only
//     the tuples that were off the grid, refit; same 4-bit sub-scales (two per byte).
//   IQ2_S: like IQ2_XS on a 1024-point grid whose points may use level 3 (magnitude 62, reached
//     only through neighbours), 8 sign bits (no parity fix), σ² = 2·Σx²/256, weights σ²/4 + x²
//     without an imatrix, neighbours at the single smallest distance, d stored ×0.9875.
// Lattice, neighbour lists and tuple rounding: iq-lattice.ts (shared with IQ1 and IQ3).
// Legend: QK_K = 256, k = 8-tuple, u = lattice index Σ l_i·4^i.

import { GgmlCodec, GROUP_MAX_EPS, GROUP_MAX_EPS_IQ2_S, nearestInt as nearestInt_, putF16 } from './common.js';
import { makeQpQuants } from './scale-search.js';
import { IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID } from './iq-grids.table.js';
import { buildLattice, levelFit, roundTuple, snapTuple, type IqLattice } from './iq-lattice.js';

const fr = Math.fround;
const nearestInt = nearestInt_;
const lattices = new Map<number, IqLattice>();

/**
 * The 8-dimensional lattice of one grid: IQ2_XXS (256), IQ2_XS (512), IQ2_S (1024) from
 * magnitudes 8/25/43/62, IQ1_S/IQ1_M (2048) from values −1/0/+1 (level = value + 1). Neighbour
 * lists span 2 distances for the 256/512 grids, 1 for 1024, 3 for 2048.
 */
export function lattice(size: 256 | 512 | 1024 | 2048): IqLattice {
  const have = lattices.get(size);
  if (have) return have;
  const bytes = size === 256 ? IQ2XXS_GRID : size === 512 ? IQ2XS_GRID : size === 1024 ? IQ2S_GRID : IQ1S_GRID;
  const nwant = size === 1024 ? 1 : size === 2048 ? 3 : 2;
  const t = buildLattice(8, 2, size, nwant, (g, i) => {
    const b = bytes[8 * g + i];
    return size === 2048 ? ((b << 24) >> 24) + 1 : b === 0x08 ? 0 : b === 0x19 ? 1 : b === 0x2b ? 2 : 3;
  });
  lattices.set(size, t);
  return t;
}

/** ggml rounds IQ2 magnitudes to levels 0..2 (level 3 of IQ2_S is reached only through neighbours). */
const IQ2_MAX_LEVEL = 2;

type Variant = 'xxs' | 'xs' | 's';

/** |x| and sign bits per 8 values; IQ2_XXS/XS keep 7 bits (odd parity flips the smallest w·x²). */
function signsOf(v: Variant, x: Float32Array, o: number, n: number, w: Float32Array, xval: Float32Array, signs: Uint8Array): void {
  for (let k = 0; k < n / 8; k++) {
    let s = 0;
    let nflip = 0;
    for (let i = 0; i < 8; i++) {
      const val = x[o + 8 * k + i];
      xval[8 * k + i] = Math.abs(val);
      if (!(val >= 0)) {
        s |= 1 << i;
        nflip++;
      }
    }
    if (v !== 's' && nflip % 2) {
      let imin = 0;
      let min = fr(fr(w[8 * k] * x[o + 8 * k]) * x[o + 8 * k]);
      for (let i = 1; i < 8; i++) {
        const a = fr(fr(w[8 * k + i] * x[o + 8 * k + i]) * x[o + 8 * k + i]);
        if (a < min) {
          min = a;
          imin = i;
        }
      }
      xval[8 * k + imin] = -xval[8 * k + imin];
      s ^= 1 << imin;
    }
    signs[k] = v === 's' ? s : s & 127;
  }
}

const F_0_1 = fr(0.1);

/**
 * One group (32 values for IQ2_XXS, 16 otherwise) at x[o..]: returns the scale (−1 when ggml
 * skips the group as all zero) and fills the grid indices gidx[n/8] and signs[n/8].
 */
function quantizeGroup(v: Variant, x: Float32Array, o: number, w: Float32Array, gidx: Uint16Array, signs: Uint8Array): number {
  const xxs = v === 'xxs';
  const n = xxs ? 32 : 16;
  const t = lattice(xxs ? 256 : v === 'xs' ? 512 : 1024);
  const nk = n / 8;
  const xval = new Float32Array(n);
  const waux = new Float32Array(n);
  const L = new Int8Array(n);
  const Laux = new Int8Array(n);
  for (let i = 0; i < n; i++) waux[i] = fr(Math.sqrt(w[i]));
  signsOf(v, x, o, n, w, xval, signs);
  let max = xval[0];
  for (let i = 1; i < n; i++) max = Math.max(max, xval[i]);
  if (max < (v === 's' ? GROUP_MAX_EPS_IQ2_S : GROUP_MAX_EPS)) return -1;
  let scale: number;
  let ref: number;
  let isFrom: number;
  if (xxs) {
    scale = makeQpQuants(32, 4, xval, new Uint8Array(32), w);
    ref = fr(scale * 3);
    if (ref <= 0) return -1;
    isFrom = 6;
  } else {
    scale = fr(max / 5);
    ref = max;
    isFrom = 9;
  }
  const onGrid = [true, true, true, true];
  const onGridAux = [true, true, true, true];
  let best = 0;
  for (let is = -isFrom; is <= isFrom; is++) {
    const id = fr(fr(5 + fr(is * F_0_1)) / ref);
    const thisScale = fr(1 / id);
    for (let k = 0; k < nk; k++) {
      const u = roundTuple(t, xval, k, id, IQ2_MAX_LEVEL, Laux);
      onGridAux[k] = t.map[u] >= 0;
      if (!onGridAux[k]) snapTuple(t, u, xval, waux, k, thisScale, Laux);
    }
    const [sumqx, sumq2] = levelFit(n, w, xval, Laux);
    if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
      scale = fr(sumqx / sumq2);
      best = fr(scale * sumqx);
      L.set(Laux);
      for (let k = 0; k < nk; k++) onGrid[k] = onGridAux[k];
    }
  }
  // IQ2_XXS re-rounds every tuple at the chosen scale; IQ2_XS/S only those off the grid
  const redo = xxs ? scale > 0 : scale > 0 && onGrid.slice(0, nk).some((g) => !g);
  if (redo) {
    const id = fr(1 / scale);
    for (let k = 0; k < nk; k++) {
      if (!xxs && onGrid[k]) continue;
      const u = roundTuple(t, xval, k, id, IQ2_MAX_LEVEL, L);
      if (t.map[u] < 0) snapTuple(t, u, xval, waux, k, scale, L);
    }
    const [sumqx, sumq2] = levelFit(n, w, xval, L);
    if (sumq2 > 0) scale = fr(sumqx / sumq2);
  }
  if (scale < 0) {
    scale = -scale;
    for (let k = 0; k < nk; k++) signs[k] = ~signs[k] & (v === 's' ? 255 : 127);
  }
  for (let k = 0; k < nk; k++) {
    let u = 0;
    for (let i = 0; i < 8; i++) u |= L[8 * k + i] << (2 * i);
    gidx[k] = t.map[u];
  }
  return scale;
}

function quantizeRowIq2(v: Variant, x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  if (!qw && v !== 's') throw new Error('IQ2_XXS/IQ2_XS quantization needs an importance matrix'); // checked earlier
  const W = v === 'xxs' ? 66 : v === 'xs' ? 74 : 82;
  const n = v === 'xxs' ? 32 : 16;
  const ng = 256 / n;
  const w = new Float32Array(n);
  const gidx = new Uint16Array(4);
  const signs = new Uint8Array(4);
  const scales = new Float32Array(ng);
  for (let ibl = 0; ibl < x.length / 256; ibl++) {
    const ob = ibl * W;
    out.fill(0, ob, ob + W);
    const o = ibl * 256;
    let sumx2 = 0;
    for (let i = 0; i < 256; i++) sumx2 = fr(sumx2 + fr(x[o + i] * x[o + i]));
    // IQ2_S uses 2·Σx²/256 and, without an imatrix, weights σ²/4 + x²
    const sigma2 = v === 's' ? fr(fr(2 * sumx2) / 256) : fr(sumx2 / 256);
    let maxScale = 0;
    for (let g = 0; g < ng; g++) {
      const xo = o + n * g;
      for (let i = 0; i < n; i++) {
        const x2 = fr(x[xo + i] * x[xo + i]);
        w[i] = qw ? fr(qw[xo + i] * fr(Math.sqrt(fr(sigma2 + x2)))) : fr(fr(0.25 * sigma2) + x2);
      }
      const scale = quantizeGroup(v, x, xo, w, gidx, signs);
      scales[g] = Math.max(0, scale);
      if (scale < 0) continue;
      if (v === 'xxs') {
        for (let k = 0; k < 4; k++) out[ob + 2 + 8 * g + k] = gidx[k];
        const aux = signs[0] | (signs[1] << 7) | (signs[2] << 14) | (signs[3] << 21);
        for (let b = 0; b < 4; b++) out[ob + 6 + 8 * g + b] = (aux >>> (8 * b)) & 0xff;
      } else if (v === 'xs') {
        for (let k = 0; k < 2; k++) {
          const q = gidx[k] | (signs[k] << 9);
          out[ob + 2 + 4 * g + 2 * k] = q & 0xff;
          out[ob + 3 + 4 * g + 2 * k] = q >> 8;
        }
      } else {
        for (let k = 0; k < 2; k++) {
          const i8 = 2 * g + k;
          out[ob + 2 + i8] = gidx[k] & 255;
          out[ob + 66 + (i8 >> 2)] |= (gidx[k] >> 8) << (2 * (i8 % 4));
          out[ob + 34 + i8] = signs[k];
        }
      }
      maxScale = Math.max(maxScale, scale);
    }
    if (maxScale === 0) {
      if (v !== 's') out.fill(0, ob, ob + W);
      continue;
    }
    const d = fr(maxScale / 31);
    putF16(out, ob, v === 's' ? fr(d * fr(0.9875)) : d);
    const id = fr(1 / d);
    for (let g = 0; g < ng; g++) {
      const l = Math.max(0, Math.min(15, nearestInt(fr(0.5 * fr(fr(id * scales[g]) - 1)))));
      const sc = v === 'xs' ? 66 : 74;
      if (v === 'xxs') out[ob + 9 + 8 * g] |= l << 4;
      else out[ob + sc + (g >> 1)] |= g & 1 ? l << 4 : l;
    }
  }
}

export const IQ2_QUANTIZERS = {
  IQ2_XXS: (x, out, qw) => quantizeRowIq2('xxs', x, out, qw),
  IQ2_XS: (x, out, qw) => quantizeRowIq2('xs', x, out, qw),
  IQ2_S: (x, out, qw) => quantizeRowIq2('s', x, out, qw),
} satisfies Record<string, NonNullable<GgmlCodec['quantizeRow']>>;
