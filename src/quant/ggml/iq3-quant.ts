// IQ3_XXS and IQ3_S quantizers (layouts in iq-dequant.ts), bit-exact with ggml's.
//
// Both code 4 magnitudes at a time as one point of a 3-bit lattice {1,3,…,15}⁴ restricted to a
// grid of 256 (IQ3_XXS) or 512 (IQ3_S) points; signs are stored separately, and each 32 values
// share a scale. Per group of 32 (REFERENCE §6.3 weighting: qw·√(σ² + x²), σ² = 2·Σx²/256, or
// x² without an imatrix):
//   1. take |x| and the sign pattern; IQ3_XXS stores 7 sign bits per 8 values, so when the count
//      of negatives is odd the least important value (smallest w·x²) is flipped instead;
//   2. try scales id = (15 + 0.2·is)/max (is = −15..15, or −9..9 for IQ3_S): round each value to
//      l = nearest((id·|x| − 1)/2) ∈ 0..7; a 4-tuple not on the grid is replaced by its best grid
//      neighbour under √w-weighted squared error (neighbour lists below); keep the levels with the
//      largest (Σwxq)²/Σwq², q = 2l + 1;
//   3. if some tuple was off the grid, redo those tuples (IQ3_S: all tuples) at the chosen scale
//      and refit the scale by least squares;
//   4. the super-block d = max_scale/31 is stored ×1.0125 (IQ3_XXS) or ×1.033 (IQ3_S), and each
//      group scale becomes 4 bits: nearest((scale/d − 1)/2).
// Neighbour lists (iq-lattice.ts): for a lattice point off the grid, the grid points at the 2
// (256-grid) or 3 (512-grid) smallest squared distances, ordered by (distance, grid index).
// Legend: QK_K = 256, g = group of 32 values, k = 4-tuple within the group.

import { GgmlCodec, GROUP_MAX_EPS_IQ3_XXS, nearestInt as nearestInt_, putF16 } from './common.js';
import { IQ3S_GRID, IQ3XXS_GRID } from './iq-grids.table.js';
import { buildLattice, levelFit, roundTuple, snapTuple, type IqLattice } from './iq-lattice.js';

const fr = Math.fround;
const nearestInt = nearestInt_;

const lattices = new Map<number, IqLattice>();

/** The 4-dimensional lattice of the IQ3_XXS (256) or IQ3_S (512) grid, from the stored dequantization grid. */
function lattice(gridSize: 256 | 512): IqLattice {
  const have = lattices.get(gridSize);
  if (have) return have;
  const bytes = gridSize === 256 ? IQ3XXS_GRID : IQ3S_GRID;
  // IQ3_XXS grid bytes are 4·(2l+1), IQ3_S bytes are 2l+1
  const unit = gridSize === 256 ? 4 : 1;
  const t = buildLattice(4, 3, gridSize, gridSize === 256 ? 2 : 3, (g, i) => (bytes[4 * g + i] / unit - 1) >> 1);
  lattices.set(gridSize, t);
  return t;
}

const IQ3_MAX_LEVEL = 7;

const F_0_2 = fr(0.2);

/**
 * One group of 32 at x[o..]: fills grid indices (gidx[8]) and sign bytes (signs[4]), returns the
 * group scale, or −1 for an all-zero group (ggml skips it; its indices and signs stay 0).
 */
