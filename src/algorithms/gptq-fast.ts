// GPTQ arranged for GEMMs: the algorithm of gptq.ts (which stays as the float64 oracle), with
// float32 storage, a blocked factorisation and the error feedback done as matrix products by an
// injected GEMM (numerics/gemm.ts; the pipeline passes onnxruntime's, the default is pure TS).
// Legend: N = rows (output features), K = columns (input features), B = lazy-batch width,
// b = leaf width (B is split into leaves), G = group width, nb = factor panel width.
//
// The factor. With the damped Hessian H = R·Rᵀ (R upper-triangular, numerics/cholesky-blocked.ts),
// the oracle's U (upper Cholesky factor of H⁻¹) is R⁻¹, and its updates add up to
//   w̃_j = w_j + Σ_{i<j} (R_ij / R_jj)·(w_i − q_i),
// with w the weights GPTQ started from (not the updated ones) and q the chosen values: the error
// of column i is e_i = (w̃_i − q_i)/U_ii = (Rᵀ(w − q))_i. So no inverse is formed, and the
// factor of one input (H shared by q/k/v, by gate/up) serves every linear that reads it.
//
// The column loop is sequential (each column is rounded by its grid after all earlier columns'
// feedback has reached it); only the feedback is batched, at three levels:
//   inside a leaf of b columns: rank-1 updates of the remaining leaf columns (plain loops);
//   leaf → rest of its lazy batch: W̃[:, s2:i2] += D_leaf·R'[leaf, s2:i2]          (GEMM, rank b);
//   lazy batch → rest of its outer block: W̃[:, i2:o2] += D_batch·R'[batch, i2:o2]  (GEMM, rank B);
//   outer block → all later columns: W̃[:, o2:] += D_outer·R'[outer, o2:]          (GEMM, rank O);
// with D = w − q and R' = R·diag(1/R_jj). The outer level exists for the GEMM's sake: an update
// of rank B = 128 reads and writes all of W̃'s later rows for 2·128 flops per value, which leaves
// onnxruntime's MatMul bound by memory ([8064, 2048] outputs: 26–51 GFLOPS at rank 128, 115–150
// at rank 512, three runs each on a shared machine); at rank O = 512 the same flops cost a quarter of the traffic. W̃ is held transposed ([K, N]: a column is a contiguous
// row) so every GEMM reads and writes contiguous memory. Where groups are fitted as GPTQ reaches
// them, B and b are chosen so that a group's columns have received all earlier feedback when it
// is fitted (as in the oracle).

import { checkAborted } from '../core/progress.js';
import { ConfigError, ShapeError } from '../core/errors.js';
import { gemmF32, transposeF32Into, type Gemm } from '../numerics/gemm.js';
import { UpperPanels } from '../numerics/panels.js';
import { reverseCholeskyFlops, reverseCholeskyPanels } from '../numerics/cholesky-blocked.js';
import { invertUpper } from '../numerics/linalg.js';
import type { ColumnGrid } from './grid.js';

/**
 * Optional grid method for the fast path: fit group g like `fitGroup`, reading the current matrix
 * transposed (`wT` [K, N]: row c holds column c). Grids without it get a float64 [N, K] copy.
 */
export interface TransposedFit {
  fitGroupT(g: number, wT: Float32Array, c0: number, c1: number, cols?: Int32Array): void;
}

function hasFitT(g: ColumnGrid): g is ColumnGrid & TransposedFit {
  return typeof (g as Partial<TransposedFit>).fitGroupT === 'function';
}

export interface GptqFactorOptions {
  /** λ = percdamp·mean(diag H) is added to the diagonal (default 0.01) */
  percdamp?: number;
  /** order columns by decreasing diag(H) */
  actOrder?: boolean;
  gemm?: Gemm;
  /** nb (default 256) */
  panelWidth?: number;
  signal?: AbortSignal;
  onPanel?: (done: number, total: number) => void;
  /** the input's name in errors */
  what?: string;
  /**
   * factor the Gram panels in place when they allow it (float32, width nb, no act-order): the
   * statistics' Gram matrix becomes the factor (saves a copy of K²/2 floats)
   */
  inPlace?: boolean;
}

