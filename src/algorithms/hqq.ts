// HQQ, half-quadratic quantization (Badri & Shaji 2023; REFERENCE §7): calibration-free search
// of each group's (float) zero point minimising ‖W − Q⁻¹(Q(W))‖_p^p with p < 1 (sparsity-
// promoting), by half-quadratic splitting with an auxiliary error W_e:
//   W_q = clamp(round(W·s + z), 0, 2^b − 1)        (s = inverse step, as HQQ writes it)
//   W_r = (W_q − z)/s
//   W_e = shrink_p(W − W_r, β),  shrink_p(x, β) = sign(x)·relu(|x| − |x|^(p−1)/β)
//   z   ← mean over the group of (W_q − (W − W_e)·s);   β ← κ·β
// The scale stays at its min-max value; iterations stop early when mean|W − W_r| stops improving
// (the best zero points seen are kept). Rounding: half to even (torch.round).
// Legend: N = rows, K = columns, G = group width along K, n_g = ceil(K/G).

import { ConfigError } from '../core/errors.js';
import { roundHalfEven } from '../numerics/round.js';

export interface HqqOptions {
  bits: number;
  /** G; 0 or ≥ K: one group per row */
  groupSize?: number;
  /** p of the Lp objective (default 0.7) */
  p?: number;
  /** initial β (default 10) and its growth κ (default 1.01) */
  beta?: number;
  kappa?: number;
  /** iterations (default 20) */
  iters?: number;
}

export interface HqqResult {
  /** Ŵ [N, K] */
  weights: Float64Array;
  /** [N, K] codes 0 … 2^b − 1 */
  codes: Uint8Array;
  /** [N, n_g] step (1/s) and float zero point z: Ŵ = step·(q − z) */
  steps: Float64Array;
  zeros: Float64Array;
}

function shrink(x: number, beta: number, p: number): number {
  const a = Math.abs(x);
  if (a === 0) return 0;
  const t = a - Math.pow(a, p - 1) / beta;
  return t > 0 ? Math.sign(x) * t : 0;
}

/** HQQ on each row and group of w [N, K]. */
export function hqq(w: ArrayLike<number>, n: number, k: number, o: HqqOptions): HqqResult {
  if (!Number.isInteger(o.bits) || o.bits < 1 || o.bits > 8) throw new ConfigError('bad_option', 'HQQ bits must be 1..8', { field: 'bits', found: o.bits });
  const G = !o.groupSize || o.groupSize >= k ? k : o.groupSize;
  const ng = Math.ceil(k / G);
  const maxq = 2 ** o.bits - 1;
  const p = o.p ?? 0.7;
  const iters = o.iters ?? 20;
  const kappa = o.kappa ?? 1.01;
  const weights = new Float64Array(n * k);
  const codes = new Uint8Array(n * k);
  const steps = new Float64Array(n * ng);
  const zeros = new Float64Array(n * ng);
  for (let r = 0; r < n; r++) {
    for (let g = 0; g < ng; g++) {
      const c0 = g * G;
      const c1 = Math.min(c0 + G, k);
      let lo = Infinity;
      let hi = -Infinity;
      for (let c = c0; c < c1; c++) {
        lo = Math.min(lo, w[r * k + c]);
        hi = Math.max(hi, w[r * k + c]);
      }
      const s = hi > lo ? maxq / (hi - lo) : 1;
      let z = -lo * s;
      let beta = o.beta ?? 10;
      const quant = (zz: number, c: number): number => Math.min(maxq, Math.max(0, roundHalfEven(w[r * k + c] * s + zz)));
      const err = (zz: number): number => {
        let e = 0;
        for (let c = c0; c < c1; c++) e += Math.abs(w[r * k + c] - (quant(zz, c) - zz) / s);
        return e / (c1 - c0);
      };
      let bestZ = z;
      let bestE = err(z);
      for (let it = 0; it < iters; it++) {
        let acc = 0;
        for (let c = c0; c < c1; c++) {
          const x = w[r * k + c];
          const q = quant(z, c);
          const we = shrink(x - (q - z) / s, beta, p);
          acc += q - (x - we) * s;
        }
        z = acc / (c1 - c0);
        beta *= kappa;
        const e = err(z);
        if (e < bestE) {
          bestE = e;
          bestZ = z;
        } else break;
      }
      steps[r * ng + g] = 1 / s;
      zeros[r * ng + g] = bestZ;
      for (let c = c0; c < c1; c++) {
        const q = quant(bestZ, c);
        codes[r * k + c] = q;
        weights[r * k + c] = (q - bestZ) * steps[r * ng + g];
      }
    }
  }
  return { weights, codes, steps, zeros };
}
