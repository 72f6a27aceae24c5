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
 * Slow reference for GPTQ's Hinv: the upper Cholesky factor of H⁻¹ computed the way the reference
 * code does (cholesky → cholesky_inverse → cholesky(upper=True)): three O(K³) steps.
 */
export function upperCholeskyOfInverseRef(h: Float64Array, n: number, what = 'H'): Float64Array {
  return choleskyUpper(choleskyInverse(cholesky(h, n, what), n), n, `${what}⁻¹`);
}

/** Σ a[x + t]·a[y + t] for t < len, four partial sums (shorter dependency chains for the JIT). */
function dot(a: Float64Array, x: number, y: number, len: number): number {
  let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
  let t = 0;
  for (; t + 4 <= len; t += 4) {
    s0 += a[x + t] * a[y + t];
    s1 += a[x + t + 1] * a[y + t + 1];
    s2 += a[x + t + 2] * a[y + t + 2];
    s3 += a[x + t + 3] * a[y + t + 3];
  }
  for (; t < len; t++) s0 += a[x + t] * a[y + t];
  return s0 + s1 + (s2 + s3);
}

/**
 * R upper-triangular with H = R·Rᵀ: a Cholesky factorisation run from the last index to the first
 * (reads the upper triangle of H). Throws NumericError 'diverged' naming the pivot when H is not
 * (numerically) positive definite.
 */
export function reverseCholesky(h: Float64Array, k: number, what = 'H'): Float64Array {
  checkSquare(h, k, what);
  const r = new Float64Array(k * k);
  for (let j = k - 1; j >= 0; j--) {
    const rj = j * k;
    const d = h[rj + j] - dot(r, rj + j + 1, rj + j + 1, k - j - 1);
    if (!(d > 0) || !Number.isFinite(d)) {
      throw new NumericError('diverged', 'matrix is not positive definite (Cholesky pivot ≤ 0)', {
        tensor: what,
        index: j,
        expected: 'pivot > 0',
        found: d,
        hint: 'increase dampening (percdamp) or collect more calibration tokens',
      });
    }
    const rjj = Math.sqrt(d);
    r[rj + j] = rjj;
    const inv = 1 / rjj;
    for (let i = 0; i < j; i++) {
      const ri = i * k;
      r[ri + j] = (h[ri + j] - dot(r, ri + j + 1, rj + j + 1, k - j - 1)) * inv;
    }
  }
  return r;
}

/**
 * U = R⁻¹ for an upper-triangular R (upper-triangular), solved row by row from the bottom:
 * U[i,i] = 1/R[i,i], U[i,j] = −(Σ_{p=i+1..j} R[i,p]·U[p,j]) / R[i,i] for j > i.
 */
export function invertUpper(r: Float64Array, k: number): Float64Array {
  const u = new Float64Array(k * k);
  const acc = new Float64Array(k);
  for (let i = k - 1; i >= 0; i--) {
    const ri = i * k;
    acc.fill(0, i, k);
    let p = i + 1;
    // four rows of U at a time: acc[j] += Σ R[i,p]·U[p,j] over j ≥ p (U is upper-triangular)
    for (; p + 4 <= k; p += 4) {
      const a0 = r[ri + p], a1 = r[ri + p + 1], a2 = r[ri + p + 2], a3 = r[ri + p + 3];
      const r0 = p * k, r1 = r0 + k, r2 = r1 + k, r3 = r2 + k;
      acc[p] += a0 * u[r0 + p];
      acc[p + 1] += a0 * u[r0 + p + 1] + a1 * u[r1 + p + 1];
      acc[p + 2] += a0 * u[r0 + p + 2] + a1 * u[r1 + p + 2] + a2 * u[r2 + p + 2];
      for (let j = p + 3; j < k; j++) acc[j] += a0 * u[r0 + j] + a1 * u[r1 + j] + a2 * u[r2 + j] + a3 * u[r3 + j];
    }
    for (; p < k; p++) {
      const rip = r[ri + p];
      const rp = p * k;
      for (let j = p; j < k; j++) acc[j] += rip * u[rp + j];
    }
    const inv = 1 / r[ri + i];
    u[ri + i] = inv;
    for (let j = i + 1; j < k; j++) u[ri + j] = -acc[j] * inv;
  }
  return u;
}

/**
 * Fast path for the same factor. Factor H = R·Rᵀ with R upper-triangular (reverseCholesky); then
 * H⁻¹ = R⁻ᵀ·R⁻¹, so U = R⁻¹ is upper-triangular with Uᵀ·U = H⁻¹ and a positive diagonal, which
 * makes it THE upper Cholesky factor of H⁻¹. Two O(K³/3) steps instead of four, and no explicit
 * inverse of H is formed.
 */
export function upperCholeskyOfInverse(h: Float64Array, k: number, what = 'H'): Float64Array {
  return invertUpper(reverseCholesky(h, k, what), k);
}
