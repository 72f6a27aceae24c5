// Dense linear algebra in float64 for the PTQ algorithms (GPTQ's Hessian work) and tests.
// Matrices are row-major Float64Array of shape [n, n] (or [m, k] × [k, n] for matmul).
// Legend: n = matrix order; L lower-triangular, U upper-triangular; A = L·Lᵀ = Uᵀ·U.

import { NumericError, ShapeError } from '../core/errors.js';

function checkSquare(a: Float64Array, n: number, what: string): void {
  if (a.length !== n * n) {
    throw new ShapeError('shape_mismatch', `${what} must be [n, n]`, { tensor: what, expected: n * n, found: a.length });
  }
}

/** C = A·B, A [m, k], B [k, n] (reference triple loop, i-k-j order). */
export function matmul(a: Float64Array, b: Float64Array, m: number, k: number, n: number): Float64Array {
  if (a.length !== m * k || b.length !== k * n) {
    throw new ShapeError('shape_mismatch', 'matmul operand sizes', { expected: [m * k, k * n], found: [a.length, b.length] });
  }
  const c = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let p = 0; p < k; p++) {
      const av = a[i * k + p];
      if (av === 0) continue;
      for (let j = 0; j < n; j++) c[i * n + j] += av * b[p * n + j];
    }
  }
  return c;
}

export function transpose(a: Float64Array, m: number, n: number): Float64Array {
  const t = new Float64Array(m * n);
  for (let i = 0; i < m; i++) for (let j = 0; j < n; j++) t[j * m + i] = a[i * n + j];
  return t;
}

/**
 * Lower Cholesky factor L with A = L·Lᵀ (reads the lower triangle of A). Throws NumericError
 * 'diverged' naming the pivot index when A is not (numerically) positive definite.
 */
export function cholesky(a: Float64Array, n: number, what = 'A'): Float64Array {
  checkSquare(a, n, what);
  const l = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    let d = a[j * n + j];
    for (let p = 0; p < j; p++) d -= l[j * n + p] * l[j * n + p];
    if (!(d > 0) || !Number.isFinite(d)) {
      throw new NumericError('diverged', 'matrix is not positive definite (Cholesky pivot ≤ 0)', {
        tensor: what,
        index: j,
        expected: 'a positive pivot',
        found: d,
        hint: 'add damping to the diagonal (GPTQ: percdamp · mean(diag H)) or drop dead columns',
      });
    }
    const ljj = Math.sqrt(d);
    l[j * n + j] = ljj;
    for (let i = j + 1; i < n; i++) {
      let s = a[i * n + j];
      for (let p = 0; p < j; p++) s -= l[i * n + p] * l[j * n + p];
      l[i * n + j] = s / ljj;
    }
  }
  return l;
}

/** Solve L·x = b (L lower, forward substitution). b [n] or [n, m] columns (row-major). */
export function solveLower(l: Float64Array, b: Float64Array, n: number, m = 1): Float64Array {
  const x = b.slice();
  for (let c = 0; c < m; c++) {
    for (let i = 0; i < n; i++) {
      let s = x[i * m + c];
      for (let p = 0; p < i; p++) s -= l[i * n + p] * x[p * m + c];
      x[i * m + c] = s / l[i * n + i];
    }
  }
  return x;
}

/** Solve U·x = b (U upper, back substitution). */
export function solveUpper(u: Float64Array, b: Float64Array, n: number, m = 1): Float64Array {
  const x = b.slice();
  for (let c = 0; c < m; c++) {
    for (let i = n - 1; i >= 0; i--) {
      let s = x[i * m + c];
      for (let p = i + 1; p < n; p++) s -= u[i * n + p] * x[p * m + c];
      x[i * m + c] = s / u[i * n + i];
    }
  }
  return x;
}

/** Inverse of a lower-triangular matrix (lower-triangular). */
export function invertLower(l: Float64Array, n: number): Float64Array {
  const inv = new Float64Array(n * n);
  for (let j = 0; j < n; j++) {
    inv[j * n + j] = 1 / l[j * n + j];
    for (let i = j + 1; i < n; i++) {
      let s = 0;
      for (let p = j; p < i; p++) s -= l[i * n + p] * inv[p * n + j];
      inv[i * n + j] = s / l[i * n + i];
    }
  }
  return inv;
}

/** A⁻¹ from A's lower Cholesky factor: A⁻¹ = L⁻ᵀ·L⁻¹ (torch.cholesky_inverse). */
export function choleskyInverse(l: Float64Array, n: number): Float64Array {
  const li = invertLower(l, n);
  const out = new Float64Array(n * n);
  // out[i][j] = Σ_p li[p][i]·li[p][j], p ≥ max(i, j)
  for (let i = 0; i < n; i++) {
    for (let j = 0; j <= i; j++) {
      let s = 0;
      for (let p = i; p < n; p++) s += li[p * n + i] * li[p * n + j];
      out[i * n + j] = s;
      out[j * n + i] = s;
    }
  }
  return out;
}

/** Upper factor U with A = Uᵀ·U (torch.linalg.cholesky(A, upper=True)): Lᵀ. */
export function choleskyUpper(a: Float64Array, n: number, what = 'A'): Float64Array {
  return transpose(cholesky(a, n, what), n, n);
}

/**
 * GPTQ's Hinv: the upper Cholesky factor of H⁻¹ (cholesky(cholesky_inverse(cholesky(H)), upper=True)).
 * Throws NumericError when H (after the caller's damping) is not positive definite.
 */
export function upperCholeskyOfInverse(h: Float64Array, n: number, what = 'H'): Float64Array {
  return choleskyUpper(choleskyInverse(cholesky(h, n, what), n), n, `${what}⁻¹`);
}