function quantizeGroup(
  xs: boolean,
  t: IqLattice,
  x: Float32Array,
  o: number,
  weight: Float32Array,
  gidx: Uint16Array,
  signs: Uint8Array,
): number {
  const xval = new Float32Array(32);
  const waux = new Float32Array(32);
  const L = new Int8Array(32);
  const Laux = new Int8Array(32);
  const onGrid = new Array<boolean>(8);
  const onGridAux = new Array<boolean>(8);
  for (let i = 0; i < 32; i++) waux[i] = fr(Math.sqrt(weight[i]));
  for (let k = 0; k < 4; k++) {
    let s = 0;
    let nflip = 0;
    for (let i = 0; i < 8; i++) {
      const v = x[o + 8 * k + i];
      xval[8 * k + i] = Math.abs(v);
      if (!(v >= 0)) {
        s |= 1 << i;
        nflip++;
      }
    }
    if (xs && nflip % 2) {
      // odd parity cannot be stored in 7 bits: flip the least important value instead
      let imin = 0;
      let min = fr(fr(weight[8 * k] * x[o + 8 * k]) * x[o + 8 * k]);
      for (let i = 1; i < 8; i++) {
        const a = fr(fr(weight[8 * k + i] * x[o + 8 * k + i]) * x[o + 8 * k + i]);
        if (a < min) {
          min = a;
          imin = i;
        }
      }
      xval[8 * k + imin] = -xval[8 * k + imin];
      s ^= 1 << imin;
    }
    signs[k] = xs ? s & 127 : s;
  }
  let max = xval[0];
  for (let i = 1; i < 32; i++) max = Math.max(max, xval[i]);
  if (xs ? max < GROUP_MAX_EPS_IQ3_XXS : max === 0) return -1;
  let best = 0;
  let scale = fr(max / 15);
  onGrid.fill(!xs ? false : true);
  const nis = xs ? 15 : 9;
  for (let is = -nis; is <= nis; is++) {
    const id = fr(fr(15 + fr(is * F_0_2)) / max);
    const thisScale = fr(1 / id);
    for (let k = 0; k < 8; k++) {
      const u = roundTuple(t, xval, k, id, IQ3_MAX_LEVEL, Laux);
      onGridAux[k] = t.map[u] >= 0;
      if (!onGridAux[k]) snapTuple(t, u, xval, waux, k, thisScale, Laux);
    }
    const [sumqx, sumq2] = levelFit(32, weight, xval, Laux);
    if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
      scale = fr(sumqx / sumq2);
      best = fr(scale * sumqx);
      L.set(Laux);
      for (let k = 0; k < 8; k++) onGrid[k] = onGridAux[k];
    }
  }
  if (onGrid.some((v) => !v) && scale > 0) {
    const id = fr(1 / scale);
    for (let k = 0; k < 8; k++) {
      if (xs && onGrid[k]) continue;
      const u = roundTuple(t, xval, k, id, IQ3_MAX_LEVEL, L);
      if (t.map[u] < 0) snapTuple(t, u, xval, waux, k, scale, L);
    }
    const [sumqx, sumq2] = levelFit(32, weight, xval, L);
    if (sumq2 > 0) scale = fr(sumqx / sumq2);
  }
  if (scale < 0) {
    scale = -scale;
    for (let k = 0; k < 4; k++) signs[k] = xs ? ~signs[k] & 127 : ~signs[k] & 255;
  }
  for (let k = 0; k < 8; k++) {
    let u = 0;
    for (let i = 0; i < 4; i++) u |= L[4 * k + i] << (3 * i);
    gidx[k] = t.map[u];
  }
  return scale;
}

function quantizeRowIq3(xs: boolean, x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const t = lattice(xs ? 256 : 512);
  const W = xs ? 98 : 110;
  const weight = new Float32Array(32);
  const gidx = new Uint16Array(8);
  const signs = new Uint8Array(4);
  const scales = new Float32Array(8);
  for (let ibl = 0; ibl < x.length / 256; ibl++) {
    const ob = ibl * W;
    out.fill(0, ob, ob + W);
    const o = ibl * 256;
    let sumx2 = 0;
    for (let i = 0; i < 256; i++) sumx2 = fr(sumx2 + fr(x[o + i] * x[o + i]));
    const sigma2 = fr(fr(2 * sumx2) / 256);
    let maxScale = 0;
    let qsAt = 0;
    let signsAt = 0;
    for (let g = 0; g < 8; g++) {
      const xo = o + 32 * g;
      for (let i = 0; i < 32; i++) {
        const v = x[xo + i];
        weight[i] = qw ? fr(qw[xo + i] * fr(Math.sqrt(fr(sigma2 + fr(v * v))))) : fr(v * v);
      }
      gidx.fill(0);
      signs.fill(0);
      const scale = quantizeGroup(xs, t, x, xo, weight, gidx, signs);
      scales[g] = Math.max(0, scale);
      if (scale < 0) continue;
      if (xs) {
        for (let k = 0; k < 8; k++) out[ob + 2 + 8 * g + k] = gidx[k];
        const aux = signs[0] | (signs[1] << 7) | (signs[2] << 14) | (signs[3] << 21);
        for (let b = 0; b < 4; b++) out[ob + 66 + 4 * g + b] = (aux >>> (8 * b)) & 0xff;
      } else {
        // ggml advances its qs/signs cursors only for groups it did not skip (a skipped all-zero
        // group shifts the following groups' indices and signs down); qh is indexed absolutely
        for (let k = 0; k < 8; k++) {
          out[ob + 2 + qsAt + k] = gidx[k] & 255;
          out[ob + 66 + g] |= (gidx[k] >> 8) << k;
        }
        for (let k = 0; k < 4; k++) out[ob + 74 + signsAt + k] = signs[k];
        qsAt += 8;
        signsAt += 4;
      }
      maxScale = Math.max(maxScale, scale);
    }
    if (maxScale === 0) {
      out.fill(0, ob, ob + W);
      continue;
    }
    const d = fr(maxScale / 31);
    putF16(out, ob, fr(d * fr(xs ? 1.0125 : 1.033)));
    const id = fr(1 / d);
    for (let g = 0; g < 8; g++) {
      const l = Math.max(0, Math.min(15, nearestInt(fr(0.5 * fr(fr(id * scales[g]) - 1)))));
      if (xs) out[ob + 66 + 4 * g + 3] |= l << 4;
      else out[ob + 106 + (g >> 1)] |= g & 1 ? l << 4 : l;
    }
  }
}

/** Quantizers only; iq-dequant.ts supplies the decoders. */
export const IQ3_QUANTIZERS = {
  IQ3_XXS: (x, out, qw) => quantizeRowIq3(true, x, out, qw),
  IQ3_S: (x, out, qw) => quantizeRowIq3(false, x, out, qw),
} satisfies Record<string, NonNullable<GgmlCodec['quantizeRow']>>;
