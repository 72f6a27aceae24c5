// The matrix product the fast linear-algebra paths are written against, as an injectable function:
// algorithms stay pure (browser-safe) and take a `Gemm`; the pipeline passes onnxruntime's MatMul
// (src/engine/gemm.ts), and `gemmF32` below is the pure-TS default and the reference it is tested
// against.
// Legend: C [M, N] ← α·op(A)·op(B) + β·C, op(A) [M, K], op(B) [K, N]; all row-major float32,
// contiguous (subarray views are fine); A is stored [K, M] when transA, B [N, K] when transB.

import { ShapeError } from '../core/errors.js';

export interface GemmArgs {
  m: number;
  n: number;
  k: number;
  a: Float32Array;
  b: Float32Array;
  /** [M, N]; read when β ≠ 0, always written */
  c: Float32Array;
  transA?: boolean;
  transB?: boolean;
  /** default 1 */
  alpha?: number;
  /** default 0 (C is overwritten) */
  beta?: number;
}

/** C ← α·op(A)·op(B) + β·C. May complete synchronously or return a promise. */
export type Gemm = (g: GemmArgs) => void | Promise<void>;

/** Throws a ShapeError unless the operand lengths match the stated dimensions. */
export function checkGemmArgs(g: GemmArgs): void {
  const { m, n, k } = g;
  if (!(m >= 0 && n >= 0 && k >= 0) || g.a.length !== m * k || g.b.length !== k * n || g.c.length !== m * n) {
    throw new ShapeError('shape_mismatch', 'gemm operand sizes do not match [M, K]·[K, N] → [M, N]', {
      expected: { a: m * k, b: k * n, c: m * n },
      found: { a: g.a.length, b: g.b.length, c: g.c.length, m, n, k },
    });
  }
}

/**
 * Plain-TypeScript GEMM: float32 operands, each output row accumulated in float64 and rounded once
 * (i-p-j loop order over a row-major copy of op(A) and op(B)). About 1 GFLOPS; the default where no
 * faster GEMM is injected, and the reference the injected ones are compared with.
 */
export function gemmF32(g: GemmArgs): void {
  checkGemmArgs(g);
  const { m, n, k } = g;
  const alpha = g.alpha ?? 1;
  const beta = g.beta ?? 0;
  // op(A) as [M, K] and op(B) as [K, N] row-major
  const a = g.transA ? transposeF32(g.a, k, m) : g.a;
  const b = g.transB ? transposeF32(g.b, n, k) : g.b;
  const c = g.c;
  const acc = new Float64Array(n);
  for (let i = 0; i < m; i++) {
    acc.fill(0);
    const ai = i * k;
    for (let p = 0; p < k; p++) {
      const av = a[ai + p];
      if (av === 0) continue;
      const bp = p * n;
      for (let j = 0; j < n; j++) acc[j] += av * b[bp + j];
    }
    const ci = i * n;
    if (beta === 0) for (let j = 0; j < n; j++) c[ci + j] = alpha * acc[j];
    else for (let j = 0; j < n; j++) c[ci + j] = alpha * acc[j] + beta * c[ci + j];
  }
}

/** x [R, C] → xᵀ [C, R] (transposeF32Into) */
export function transposeF32(x: Float32Array, r: number, c: number): Float32Array {
  const t = new Float32Array(r * c);
  transposeF32Into(x, r, c, t);
  return t;
}

/**
 * x [R, C] → out [C, R] in 64×64 tiles walked so that each output row is written contiguously.
 * The plain double loop writes with a stride of R floats: a cache (and, for R·4 ≥ 4 KiB, a TLB)
 * miss per element. Llama-3.2-1B's gate_proj, 8192 × 2048: 150 → 50 ms. Into a fresh array most
 * of the time is page faults instead (docs/performance.md, tenth round): reuse the output.
 */
export function transposeF32Into(x: Float32Array, r: number, c: number, out: Float32Array): void {
  const T = 64;
  for (let j0 = 0; j0 < c; j0 += T) {
    const j1 = Math.min(c, j0 + T);
    for (let i0 = 0; i0 < r; i0 += T) {
      const i1 = Math.min(r, i0 + T);
      for (let j = j0; j < j1; j++) {
        const oj = j * r;
        for (let i = i0; i < i1; i++) out[oj + i] = x[i * c + j];
      }
    }
  }
}
