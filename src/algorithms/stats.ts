// Calibration statistics of one linear layer's input, gathered token by token:
//   Σ x xᵀ  (GPTQ's Hessian H = 2/n·Σ x xᵀ; AWQ/mixed-precision losses),
//   Σ x_j²  (llama.cpp's imatrix: E[x_j²]),  Σ |x_j|  (AWQ's s_x),  max |x_j|  (SmoothQuant).
// Legend: K = input features, T = tokens in one batch, nb = panel width. Batches are row-major [T, K].
// The Gram matrix is optional (K²/2 memory) and kept as upper panels (numerics/panels.ts): float64
// when accumulated here by `add` (K²·T/2 multiply-adds per batch, the reference), float32 when the
// engine accumulates it in its calibration graph (pipeline/calibrate/batch.ts) and the sums are
// merged with `mergeSums`.

import { ShapeError } from '../core/errors.js';
import { UpperPanels } from '../numerics/panels.js';
import { gemmF32, transposeF32, type Gemm } from '../numerics/gemm.js';

/** Panel width of Gram matrices (and of the GPTQ factor, so one copies into the other directly). */
export const GRAM_PANEL = 256;

export class ActivationStats {
  nTokens = 0;
  /** [K] Σ x_j² */
  readonly sumSq: Float64Array;
  /** [K] Σ |x_j| */
  readonly sumAbs: Float64Array;
  /** [K] max |x_j| */
  readonly maxAbs: Float64Array;
  /** Σ x xᵀ as upper panels (diagonal tiles filled on both sides), or null */
  readonly gram: UpperPanels | null;

