// QAT quantizers in float64 reference code: forward (fake-quant) and backward (STE input
// gradient plus the learnable-scale gradient), exactly as REFERENCE §2.1 (ParetoQ,
// facebookresearch/ParetoQ models/utils_quant.py) and §5 (BitNet b1.58) give them.
// These are the oracles for the graph versions in engine/grad/ and for the tests.
// Legend: N = rows (output features), K = columns (input features), T = tokens, E = features.
// Rounding: torch.round, i.e. half to even, everywhere here.

import { ConfigError } from '../core/errors.js';
import { roundHalfEven } from '../numerics/round.js';
import { STE_IDENTITY, steBackward, steClipped, type SteRule } from './ste.js';

/** Weight bit widths QAT supports; 1.58 means ternary (ParetoQ's w_bits = 0). */
export type QatBits = 1 | 1.58 | 2 | 3 | 4;
export const QAT_BITS: readonly QatBits[] = [1, 1.58, 2, 3, 4];

export function isQatBits(b: number): b is QatBits {
  return (QAT_BITS as readonly number[]).includes(b);
}

/** ParetoQ picks LSQ for 1/3/4 bits and SEQ (stretched elastic quant) for ternary and 2 bits. */
export function paretoQMethod(bits: QatBits): 'lsq' | 'seq' {
  return bits === 1.58 || bits === 2 ? 'seq' : 'lsq';
}

/** α is clamped below at this value in the forward and backward passes (ParetoQ eps). */
export const ALPHA_EPS = 1e-5;
/** SEQ clips W/α to ±(1 − 1e-2) before rounding. */
export const SEQ_CLIP = 1 - 1e-2;

/** Integer range of the LSQ grid: [Qn, Qp]; for 1 bit (sign) Qn = −1, Qp = 1. */
export function lsqRange(bits: 1 | 3 | 4): { qn: number; qp: number } {
  if (bits === 1) return { qn: -1, qp: 1 };
  return { qn: -(2 ** (bits - 1)), qp: 2 ** (bits - 1) - 1 };
}

/** SEQ levels: n_levels and shift; ternary (1.5, 0) → {−2/3, 0, 2/3}, 2-bit (2, 0.5) → {±0.25, ±0.75}. */
export function seqParams(bits: 1.58 | 2): { nLevels: number; shift: number; qp: number } {
  const nLevels = bits === 1.58 ? 1.5 : 2;
  const shift = bits === 1.58 ? 0 : 0.5;
  return { nLevels, shift, qp: (nLevels - shift) / nLevels };
}

/**
 * Gradient scale g_s = 1/√(numel·Qp) (LSQ). SEQ uses the pre-override Qp = 1 for both ternary and
 * 2 bits (REFERENCE §2.1), so g_s = 1/√numel there.
 */
export function gradScale(bits: QatBits, numel: number): number {
  if (paretoQMethod(bits) === 'seq') return 1 / Math.sqrt(numel);
  return 1 / Math.sqrt(numel * lsqRange(bits as 1 | 3 | 4).qp);
}

function clampAlpha(a: number): number {
  return a > ALPHA_EPS ? a : ALPHA_EPS;
}

/** Published per-row initialisation (train.py): 1 bit mean|W|; ternary/2 bit max|W|; 3/4 bits max|W|/Qp. */
export function paretoQInitAlpha(w: ArrayLike<number>, N: number, K: number, bits: QatBits): Float64Array {
  const alpha = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let sumAbs = 0;
    let maxAbs = 0;
    for (let k = 0; k < K; k++) {
      const a = Math.abs(w[n * K + k]);
      sumAbs += a;
      if (a > maxAbs) maxAbs = a;
    }
    if (bits === 1) alpha[n] = sumAbs / K;
    else if (bits === 1.58 || bits === 2) alpha[n] = maxAbs;
    else alpha[n] = maxAbs / lsqRange(bits).qp;
  }
  return alpha;
}

/** The level of one normalised weight v = W/α, in units of α (the dequantized value is α·level). */
export function paretoQLevel(v: number, bits: QatBits): number {
  if (paretoQMethod(bits) === 'seq') {
    const { nLevels, shift } = seqParams(bits as 1.58 | 2);
    const c = Math.min(SEQ_CLIP, Math.max(-SEQ_CLIP, v));
    return (roundHalfEven(c * nLevels - shift) + shift) / nLevels;
  }
  if (bits === 1) return Math.sign(v); // sign(0) = 0, as torch.sign
  const { qn, qp } = lsqRange(bits as 3 | 4);
  return Math.min(qp, Math.max(qn, roundHalfEven(v)));
}

/** Fake-quantized weights W_q = α·level(W/α); w: [N, K], alpha: [N]. */
export function paretoQForward(w: ArrayLike<number>, alpha: ArrayLike<number>, N: number, K: number, bits: QatBits): Float64Array {
  const out = new Float64Array(N * K);
  for (let n = 0; n < N; n++) {
    const a = clampAlpha(alpha[n]);
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      out[i] = a * paretoQLevel(w[i] / a, bits);
    }
  }
  return out;
}

/** The STE ParetoQ uses for the weight gradient at these bits. */
export function paretoQSte(bits: QatBits): SteRule {
  if (paretoQMethod(bits) === 'seq') return steClipped(-SEQ_CLIP, SEQ_CLIP);
  const { qn, qp } = lsqRange(bits as 1 | 3 | 4);
  return steClipped(qn, qp);
}