export interface GptqFactor {
  k: number;
  /** position → original column (null: identity) */
  perm: Int32Array | null;
  /** [K] 1 where the input was never active (diag = 0; its weights are zeroed), original order */
  dead: Uint8Array;
  /** R with H_damped = R·Rᵀ, permuted order */
  r: UpperPanels<Float32Array>;
  /** [K] R_cc, permuted order */
  rdiag: Float64Array;
  /** flops spent factoring */
  flops: number;
}

/** Columns by decreasing diagonal; ties keep the lower index first (gptq.ts actOrderPermutation). */
export function actOrderFromDiag(diag: ArrayLike<number>): Int32Array {
  const idx = Array.from({ length: diag.length }, (_, i) => i);
  idx.sort((a, b) => diag[b] - diag[a] || a - b);
  return Int32Array.from(idx);
}

/**
 * The factor of one input's Hessian H = scale·G (G = Σ x xᵀ as upper panels, any width and
 * precision; scale = 2/n for GPTQ's normalisation, which the dead-column rule and the damping see
 * as the oracle does): dead columns get H_ii = 1, act-order permutes, λ is added, then H = R·Rᵀ.
 */
export async function gptqFactor(gram: UpperPanels, scale: number, o: GptqFactorOptions = {}): Promise<GptqFactor> {
  const k = gram.k;
  const nb = o.panelWidth ?? 256;
  const percdamp = o.percdamp ?? 0.01;
  if (!(percdamp >= 0) || !(scale > 0) || !(nb >= 1)) {
    throw new ConfigError('bad_option', 'GPTQ needs percdamp ≥ 0, a positive Hessian scale and a panel width ≥ 1', { found: { percdamp, scale, panelWidth: nb } });
  }
  const dead = new Uint8Array(k);
  const diag = new Float64Array(k);
  for (let i = 0; i < k; i++) {
    const g = gram.data[gram.at(i, i)];
    if (g === 0) {
      dead[i] = 1;
      diag[i] = 1;
    } else diag[i] = scale * g;
  }
  const perm = o.actOrder ? actOrderFromDiag(diag) : null;
  let mean = 0;
  for (let i = 0; i < k; i++) mean += diag[i];
  const damp = (percdamp * mean) / k;

  const inPlace = !!o.inPlace && !perm && gram.nb === nb && gram.data instanceof Float32Array;
  const h = inPlace ? (gram as UpperPanels<Float32Array>) : UpperPanels.zeros(k, nb, 'F32');
  if (!perm && gram.nb === nb) {
    for (let t = 0; t < h.data.length; t++) h.data[t] = scale * gram.data[t];
  } else {
    for (let p = 0; p < h.count; p++) {
      const w = h.width(p), c0 = p * nb, off = h.offsets[p];
      for (let i = 0; i < h.rows(p); i++) {
        const pi = perm ? perm[i] : i;
        for (let jj = 0; jj < w; jj++) h.data[off + i * w + jj] = scale * gram.sym(pi, perm ? perm[c0 + jj] : c0 + jj);
      }
    }
  }
  for (let i = 0; i < k; i++) h.data[h.at(i, i)] = diag[perm ? perm[i] : i] + damp;
  await reverseCholeskyPanels(h, { gemm: o.gemm, signal: o.signal, onPanel: o.onPanel, what: o.what });
  const rdiag = new Float64Array(k);
  for (let i = 0; i < k; i++) rdiag[i] = h.data[h.at(i, i)];
  return { k, perm, dead, r: h, rdiag, flops: reverseCholeskyFlops(k, nb) };
}

export interface GptqFastOptions {
  /** B, lazy-batch width (default 128) */
  blockSize?: number;
  /** O, outer-block width (default 512; rounded to a multiple of B that keeps group fits exact) */
  outerSize?: number;
  /** b, leaf width (default 16) */
  leafSize?: number;
  /** fit every group up front from the original W (see gptq.ts); implied for fixed groups under act-order */
  staticGroups?: boolean;
  gemm?: Gemm;
  signal?: AbortSignal;
  /** after each lazy batch: (columns done, K) */
  onBlock?: (done: number, total: number) => void;
  /**
   * where to write Ŵ [N, K] (default a new array); may be W itself: each column of W is read
   * for the last time when GPTQ quantizes it, before its result is written
   */
  out?: Float32Array;
  /** also return (W − Ŵ)ᵀ [K, N] (in the working buffer, so at no extra memory) */
  keepErrors?: boolean;
  /** the working buffer for W̃ᵀ (at least K·N floats; default a new one), e.g. reused across linears */
  work?: Float32Array;
}

