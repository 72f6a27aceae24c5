// GPTQ (Frantar et al., arXiv 2210.17323): quantize W column by column, pushing each column's
// rounding error onto the not-yet-quantized columns through the upper Cholesky factor of H⁻¹,
// in lazy batches. Implemented from REFERENCE §3.2 (Algorithm 1 / `fasterquant`), in float64.
// Legend: N = rows (output features), K = columns (input features), B = lazy-batch width,
// G = group width along K. W is row-major [N, K]; H is [K, K].
//
// Any `ColumnGrid` can be the target (int sym/asym groups, NF4, ggml blocks), so a GPTQ-optimised
// Q4_0 tensor is still a plain Q4_0 tensor.

import { checkAborted } from '../core/progress.js';
import { ConfigError, ShapeError } from '../core/errors.js';
import type { ColumnGrid } from './grid.js';
import { upperCholeskyOfInverse } from '../numerics/linalg.js';

export interface GptqOptions {
  /** B, lazy-batch width (reference default 128) */
  blockSize?: number;
  /** λ = percdamp·mean(diag H) is added to the diagonal (reference default 0.01) */
  percdamp?: number;
  /** quantize columns in order of decreasing diag(H) (the reference's --act-order / desc_act) */
  actOrder?: boolean;
  /**
   * fit every group's parameters up front from the original W (in original column order), so
   * act-order needs no g_idx at inference; otherwise groups are fitted from the error-updated
   * weights when GPTQ reaches them (in permuted order with act-order). When G < B the reference
   * fits a group from the values at the start of the lazy batch; here the in-batch updates are
   * already applied (the true current weights). With G = B = 128, or no groups, both agree.
   */
  staticGroups?: boolean;
  signal?: AbortSignal;
}

export interface GptqResult {
  /** Ŵ, the dequantized weights GPTQ chose, [N, K] original column order */
  weights: Float64Array;
  /** the column order used (null without act-order) */
  perm: Int32Array | null;
  /** [K] group index of each original column (what GPTQ-packed checkpoints call g_idx) */
  gIdx: Int32Array;
  /** Σ (w − q)²/U_jj²/2, the reference's reported loss */
  loss: number;
  /** multiply-adds spent in the Cholesky step and the column updates (for GFLOPS figures) */
  flops: number;
}

/** Columns sorted by decreasing diag(H); ties keep the lower index first (a stable order). */
export function actOrderPermutation(h: Float64Array, k: number): Int32Array {
  const idx = Array.from({ length: k }, (_, i) => i);
  idx.sort((a, b) => h[b * k + b] - h[a * k + a] || a - b);
  return Int32Array.from(idx);
}

/**
 * Runs GPTQ on W [N, K] with Hessian H [K, K] (H = 2/n·Σ x xᵀ; a scaled Gram matrix works
 * equally, the result is scale-invariant). Neither input is modified. The grid receives the
 * parameter fits and the codes; the returned weights are exactly what the grid dequantizes to.
 */
export function gptq(w: ArrayLike<number>, n: number, k: number, hIn: Float64Array, grid: ColumnGrid, opts: GptqOptions = {}): GptqResult {
  if (w.length !== n * k) throw new ShapeError('shape_mismatch', 'W is not [N, K]', { tensor: 'W', expected: n * k, found: w.length });
  if (hIn.length !== k * k) throw new ShapeError('shape_mismatch', 'H is not [K, K]', { tensor: 'H', expected: k * k, found: hIn.length });
  if (grid.n !== n || grid.k !== k) {
    throw new ShapeError('shape_mismatch', 'grid shape differs from W', { expected: `[${n}, ${k}]`, found: `[${grid.n}, ${grid.k}]` });
  }
  const bs = opts.blockSize ?? 128;
  const percdamp = opts.percdamp ?? 0.01;
  if (!(bs >= 1) || !(percdamp >= 0)) {
    throw new ConfigError('bad_option', 'GPTQ needs blockSize ≥ 1 and percdamp ≥ 0', { found: { blockSize: bs, percdamp } });
  }
  const gs = grid.groupSize;
  const grouped = gs < k;
  const staticGroups = !!opts.staticGroups || (!!opts.actOrder && !!grid.fixedGroups);
  const W = Float64Array.from(w);
  const H = Float64Array.from(hIn);

  // One group per row: parameters come from the original weights, before dead columns are zeroed.
  if (!grouped) grid.fitGroup(0, W, 0, k);

  // Dead inputs (never active in calibration) cannot be weighted; the reference zeroes them.
  for (let i = 0; i < k; i++) {
    if (H[i * k + i] === 0) {
      H[i * k + i] = 1;
      for (let r = 0; r < n; r++) W[r * k + i] = 0;
    }
  }

  if (grouped && staticGroups) {
    for (let c = 0, g = 0; c < k; c += gs, g++) grid.fitGroup(g, W, c, Math.min(c + gs, k));
  }

  const perm = opts.actOrder ? actOrderPermutation(H, k) : null;
  const Wp = perm ? permuteColumns(W, n, k, perm) : W;
  const Hp = perm ? permuteSym(H, k, perm) : H;
  const cols = perm ?? Int32Array.from({ length: k }, (_, i) => i);

  let meanDiag = 0;
  for (let i = 0; i < k; i++) meanDiag += Hp[i * k + i];
  const damp = (percdamp * meanDiag) / k;
  for (let i = 0; i < k; i++) Hp[i * k + i] += damp;
  checkAborted(opts.signal);
  const U = upperCholeskyOfInverse(Hp, k);

  const Q = new Float64Array(n * k); // permuted order
  const gIdx = new Int32Array(k);
  const col = new Float64Array(n);
  const qcol = new Float64Array(n);
  const err = new Float64Array(n * bs); // [N, B]
  let loss = 0;

  for (let i1 = 0; i1 < k; i1 += bs) {
    checkAborted(opts.signal);
    const i2 = Math.min(i1 + bs, k);
    const cnt = i2 - i1;
    for (let i = 0; i < cnt; i++) {
      const c = i1 + i;
      const j = cols[c];
      let g = 0;
      if (grouped) {
        if (staticGroups) {
          g = Math.floor(j / gs);
        } else {
          g = Math.floor(c / gs);
          if (c % gs === 0) grid.fitGroup(g, Wp, c, Math.min(c + gs, k), cols);
        }
      }
      gIdx[j] = g;
      for (let r = 0; r < n; r++) col[r] = Wp[r * k + c];
      grid.quantizeColumn(j, g, col, qcol);
      const d = U[c * k + c];
      const urow = c * k;
      for (let r = 0; r < n; r++) {
        Q[r * k + c] = qcol[r];
        const e = (col[r] - qcol[r]) / d;
        loss += (e * e) / 2;
        err[r * bs + i] = e;
        if (e === 0) continue;
        const base = r * k;
        for (let cc = c + 1; cc < i2; cc++) Wp[base + cc] -= e * U[urow + cc];
      }
    }
    // Lazy update of everything right of the batch: W[:, i2:] −= E·U[i1:i2, i2:].
    if (i2 < k) lazyUpdate(Wp, U, err, n, k, bs, i1, cnt, i2);
  }

  const weights = perm ? unpermuteColumns(Q, n, k, perm) : Q;
  // K³/3 (Cholesky) + K³/3 (triangular inverse) + N·K²/2 (updates) multiply-adds, ×2 flops.
  const flops = 2 * ((2 * k * k * k) / 3 + (n * k * k) / 2);
  return { weights, perm, gIdx, loss, flops };
}

