// float64 linear algebra: hand-computed Cholesky, identities on random SPD matrices, the GPTQ Hinv
// form, and the not-positive-definite error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { NumericError } from '../../src/core/errors.js';
import {
  matmul, transpose, cholesky, choleskyInverse, choleskyUpper, solveLower, solveUpper, invertLower, upperCholeskyOfInverse,
} from '../../src/numerics/linalg.js';
import { sqnr, rmse, maxAbsError, relativeError, mse } from '../../src/numerics/metrics.js';

/** float64 round-off on well-conditioned n ≤ 24 matrices */
const F64_TOL = 1e-10;

function near(a: ArrayLike<number>, b: ArrayLike<number>, tol = F64_TOL): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol * (1 + Math.abs(b[i])), `[${i}] ${a[i]} vs ${b[i]}`);
}

function randomSpd(n: number, seed: number): Float64Array {
  const rng = new Rng(seed);
  const x = Float64Array.from({ length: n * n }, () => rng.normal());
  const a = matmul(x, transpose(x, n, n), n, n, n);
  for (let i = 0; i < n; i++) a[i * n + i] += n;
  return a;
}

test('Cholesky by hand: [[4, 2], [2, 5]] = L·Lᵀ with L = [[2, 0], [1, 2]]', () => {
  const l = cholesky(Float64Array.from([4, 2, 2, 5]), 2);
  assert.deepEqual([...l], [2, 0, 1, 2]);
  near(choleskyInverse(l, 2), [5 / 16, -2 / 16, -2 / 16, 4 / 16]);
});

test('identities on random SPD matrices: L·Lᵀ = A, A·A⁻¹ = I, solves, Uᵀ·U = A⁻¹ for GPTQ', () => {
  for (const n of [1, 3, 8, 24]) {
    const a = randomSpd(n, n);
    const l = cholesky(a, n);
    near(matmul(l, transpose(l, n, n), n, n, n), a);
    const inv = choleskyInverse(l, n);
    const eye = Float64Array.from({ length: n * n }, (_, i) => (i % (n + 1) === 0 ? 1 : 0));
    near(matmul(a, inv, n, n, n), eye, 1e-9);
    near(matmul(l, invertLower(l, n), n, n, n), eye, 1e-9);
    const b = Float64Array.from({ length: n }, (_, i) => i - 1.5);
    const u = choleskyUpper(a, n);
    const x = solveUpper(u, solveLower(l, b, n), n); // A x = b via L·(Lᵀ x) = b
    near(matmul(a, x, n, n, 1), b, 1e-9);
    const hu = upperCholeskyOfInverse(a, n);
    near(matmul(transpose(hu, n, n), hu, n, n, n), inv, 1e-9);
    for (let i = 0; i < n; i++) for (let j = 0; j < i; j++) assert.equal(hu[i * n + j], 0);
  }
});

test('not positive definite → NumericError naming the pivot', () => {
  assert.throws(
    () => cholesky(Float64Array.from([1, 2, 2, 1]), 2, 'H'),
    (e: unknown) => e instanceof NumericError && e.context.index === 1 && e.context.tensor === 'H',
  );
  assert.throws(() => cholesky(Float64Array.from([0, 0, 0, 1]), 2), NumericError);
});

test('metrics: SQNR, RMSE, max abs and relative error by hand', () => {
  const x = [3, 4];
  const y = [3, 3];
  assert.equal(mse(x, y), 0.5);
  assert.equal(rmse(x, y), Math.sqrt(0.5));
  assert.equal(maxAbsError(x, y), 1);
  assert.equal(relativeError(x, y), 1 / 5);
  assert.equal(sqnr(x, y), 10 * Math.log10(25));
  assert.equal(sqnr(x, x), Infinity);
});
