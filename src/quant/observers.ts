// Observers: choose a clip range [min, max] for a tensor (or a stream of batches) that schemes use
// through quantize's `clip` option (or `clipRatio` for the MSE search, which works per scale group).
//   min-max, percentile (exact order statistic, linear interpolation like numpy's default),
//   MSE-optimal clipping (GPTQ Quantizer's grid search: shrink the range by 1 − i/grid, i < maxShrink·grid,
//   keep the lowest Σ|x − x̂|^norm), KL-divergence calibration (TensorRT entropy calibration: |x| in
//   2048 bins, for each candidate threshold i ≥ 128 bins fold the tail into the last bin, merge into 128
//   levels, expand back over the non-empty bins and keep the i with the smallest KL(P‖Q)),
//   and running statistics over batches (running min/max, or an EMA of per-batch min/max as torch's
//   MovingAverageMinMaxObserver: v ← v + c·(batch − v)).
// Legend: n = elements observed; B = histogram bins (2048); Lq = quantized levels (128 for int8).

import { ConfigError } from '../core/errors.js';
import { assertFinite } from './check.js';
import { scaleLayout } from './layout.js';
import type { Granularity, QuantScheme } from './scheme.js';
import { fakeQuant } from './api.js';

export interface ClipRange {
  min: number;
  max: number;
}

export function minMaxRange(x: Float32Array): ClipRange {
  assertFinite(x, 'observer input');
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i] < lo) lo = x[i];
    if (x[i] > hi) hi = x[i];
  }
  return x.length ? { min: lo, max: hi } : { min: 0, max: 0 };
}

function quantileSorted(s: Float32Array, q: number): number {
  if (!s.length) return 0;
  const pos = q * (s.length - 1);
  const i = Math.floor(pos);
  const f = pos - i;
  return i + 1 < s.length ? s[i] + f * (s[i + 1] - s[i]) : s[i];
}

/** Clip at the `pct` and (100 − pct) percentiles (pct in (50, 100]); symmetric: ±percentile of |x|. */
export function percentileRange(x: Float32Array, pct: number, symmetric = false): ClipRange {
  if (!(pct > 50 && pct <= 100)) throw new ConfigError('bad_option', 'percentile must be in (50, 100]', { field: 'pct', found: pct });
  assertFinite(x, 'observer input');
  if (symmetric) {
    const a = Float32Array.from(x, Math.abs).sort();
    const t = quantileSorted(a, pct / 100);
    return { min: -t, max: t };
  }
  const s = x.slice().sort();
  return { min: quantileSorted(s, 1 - pct / 100), max: quantileSorted(s, pct / 100) };
}

export interface MseClipOptions {
  grid?: number; // default 100
  maxShrink?: number; // default 0.8
  norm?: number; // default 2.4 (GPTQ)
  importance?: Float32Array; // [K] weights of the error per column
}

/**
 * Best clipRatio for `scheme` on `w` by grid search over fakeQuant error (the same quantizer the
 * tensor will use, applied per scale group with the common ratio). Returns the ratio and its error.
 */
export function mseClipSearch(
  w: Float32Array,
  shape: number[],
  scheme: QuantScheme,
  opts: MseClipOptions = {},
): { ratio: number; error: number } {
  const grid = opts.grid ?? 100;
  const maxShrink = opts.maxShrink ?? 0.8;
  const norm = opts.norm ?? 2.4;
  const K = shape.length ? shape[shape.length - 1] : 1;
  const imp = opts.importance;
  let best = { ratio: 1, error: Infinity };
  for (let i = 0; i < Math.floor(maxShrink * grid); i++) {
    const ratio = 1 - i / grid;
    const d = fakeQuant(w, shape, scheme, { clipRatio: ratio });
    let e = 0;
    for (let j = 0; j < w.length; j++) e += Math.abs(w[j] - d[j]) ** norm * (imp ? imp[j % K] : 1);
    if (e < best.error) best = { ratio, error: e };
  }
  return best;
}

/**
 * Best clip ratio of every scale group ([S], for opts.clipRatio): the same grid as mseClipSearch, with
 * the error accumulated per group. Groups quantize independently (int, code-book, scaled-float schemes),
 * so the per-group argmin over common-ratio runs is the per-group optimum on the grid.
 */
export function mseClipSearchPerGroup(
  w: Float32Array,
  shape: number[],
  scheme: Extract<QuantScheme, { granularity: Granularity }>,
  opts: MseClipOptions = {},
): Float32Array {
  const grid = opts.grid ?? 100;
  const maxShrink = opts.maxShrink ?? 0.8;
  const norm = opts.norm ?? 2.4;
  const lay = scaleLayout(shape, scheme.granularity);
  const K = shape.length ? shape[shape.length - 1] : 1;
  const imp = opts.importance;
  const best = new Float64Array(lay.nScales).fill(Infinity);
  const ratios = new Float32Array(lay.nScales).fill(1);
  const err = new Float64Array(lay.nScales);
  for (let i = 0; i < Math.floor(maxShrink * grid); i++) {
    const ratio = Math.fround(1 - i / grid);
    const d = fakeQuant(w, shape, scheme, { clipRatio: ratio });
    err.fill(0);
    for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
      let e = 0;
      for (let j = off; j < off + lay.runLen; j++) e += Math.abs(w[j] - d[j]) ** norm * (imp ? imp[j % K] : 1);
      err[r % lay.mod] += e;
    }
    for (let s = 0; s < lay.nScales; s++) {
      if (err[s] < best[s]) {
        best[s] = err[s];
        ratios[s] = ratio;
      }
    }
  }
  return ratios;
}

