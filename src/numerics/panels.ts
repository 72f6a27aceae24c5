// The upper triangle of a [K, K] matrix stored by column panels, the layout the blocked Cholesky
// (cholesky-blocked.ts), the in-graph Hessian accumulation and fast GPTQ share: every block they
// touch is one contiguous run of memory, so a GEMM can read and write it in place.
// Legend: K = matrix order, nb = panel width, P = ⌈K/nb⌉ panels. Panel p covers columns
// [p·nb, p·nb + w_p) with w_p = min(nb, K − p·nb) and stores rows 0 … p·nb + w_p (everything on or
// above the diagonal) as a row-major [p·nb + w_p, w_p] block; panels follow one another. Entry
// (i, j), i ≤ j, is at offset(p) + i·w_p + (j − p·nb) with p = ⌊j/nb⌋. The diagonal tile of a
// panel is stored whole; which of its halves is meaningful is up to the user (a symmetric Gram
// matrix fills both, a triangular factor only the upper).

import { ShapeError } from '../core/errors.js';

export type PanelData = Float32Array | Float64Array;

export class UpperPanels<T extends PanelData = PanelData> {
  /** P, the number of panels */
  readonly count: number;
  /** start of each panel in `data` (count + 1 entries, the last = data.length) */
  readonly offsets: number[];

  constructor(
    readonly k: number,
    readonly nb: number,
    readonly data: T,
  ) {
    if (!(Number.isInteger(k) && k >= 1 && Number.isInteger(nb) && nb >= 1)) {
      throw new ShapeError('shape_mismatch', 'panel storage needs K ≥ 1 and a panel width ≥ 1', { expected: 'positive integers', found: { k, nb } });
    }
    this.count = Math.ceil(k / nb);
    this.offsets = [0];
    for (let p = 0; p < this.count; p++) this.offsets.push(this.offsets[p] + this.rows(p) * this.width(p));
    if (data.length !== this.offsets[this.count]) {
      throw new ShapeError('shape_mismatch', 'panel data length does not match [K, K] upper panels', { expected: this.offsets[this.count], found: data.length });
    }
  }

  /** Elements needed for K and nb. */
  static size(k: number, nb: number): number {
    let s = 0;
    for (let c0 = 0; c0 < k; c0 += nb) {
      const w = Math.min(nb, k - c0);
      s += (c0 + w) * w;
    }
    return s;
  }

  static zeros(k: number, nb: number, dtype: 'F32'): UpperPanels<Float32Array>;
  static zeros(k: number, nb: number, dtype: 'F64'): UpperPanels<Float64Array>;
  static zeros(k: number, nb: number, dtype: 'F32' | 'F64'): UpperPanels {
    const n = UpperPanels.size(k, nb);
    return new UpperPanels(k, nb, dtype === 'F32' ? new Float32Array(n) : new Float64Array(n));
  }

  /** Rows stored in panel p: p·nb + w_p. */
  rows(p: number): number {
    return Math.min(this.k, (p + 1) * this.nb);
  }

  /** Columns of panel p: w_p. */
  width(p: number): number {
    return Math.min(this.nb, this.k - p * this.nb);
  }

  /** Panel p as a [rows(p), width(p)] row-major view. */
  panel(p: number): T {
    return this.data.subarray(this.offsets[p], this.offsets[p + 1]) as T;
  }

  /** Offset of entry (i, j), i ≤ j (no check). */
  at(i: number, j: number): number {
    const p = Math.floor(j / this.nb);
    return this.offsets[p] + i * this.width(p) + (j - p * this.nb);
  }

  /** Entry (min(i, j), max(i, j)): the symmetric reading. */
  sym(i: number, j: number): number {
    return i <= j ? this.data[this.at(i, j)] : this.data[this.at(j, i)];
  }

  /** The upper triangle of a full row-major [K, K] matrix (diagonal tiles filled symmetrically from it). */
  static fromFull(full: ArrayLike<number>, k: number, nb: number, dtype: 'F32' | 'F64' = 'F64'): UpperPanels {
    if (full.length !== k * k) throw new ShapeError('shape_mismatch', 'matrix is not [K, K]', { expected: k * k, found: full.length });
    const u = dtype === 'F32' ? UpperPanels.zeros(k, nb, 'F32') : UpperPanels.zeros(k, nb, 'F64');
    for (let p = 0; p < u.count; p++) {
      const w = u.width(p), c0 = p * nb, o = u.offsets[p];
      for (let i = 0; i < u.rows(p); i++) for (let j = 0; j < w; j++) u.data[o + i * w + j] = full[i * k + c0 + j];
    }
    return u;
  }

  /** The symmetric [K, K] matrix whose upper triangle this holds, as float64. */
  toFullSymmetric(): Float64Array {
    const k = this.k;
    const out = new Float64Array(k * k);
    for (let i = 0; i < k; i++) {
      for (let j = i; j < k; j++) {
        const v = this.data[this.at(i, j)];
        out[i * k + j] = v;
        out[j * k + i] = v;
      }
    }
    return out;
  }

  /** The upper-triangular [K, K] matrix (zeros below the diagonal), as float64. */
  toFullUpper(): Float64Array {
    const k = this.k;
    const out = new Float64Array(k * k);
    for (let i = 0; i < k; i++) for (let j = i; j < k; j++) out[i * k + j] = this.data[this.at(i, j)];
    return out;
  }
}