export interface GptqFastResult {
  /** Ŵ [N, K], original column order: exactly what the grid dequantizes its codes to */
  weights: Float32Array;
  /** (W − Ŵ)ᵀ [K, N], original order (with keepErrors) */
  errorsT?: Float32Array;
  perm: Int32Array | null;
  /** [K] group of each original column */
  gIdx: Int32Array;
  /** Σ (w̃ − q)²·R_jj²/2, the oracle's loss */
  loss: number;
  /** flops of the feedback (the factor's are in GptqFactor.flops) */
  flops: number;
}

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/**
 * B and b such that a group fitted when GPTQ reaches its first column has had all earlier
 * feedback applied to all its columns: G | b, or b | G | B, or B | G.
 */
export function lazySizes(groupSize: number, dynamic: boolean, B0: number, b0: number): { B: number; b: number } {
  if (!(B0 >= 1 && b0 >= 1)) throw new ConfigError('bad_option', 'GPTQ needs blockSize ≥ 1 and leafSize ≥ 1', { found: { blockSize: B0, leafSize: b0 } });
  let B = B0;
  let b = Math.min(b0, B0);
  if (!dynamic) return { B, b };
  const G = groupSize;
  if (G % B !== 0) {
    if (G < B) B = G * Math.max(1, Math.round(B0 / G));
    else for (B = Math.min(B0, G); G % B !== 0; B--);
  }
  if (G % b !== 0 && b % G !== 0) b = gcd(G, b);
  if (B % b !== 0) b = gcd(B, b);
  return { B, b };
}

/**
 * O, the outer-block width, near O0: a multiple of B (so that lazy batches tile it), and where
 * groups are fitted as GPTQ reaches them, a multiple or a divisor of G (a group's columns must have
 * had all earlier feedback when it is fitted). lazySizes leaves B | G or G | B.
 */
export function outerSize(groupSize: number, dynamic: boolean, B: number, O0: number): number {
  if (!(O0 >= 1)) throw new ConfigError('bad_option', 'GPTQ needs outerSize ≥ 1', { found: { outerSize: O0 } });
  const unit = dynamic ? Math.max(B, groupSize) : B; // lcm(B, G) where one divides the other
  if (unit <= O0) return unit * Math.max(1, Math.round(O0 / unit));
  // groups wider than O0: whole lazy batches that tile a group
  for (let O = Math.floor(O0 / B) * B; O > B; O -= B) if (groupSize % O === 0) return O;
  return B;
}

/** (R[r0:r1, c0:c1]·diag(1/R_jj))ᵀ into out [(c1−c0), (r1−r0)] (r1 ≤ c0: strictly above the diagonal). */
function gatherScaledT(R: UpperPanels<Float32Array>, invd: Float64Array, r0: number, r1: number, c0: number, c1: number, out: Float32Array): void {
  const nr = r1 - r0;
  const nb = R.nb;
  for (let p = Math.floor(c0 / nb); p * nb < c1; p++) {
    const w = R.width(p), pc0 = p * nb, off = R.offsets[p];
    const j0 = Math.max(c0, pc0), j1 = Math.min(c1, pc0 + w);
    for (let y = 0; y < nr; y++) {
      const src = off + (r0 + y) * w - pc0;
      for (let j = j0; j < j1; j++) out[(j - c0) * nr + y] = R.data[src + j] * invd[j];
    }
  }
}

/** x [R, C] → out [C, R], in tiles (float32 to float32 by numerics' transposeF32Into). */
export function transposeInto(x: ArrayLike<number>, r: number, c: number, out: Float32Array | Uint8Array): void {
  if (x instanceof Float32Array && out instanceof Float32Array) return transposeF32Into(x, r, c, out);
  const T = 32;
  for (let i0 = 0; i0 < r; i0 += T) {
    const i1 = Math.min(r, i0 + T);
    for (let j0 = 0; j0 < c; j0 += T) {
      const j1 = Math.min(c, j0 + T);
      for (let i = i0; i < i1; i++) for (let j = j0; j < j1; j++) out[j * r + i] = x[i * c + j];
    }
  }
}

const TILE = 32;

