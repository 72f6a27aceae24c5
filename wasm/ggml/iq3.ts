// IQ3_XXS (98 bytes / 256) and IQ3_S (110 bytes / 256), with and without an importance matrix,
// bit-exact with src/quant/ggml/iq3-quant.ts (the algorithm is described there). Scalar: the work
// per group is a walk over 4-tuples, grid look-ups and neighbour searches, not a lane-parallel
// reduction. The lattice tables are built here once per grid from the grid bytes the host
// uploads (iq3GridAddress / iq3Init): the grid index of every lattice point and, for each point
// off the grid, its neighbour list (the grid points at the 2 (IQ3_XXS) or 3 (IQ3_S) smallest
// distinct squared distances, by distance then index, as ggml and iq-lattice.ts build them).
// Legend: u = lattice index Σ l_i·8^i (4096 points), g = grid point, k = 4-tuple (8 per group).

import { nearestInt, putF16 } from './common';
import { f32At } from './scratch';
import { appendNeighbours, fitQ2, fitQx, levelFit, roundTuple, signsOf8, snapTuple } from './lattice-tuples';

// per grid (0: IQ3_XXS, 256 points; 1: IQ3_S, 512 points)
const GRID = memory.data(2 * 512 * 4); // uploaded grid bytes
const POS = memory.data(2 * 512 * 4); // i8 coordinates 2l+1 of each grid point
const MAP = memory.data(2 * 4096 * 2); // i16 grid index of lattice point u, or −1
const NB_START = memory.data(2 * 4097 * 4); // i32 start of u's neighbour list in NB
const NB = memory.data(2 * 262144 * 2); // u16 neighbour lists
const READY = memory.data(8);

/** Where the host writes grid `which`'s bytes (gridSize·4). */
export function iq3GridAddress(which: i32): usize {
  return GRID + <usize>which * 2048;
}

/** Builds grid `which`'s lattice tables from its uploaded bytes (idempotent). */
export function iq3Init(which: i32): void {
  if (load<u8>(READY + which)) return;
  const size = which == 0 ? 256 : 512;
  const unit = which == 0 ? 4 : 1;
  const nwant = which == 0 ? 2 : 3;
  const grid = GRID + <usize>which * 2048;
  const pos = POS + <usize>which * 2048;
  const map = MAP + <usize>which * 8192;
  const start = NB_START + <usize>which * 16388;
  const nb = NB + <usize>which * 524288;
  for (let u = 0; u < 4096; u++) store<i16>(map + (<usize>u << 1), -1);
  for (let g = 0; g < size; g++) {
    let u = 0;
    for (let i = 0; i < 4; i++) {
      const l = (<i32>load<u8>(grid + <usize>(4 * g + i)) / unit - 1) >> 1;
      store<i8>(pos + <usize>(4 * g + i), <i8>(2 * l + 1));
      u |= l << (3 * i);
    }
    store<i16>(map + (<usize>u << 1), <i16>g);
  }
  const d2 = memory.data(512 * 4);
  let at = 0;
  for (let u = 0; u < 4096; u++) {
    store<i32>(start + (<usize>u << 2), at);
    if (load<i16>(map + (<usize>u << 1)) >= 0) continue;
    at = appendNeighbours(pos, size, 4, 3, u, nwant, d2, nb, at, i32.MAX_VALUE);
  }
  store<i32>(start + (<usize>4096 << 2), at);
  store<u8>(READY + which, 1);
}

// one group's scratch
const XVAL = memory.data(32 * 4);
const WAUX = memory.data(32 * 4);
const WGT = memory.data(32 * 4);
const L = memory.data(32);
const LAUX = memory.data(32);
const ONGRID = memory.data(8);
const ONGRID_AUX = memory.data(8);
const GIDX = memory.data(8 * 2);
const SIGNS = memory.data(4);
const SCALES8 = memory.data(8 * 4);

/** Tuple k (4 values of 3 bits) rounded at inverse scale id into Lp; its lattice index. */
// @ts-ignore: decorator
@inline function round4(k: i32, id: f32, Lp: usize): i32 {
  return roundTuple(XVAL, k, 4, 3, 7, id, Lp);
}

/** Off-grid tuple k (lattice u) snapped to its best neighbour on grid `which` at `scale` → Lp. */
// @ts-ignore: decorator
@inline function snap4(which: i32, u: i32, k: i32, scale: f32, Lp: usize): void {
  const start = NB_START + <usize>which * 16388;
  const s0 = load<i32>(start + (<usize>u << 2));
  const s1 = load<i32>(start + (<usize>(u + 1) << 2));
  snapTuple(POS + <usize>which * 2048, NB + <usize>which * 524288, s0, s1, 4, XVAL, WAUX, k, scale, Lp);
}

