// Ternary and binary grids: x̂ = s·q with small integer codes q and one f32 scale per group.
//   absmean_ternary (BitNet b1.58, REFERENCE §5): γ = max(mean|W|, 1e−5); q = clamp(round(W/γ), −1, 1); s = γ
//   binary (ParetoQ 1-bit LSQ init, §2.1):        α = max(mean|W|, 1e−5); q = sign(W) (sign(0) = 0); s = α
//   seq_ternary (ParetoQ SEQ, w_bits = 0):         α = max|W|; q = round(1.5·clamp(W/α, ±0.99)); s = α/1.5
//   seq_2bit (ParetoQ SEQ 2-bit):                  α = max|W|; r = round(2·clamp(W/α, ±0.99) − 0.5);
//                                                  q = 2r + 1 ∈ {−3, −1, 1, 3}; s = α/4  (levels ±α/4, ±3α/4)
// Rounding is half-to-even (torch.round). α/γ may be supplied (QAT's learned scales) through opts.scales,
// in which case they are used as given (their f32 value).
// Legend: N = rows, K = contiguous axis, S = number of scale groups (per row by default for ParetoQ).

import { ConfigError } from '../core/errors.js';
import { numel } from '../core/tensor.js';
import { roundHalfEven } from '../numerics/round.js';
import { groupAbsMean, groupMinMax, scaleLayout } from './layout.js';
import type { LowBitScheme } from './scheme.js';
import type { LowBitQuantized, QuantizeOptions } from './types.js';

/** BitNet/ParetoQ lower bound on a data-derived scale. */
export const LOWBIT_MIN_SCALE = 1e-5;
const SEQ_CLIP = 0.99;

/** The data-derived α (binary, SEQ) or γ (absmean) of each scale group. [S] */
export function lowbitInitScales(w: Float32Array, shape: number[], scheme: LowBitScheme): Float64Array {
  const lay = scaleLayout(shape, scheme.granularity);
  if (scheme.method === 'absmean_ternary' || scheme.method === 'binary') {
    return groupAbsMean(w, lay).map((v) => Math.max(v, LOWBIT_MIN_SCALE));
  }
  const { mins, maxs } = groupMinMax(w, lay);
  return mins.map((lo, s) => Math.max(-lo, maxs[s], LOWBIT_MIN_SCALE));
}

export function quantizeLowBit(w: Float32Array, shape: number[], scheme: LowBitScheme, opts: QuantizeOptions = {}): LowBitQuantized {
  const lay = scaleLayout(shape, scheme.granularity, opts.name);
  let alpha: ArrayLike<number>;
  if (opts.scales) {
    if (opts.scales.length !== lay.nScales) {
      throw new ConfigError('bad_option', 'wrong number of supplied scales', {
        tensor: opts.name,
        field: 'scales',
        expected: lay.nScales,
        found: opts.scales.length,
      });
    }
    alpha = opts.scales;
  } else {
    alpha = lowbitInitScales(w, shape, scheme);
  }
  const codes = new Int8Array(w.length);
  const scales = new Float32Array(lay.nScales);
  const m = scheme.method;
  for (let s = 0; s < lay.nScales; s++) {
    const a = Math.fround(alpha[s]);
    scales[s] = m === 'seq_ternary' ? a / 1.5 : m === 'seq_2bit' ? a / 4 : a;
  }
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const a = Math.fround(alpha[r % lay.mod]);
    for (let i = off, end = off + lay.runLen; i < end; i++) {
      const t = a === 0 ? 0 : w[i] / a;
      let q: number;
      if (m === 'binary') q = Math.sign(t);
      else if (m === 'absmean_ternary') q = Math.max(-1, Math.min(1, roundHalfEven(t)));
      else {
        const c = t > SEQ_CLIP ? SEQ_CLIP : t < -SEQ_CLIP ? -SEQ_CLIP : t;
        q = m === 'seq_ternary' ? roundHalfEven(c * 1.5) : 2 * roundHalfEven(c * 2 - 0.5) + 1;
      }
      codes[i] = q;
    }
  }
  return { kind: 'lowbit', scheme, shape: [...shape], codes, scales, scaleShape: lay.scaleShape };
}

export function dequantizeLowBit(q: LowBitQuantized): Float32Array {
  const lay = scaleLayout(q.shape, q.scheme.granularity);
  const out = new Float32Array(q.codes.length);
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const s = q.scales[r % lay.mod];
    for (let i = off, end = off + lay.runLen; i < end; i++) out[i] = s * q.codes[i];
  }
  return out;
}

/** Storage bits: ternary packs 5 trits per byte (1.6 bits, as TQ1_0 does), binary 1, SEQ 2-bit 2; plus f32 scales. */
export function lowbitBitsPerWeight(scheme: LowBitScheme, shape: number[]): number {
  const n = numel(shape);
  const base = scheme.method === 'binary' ? 1 : scheme.method === 'seq_2bit' ? 2 : 1.6;
  if (!n) return base;
  return base + (32 * scaleLayout(shape, scheme.granularity).nScales) / n;
}
