// SmoothQuant (Xiao et al., arXiv 2211.10438), REFERENCE §7: migrate activation outliers into the
// weights before W8A8 quantization. Per input channel j,
//   s_j = max(max|X_j|^α / max|W_j|^(1−α), 1e-5),
// with max|W_j| taken over every following linear (q/k/v together); X̂ = X/s is folded into the
// feeding norm and W·diag(s) into the linears (see awq.ts for the folding helpers and mappings).
// Legend: N = rows (output features), K = input features, T = tokens. Matrices row-major.

import { ShapeError } from '../core/errors.js';
import { roundHalfEven } from '../numerics/round.js';

/** [K] max over rows of |W[:, j]| across every linear sharing the input. */
export function weightColumnMax(ws: { w: ArrayLike<number>; n: number }[], k: number): Float64Array {
  const m = new Float64Array(k);
  for (const { w, n } of ws) {
    if (w.length !== n * k) throw new ShapeError('shape_mismatch', 'linear weight is not [N, K]', { expected: n * k, found: w.length });
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < k; j++) {
        const a = Math.abs(w[r * k + j]);
        if (a > m[j]) m[j] = a;
      }
    }
  }
  return m;
}

/** Smoothing factors s_j (REFERENCE T6). The weight maxima are clamped to ≥ 1e-5 as in the code. */
export function smoothQuantScales(actMax: ArrayLike<number>, wMax: ArrayLike<number>, alpha = 0.5): Float64Array {
  if (actMax.length !== wMax.length) {
    throw new ShapeError('shape_mismatch', 'activation and weight maxima differ in length', { expected: actMax.length, found: wMax.length });
  }
  return Float64Array.from(actMax, (a, j) => Math.max(Math.pow(a, alpha) / Math.pow(Math.max(wMax[j], 1e-5), 1 - alpha), 1e-5));
}

/**
 * Symmetric int8 fake-quant with one absmax scale per row (s = amax/127, round half to even):
 * per-output-channel for weights [N, K], per-token (dynamic) for activations [T, K].
 */
export function fakeQuantInt8PerRow(m: ArrayLike<number>, rows: number, cols: number): Float64Array {
  const out = new Float64Array(rows * cols);
  for (let r = 0; r < rows; r++) {
    let amax = 0;
    for (let c = 0; c < cols; c++) amax = Math.max(amax, Math.abs(m[r * cols + c]));
    const s = amax / 127 || 1;
    for (let c = 0; c < cols; c++) out[r * cols + c] = s * Math.max(-127, Math.min(127, roundHalfEven(m[r * cols + c] / s)));
  }
  return out;
}

/**
 * W8A8 output error ‖Q(X/s)·Q(W·diag(s))ᵀ − X·Wᵀ‖²_F on tokens x [T, K] for a linear w [N, K]:
 * the figure SmoothQuant improves (pass s = null for no smoothing).
 */
export function w8a8Error(x: ArrayLike<number>, t: number, w: ArrayLike<number>, n: number, k: number, s: ArrayLike<number> | null): number {
  const xs = Float64Array.from({ length: t * k }, (_, i) => x[i] / (s ? s[i % k] : 1));
  const ws = Float64Array.from({ length: n * k }, (_, i) => w[i] * (s ? s[i % k] : 1));
  const xq = fakeQuantInt8PerRow(xs, t, k);
  const wq = fakeQuantInt8PerRow(ws, n, k);
  let err = 0;
  for (let a = 0; a < t; a++) {
    for (let r = 0; r < n; r++) {
      let y = 0;
      let yq = 0;
      for (let j = 0; j < k; j++) {
        y += x[a * k + j] * w[r * k + j];
        yq += xq[a * k + j] * wq[r * k + j];
      }
      err += (y - yq) ** 2;
    }
  }
  return err;
}