/**
 * Backward of W_q = α·level(W/α) given gy = dL/dW_q: the STE weight gradient and the per-row
 * scale gradient, summed over each row and multiplied by g_s:
 *   LSQ b > 1: gα = Σ gy·g_s·(Qn if v < Qn; Qp if v > Qp; round(v) − v otherwise)
 *   LSQ b = 1: gα = Σ gy·g_s·sign(W)
 *   SEQ:       gα = Σ gy·g_s·(−Qp' if v < −clip; Qp' if v > clip; level(v) − v otherwise)
 */
export function paretoQBackward(
  w: ArrayLike<number>,
  alpha: ArrayLike<number>,
  gy: ArrayLike<number>,
  N: number,
  K: number,
  bits: QatBits,
): { gw: Float64Array; galpha: Float64Array } {
  const a = Float64Array.from({ length: N }, (_, n) => clampAlpha(alpha[n]));
  const gw = steBackward(paretoQSte(bits), w, a, gy, N, K);
  const galpha = new Float64Array(N);
  const gs = gradScale(bits, N * K);
  const seq = paretoQMethod(bits) === 'seq';
  const lo = seq ? -SEQ_CLIP : lsqRange(bits as 1 | 3 | 4).qn;
  const hi = seq ? SEQ_CLIP : lsqRange(bits as 1 | 3 | 4).qp;
  const satHi = seq ? seqParams(bits as 1.58 | 2).qp : hi;
  const satLo = seq ? -satHi : lo;
  for (let n = 0; n < N; n++) {
    let s = 0;
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      const v = w[i] / a[n];
      let d: number;
      if (bits === 1) d = Math.sign(w[i]);
      else if (v < lo) d = satLo;
      else if (v > hi) d = satHi;
      else d = paretoQLevel(v, bits) - v;
      s += gy[i] * gs * d;
    }
    galpha[n] = s;
  }
  return { gw, galpha };
}

/** Integer codes of the ParetoQ grid for export: LSQ q ∈ [Qn, Qp]; SEQ level index 0..nLevels. */
export function paretoQCodes(w: ArrayLike<number>, alpha: ArrayLike<number>, N: number, K: number, bits: QatBits): Int8Array {
  const out = new Int8Array(N * K);
  for (let n = 0; n < N; n++) {
    const a = clampAlpha(alpha[n]);
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      const lv = paretoQLevel(w[i] / a, bits);
      if (paretoQMethod(bits) === 'seq') {
        const { nLevels, shift } = seqParams(bits as 1.58 | 2);
        out[i] = Math.round(lv * nLevels - shift) + (bits === 2 ? 2 : 1); // 0-based level index
      } else out[i] = lv;
    }
  }
  return out;
}

// ---- BitNet b1.58 ----------------------------------------------------------------------------

/** BitNet clamps the absmean and absmax scales below at 1e-5. */
export const BITNET_EPS = 1e-5;

/** Absmean ternary weights, per tensor: γ = mean|W|, W_q = clamp(round(W/γ), −1, 1)·γ. */
export function bitnetWeightQuant(w: ArrayLike<number>): { wq: Float64Array; gamma: number } {
  let s = 0;
  for (let i = 0; i < w.length; i++) s += Math.abs(w[i]);
  const gamma = Math.max(s / w.length, BITNET_EPS);
  const wq = new Float64Array(w.length);
  for (let i = 0; i < w.length; i++) wq[i] = Math.min(1, Math.max(-1, roundHalfEven(w[i] / gamma))) * gamma;
  return { wq, gamma };
}

/**
 * 8-bit per-token absmax activations: s = 127/max|x_t|, x̂ = clamp(round(x·s), −128, 127)/s.
 * x: [T, E].
 */
export function bitnetActQuant(x: ArrayLike<number>, T: number, E: number): Float64Array {
  const out = new Float64Array(T * E);
  for (let t = 0; t < T; t++) {
    let m = 0;
    for (let e = 0; e < E; e++) m = Math.max(m, Math.abs(x[t * E + e]));
    const s = 127 / Math.max(m, BITNET_EPS);
    for (let e = 0; e < E; e++) out[t * E + e] = Math.min(127, Math.max(-128, roundHalfEven(x[t * E + e] * s))) / s;
  }
  return out;
}

/** BitNet's STE passes gradients straight through both quantizers (x + (Q(x) − x).detach()). */
export const BITNET_STE: SteRule = STE_IDENTITY;

// ---- low-precision training (Kumar et al.): symmetric absmax fake-quant ------------------------

export type LpGranularity = 'tensor' | 'channel';

/**
 * Symmetric absmax integer fake-quant, the default of precision-aware training: per tensor, or
 * per row of [N, K] ('channel'). scale = absmax/Qp with Qp = 2^(b−1) − 1, q = clamp(round(x/scale), −Qp−1, Qp).
 */
export function intFakeQuantRef(x: ArrayLike<number>, N: number, K: number, bits: number, gran: LpGranularity): Float64Array {
  if (!(bits >= 2 && bits <= 16 && Number.isInteger(bits))) {
    throw new ConfigError('bad_option', 'integer fake-quant bits out of range', { field: 'bits', expected: 'an integer 2..16', found: bits });
  }
  const qp = 2 ** (bits - 1) - 1;
  const out = new Float64Array(N * K);
  const rows = gran === 'tensor' ? 1 : N;
  const per = gran === 'tensor' ? N * K : K;
  for (let r = 0; r < rows; r++) {
    let m = 0;
    for (let i = r * per; i < (r + 1) * per; i++) m = Math.max(m, Math.abs(x[i]));
    const scale = m > 0 ? m / qp : 1;
    for (let i = r * per; i < (r + 1) * per; i++) out[i] = Math.min(qp, Math.max(-qp - 1, roundHalfEven(x[i] / scale))) * scale;
  }
  return out;
}