/** One group of 32 at x (weights in WGT): grid indices → GIDX, signs → SIGNS; the scale, or −1 to skip. */
function quantizeGroup(xs: bool, x: usize): f32 {
  const which = xs ? 0 : 1;
  const map = MAP + <usize>which * 8192;
  for (let i = 0; i < 32; i++) store<f32>(WAUX + (<usize>i << 2), Mathf.sqrt(f32At(WGT, i)));
  for (let k = 0; k < 4; k++) {
    // IQ3_XXS stores 7 sign bits (even parity), IQ3_S all 8
    const s = xs ? signsOf8(x, k, XVAL, WGT, true) : signsOf8(x, k, XVAL, WGT, false);
    store<u8>(SIGNS + k, <u8>(xs ? s & 127 : s));
  }
  let mx = f32At(XVAL, 0);
  for (let i = 1; i < 32; i++) mx = max(mx, f32At(XVAL, i));
  if (xs ? mx < <f32>1e-8 : mx == 0) return -1;
  let best: f32 = 0;
  let scale: f32 = mx / 15;
  memory.fill(L, 0, 32); // kept when no candidate scale is accepted (overflowing sums)
  for (let k = 0; k < 8; k++) store<u8>(ONGRID + k, xs ? 1 : 0);
  const nis = xs ? 15 : 9;
  for (let is = -nis; is <= nis; is++) {
    const id: f32 = (<f32>15 + <f32>is * <f32>0.2) / mx;
    const thisScale: f32 = <f32>1 / id;
    for (let k = 0; k < 8; k++) {
      const u = round4(k, id, LAUX);
      const on = load<i16>(map + (<usize>u << 1)) >= 0;
      store<u8>(ONGRID_AUX + k, on ? 1 : 0);
      if (!on) snap4(which, u, k, thisScale, LAUX);
    }
    levelFit(32, LAUX, XVAL, WGT);
    if (fitQ2 > 0 && fitQx * fitQx > best * fitQ2) {
      scale = fitQx / fitQ2;
      best = scale * fitQx;
      memory.copy(L, LAUX, 32);
      memory.copy(ONGRID, ONGRID_AUX, 8);
    }
  }
  let anyOff = false;
  for (let k = 0; k < 8; k++) if (!load<u8>(ONGRID + k)) anyOff = true;
  if (anyOff && scale > 0) {
    const id: f32 = <f32>1 / scale;
    for (let k = 0; k < 8; k++) {
      if (xs && load<u8>(ONGRID + k)) continue;
      const u = round4(k, id, L);
      if (load<i16>(map + (<usize>u << 1)) < 0) snap4(which, u, k, scale, L);
    }
    levelFit(32, L, XVAL, WGT);
    if (fitQ2 > 0) scale = fitQx / fitQ2;
  }
  if (scale < 0) {
    scale = -scale;
    for (let k = 0; k < 4; k++) store<u8>(SIGNS + k, <u8>(xs ? ~load<u8>(SIGNS + k) & 127 : ~load<u8>(SIGNS + k) & 255));
  }
  for (let k = 0; k < 8; k++) {
    let u = 0;
    for (let i = 0; i < 4; i++) u |= <i32>load<i8>(L + <usize>(4 * k + i)) << (3 * i);
    store<u16>(GIDX + (<usize>k << 1), <u16>load<i16>(map + (<usize>u << 1)));
  }
  return scale;
}

/** IQ3_XXS (xs) or IQ3_S super-blocks; qw = importance weights per column, or 0. */
export function quantizeIq3(xs: bool, x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const W: usize = xs ? 98 : 110;
  const nb = nPerRow >> 8;
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const p = x + <usize>(r * nb + b) * 1024;
      const ob = out + <usize>(r * nb + b) * W;
      const q = qw ? qw + <usize>b * 1024 : 0;
      memory.fill(ob, 0, W);
      let sumx2: f32 = 0;
      for (let i = 0; i < 256; i++) sumx2 += f32At(p, i) * f32At(p, i);
      const sigma2: f32 = (<f32>2 * sumx2) / <f32>256;
      let maxScale: f32 = 0;
      let qsAt = 0;
      let signsAt = 0;
      for (let g = 0; g < 8; g++) {
        const xg = p + <usize>g * 128;
        for (let i = 0; i < 32; i++) {
          const v = f32At(xg, i);
          store<f32>(WGT + (<usize>i << 2), q ? f32At(q, 32 * g + i) * Mathf.sqrt(sigma2 + v * v) : v * v);
        }
        memory.fill(GIDX, 0, 16);
        memory.fill(SIGNS, 0, 4);
        const scale = quantizeGroup(xs, xg);
        store<f32>(SCALES8 + (<usize>g << 2), max(<f32>0, scale));
        if (scale < 0) continue;
        if (xs) {
          for (let k = 0; k < 8; k++) store<u8>(ob + 2 + <usize>(8 * g + k), <u8>load<u16>(GIDX + (<usize>k << 1)));
          const aux = <u32>load<u8>(SIGNS) | (<u32>load<u8>(SIGNS + 1) << 7) | (<u32>load<u8>(SIGNS + 2) << 14) | (<u32>load<u8>(SIGNS + 3) << 21);
          store<u32>(ob + 66 + <usize>(4 * g), aux);
        } else {
          // ggml advances its qs/signs cursors only for groups it did not skip; qh is indexed absolutely
          for (let k = 0; k < 8; k++) {
            const gi = <u32>load<u16>(GIDX + (<usize>k << 1));
            store<u8>(ob + 2 + <usize>(qsAt + k), <u8>(gi & 255));
            store<u8>(ob + 66 + <usize>g, load<u8>(ob + 66 + <usize>g) | <u8>((gi >> 8) << k));
          }
          for (let k = 0; k < 4; k++) store<u8>(ob + 74 + <usize>(signsAt + k), load<u8>(SIGNS + k));
          qsAt += 8;
          signsAt += 4;
        }
        maxScale = max(maxScale, scale);
      }
      if (maxScale == 0) {
        memory.fill(ob, 0, W);
        continue;
      }
      const d: f32 = maxScale / 31;
      putF16(ob, d * <f32>(xs ? 1.0125 : 1.033));
      const id: f32 = <f32>1 / d;
      for (let g = 0; g < 8; g++) {
        const l = max(0, min(15, nearestInt(<f32>0.5 * (id * f32At(SCALES8, g) - 1))));
        if (xs) store<u8>(ob + 66 + <usize>(4 * g + 3), load<u8>(ob + 66 + <usize>(4 * g + 3)) | <u8>(l << 4));
        else {
          const at = ob + 106 + <usize>(g >> 1);
          store<u8>(at, load<u8>(at) | <u8>(g & 1 ? l << 4 : l));
        }
      }
    }
  }
}
