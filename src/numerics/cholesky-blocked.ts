// Blocked (level-3) Cholesky factorisation H = R·Rᵀ with R upper-triangular, in place on the
// upper-panel storage of panels.ts, float32 storage with the diagonal blocks factored in float64.
// This is the factor fast GPTQ needs: with H = R·Rᵀ the upper Cholesky factor of H⁻¹ is R⁻¹
// (linalg.ts), and GPTQ's error feedback can be written with R itself (algorithms/gptq-fast.ts),
// so no inverse is ever formed.
// Legend: K = order, nb = panel width, P = panels, w = width of the panel being factored,
// c0 = its first column. Panels are factored from the last to the first; for panel jb:
//   1. its diagonal block D = R_d·R_dᵀ (float64, scalar: w³/3 multiply-adds);
//   2. the rows above it: R[0:c0, jb] = H[0:c0, jb]·R_d⁻ᵀ (one GEMM, [c0, w]·[w, w]);
//   3. every panel p < jb: H[0:rows_p, p] −= R[0:rows_p, jb]·R[p rows, jb]ᵀ (one GEMM each; only
//      the stored upper part of the trailing matrix is updated, K³/6 multiply-adds in all).
// The GEMMs are injected (numerics/gemm.ts); each reads and writes contiguous panel rows.

import { checkAborted } from '../core/progress.js';
import { NumericError } from '../core/errors.js';
import { gemmF32, type Gemm } from './gemm.js';
import { invertUpper, reverseCholesky } from './linalg.js';
import type { UpperPanels } from './panels.js';

export interface BlockedCholeskyOptions {
  /** default: the pure-TS gemmF32 */
  gemm?: Gemm;
  signal?: AbortSignal;
  /** called after each panel with (panels done, panels in all) */
  onPanel?: (done: number, total: number) => void;
  /** the matrix's name in errors */
  what?: string;
}

/**
 * In place: the upper panels of a symmetric positive definite H become R (upper-triangular,
 * H = R·Rᵀ; the lower half of each diagonal tile is zeroed). Throws NumericError 'diverged' naming
 * the column whose pivot is not positive.
 */
export async function reverseCholeskyPanels(h: UpperPanels<Float32Array>, o: BlockedCholeskyOptions = {}): Promise<void> {
  const gemm = o.gemm ?? gemmF32;
  const what = o.what ?? 'H';
  const P = h.count, nb = h.nb;
  // H[0:c0, jb] copied for step 2: one buffer for every panel (up to K·nb floats; allocated per
  // panel, a K = 8192 factorisation left ~130 MB to the garbage collector)
  let copyLen = 0;
  for (let jb = 1; jb < P; jb++) copyLen = Math.max(copyLen, jb * nb * h.width(jb));
  let copy: Float32Array | null = null;
  for (let jb = P - 1; jb >= 0; jb--) {
    checkAborted(o.signal);
    const w = h.width(jb), c0 = jb * nb;
    const pan = h.panel(jb); // [c0 + w, w]
    // 1. diagonal block, float64
    const d = new Float64Array(w * w);
    for (let i = 0; i < w; i++) for (let j = i; j < w; j++) d[i * w + j] = pan[(c0 + i) * w + j];
    let rd: Float64Array;
    try {
      rd = reverseCholesky(d, w, what);
    } catch (e) {
      if (e instanceof NumericError && typeof e.context.index === 'number') {
        throw new NumericError('diverged', 'matrix is not positive definite (Cholesky pivot ≤ 0)', { ...e.context, index: c0 + e.context.index });
      }
      throw e;
    }
    for (let i = 0; i < w; i++) for (let j = 0; j < w; j++) pan[(c0 + i) * w + j] = j >= i ? rd[i * w + j] : 0;
    if (c0 === 0) {
      o.onPanel?.(P - jb, P);
      continue;
    }
    // 2. rows above: R[0:c0, jb] = H[0:c0, jb]·R_d⁻ᵀ
    const above = pan.subarray(0, c0 * w);
    copy ??= new Float32Array(copyLen);
    const hAbove = copy.subarray(0, c0 * w);
    hAbove.set(above);
    const rdInv = Float32Array.from(invertUpper(rd, w));
    await gemm({ m: c0, n: w, k: w, a: hAbove, b: rdInv, c: above, transB: true });
    // 3. trailing update of the panels to the left, stored (upper) rows only
    for (let p = 0; p < jb; p++) {
      const rows = h.rows(p), wp = h.width(p);
      await gemm({
        m: rows, n: wp, k: w,
        a: pan.subarray(0, rows * w),
        b: pan.subarray(p * nb * w, (p * nb + wp) * w),
        c: h.panel(p),
        transB: true, alpha: -1, beta: 1,
      });
    }
    o.onPanel?.(P - jb, P);
  }
}

/** Multiply-adds of the blocked factorisation (for GFLOPS figures): K³/6 + K·nb²/2 + the panel solves. */
export function reverseCholeskyFlops(k: number, nb: number): number {
  let macs = 0;
  for (let c0 = 0; c0 < k; c0 += nb) {
    const w = Math.min(nb, k - c0);
    macs += (w * w * w) / 3 + c0 * w * w; // diagonal block + panel solve
    for (let p0 = 0; p0 < c0; p0 += nb) macs += Math.min(k, p0 + nb) * Math.min(nb, k - p0) * w; // trailing
  }
  return 2 * macs;
}
