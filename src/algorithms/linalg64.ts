// Float64 dense linear algebra that GPTQ needs: Cholesky factorisations and triangular inverses of
// a symmetric positive definite K×K matrix, row-major in a Float64Array.
// Written here because src/numerics/linalg.ts had not landed when GPTQ was written; the functions
// are small and self-contained, so either may be used.
// Legend: K = matrix order (input features of the layer).

import { NumericError } from '../core/errors.js';

/**
 * Lower Cholesky factor L (A = L·Lᵀ) of an SPD matrix, in place in a copy. Throws a NumericError
 * naming the pivot index when A is not positive definite (GPTQ then needs more dampening).
 */
export function choleskyLower(a: Float64Array, k: number): Float64Array {
  const l = new Float64Array(k * k);
  for (let j = 0; j < k; j++) {
    const rj = j * k;
    let d = a[rj + j];
    for (let p = 0; p < j; p++) d -= l[rj + p] * l[rj + p];
    if (!(d > 0)) {
      throw new NumericError('diverged', 'matrix is not positive definite', {
        index: j,
        expected: 'pivot > 0',
        found: d,
        hint: 'increase dampening (percdamp) or collect more calibration tokens',
      });
    }
    const ljj = Math.sqrt(d);
    l[rj + j] = ljj;
    const inv = 1 / ljj;
    for (let i = j + 1; i < k; i++) {
      const ri = i * k;
      let s = a[ri + j];
      for (let p = 0; p < j; p++) s -= l[ri + p] * l[rj + p];
      l[ri + j] = s * inv;
    }
  }
  return l;
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

/** Inverse of a lower-triangular matrix (the result is lower-triangular). */
export function invertLower(l: Float64Array, k: number): Float64Array {
  const x = new Float64Array(k * k);
  for (let j = 0; j < k; j++) {
    x[j * k + j] = 1 / l[j * k + j];
    for (let i = j + 1; i < k; i++) {
      const ri = i * k;
      let s = 0;
      for (let p = j; p < i; p++) s -= l[ri + p] * x[p * k + j];
      x[ri + j] = s / l[ri + i];
    }
  }
  return x;
}

/** A⁻¹ from its lower Cholesky factor: A⁻¹ = L⁻ᵀ·L⁻¹ (torch.cholesky_inverse). */
export function choleskyInverse(l: Float64Array, k: number): Float64Array {
  const li = invertLower(l, k);
  const out = new Float64Array(k * k);
  // out[i, j] = Σ_p li[p, i]·li[p, j], p ≥ max(i, j)
  for (let i = 0; i < k; i++) {
    for (let j = i; j < k; j++) {
      let s = 0;
      for (let p = j; p < k; p++) s += li[p * k + i] * li[p * k + j];
      out[i * k + j] = s;
      out[j * k + i] = s;
    }
  }
  return out;
}

/** Upper Cholesky factor U (A = Uᵀ·U) of an SPD matrix. */
export function choleskyUpper(a: Float64Array, k: number): Float64Array {
  const l = choleskyLower(a, k);
  const u = new Float64Array(k * k);
  for (let i = 0; i < k; i++) for (let j = 0; j <= i; j++) u[j * k + i] = l[i * k + j];
  return u;
}

/**
 * Slow reference for GPTQ's "Hinv": the upper Cholesky factor of H⁻¹, computed the way the
 * reference code does (cholesky → cholesky_inverse → cholesky(upper=True)). Three O(K³) steps.
 */
export function upperCholeskyOfInverseRef(h: Float64Array, k: number): Float64Array {
  return choleskyUpper(choleskyInverse(choleskyLower(h, k), k), k);
}

/**
 * Fast path for the same factor. Factor H = R·Rᵀ with R upper-triangular (a Cholesky run from the
 * last index to the first); then H⁻¹ = R⁻ᵀ·R⁻¹, so U = R⁻¹ is upper-triangular with Uᵀ·U = H⁻¹ and
 * a positive diagonal, which makes it THE upper Cholesky factor of H⁻¹. Two O(K³/3) steps instead
 * of four, and no explicit inverse of H is formed.
 */
export function upperCholeskyOfInverse(h: Float64Array, k: number): Float64Array {
  // R (upper) with H = R·Rᵀ, column by column from the right.
  const r = new Float64Array(k * k);
  for (let j = k - 1; j >= 0; j--) {
    const rj = j * k;
    const d = h[rj + j] - dot(r, rj + j + 1, rj + j + 1, k - j - 1);
    if (!(d > 0)) {
      throw new NumericError('diverged', 'Hessian is not positive definite', {
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
  // U = R⁻¹ (upper), solved row by row from the bottom: U[i,i] = 1/R[i,i],
  // U[i,j] = −(Σ_{p=i+1..j} R[i,p]·U[p,j]) / R[i,i] for j > i. Accumulate row-wise for locality.
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