  /**
   * `gram`: true for a float64 Gram matrix accumulated by `add`, false for none, or the (zeroed)
   * panels an engine graph will accumulate into.
   */
  constructor(
    readonly k: number,
    gram: boolean | UpperPanels = true,
  ) {
    this.sumSq = new Float64Array(k);
    this.sumAbs = new Float64Array(k);
    this.maxAbs = new Float64Array(k);
    if (typeof gram === 'object' && gram.k !== k) throw new ShapeError('shape_mismatch', 'Gram panels are not [K, K]', { expected: k, found: gram.k });
    this.gram = gram === true ? UpperPanels.zeros(k, GRAM_PANEL, 'F64') : gram === false ? null : gram;
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
      }
      if (!g) continue;
      // panel p: rows 0 … rows(p), columns p·nb … p·nb + w
      for (let p = 0; p < g.count; p++) {
        const w = g.width(p), c0 = p * g.nb, off = g.offsets[p], d = g.data;
        for (let i = 0; i < g.rows(p); i++) {
          const v = x[base + i];
          if (v === 0) continue;
          const o = off + i * w, xc = base + c0;
          for (let j = 0; j < w; j++) d[o + j] += v * x[xc + j];
        }
      }
    }
    this.nTokens += t;
  }

  /** Merges an externally computed Σ x xᵀ (full, symmetric [K, K]) over `t` tokens. */
  addGram(xtx: Float64Array | Float32Array, t: number): void {
    const k = this.k;
    const g = this.gram;
    if (!g) throw new ShapeError('shape_mismatch', 'these statistics were created without a Gram matrix');
    if (xtx.length !== k * k) throw new ShapeError('shape_mismatch', 'Gram matrix is not [K, K]', { expected: k * k, found: xtx.length });
    for (let p = 0; p < g.count; p++) {
      const w = g.width(p), c0 = p * g.nb, off = g.offsets[p];
      for (let i = 0; i < g.rows(p); i++) for (let j = 0; j < w; j++) g.data[off + i * w + j] += xtx[i * k + c0 + j];
    }
    for (let i = 0; i < k; i++) this.sumSq[i] += xtx[i * k + i];
    this.nTokens += t;
  }

  /**
   * Merges per-batch sums computed elsewhere (the engine's calibration graph, which accumulates the
   * Gram panels in place): [K] Σ x², Σ |x|, max |x| over `t` tokens.
   */
  mergeSums(sumSq: ArrayLike<number>, sumAbs: ArrayLike<number>, maxAbs: ArrayLike<number>, t: number): void {
    const k = this.k;
    if (sumSq.length !== k || sumAbs.length !== k || maxAbs.length !== k) {
      throw new ShapeError('shape_mismatch', 'batch sums are not [K]', { expected: k, found: [sumSq.length, sumAbs.length, maxAbs.length] });
    }
    for (let i = 0; i < k; i++) {
      this.sumSq[i] += sumSq[i];
      this.sumAbs[i] += sumAbs[i];
      if (maxAbs[i] > this.maxAbs[i]) this.maxAbs[i] = maxAbs[i];
    }
    this.nTokens += t;
  }

  /** Statistics of x/s from those of x (AWQ folds s into the previous layer). */
  rescaleInputs(s: ArrayLike<number>): void {
    const k = this.k;
    if (s.length !== k) throw new ShapeError('shape_mismatch', 'scales are not [K]', { expected: k, found: s.length });
    for (let i = 0; i < k; i++) {
      this.sumSq[i] /= s[i] * s[i];
      this.sumAbs[i] /= s[i];
      this.maxAbs[i] /= s[i];
    }
    const g = this.gram;
    if (!g) return;
    for (let p = 0; p < g.count; p++) {
      const w = g.width(p), c0 = p * g.nb, off = g.offsets[p];
      for (let i = 0; i < g.rows(p); i++) for (let j = 0; j < w; j++) g.data[off + i * w + j] /= s[i] * s[c0 + j];
    }
  }

  /** Σ x xᵀ as a full symmetric [K, K] matrix. */
  gramFull(): Float64Array {
    if (!this.gram) throw new ShapeError('shape_mismatch', 'these statistics were created without a Gram matrix');
    return this.gram.toFullSymmetric();
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

/**
 * Σ_r w_rᵀ·G·w_r = ‖W·X‖²_F for G = Σ x xᵀ given as upper panels, with W transposed (wT [K, N]):
 * per panel p one GEMM W[:, 0:rows_p]ᵀ·W[:, p] ([rows_p, N]·[N, w_p]) weighted by G's panel
 * (entries above the diagonal tile twice). N·K²/2 multiply-adds in all; `weightedError` is the
 * plain-loop reference.
 */
export async function gramQuadForm(wT: Float32Array, n: number, g: UpperPanels, gemm: Gemm = gemmF32): Promise<number> {
  const k = g.k;
  if (wT.length !== k * n) throw new ShapeError('shape_mismatch', 'Wᵀ is not [K, N]', { expected: k * n, found: wT.length });
  let total = 0;
  for (let p = 0; p < g.count; p++) {
    const rows = g.rows(p), w = g.width(p), c0 = p * g.nb, off = g.offsets[p];
    const m = new Float32Array(rows * w);
    await gemm({ m: rows, n: w, k: n, a: wT.subarray(0, rows * n), b: wT.subarray(c0 * n, (c0 + w) * n), c: m, transB: true });
    for (let i = 0; i < rows; i++) {
      let s = 0;
      for (let j = 0; j < w; j++) s += g.data[off + i * w + j] * m[i * w + j];
      total += i < c0 ? 2 * s : s;
    }
  }
  return total;
}

/** Output SQNR of Ŵ against W (dB) under the Gram matrix G: 10·log10(‖W·X‖² / ‖(W − Ŵ)·X‖²). */
export async function outputSqnrDb(w: ArrayLike<number>, wq: ArrayLike<number>, n: number, k: number, g: UpperPanels, gemm: Gemm = gemmF32): Promise<number> {
  const wf = Float32Array.from(w);
  const d = new Float32Array(n * k);
  for (let i = 0; i < d.length; i++) d[i] = w[i] - wq[i];
  const signal = await gramQuadForm(transposeF32(wf, n, k), n, g, gemm);
  const noise = await gramQuadForm(transposeF32(d, n, k), n, g, gemm);
  return 10 * Math.log10(signal / Math.max(1e-300, noise));
}
