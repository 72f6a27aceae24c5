// IQ2_XXS (66 bytes / 256), IQ2_XS (74) and IQ2_S (82), bit-exact with
// src/quant/ggml/iq2-quant.ts (the algorithm is described there; IQ2_XXS/IQ2_XS need an
// importance matrix, which the host enforces). Scalar, like iq3.ts: a group's work is a walk over
// 8-tuples, grid look-ups and neighbour searches. Each grid's lattice (65,536 points of 8 two-bit
// levels) is built here from the grid bytes the host uploads (iq2GridAddress / iq2Init); the
// neighbour list of an off-grid point (the grid points at the 2 (256- and 512-point grids) or 1
// (1024) smallest distinct squared distances, by distance then index) is computed the first time
// a tuple rounds to it and kept: all of them would take 0.3–0.5 s per grid and thread up front.
// The same lattice code serves IQ1_S/IQ1_M's 2048-point grid of values −1/0/+1 (slot 3, level =
// value + 1, 3 distances; iq1.ts).
// Legend: u = lattice index Σ l_i·4^i, g = grid point, k = 8-tuple (4 per IQ2_XXS group of 32,
// 2 per IQ2_XS/IQ2_S group of 16), which = grid slot (0: IQ2_XXS 256, 1: IQ2_XS 512, 2: IQ2_S
// 1024, 3: IQ1 2048).

import { nearestInt, putF16 } from './common';
import { f32At } from './scratch';
import { makeQp } from './kquants';
import { appendNeighbours, fitQ2, fitQx, levelFit, roundTuple, signsOf8, snapTuple } from './lattice-tuples';

const GROUP_MAX_EPS: f32 = 1e-15;
const GROUP_MAX_EPS_IQ2_S: f32 = 1e-8;

const GRID = memory.data(4 * 16384); // uploaded grid bytes (size·8 per slot)
const POS = memory.data(4 * 16384); // i8 coordinates 2l+1 of each grid point
const MAP = memory.data(4 * 65536 * 2); // i16 grid index of lattice point u, or −1
const NB_AT = memory.data(4 * 65536 * 4); // i32 start of u's neighbour list in its slot's pool, −1 until computed
const NB_LEN = memory.data(4 * 65536 * 2); // u16 its length
// neighbour pools, u16 entries: sized to the sum over every off-grid point (510,801 / 655,798 /
// 222,079 / 1,764,338, counted over every lattice point with src/quant/ggml/iq-lattice.ts)
const POOL0 = memory.data(511000 * 2);
const POOL1 = memory.data(656000 * 2);
const POOL2 = memory.data(223000 * 2);
const POOL3 = memory.data(1765000 * 2);
const POOL_USED = memory.data(4 * 4);
const READY = memory.data(4);
const D2 = memory.data(2048 * 4);

// @ts-ignore: decorator
@inline function gridSize(which: i32): i32 {
  return 256 << which;
}

// @ts-ignore: decorator
@inline function poolSize(which: i32): i32 {
  return which == 0 ? 511000 : which == 1 ? 656000 : which == 2 ? 223000 : 1765000;
}

// @ts-ignore: decorator
@inline function pool(which: i32): usize {
  return which == 0 ? POOL0 : which == 1 ? POOL1 : which == 2 ? POOL2 : POOL3;
}

/** Grid `which`'s i8 coordinates 2l+1, [size·8]. */
export function latticePos(which: i32): usize {
  return POS + <usize>which * 16384;
}

/** Grid `which`'s i16 map from lattice point u to grid index (−1: off the grid). */
export function latticeMap(which: i32): usize {
  return MAP + <usize>which * 131072;
}

/** Entries of u's neighbour list (computed on first use); the list is at neighbourList(which) + 2·start. */
export function neighbourCount(which: i32, u: i32): i32 {
  neighbours(which, u);
  return <i32>load<u16>(NB_LEN + <usize>which * 131072 + (<usize>u << 1));
}

