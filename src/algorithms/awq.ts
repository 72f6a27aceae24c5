// AWQ, activation-aware weight quantization (Lin et al., arXiv 2306.00978), from REFERENCE §4:
// per-input-channel scales s = s_x^α (s_x = E|x_j|), normalised by √(max·min), with α chosen on a
// grid to minimise ‖(Q(W·diag(s))·diag(s)⁻¹ − W)·X‖² over calibration activations; then a
// per-row, per-group clipping search. The scales are folded into the operator that feeds the
// linears (an RMSNorm weight, or the rows of a preceding linear), so the float model computes the
// same function and only the quantization error changes. Difference from the reference code: the
// loss is the summed output error of the linears themselves (through their input Gram matrix), not
// of the whole attention/MLP block, so the search needs only per-site statistics.
// Legend: N = rows (output features) of one linear, K = input features shared by the linears,
// G = group width, T = calibration tokens. Weights are row-major [N, K].

import { ConfigError, ShapeError } from '../core/errors.js';
import { weightedError } from './stats.js';

/** Quantize-then-dequantize a row-major [N, K] matrix (any scheme: the caller's choice). */
export type FakeQuantFn = (w: Float64Array, n: number, k: number) => Float64Array;

/** The calibration data the loss is measured on: a Gram matrix Σ x xᵀ [K, K], or tokens x [T, K]. */
export type LossData = { gram: Float64Array } | { x: Float64Array | Float32Array; t: number };

export interface AwqLinear {
  name: string;
  /** [N, K] */
  w: ArrayLike<number>;
  n: number;
}

/** α grid of the reference code: {0, 0.05, …, 0.95} (1.0 is never tried). */
export function awqAlphaGrid(nGrid = 20): number[] {
  return Array.from({ length: nGrid }, (_, i) => i / nGrid);
}

/** s = max(s_x^α, 1e-4) / √(max(s)·min(s)) (REFERENCE T5). */
export function awqScales(sx: ArrayLike<number>, alpha: number): Float64Array {
  const s = Float64Array.from(sx, (v) => Math.max(Math.pow(v, alpha), 1e-4));
  let mx = -Infinity;
  let mn = Infinity;
  for (const v of s) {
    if (v > mx) mx = v;
    if (v < mn) mn = v;
  }
  const norm = Math.sqrt(mx * mn);
  for (let i = 0; i < s.length; i++) s[i] /= norm;
  return s;
}

/** ‖(W − Ŵ)·X‖² summed over rows, measured on `data`. */
export function outputLoss(w: ArrayLike<number>, wq: ArrayLike<number>, n: number, k: number, data: LossData): number {
  if ('gram' in data) return weightedError(w, wq, data.gram, n, k);
  const { x, t } = data;
  const d = new Float64Array(k);
  let total = 0;
  for (let r = 0; r < n; r++) {
    for (let j = 0; j < k; j++) d[j] = w[r * k + j] - wq[r * k + j];
    for (let tt = 0; tt < t; tt++) {
      let s = 0;
      const b = tt * k;
      for (let j = 0; j < k; j++) s += d[j] * x[b + j];
      total += s * s;
    }
  }
  return total;
}

/** Q(W·diag(s))·diag(s)⁻¹: the effective weights after scaling, quantizing and folding back. */
export function scaledFakeQuant(w: ArrayLike<number>, n: number, k: number, s: ArrayLike<number>, fq: FakeQuantFn): Float64Array {
  const ws = new Float64Array(n * k);
  for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) ws[r * k + j] = w[r * k + j] * s[j];
  const q = fq(ws, n, k);
  for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) q[r * k + j] /= s[j];
  return q;
}

export interface AwqScaleResult {
  alpha: number;
  /** [K] the chosen scales (multiply weight columns, divide the feeding operator) */
  scales: Float64Array;
  /** loss at each α of the grid, in grid order */
  losses: number[];
  /** loss of plain RTN (α = 0 gives s = 1, the same thing) */
  rtnLoss: number;
}

/**
 * Grid search of α for linears sharing one input (q/k/v after input_layernorm, gate/up after
 * post_attention_layernorm…). sx: [K] mean |x_j| over calibration tokens.
 */
export function awqSearchScales(linears: AwqLinear[], k: number, sx: ArrayLike<number>, data: LossData, fq: FakeQuantFn, nGrid = 20): AwqScaleResult {
  if (sx.length !== k) throw new ShapeError('shape_mismatch', 'activation magnitudes are not [K]', { expected: k, found: sx.length });
  for (const l of linears) {
    if (l.w.length !== l.n * k) throw new ShapeError('shape_mismatch', 'linear weight is not [N, K]', { tensor: l.name, expected: l.n * k, found: l.w.length });
  }
  if (!linears.length) throw new ConfigError('bad_option', 'AWQ needs at least one linear layer');
  const losses: number[] = [];
  let best: { alpha: number; loss: number; scales: Float64Array } = { alpha: 0, loss: Infinity, scales: new Float64Array(k).fill(1) };
  for (const alpha of awqAlphaGrid(nGrid)) {
    const s = awqScales(sx, alpha);
    let loss = 0;
    for (const l of linears) loss += outputLoss(l.w, scaledFakeQuant(l.w, l.n, k, s, fq), l.n, k, data);
    losses.push(loss);
    if (loss < best.loss) best = { alpha, loss, scales: s };
  }
  return { alpha: best.alpha, scales: best.scales, losses, rtnLoss: losses[0] };
}

