// Quantization schemes as explicit tagged unions. One scheme describes how a tensor is mapped to
// low-precision codes; the same scheme drives PTQ, QAT fake-quant and export (src/quant/index.ts:
// quantize / dequantize / fakeQuant / bitsPerWeight / parseScheme).
// Legend: N = rows (output features), K = columns (input features, the contiguous axis),
// G = group size along K.

import type { GgmlType } from '../core/dtype.js';

/** Which elements share one scale (and zero point). Axes refer to the tensor's row-major shape. */
export type Granularity =
  /** one scale for the whole tensor; scale shape [] */
  | { kind: 'tensor' }
  /** one scale per index along `axis` (per output channel: axis 0 of [N, K]); scale shape [shape[axis]] */
  | { kind: 'channel'; axis: number }
  /** groups of `size` consecutive elements along the last axis; scale shape [N, K / G] */
  | { kind: 'group'; size: number };

export type ScaleDType = 'F32' | 'F16' | 'BF16';

/** How a real value is rounded to a code. */
export type Rounding = 'half_even' | 'half_away';

/** Uniform integer grid, 1–8 bits. Symmetric: q ∈ [−2^(b−1), 2^(b−1) − 1], x ≈ s·q.
 * Asymmetric: q ∈ [0, 2^b − 1], x ≈ s·(q − z) with an integer zero point z. */
export interface IntScheme {
  kind: 'int';
  bits: number;
  symmetric: boolean;
  granularity: Granularity;
  scaleDtype: ScaleDType;
  rounding: Rounding;
  /**
   * Symmetric grids only: how the scale follows from the group's amax (affine.ts intParams).
   *   absent/false (`int4-g128`): s = amax / (2^(b−1) − ½) = 2·amax / (2^b − 1), so the 2^b codes
   *     span [−amax, amax] (torchao MappingType.SYMMETRIC, the GPTQ reference, llm-compressor);
   *   true (`int4-g128-restricted`): s = amax / (2^(b−1) − 1), amax lands exactly on code
   *     2^(b−1) − 1 and code −2^(b−1) is reached only by clipped or supplied-scale values
   *     (ParetoQ's LSQ initialisation, llama.cpp Q8_0's d = amax/127, absmax activations).
   */
  restricted?: boolean;
}

/** Element-wise float formats, optionally with a per-channel/tensor scale (FP8 with scaling). */
export interface FloatScheme {
  kind: 'float';
  format: 'F16' | 'BF16' | 'F8_E4M3' | 'F8_E5M2' | 'FP4_E2M1';
  /** null: plain cast; otherwise absmax scaling to the format's max at this granularity */
  granularity: Granularity | null;
}

/** OCP Microscaling block formats: 32 elements share an E8M0 power-of-two scale. */
export interface MxScheme {
  kind: 'mx';
  element: 'FP4_E2M1' | 'FP6_E2M3' | 'FP6_E3M2' | 'FP8_E4M3' | 'FP8_E5M2' | 'INT8';
}

/** NVIDIA NVFP4: E2M1 elements, 16-element blocks with an FP8 E4M3 scale, plus a per-tensor f32 scale. */
export interface NvFp4Scheme {
  kind: 'nvfp4';
}

/** Non-uniform grids: NF4 (QLoRA), power-of-two levels, or a learned (k-means) code book. */
export interface CodebookScheme {
  kind: 'codebook';
  book: 'nf4' | 'log2' | 'kmeans';
  bits: number;
  granularity: Granularity;
  scaleDtype: ScaleDType;
}

/** Ternary and binary grids (BitNet b1.58 absmean, sign·mean|w|, ParetoQ SEQ levels). */
export interface LowBitScheme {
  kind: 'lowbit';
  method:
    | 'absmean_ternary' // BitNet b1.58: s = mean|W|, q = clamp(round(W/s), −1, 1)
    | 'binary' // sign(W)·mean|W|
    | 'seq_ternary' // ParetoQ: levels {−2/3, 0, 2/3}·α per row
    | 'seq_2bit'; // ParetoQ SEQ 2-bit: levels {±0.25, ±0.75}·α per row
  granularity: Granularity;
}

/** A llama.cpp block type, bit-exact with ggml's quantizer. */
export interface GgmlScheme {
  kind: 'ggml';
  type: GgmlType;
}

export type QuantScheme = IntScheme | FloatScheme | MxScheme | NvFp4Scheme | CodebookScheme | LowBitScheme | GgmlScheme;