export function neighbourList(which: i32): usize {
  return pool(which);
}

/** Start of u's neighbour list in its pool (computed on first use). */
export function neighbourStart(which: i32, u: i32): i32 {
  return neighbours(which, u);
}

/** Where the host writes grid `which`'s bytes (size·8). */
export function iq2GridAddress(which: i32): usize {
  return GRID + <usize>which * 16384;
}

/** Builds grid `which`'s lattice map from its uploaded bytes (idempotent). */
export function iq2Init(which: i32): void {
  if (load<u8>(READY + which)) return;
  const size = gridSize(which);
  const grid = GRID + <usize>which * 16384;
  const pos = POS + <usize>which * 16384;
  const map = MAP + <usize>which * 131072;
  const at = NB_AT + <usize>which * 262144;
  for (let u = 0; u < 65536; u++) {
    store<i16>(map + (<usize>u << 1), -1);
    store<i32>(at + (<usize>u << 2), -1);
  }
  for (let g = 0; g < size; g++) {
    let u = 0;
    for (let i = 0; i < 8; i++) {
      const b = load<u8>(grid + <usize>(8 * g + i));
      const l = which == 3 ? <i32>load<i8>(grid + <usize>(8 * g + i)) + 1 : b == 0x08 ? 0 : b == 0x19 ? 1 : b == 0x2b ? 2 : 3;
      store<i8>(pos + <usize>(8 * g + i), <i8>(2 * l + 1));
      u |= l << (2 * i);
    }
    store<i16>(map + (<usize>u << 1), <i16>g);
  }
  store<i32>(POOL_USED + (<usize>which << 2), 0);
  store<u8>(READY + which, 1);
}

/** Computes (once) the neighbour list of off-grid lattice point u; returns its start in the pool. */
function neighbours(which: i32, u: i32): i32 {
  const atp = NB_AT + <usize>which * 262144 + (<usize>u << 2);
  const have = load<i32>(atp);
  if (have >= 0) return have;
  const nwant = which == 2 ? 1 : which == 3 ? 3 : 2;
  const start = load<i32>(POOL_USED + (<usize>which << 2));
  const n = appendNeighbours(POS + <usize>which * 16384, gridSize(which), 8, 2, u, nwant, D2, pool(which), start, poolSize(which));
  store<i32>(POOL_USED + (<usize>which << 2), n);
  store<u16>(NB_LEN + <usize>which * 131072 + (<usize>u << 1), <u16>(n - start));
  store<i32>(atp, start);
  return start;
}

// one group's scratch
const XVAL = memory.data(32 * 4);
const WAUX = memory.data(32 * 4);
const WGT = memory.data(32 * 4);
const L = memory.data(32);
const LAUX = memory.data(32);
const LQP = memory.data(32);
const ONGRID = memory.data(4);
const ONGRID_AUX = memory.data(4);
const GIDX = memory.data(4 * 2);
const SIGNS = memory.data(4);
const SCALES16 = memory.data(16 * 4);

/** Tuple k (8 values of 2 bits, levels 0..2 searched) rounded at inverse scale id into Lp; its lattice index. */
// @ts-ignore: decorator
@inline function round8(k: i32, id: f32, Lp: usize): i32 {
  return roundTuple(XVAL, k, 8, 2, 2, id, Lp);
}

/** Off-grid tuple k (lattice u) snapped to its best neighbour on grid `which` at `scale` → Lp. */
// @ts-ignore: decorator
@inline function snap8(which: i32, u: i32, k: i32, scale: f32, Lp: usize): void {
  const s0 = neighbours(which, u);
  const s1 = s0 + <i32>load<u16>(NB_LEN + <usize>which * 131072 + (<usize>u << 1));
  snapTuple(POS + <usize>which * 16384, pool(which), s0, s1, 8, XVAL, WAUX, k, scale, Lp);
}

