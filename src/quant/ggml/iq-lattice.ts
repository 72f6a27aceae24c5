// The grid lattices the IQ quantizers round onto, shared by IQ1_S/IQ1_M and IQ2_XXS/XS/S
// (8-tuples of 2-bit levels) and IQ3_XXS/IQ3_S (4-tuples of 3-bit levels). A tuple of levels
// l_i is the lattice point u = Σ l_i·2^(bits·i) with coordinates q_i = 2l_i + 1; only the grid's
// points are storable, so a tuple that rounds off the grid is replaced by its best grid neighbour.
// Neighbour lists (the grid points at the `nwant` smallest distinct squared distances, ordered
// by distance then grid index, as ggml builds them) are computed on first use of each off-grid
// point and cached.
// Legend: D = tuple length (4 or 8), k = tuple index within a group, u = lattice index.

import { nearestInt } from './common.js';

const fr = Math.fround;

export interface IqLattice {
  /** tuple length D */
  dim: number;
  /** bits per level */
  bits: number;
  /** grid points */
  size: number;
  /** [size·D] lattice coordinates 2l + 1 of each grid point */
  pos: Int8Array;
  /** [2^(D·bits)] grid index of lattice point u, or −1 */
  map: Int32Array;
  /** how many distinct distances a neighbour list spans */
  nwant: number;
  /** neighbour lists by u (filled on first use) */
  near: (Uint16Array | undefined)[];
}

/** Builds the lattice of a grid whose point g has level `level(g, i)` at coordinate i. */
export function buildLattice(dim: number, bits: number, size: number, nwant: number, level: (g: number, i: number) => number): IqLattice {
  const pos = new Int8Array(size * dim);
  const map = new Int32Array(1 << (dim * bits)).fill(-1);
  for (let g = 0; g < size; g++) {
    let u = 0;
    for (let i = 0; i < dim; i++) {
      const l = level(g, i);
      pos[dim * g + i] = 2 * l + 1;
      u |= l << (bits * i);
    }
    map[u] = g;
  }
  return { dim, bits, size, pos, map, nwant, near: new Array<Uint16Array | undefined>(map.length) };
}

/** Grid points at the nwant smallest distinct squared distances from lattice point u, by (distance, index). */
export function neighbours(t: IqLattice, u: number): Uint16Array {
  const have = t.near[u];
  if (have) return have;
  const { dim, bits, size, pos, nwant } = t;
  const mask = (1 << bits) - 1;
  const d2 = new Int32Array(size);
  const levels: number[] = [];
  for (let g = 0; g < size; g++) {
    let s = 0;
    for (let i = 0; i < dim; i++) {
      const diff = pos[dim * g + i] - (2 * ((u >> (bits * i)) & mask) + 1);
      s += diff * diff;
    }
    d2[g] = s;
    if (!levels.includes(s)) {
      levels.push(s);
      levels.sort((a, b) => a - b);
      if (levels.length > nwant) levels.pop();
    }
  }
  const list: number[] = [];
  for (const lv of levels) for (let g = 0; g < size; g++) if (d2[g] === lv) list.push(g);
  const r = Uint16Array.from(list);
  t.near[u] = r;
  return r;
}

/** Rounds tuple k at inverse scale id to levels 0..maxLevel in L; returns its lattice index. */
export function roundTuple(t: IqLattice, xval: Float32Array, k: number, id: number, maxLevel: number, L: Int8Array): number {
  const { dim, bits } = t;
  let u = 0;
  for (let i = 0; i < dim; i++) {
    const l = Math.max(0, Math.min(maxLevel, nearestInt(fr(0.5 * fr(fr(id * xval[dim * k + i]) - 1)))));
    L[dim * k + i] = l;
    u |= l << (bits * i);
  }
  return u;
}

/** Best grid neighbour of off-grid tuple k (lattice index u) at `scale`, by √w-weighted error; writes its levels to L and returns it. */
export function snapTuple(t: IqLattice, u: number, xval: Float32Array, waux: Float32Array, k: number, scale: number, L: Int8Array): number {
  const { dim, pos } = t;
  let best = Infinity;
  let gi = -1;
  for (const g of neighbours(t, u)) {
    let d2 = 0;
    for (let i = 0; i < dim; i++) {
      const diff = fr(fr(scale * pos[dim * g + i]) - xval[dim * k + i]);
      d2 = fr(d2 + fr(fr(waux[dim * k + i] * diff) * diff));
    }
    if (d2 < best) {
      best = d2;
      gi = g;
    }
  }
  for (let i = 0; i < dim; i++) L[dim * k + i] = (pos[dim * gi + i] - 1) >> 1;
  return gi;
}

/** Weighted least-squares sums of n values against coordinates q = 2l + 1: [Σ w·x·q, Σ w·q²]. */
export function levelFit(n: number, w: Float32Array, xval: Float32Array, L: Int8Array): [number, number] {
  let sumqx = 0;
  let sumq2 = 0;
  for (let i = 0; i < n; i++) {
    const q = 2 * L[i] + 1;
    sumqx = fr(sumqx + fr(fr(w[i] * xval[i]) * q));
    sumq2 = fr(sumq2 + fr(fr(w[i] * q) * q));
  }
  return [sumqx, sumq2];
}
