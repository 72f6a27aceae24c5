// Calibration statistics of one linear layer's input, gathered token by token:
//   Σ x xᵀ  (GPTQ's Hessian H = 2/n·Σ x xᵀ; AWQ/mixed-precision losses),
//   Σ x_j²  (llama.cpp's imatrix: E[x_j²]),  Σ |x_j|  (AWQ's s_x),  max |x_j|  (SmoothQuant).
// Legend: K = input features, T = tokens in one batch. Batches are row-major [T, K].
// The Gram matrix is optional (K² memory, K²·T/2 multiply-adds per batch); callers with a fast
// matmul (the engine) can compute XᵀX themselves and merge it with `addGram`.

import { ShapeError } from '../core/errors.js';

export class ActivationStats {
  nTokens = 0;
  /** [K] Σ x_j² */
  readonly sumSq: Float64Array;
  /** [K] Σ |x_j| */
  readonly sumAbs: Float64Array;
  /** [K] max |x_j| */
  readonly maxAbs: Float64Array;
  /** [K, K] Σ x xᵀ (upper triangle filled during accumulation, symmetrised on read), or null */
  readonly gram: Float64Array | null;

  constructor(
    readonly k: number,
    withGram = true,
  ) {
    this.sumSq = new Float64Array(k);
    this.sumAbs = new Float64Array(k);
    this.maxAbs = new Float64Array(k);
    this.gram = withGram ? new Float64Array(k * k) : null;
  }

  /** Adds a batch x: [T, K] row-major. */
  add(x: Float32Array | Float64Array, t = x.length / this.k): void {
    const k = this.k;
    if (!Number.isInteger(t) || x.length !== t * k) {
      throw new ShapeError('shape_mismatch', 'activation batch is not [T, K]', { expected: `T·${k}`, found: x.length });
    }
    const g = this.gram;
    for (let r = 0; r < t; r++) {
      const base = r * k;
      for (let i = 0; i < k; i++) {
        const v = x[base + i];
        this.sumSq[i] += v * v;
        const a = Math.abs(v);
        this.sumAbs[i] += a;
        if (a > this.maxAbs[i]) this.maxAbs[i] = a;
        if (g && v !== 0) {
          const gi = i * k;
          for (let j = i; j < k; j++) g[gi + j] += v * x[base + j];
        }
      }
    }
    this.nTokens += t;
  }

  /** Merges an externally computed Σ x xᵀ (full, symmetric [K, K]) over `t` tokens. */
  addGram(xtx: Float64Array | Float32Array, t: number): void {
    const k = this.k;
    if (!this.gram) throw new ShapeError('shape_mismatch', 'these statistics were created without a Gram matrix');
    if (xtx.length !== k * k) throw new ShapeError('shape_mismatch', 'Gram matrix is not [K, K]', { expected: k * k, found: xtx.length });
    for (let i = 0; i < k; i++) for (let j = i; j < k; j++) this.gram[i * k + j] += xtx[i * k + j];
    for (let i = 0; i < k; i++) {
      this.sumSq[i] += xtx[i * k + i];
    }
    this.nTokens += t;
  }

  /** Σ x xᵀ as a full symmetric [K, K] matrix. */
  gramFull(): Float64Array {
    if (!this.gram) throw new ShapeError('shape_mismatch', 'these statistics were created without a Gram matrix');
    const k = this.k;
    const out = new Float64Array(k * k);
    for (let i = 0; i < k; i++) {
      for (let j = i; j < k; j++) {
        const v = this.gram[i * k + j];
        out[i * k + j] = v;
        out[j * k + i] = v;
      }
    }
    return out;
  }

  /** GPTQ's Hessian H = (2/n)·Σ x xᵀ. */
  hessian(): Float64Array {
    const h = this.gramFull();
    const f = this.nTokens > 0 ? 2 / this.nTokens : 0;
    for (let i = 0; i < h.length; i++) h[i] *= f;
    return h;
  }

  /** E[x_j²]: the importance vector llama.cpp's imatrix stores. */
  meanSq(): Float64Array {
    return this.sumSq.map((v) => (this.nTokens ? v / this.nTokens : 0));
  }

  /** E|x_j|: AWQ's per-channel activation magnitude s_x. */
  meanAbs(): Float64Array {
    return this.sumAbs.map((v) => (this.nTokens ? v / this.nTokens : 0));
  }
}

/** Σ x xᵀ of a batch x: [T, K] (slow, plain loops; for tests and small layers). */
export function gramOf(x: Float32Array | Float64Array, t: number, k: number): Float64Array {
  const s = new ActivationStats(k);
  s.add(x, t);
  return s.gramFull();
}

/**
 * Output error of replacing W by Ŵ under a Gram/Hessian matrix G: Σ_r (w_r − ŵ_r)ᵀ·G·(w_r − ŵ_r).
 * With G = Σ x xᵀ this equals ‖(W − Ŵ)·X‖²_F for X: [K, T].
 */
export function weightedError(w: ArrayLike<number>, wq: ArrayLike<number>, g: Float64Array, n: number, k: number): number {
  const d = new Float64Array(k);
  let total = 0;
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < k; j++) d[j] = w[r * k + j] - wq[r * k + j];
    for (let i = 0; i < k; i++) {
      const di = d[i];
      if (di === 0) continue;
      let s = 0;
      const gi = i * k;
      for (let j = 0; j < k; j++) s += g[gi + j] * d[j];
      total += di * s;
    }
  }
  return total;
}

/** Σ_j imp_j·(w − ŵ)² over all rows: the diagonal (imatrix) version of `weightedError`. */
export function diagWeightedError(w: ArrayLike<number>, wq: ArrayLike<number>, imp: ArrayLike<number> | null, n: number, k: number): number {
  let total = 0;
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < k; j++) {
      const d = w[r * k + j] - wq[r * k + j];
      total += (imp ? imp[j] : 1) * d * d;
    }
  }
  return total;
}
