// Blocked (level-3) Cholesky factorisation H = R·Rᵀ with R upper-triangular, in place on the
// upper-panel storage of panels.ts, float32 storage with the diagonal blocks factored in float64.
// This is the factor fast GPTQ needs: with H = R·Rᵀ the upper Cholesky factor of H⁻¹ is R⁻¹
// (linalg.ts), and GPTQ's error feedback can be written with R itself (algorithms/gptq-fast.ts),
// so no inverse is ever formed.
// Legend: K = order, nb = panel width, P = panels, w = width of the panel being factored,
// c0 = its first column. Panels are factored from the last to the first; for panel jb:
//   1. its diagonal block D = R_d·R_dᵀ and R_d⁻¹ (float64, scalar, in leaves of at most `leaf`
//      columns; between leaves the block is split in two and its off-diagonal products are GEMMs);
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
  /**
   * widest diagonal block factored and inverted by the scalar float64 loops (default 128); wider
   * ones are split in two with GEMMs between the halves. At nb = 512 the scalar loops did 2 × 512³/3
   * multiply-adds per panel: 0.85–1.0 s of a K = 8192 factor's 16 panels outside the GEMMs, 0.15–0.2 s
   * split at 128 (three runs each, shared machine)
   */
  leaf?: number;
}

/** Default widest diagonal block the scalar loops factor (BlockedCholeskyOptions.leaf). */
const DIAG_LEAF = 128;

/**
 * R (upper, D = R·Rᵀ) and U = R⁻¹ of the symmetric positive definite block D [w, w] (upper half
 * read). Wider than `leaf`: with D = [[A, B], [Bᵀ, C]] (C the last w − h columns),
 *   C = R_C·R_Cᵀ;  R_B = B·R_C⁻ᵀ;  A − R_B·R_Bᵀ = R_A·R_Aᵀ;  U = [[U_A, −U_A·R_B·U_C], [0, U_C]],
 * the four products by `gemm` on float32 copies (the panel itself is float32 storage); the
 * leaves in float64. NumericError 'diverged' names the column within D.
 */
async function factorDiagonal(d: Float64Array, w: number, leaf: number, gemm: Gemm, what: string): Promise<{ r: Float64Array; u: Float64Array }> {
  if (w <= leaf) {
    const r = reverseCholesky(d, w, what);
    return { r, u: invertUpper(r, w) };
  }
  const h = Math.max(1, Math.min(w - 1, Math.ceil(w / 32) * 16)), m = w - h; // A [h, h], B [h, m], C [m, m]
  const sub = (r0: number, c0: number, rows: number, cols: number): Float32Array => {
    const out = new Float32Array(rows * cols);
    for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out[i * cols + j] = d[(r0 + i) * w + c0 + j];
    return out;
  };
  const c = await factorOrShift(() => factorDiagonal(Float64Array.from(sub(h, h, m, m)), m, leaf, gemm, what), h);
  const uc = Float32Array.from(c.u);
  const rb = new Float32Array(h * m);
  await gemm({ m: h, n: m, k: m, a: sub(0, h, h, m), b: uc, c: rb, transB: true }); // B·U_Cᵀ
  const a = sub(0, 0, h, h);
  await gemm({ m: h, n: h, k: m, a: rb, b: rb, c: a, transB: true, alpha: -1, beta: 1 }); // A − R_B·R_Bᵀ
  const ra = await factorOrShift(() => factorDiagonal(Float64Array.from(a), h, leaf, gemm, what), 0);
  const t = new Float32Array(h * m);
  await gemm({ m: h, n: m, k: h, a: Float32Array.from(ra.u), b: rb, c: t }); // U_A·R_B
  const ub = new Float32Array(h * m);
  await gemm({ m: h, n: m, k: m, a: t, b: uc, c: ub, alpha: -1 }); // −U_A·R_B·U_C
  const r = new Float64Array(w * w), u = new Float64Array(w * w);
  for (let i = 0; i < h; i++) {
    for (let j = i; j < h; j++) {
      r[i * w + j] = ra.r[i * h + j];
      u[i * w + j] = ra.u[i * h + j];
    }
    for (let j = 0; j < m; j++) {
      r[i * w + h + j] = rb[i * m + j];
      u[i * w + h + j] = ub[i * m + j];
    }
  }
  for (let i = 0; i < m; i++) {
    for (let j = i; j < m; j++) {
      r[(h + i) * w + h + j] = c.r[i * m + j];
      u[(h + i) * w + h + j] = c.u[i * m + j];
    }
  }
  return { r, u };
}

/** Runs f; a 'diverged' error's column index is shifted by `offset` (a sub-block's place in its block). */
async function factorOrShift<T>(f: () => Promise<T>, offset: number): Promise<T> {
  try {
    return await f();
  } catch (e) {
    if (offset !== 0 && e instanceof NumericError && typeof e.context.index === 'number') {
      throw new NumericError('diverged', 'matrix is not positive definite (Cholesky pivot ≤ 0)', { ...e.context, index: offset + e.context.index });
    }
    throw e;
  }
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
    let rd: Float64Array, ud: Float64Array;
    try {
      ({ r: rd, u: ud } = await factorDiagonal(d, w, o.leaf ?? DIAG_LEAF, gemm, what));
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
    const rdInv = Float32Array.from(ud);
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