export interface AwqClipResult {
  /** [N, K] weights clamped to ±maxVal per row and group */
  w: Float64Array;
  /** [N, ceil(K/G)] the chosen clipping thresholds */
  maxVal: Float64Array;
}

/**
 * Clipping search (`auto_clip_layer`): per row and group, try max_val = amax·(1 − i/nGrid) for
 * i < maxShrink·nGrid, clamp, fake-quantize the group, and keep the threshold with the smallest
 * group partial-output error δ_gᵀ·G_gg·δ_g. `fq` must quantize a [N, G] slice as one group per row.
 * The reference skips q and k projections; callers decide.
 */
export function awqClipSearch(w: ArrayLike<number>, n: number, k: number, groupSize: number, gram: Float64Array, fq: FakeQuantFn, maxShrink = 0.5, nGrid = 20): AwqClipResult {
  const g = groupSize <= 0 || groupSize > k ? k : groupSize;
  const ng = Math.ceil(k / g);
  const out = Float64Array.from(w);
  const maxVal = new Float64Array(n * ng);
  const nTry = Math.round(maxShrink * nGrid);
  for (let gi = 0; gi < ng; gi++) {
    const c0 = gi * g;
    const gw = Math.min(g, k - c0);
    const orig = new Float64Array(n * gw);
    const amax = new Float64Array(n);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < gw; c++) {
        const v = w[r * k + c0 + c];
        orig[r * gw + c] = v;
        amax[r] = Math.max(amax[r], Math.abs(v));
      }
    }
    const bestErr = new Float64Array(n).fill(Infinity);
    const bestMv = Float64Array.from(amax);
    const clamped = new Float64Array(n * gw);
    const d = new Float64Array(gw);
    for (let i = 0; i < nTry; i++) {
      const f = 1 - i / nGrid;
      for (let r = 0; r < n; r++) {
        const mv = amax[r] * f;
        for (let c = 0; c < gw; c++) clamped[r * gw + c] = Math.min(mv, Math.max(-mv, orig[r * gw + c]));
      }
      const q = fq(clamped, n, gw);
      for (let r = 0; r < n; r++) {
        for (let c = 0; c < gw; c++) d[c] = orig[r * gw + c] - q[r * gw + c];
        let e = 0;
        for (let a = 0; a < gw; a++) {
          if (d[a] === 0) continue;
          let s = 0;
          const ga = (c0 + a) * k + c0;
          for (let b = 0; b < gw; b++) s += gram[ga + b] * d[b];
          e += d[a] * s;
        }
        if (e < bestErr[r]) {
          bestErr[r] = e;
          bestMv[r] = amax[r] * f;
        }
      }
    }
    for (let r = 0; r < n; r++) {
      const mv = bestMv[r];
      maxVal[r * ng + gi] = mv;
      for (let c = 0; c < gw; c++) out[r * k + c0 + c] = Math.min(mv, Math.max(-mv, orig[r * gw + c]));
    }
  }
  return { w: out, maxVal };
}

/** W·diag(s): scales the input columns of a following linear [N, K] in place. */
export function scaleInputColumns(w: Float32Array | Float64Array, n: number, k: number, s: ArrayLike<number>): void {
  for (let r = 0; r < n; r++) for (let j = 0; j < k; j++) w[r * k + j] *= s[j];
}

/** norm.weight /= s (and bias, if any): RMSNorm/LayerNorm folding. */
export function foldIntoNorm(weight: Float32Array | Float64Array, s: ArrayLike<number>, bias?: Float32Array | Float64Array): void {
  for (let j = 0; j < weight.length; j++) {
    weight[j] /= s[j];
    if (bias) bias[j] /= s[j];
  }
}

/** Rows of a preceding linear [K, Kin] /= s (fc → fc folding, e.g. up_proj → down_proj). */
export function foldIntoLinearRows(w: Float32Array | Float64Array, k: number, kIn: number, s: ArrayLike<number>, bias?: Float32Array | Float64Array): void {
  for (let r = 0; r < k; r++) {
    for (let c = 0; c < kIn; c++) w[r * kIn + c] /= s[r];
    if (bias) bias[r] /= s[r];
  }
}

/**
 * Which operator feeds which linears, per architecture: data, not branches. Names are relative to
 * `model.layers.{i}.` (Hugging Face canonical names, without the `.weight` suffix).
 */
export interface ScaleMapping {
  prev: string;
  prevKind: 'norm' | 'linear';
  linears: string[];
  /** apply only when prev's output width equals the linears' input width (v → o under GQA) */
  requireSameShape?: boolean;
}

const LLAMA_MAPPINGS: ScaleMapping[] = [
  { prev: 'input_layernorm', prevKind: 'norm', linears: ['self_attn.q_proj', 'self_attn.k_proj', 'self_attn.v_proj'] },
  { prev: 'self_attn.v_proj', prevKind: 'linear', linears: ['self_attn.o_proj'], requireSameShape: true },
  { prev: 'post_attention_layernorm', prevKind: 'norm', linears: ['mlp.gate_proj', 'mlp.up_proj'] },
  { prev: 'mlp.up_proj', prevKind: 'linear', linears: ['mlp.down_proj'] },
];

/** AWQ/SmoothQuant mappings for the Llama family (Mistral, Qwen2 and Qwen3 share the layout). */
export const SCALE_MAPPINGS: Record<'llama' | 'mistral' | 'qwen2' | 'qwen3', ScaleMapping[]> = {
  llama: LLAMA_MAPPINGS,
  mistral: LLAMA_MAPPINGS,
  qwen2: LLAMA_MAPPINGS,
  qwen3: LLAMA_MAPPINGS,
};