/** One group at x (weights in WGT): grid indices → GIDX, signs → SIGNS; the scale, or −1 to skip. */
function quantizeGroup(which: i32, x: usize): f32 {
  const xxs = which == 0;
  const s = which == 2;
  const n = xxs ? 32 : 16;
  const nk = n >> 3;
  const map = MAP + <usize>which * 131072;
  for (let i = 0; i < n; i++) store<f32>(WAUX + (<usize>i << 2), Mathf.sqrt(f32At(WGT, i)));
  for (let k = 0; k < nk; k++) {
    // IQ2_XXS/IQ2_XS store 7 sign bits (even parity), IQ2_S all 8
    const sg = s ? signsOf8(x, k, XVAL, WGT, false) : signsOf8(x, k, XVAL, WGT, true);
    store<u8>(SIGNS + k, <u8>(s ? sg : sg & 127));
  }
  let mx = f32At(XVAL, 0);
  for (let i = 1; i < n; i++) mx = max(mx, f32At(XVAL, i));
  const eps: f32 = s ? GROUP_MAX_EPS_IQ2_S : GROUP_MAX_EPS;
  if (mx < eps) return -1;
  let scale: f32;
  let ref: f32;
  let isFrom: i32;
  if (xxs) {
    scale = makeQp(32, 4, XVAL, LQP, WGT);
    ref = scale * 3;
    if (ref <= 0) return -1;
    isFrom = 6;
  } else {
    scale = mx / 5;
    ref = mx;
    isFrom = 9;
  }
  memory.fill(L, 0, 32);
  store<u32>(ONGRID, 0x01010101);
  let best: f32 = 0;
  for (let is = -isFrom; is <= isFrom; is++) {
    const id: f32 = (<f32>5 + <f32>is * <f32>0.1) / ref;
    const thisScale: f32 = <f32>1 / id;
    for (let k = 0; k < nk; k++) {
      const u = round8(k, id, LAUX);
      const on = load<i16>(map + (<usize>u << 1)) >= 0;
      store<u8>(ONGRID_AUX + k, on ? 1 : 0);
      if (!on) snap8(which, u, k, thisScale, LAUX);
    }
    levelFit(n, LAUX, XVAL, WGT);
    if (fitQ2 > 0 && fitQx * fitQx > best * fitQ2) {
      scale = fitQx / fitQ2;
      best = scale * fitQx;
      memory.copy(L, LAUX, n);
      for (let k = 0; k < nk; k++) store<u8>(ONGRID + k, load<u8>(ONGRID_AUX + k));
    }
  }
  // IQ2_XXS re-rounds every tuple at the chosen scale; IQ2_XS/S only those off the grid
  let redo = false;
  if (scale > 0) {
    if (xxs) redo = true;
    else for (let k = 0; k < nk; k++) if (!load<u8>(ONGRID + k)) redo = true;
  }
  if (redo) {
    const id: f32 = <f32>1 / scale;
    for (let k = 0; k < nk; k++) {
      if (!xxs && load<u8>(ONGRID + k)) continue;
      const u = round8(k, id, L);
      if (load<i16>(map + (<usize>u << 1)) < 0) snap8(which, u, k, scale, L);
    }
    levelFit(n, L, XVAL, WGT);
    if (fitQ2 > 0) scale = fitQx / fitQ2;
  }
  if (scale < 0) {
    scale = -scale;
    for (let k = 0; k < nk; k++) store<u8>(SIGNS + k, <u8>(~load<u8>(SIGNS + k) & (s ? 255 : 127)));
  }
  for (let k = 0; k < nk; k++) {
    let u = 0;
    for (let i = 0; i < 8; i++) u |= <i32>load<i8>(L + <usize>(8 * k + i)) << (2 * i);
    store<u16>(GIDX + (<usize>k << 1), <u16>load<i16>(map + (<usize>u << 1)));
  }
  return scale;
}