// ---- histograms and KL (entropy) calibration

export const KL_BINS = 2048;

/** Histogram of |x| over [0, range), 2048 bins; the range doubles (merging bin pairs) to fit new data. */
export class AbsHistogram {
  readonly counts = new Float64Array(KL_BINS);
  range = 0;

  add(x: Float32Array): void {
    assertFinite(x, 'observer input');
    let amax = 0;
    for (let i = 0; i < x.length; i++) amax = Math.max(amax, Math.abs(x[i]));
    if (amax === 0 && this.range === 0) {
      this.counts[0] += x.length;
      return;
    }
    if (this.range === 0) this.range = amax;
    while (amax > this.range) this.grow();
    const w = this.range / KL_BINS;
    for (let i = 0; i < x.length; i++) this.counts[Math.min(KL_BINS - 1, Math.floor(Math.abs(x[i]) / w))]++;
  }

  private grow(): void {
    const c = this.counts;
    for (let i = 0; i < KL_BINS / 2; i++) c[i] = c[2 * i] + c[2 * i + 1];
    c.fill(0, KL_BINS / 2);
    this.range *= 2;
  }
}

/** MXNet/TensorRT smoothing: move eps mass onto empty bins so KL stays finite. */
function smooth(p: Float64Array, eps = 1e-4): Float64Array | null {
  let nz = 0;
  for (const v of p) if (v > 0) nz++;
  const nZero = p.length - nz;
  if (nz === 0) return null;
  const epsNz = (eps * nZero) / nz;
  if (epsNz >= 1) return null;
  return p.map((v) => (v > 0 ? v - epsNz : eps));
}

function normalise(p: Float64Array): Float64Array {
  let s = 0;
  for (const v of p) s += v;
  return s > 0 ? p.map((v) => v / s) : p;
}

/** Threshold (on |x|) minimising KL(P‖Q) for `levels` quantization levels (128 for int8). */
export function klThreshold(h: AbsHistogram, levels = 128): number {
  const c = h.counts;
  const B = KL_BINS;
  if (h.range === 0) return 0;
  const width = h.range / B;
  let bestI = B;
  let bestKl = Infinity;
  for (let i = levels; i <= B; i++) {
    const p = c.slice(0, i);
    let tail = 0;
    for (let j = i; j < B; j++) tail += c[j];
    p[i - 1] += tail;
    // Q: merge the i bins into `levels` chunks, spread each chunk's mass over its non-empty bins
    const q = new Float64Array(i);
    const per = i / levels;
    for (let k = 0; k < levels; k++) {
      const a = Math.floor(k * per);
      const b = k === levels - 1 ? i : Math.floor((k + 1) * per);
      let mass = 0;
      let nz = 0;
      for (let j = a; j < b; j++) {
        mass += c[j];
        if (c[j] > 0) nz++;
      }
      if (nz) for (let j = a; j < b; j++) if (c[j] > 0) q[j] = mass / nz;
    }
    const ps = smooth(normalise(p));
    const qs = smooth(normalise(q));
    if (!ps || !qs) continue;
    let kl = 0;
    for (let j = 0; j < i; j++) if (ps[j] > 0) kl += ps[j] * Math.log(ps[j] / qs[j]);
    if (kl < bestKl) {
      bestKl = kl;
      bestI = i;
    }
  }
  return bestI * width;
}

/** KL calibration of one tensor: symmetric range ±threshold. */
export function klRange(x: Float32Array, levels = 128): ClipRange {
  const h = new AbsHistogram();
  h.add(x);
  const t = klThreshold(h, levels);
  return { min: -t, max: t };
}

// ---- running statistics over batches

export interface RunningOptions {
  /** 'minmax': running extremes; 'ema': v ← v + c·(batch − v) on per-batch min and max */
  mode: 'minmax' | 'ema';
  /** EMA averaging constant c (torch default 0.01) */
  averagingConstant?: number;
}

export class RunningRange {
  private lo = NaN;
  private hi = NaN;
  private readonly c: number;

  constructor(private readonly opts: RunningOptions = { mode: 'minmax' }) {
    this.c = opts.averagingConstant ?? 0.01;
    if (!(this.c > 0 && this.c <= 1)) {
      throw new ConfigError('bad_option', 'averagingConstant must be in (0, 1]', { field: 'averagingConstant', found: this.c });
    }
  }

  update(x: Float32Array): ClipRange {
    const r = minMaxRange(x);
    if (Number.isNaN(this.lo)) {
      this.lo = r.min;
      this.hi = r.max;
    } else if (this.opts.mode === 'minmax') {
      this.lo = Math.min(this.lo, r.min);
      this.hi = Math.max(this.hi, r.max);
    } else {
      this.lo += this.c * (r.min - this.lo);
      this.hi += this.c * (r.max - this.hi);
    }
    return this.range();
  }

  range(): ClipRange {
    return Number.isNaN(this.lo) ? { min: 0, max: 0 } : { min: this.lo, max: this.hi };
  }
}
