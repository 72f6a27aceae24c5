// Llama 3.1 RoPE scaling, defined once: long wavelengths are divided by `factor`, short ones kept,
// and a smooth blend between (rope_scaling {rope_type: "llama3", factor, low_freq_factor,
// high_freq_factor, original_max_position_embeddings}). The engine applies it to its float32
// inverse frequencies (engine/rope.ts); GGUF stores it as llama.cpp's rope_freqs divisors (save.ts).
// Legend: D = head dim, Dr = D / 2 rotary pairs.

import type { ModelConfig, RopeScaling } from './config.js';

/**
 * How much of the unscaled inverse frequency `f` a pair keeps: 1 for short wavelengths (kept),
 * 0 for long ones (divided by factor), the smooth blend weight in between. The scaled frequency is
 * (1 − w)·(f / factor) + w·f.
 */
export function llama3KeepWeight(s: RopeScaling, f: number): number {
  const low = s.lowFreqFactor ?? 1;
  const high = s.highFreqFactor ?? 4;
  const old = s.originalMaxPositionEmbeddings ?? 8192;
  const wavelen = (2 * Math.PI) / f;
  if (wavelen < old / high) return 1;
  if (wavelen > old / low) return 0;
  return (old / wavelen - low) / (high - low);
}

/**
 * Per-pair frequency divisors [Dr] as llama.cpp's rope_freqs tensor holds them: 1 for short
 * wavelengths, `factor` for long ones, the blend's divisor in between.
 */
export function llama3RopeFactors(c: ModelConfig): Float32Array {
  const s = c.ropeScaling!;
  const out = new Float32Array(c.headDim / 2);
  for (let i = 0; i < out.length; i++) {
    const w = llama3KeepWeight(s, 1 / Math.pow(c.ropeTheta, (2 * i) / c.headDim));
    out[i] = w === 1 ? 1 : w === 0 ? s.factor : 1 / ((1 - w) / s.factor + w);
  }
  return out;
}