/**
 * W's columns cols[c0 … c1) as rows: out[t·N + r] = W[r, cols[c0 + t]] (0 where the column is
 * dead), in tiles of 32 rows so that the strided reads of W stay in cache.
 */
function gatherColumnsT(w: ArrayLike<number>, n: number, k: number, cols: Int32Array, dead: Uint8Array, c0: number, c1: number, out: Float32Array): void {
  for (let r0 = 0; r0 < n; r0 += TILE) {
    const r1 = Math.min(n, r0 + TILE);
    for (let t = 0; t < c1 - c0; t++) {
      const j = cols[c0 + t];
      const o = t * n;
      if (dead[j] === 1) for (let r = r0; r < r1; r++) out[o + r] = 0;
      else for (let r = r0; r < r1; r++) out[o + r] = w[r * k + j];
    }
  }
}

/** The inverse of gatherColumnsT: out[r, cols[c0 + t]] = src[t·N + r]. */
function scatterColumns(src: Float32Array, n: number, k: number, cols: Int32Array, c0: number, c1: number, out: Float32Array): void {
  for (let r0 = 0; r0 < n; r0 += TILE) {
    const r1 = Math.min(n, r0 + TILE);
    for (let t = 0; t < c1 - c0; t++) {
      const j = cols[c0 + t];
      const o = t * n;
      for (let r = r0; r < r1; r++) out[r * k + j] = src[o + r];
    }
  }
}

/** out[bo + i] = (a[ao + i] − b[bo + i])·s for i < n (out laid out like b) */
function scaledDiff(a: Float32Array, ao: number, b: Float32Array, bo: number, s: number, out: Float32Array, n: number): void {
  for (let i = 0; i < n; i++) out[bo + i] = (a[ao + i] - b[bo + i]) * s;
}

/** col[0 … n) = x[xo + i] */
function loadRow(x: Float32Array, xo: number, col: Float64Array, n: number): void {
  for (let i = 0; i < n; i++) col[i] = x[xo + i];
}

/** y[yo + i] += a·x[xo + i] */
function axpyF32(y: Float32Array, yo: number, a: number, x: Float32Array, xo: number, n: number): void {
  for (let i = 0; i < n; i++) y[yo + i] += a * x[xo + i];
}

/**
 * One quantized column: q into qb (row at `o`, where wb holds its starting weights) and d = w − q
 * into dt (row at `od`), returns Σ ((w̃ − q)·R_cc)²
 * (w̃ the column GPTQ rounded, w its starting weights).
 */
function columnError(col: Float64Array, q: Float64Array, wb: Float32Array, qb: Float32Array, o: number, rcc: number, dt: Float32Array, od: number, n: number): number {
  let loss = 0;
  for (let r = 0; r < n; r++) {
    const qr = q[r];
    dt[od + r] = wb[o + r] - qr;
    const e = (col[r] - qr) * rcc;
    loss += e * e;
    qb[o + r] = qr;
  }
  return loss;
}

/** rows[perm[c]] → row c, in place (cycle by cycle, one spare row). */
function permuteRowsInPlace(x: Float32Array, width: number, perm: Int32Array): void {
  const seen = new Uint8Array(perm.length);
  const tmp = new Float32Array(width);
  for (let s = 0; s < perm.length; s++) {
    if (seen[s] || perm[s] === s) continue;
    tmp.set(x.subarray(s * width, s * width + width));
    let c = s;
    for (;;) {
      seen[c] = 1;
      const src = perm[c];
      if (src === s) {
        x.set(tmp, c * width);
        break;
      }
      x.copyWithin(c * width, src * width, src * width + width);
      c = src;
    }
  }
}

/**
 * GPTQ of W [N, K] onto `grid` with a factor from gptqFactor (same K; its act-order decides the
 * column order). W is not modified. Same semantics as gptq.ts; float32 storage, so results agree
 * with the oracle to rounding (the layer loss within a fraction of a percent).
 */
