// AdamW on the host (float64 arithmetic, float32 storage), a warmup + cosine learning-rate
// schedule, global-norm gradient clipping and gradient accumulation.
// Update (Loshchilov & Hutter, decoupled weight decay; PyTorch's AdamW order):
//   p ← p − lr·wd·p
//   m ← β1·m + (1 − β1)·g;  v ← β2·v + (1 − β2)·g²
//   p ← p − lr · (m / (1 − β1^t)) / (√(v / (1 − β2^t)) + ε)
// Each parameter is a flat Float32Array; names key parameters, gradients and state alike.

import { ConfigError, NumericError } from '../core/errors.js';

export interface AdamWConfig {
  beta1: number;
  beta2: number;
  eps: number;
  weightDecay: number;
}

export const ADAMW_DEFAULTS: AdamWConfig = { beta1: 0.9, beta2: 0.95, eps: 1e-8, weightDecay: 0.1 };

export interface ScheduleConfig {
  /** peak learning rate */
  lr: number;
  warmupSteps: number;
  totalSteps: number;
  /** the cosine decays to lr·minLrRatio at totalSteps */
  minLrRatio: number;
}

/** Learning rate at optimizer step `step` (0-based): linear warmup to lr, then cosine to lr·minLrRatio. */
export function lrAt(step: number, s: ScheduleConfig): number {
  if (s.warmupSteps > 0 && step < s.warmupSteps) return (s.lr * (step + 1)) / s.warmupSteps;
  const span = Math.max(1, s.totalSteps - s.warmupSteps);
  const p = Math.min(1, (step - s.warmupSteps) / span);
  const minLr = s.lr * s.minLrRatio;
  return minLr + 0.5 * (s.lr - minLr) * (1 + Math.cos(Math.PI * p));
}

export type Grads = Map<string, Float32Array>;

/** Global L2 norm over all gradients. */
export function globalNorm(grads: Grads): number {
  let s = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) s += g[i] * g[i];
  return Math.sqrt(s);
}

/**
 * Scales all gradients in place so that their global norm is at most maxNorm (no-op when
 * maxNorm ≤ 0 or the norm is already small). Returns the norm before clipping.
 */
export function clipGlobalNorm(grads: Grads, maxNorm: number): number {
  const norm = globalNorm(grads);
  if (maxNorm > 0 && norm > maxNorm) {
    const c = maxNorm / (norm + 1e-6);
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= c;
  }
  return norm;
}

/** Sums micro-batch gradients; `mean()` gives their average (the gradient of the mean loss). */
export class GradAccumulator {
  private sum: Map<string, Float64Array> = new Map();
  private n = 0;

  add(grads: Grads): void {
    for (const [k, g] of grads) {
      let s = this.sum.get(k);
      if (!s) this.sum.set(k, (s = new Float64Array(g.length)));
      for (let i = 0; i < g.length; i++) s[i] += g[i];
    }
    this.n++;
  }

  get count(): number {
    return this.n;
  }

  /** The averaged gradients (float32), and resets the accumulator. */
  mean(): Grads {
    const out: Grads = new Map();
    for (const [k, s] of this.sum) out.set(k, Float32Array.from(s, (x) => x / this.n));
    this.sum = new Map();
    this.n = 0;
    return out;
  }
}

export interface ParamInfo {
  /** apply weight decay (matrices); norms and learnable scales usually do not */
  decay: boolean;
}

/** AdamW over named float32 parameters, updated in place. */
export class AdamW {
  readonly m = new Map<string, Float32Array>();
  readonly v = new Map<string, Float32Array>();
  /** optimizer steps taken (t in the bias correction) */
  t = 0;

  constructor(
    readonly params: Map<string, Float32Array>,
    readonly info: Map<string, ParamInfo>,
    readonly cfg: AdamWConfig = ADAMW_DEFAULTS,
  ) {
    for (const [k, p] of params) {
      this.m.set(k, new Float32Array(p.length));
      this.v.set(k, new Float32Array(p.length));
    }
  }

  step(grads: Grads, lr: number): void {
    this.t++;
    const { beta1: b1, beta2: b2, eps, weightDecay } = this.cfg;
    const bc1 = 1 - b1 ** this.t;
    const bc2 = 1 - b2 ** this.t;
    for (const [k, p] of this.params) {
      const g = grads.get(k);
      if (!g) throw new ConfigError('bad_config', 'no gradient for a parameter', { tensor: k });
      if (g.length !== p.length) throw new NumericError('mismatch', 'gradient size differs from parameter', { tensor: k, expected: p.length, found: g.length });
      const m = this.m.get(k) as Float32Array;
      const v = this.v.get(k) as Float32Array;
      const wd = this.info.get(k)?.decay ? lr * weightDecay : 0;
      for (let i = 0; i < p.length; i++) {
        const gi = g[i];
        const mi = b1 * m[i] + (1 - b1) * gi;
        const vi = b2 * v[i] + (1 - b2) * gi * gi;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] - wd * p[i] - (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      }
    }
  }
}