/** IQ2_XXS (which 0), IQ2_XS (1) or IQ2_S (2) super-blocks; qw = importance weights per column, or 0. */
export function quantizeIq2(which: i32, x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const xxs = which == 0;
  const s = which == 2;
  const W: usize = xxs ? 66 : s ? 82 : 74;
  const n = xxs ? 32 : 16;
  const ng = 256 / n;
  const nb = nPerRow >> 8;
  for (let r = 0; r < nRows; r++) {
    for (let b = 0; b < nb; b++) {
      const p = x + <usize>(r * nb + b) * 1024;
      const ob = out + <usize>(r * nb + b) * W;
      memory.fill(ob, 0, W);
      let sumx2: f32 = 0;
      for (let i = 0; i < 256; i++) sumx2 += f32At(p, i) * f32At(p, i);
      // IQ2_S uses 2·Σx²/256 and, without an imatrix, weights σ²/4 + x²
      const sigma2: f32 = s ? (<f32>2 * sumx2) / <f32>256 : sumx2 / <f32>256;
      let maxScale: f32 = 0;
      for (let g = 0; g < ng; g++) {
        const xg = p + <usize>(g * n) * 4;
        for (let i = 0; i < n; i++) {
          const v = f32At(xg, i);
          const x2 = v * v;
          store<f32>(WGT + (<usize>i << 2), qw ? f32At(qw, (b << 8) + g * n + i) * Mathf.sqrt(sigma2 + x2) : <f32>0.25 * sigma2 + x2);
        }
        memory.fill(GIDX, 0, 8);
        memory.fill(SIGNS, 0, 4);
        const scale = quantizeGroup(which, xg);
        store<f32>(SCALES16 + (<usize>g << 2), max(<f32>0, scale));
        if (scale < 0) continue;
        if (xxs) {
          for (let k = 0; k < 4; k++) store<u8>(ob + 2 + <usize>(8 * g + k), <u8>load<u16>(GIDX + (<usize>k << 1)));
          const aux = <u32>load<u8>(SIGNS) | (<u32>load<u8>(SIGNS + 1) << 7) | (<u32>load<u8>(SIGNS + 2) << 14) | (<u32>load<u8>(SIGNS + 3) << 21);
          store<u32>(ob + 6 + <usize>(8 * g), aux);
        } else if (!s) {
          for (let k = 0; k < 2; k++) {
            const q = <u32>load<u16>(GIDX + (<usize>k << 1)) | (<u32>load<u8>(SIGNS + k) << 9);
            store<u16>(ob + 2 + <usize>(4 * g + 2 * k), <u16>q);
          }
        } else {
          for (let k = 0; k < 2; k++) {
            const i8 = 2 * g + k;
            const gi = <u32>load<u16>(GIDX + (<usize>k << 1));
            store<u8>(ob + 2 + <usize>i8, <u8>(gi & 255));
            const qh = ob + 66 + <usize>(i8 >> 2);
            store<u8>(qh, load<u8>(qh) | <u8>((gi >> 8) << (2 * (i8 & 3))));
            store<u8>(ob + 34 + <usize>i8, load<u8>(SIGNS + k));
          }
        }
        maxScale = max(maxScale, scale);
      }
      if (maxScale == 0) {
        if (!s) memory.fill(ob, 0, W);
        continue;
      }
      const d: f32 = maxScale / 31;
      putF16(ob, s ? d * <f32>0.9875 : d);
      const id: f32 = <f32>1 / d;
      for (let g = 0; g < ng; g++) {
        const l = max(0, min(15, nearestInt(<f32>0.5 * (id * f32At(SCALES16, g) - 1))));
        if (xxs) store<u8>(ob + 9 + <usize>(8 * g), load<u8>(ob + 9 + <usize>(8 * g)) | <u8>(l << 4));
        else {
          const at = ob + (s ? 74 : 66) + <usize>(g >> 1);
          store<u8>(at, load<u8>(at) | <u8>(g & 1 ? l << 4 : l));
        }
      }
    }
  }
}