export async function gptqFast(w: ArrayLike<number>, n: number, k: number, f: GptqFactor, grid: ColumnGrid, o: GptqFastOptions = {}): Promise<GptqFastResult> {
  if (w.length !== n * k) throw new ShapeError('shape_mismatch', 'W is not [N, K]', { tensor: 'W', expected: n * k, found: w.length });
  if (f.k !== k) throw new ShapeError('shape_mismatch', 'the GPTQ factor is for another K', { tensor: 'H', expected: k, found: f.k });
  if (grid.n !== n || grid.k !== k) throw new ShapeError('shape_mismatch', 'grid shape differs from W', { expected: `[${n}, ${k}]`, found: `[${grid.n}, ${grid.k}]` });
  const gemm = o.gemm ?? gemmF32;
  const gs = grid.groupSize;
  const grouped = gs < k;
  const staticGroups = !!o.staticGroups || (!!f.perm && !!grid.fixedGroups);
  const dynamic = grouped && !staticGroups;
  const { B, b } = lazySizes(gs, dynamic, o.blockSize ?? 128, o.leafSize ?? 16);
  const O = outerSize(gs, dynamic, B, o.outerSize ?? 512);
  const perm = f.perm;
  const cols = perm ?? Int32Array.from({ length: k }, (_, i) => i);
  const fitT = hasFitT(grid) ? grid : null;

  // W̃ᵀ [K, N], first in original order for the up-front fits
  if (o.work && o.work.length < k * n) throw new ShapeError('shape_mismatch', 'GPTQ work buffer is smaller than K·N', { expected: k * n, found: o.work.length });
  const wt = o.work ? o.work.subarray(0, k * n) : new Float32Array(k * n);
  transposeInto(w, n, k, wt);
  let fitBuf: Float64Array | null = null; // [N, K] for grids without fitGroupT
  const fillFit = (c0: number, c1: number): Float64Array => {
    fitBuf ??= new Float64Array(n * k);
    for (let c = c0; c < c1; c++) {
      const row = c * n;
      for (let r = 0; r < n; r++) fitBuf[r * k + c] = wt[row + r];
    }
    return fitBuf;
  };
  const fit = (g: number, c0: number, c1: number, withCols: boolean): void => {
    if (fitT) fitT.fitGroupT(g, wt, c0, c1, withCols ? cols : undefined);
    else grid.fitGroup(g, fillFit(c0, c1), c0, c1, withCols ? cols : undefined);
  };
  // A group fitted as GPTQ reaches it sees the oracle's current weights: the optimum of the
  // columns not yet quantized given those that are, w_S + R_SS⁻ᵀ·R_{<c,S}ᵀ·d_{<c}. W̃ holds the
  // partial sums v_j/R_jj of the second factor, so the group's columns need the small lower
  // triangular solve with R_gg ([G, G], the group's diagonal block) that the feedback adds up to
  // once the columns before them are quantized. Swapped into W̃ for the fit, then restored.
  let groupBufs: { w0: Float32Array; v: Float32Array; y: Float32Array; saved: Float32Array } | null = null;
  const fitCurrent = async (g: number, c0: number, c1: number): Promise<void> => {
    if (c0 === 0) return fit(g, c0, c1, true);
    const gn = c1 - c0;
    // [G, N] buffers, one set for every group (a K = 8192 linear has 32 groups of 2 MiB buffers each)
    groupBufs ??= { w0: new Float32Array(gs * n), v: new Float32Array(gs * n), y: new Float32Array(gs * n), saved: new Float32Array(gs * n) };
    const w0 = groupBufs.w0.subarray(0, gn * n), v = groupBufs.v.subarray(0, gn * n), y = groupBufs.y.subarray(0, gn * n);
    // the group's starting weights as rows [G, N] (dead columns 0), then v = (W̃ − W)·diag(R_jj)
    gatherColumnsT(w, n, k, cols, f.dead, c0, c1, w0);
    for (let t = 0; t < gn; t++) scaledDiff(wt, (c0 + t) * n, w0, t * n, f.rdiag[c0 + t], v, n);
    const rgg = new Float64Array(gn * gn);
    for (let i = 0; i < gn; i++) for (let jj = i; jj < gn; jj++) rgg[i * gn + jj] = f.r.data[f.r.at(c0 + i, c0 + jj)];
    await gemm({ m: gn, n, k: gn, a: Float32Array.from(invertUpper(rgg, gn)), b: v, c: y, transA: true });
    const saved = groupBufs.saved.subarray(0, gn * n);
    saved.set(wt.subarray(c0 * n, c1 * n));
    for (let i = 0; i < gn * n; i++) y[i] += w0[i];
    wt.set(y, c0 * n);
    fit(g, c0, c1, true);
    wt.set(saved, c0 * n);
  };
  // one group per row: parameters from the original weights, before dead columns are zeroed
  if (!grouped) fit(0, 0, k, false);
  for (let j = 0; j < k; j++) if (f.dead[j]) wt.fill(0, j * n, j * n + n);
  if (grouped && staticGroups) for (let c = 0, g = 0; c < k; c += gs, g++) fit(g, c, Math.min(c + gs, k), false);
  if (perm) permuteRowsInPlace(wt, n, perm);

  const R = f.r;
  const invd = f.rdiag.map((v) => 1 / v);
  const dt = new Float32Array(O * n); // [O, N] d = w − q of the outer block's columns
  // [B, N] the batch's starting weights and chosen values, one contiguous row per column: W and
  // the output are [N, K], so reading and writing them column by column would touch N pages per
  // column; they are gathered and scattered once per batch, a row of W at a time, instead
  const wb = new Float32Array(B * n);
  const qb = new Float32Array(B * n);
  const aBuf = new Float32Array(Math.max(B * B, O * B, O * Math.max(0, k - O)));
  const col = new Float64Array(n);
  const q = new Float64Array(n);
  const out = o.out ?? new Float32Array(n * k);
  if (out.length !== n * k) throw new ShapeError('shape_mismatch', 'output is not [N, K]', { expected: n * k, found: out.length });
  const gIdx = new Int32Array(k);
  let loss = 0;
  /** W̃[:, c0:c1] += D[r0:r1]·R'[r0:r1, c0:c1] (D's rows from the outer block's start o1) */
  const feedback = async (o1: number, r0: number, r1: number, c0: number, c1: number): Promise<void> => {
    const a = aBuf.subarray(0, (c1 - c0) * (r1 - r0));
    gatherScaledT(R, invd, r0, r1, c0, c1, a);
    await gemm({ m: c1 - c0, n, k: r1 - r0, a, b: dt.subarray((r0 - o1) * n, (r1 - o1) * n), c: wt.subarray(c0 * n, c1 * n), beta: 1 });
  };

  for (let o1 = 0; o1 < k; o1 += O) {
    const o2 = Math.min(o1 + O, k);
    for (let i1 = o1; i1 < o2; i1 += B) {
      checkAborted(o.signal);
      const i2 = Math.min(i1 + B, o2);
      gatherColumnsT(w, n, k, cols, f.dead, i1, i2, wb);
      for (let s1 = i1; s1 < i2; s1 += b) {
        const s2 = Math.min(s1 + b, i2);
        for (let c = s1; c < s2; c++) {
          const j = cols[c];
          let g = 0;
          if (grouped) {
            g = staticGroups ? Math.floor(j / gs) : Math.floor(c / gs);
            if (dynamic && c % gs === 0) await fitCurrent(g, c, Math.min(c + gs, k));
          }
          gIdx[j] = g;
          const row = c * n;
          loadRow(wt, row, col, n);
          grid.quantizeColumn(j, g, col, q);
          const drow = (c - o1) * n;
          loss += columnError(col, q, wb, qb, (c - i1) * n, f.rdiag[c], dt, drow, n);
          // rank-1 feedback to the rest of the leaf
          for (let cc = c + 1; cc < s2; cc++) {
            const coef = R.data[R.at(c, cc)] * invd[cc];
            if (coef !== 0) axpyF32(wt, cc * n, coef, dt, drow, n);
          }
          // column c is done: its row of W̃ now holds its error w − q (read by nothing else)
          if (o.keepErrors) wt.set(dt.subarray(drow, drow + n), row);
        }
        if (s2 < i2) await feedback(o1, s1, s2, s2, i2);
      }
      scatterColumns(qb, n, k, cols, i1, i2, out);
      if (i2 < o2) await feedback(o1, i1, i2, i2, o2);
      o.onBlock?.(i2, k);
    }
    if (o2 < k) await feedback(o1, o1, o2, o2, k);
  }
  let errorsT: Float32Array | undefined;
  if (o.keepErrors) {
    if (perm) {
      const inv = new Int32Array(k);
      for (let c = 0; c < k; c++) inv[perm[c]] = c;
      permuteRowsInPlace(wt, n, inv);
    }
    errorsT = wt;
  }
  return { weights: out, errorsT, perm, gIdx, loss: loss / 2, flops: n * k * (k - 1) };
}