/**
 * Round-to-nearest on a grid: every group fitted from the original W, no error feedback.
 * The baseline GPTQ is compared against, through the same grid code.
 */
export function rtnOnGrid(w: ArrayLike<number>, n: number, k: number, grid: ColumnGrid): Float64Array {
  const W = Float64Array.from(w);
  const gs = grid.groupSize;
  for (let c = 0, g = 0; c < k; c += gs, g++) grid.fitGroup(g, W, c, Math.min(c + gs, k));
  const out = new Float64Array(n * k);
  // int and code-book grids: all columns at once in row order (WebAssembly), where available
  const rows = (grid as Partial<{ rtnRows(w: Float64Array, out: Float64Array): boolean }>).rtnRows;
  if (rows && rows.call(grid, W, out)) return out;
  const col = new Float64Array(n);
  const q = new Float64Array(n);
  for (let j = 0; j < k; j++) {
    for (let r = 0; r < n; r++) col[r] = W[r * k + j];
    grid.quantizeColumn(j, Math.floor(j / gs), col, q);
    for (let r = 0; r < n; r++) out[r * k + j] = q[r];
  }
  return out;
}

/** Columns per tile of the lazy update: B×TILE doubles of U (≈256 KiB) stay in cache across rows. */
const TILE = 256;

/**
 * W[:, c0:] −= E·U[i1:i1+cnt, c0:] (E: [N, B], first cnt columns used), tiled over columns and
 * unrolled over four batch rows so that each W element is loaded and stored once per four rows.
 */
export function lazyUpdate(W: Float64Array, U: Float64Array, E: Float64Array, n: number, k: number, bs: number, i1: number, cnt: number, c0: number): void {
  for (let t0 = c0; t0 < k; t0 += TILE) {
    const t1 = Math.min(t0 + TILE, k);
    for (let r = 0; r < n; r++) {
      const base = r * k;
      const eo = r * bs;
      let b = 0;
      for (; b + 4 <= cnt; b += 4) {
        const e0 = E[eo + b], e1 = E[eo + b + 1], e2 = E[eo + b + 2], e3 = E[eo + b + 3];
        const u0 = (i1 + b) * k, u1 = u0 + k, u2 = u1 + k, u3 = u2 + k;
        for (let cc = t0; cc < t1; cc++) {
          W[base + cc] -= e0 * U[u0 + cc] + e1 * U[u1 + cc] + e2 * U[u2 + cc] + e3 * U[u3 + cc];
        }
      }
      for (; b < cnt; b++) {
        const e = E[eo + b];
        const u0 = (i1 + b) * k;
        for (let cc = t0; cc < t1; cc++) W[base + cc] -= e * U[u0 + cc];
      }
    }
  }
}

function permuteColumns(w: Float64Array, n: number, k: number, perm: Int32Array): Float64Array {
  const out = new Float64Array(n * k);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) out[r * k + c] = w[r * k + perm[c]];
  return out;
}

function unpermuteColumns(w: Float64Array, n: number, k: number, perm: Int32Array): Float64Array {
  const out = new Float64Array(n * k);
  for (let r = 0; r < n; r++) for (let c = 0; c < k; c++) out[r * k + perm[c]] = w[r * k + c];
  return out;
}

function permuteSym(h: Float64Array, k: number, perm: Int32Array): Float64Array {
  const out = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j < k; j++) out[i * k + j] = h[perm[i] * k + perm[j]];
  return out;
}
