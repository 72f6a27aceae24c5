// The quantized-tensor tagged union returned by `quantize` and consumed by `dequantize` and the
// exporters. Codes are one per element (not packed; see pack.ts for the container layouts).
// Legend: N = rows (output features), K = columns (input features, contiguous), G = group size,
// S = number of scales (1 per tensor, shape[axis] per channel, N·K/G per group).

import type {
  CodebookScheme,
  FloatScheme,
  GgmlScheme,
  IntScheme,
  LowBitScheme,
  MxScheme,
  NvFp4Scheme,
  QuantScheme,
} from './scheme.js';

/** Uniform integer grid. Symmetric: x̂ = s·q with q signed (Int8Array). Asymmetric: x̂ = s·(q − z) with
 * q and z unsigned (Uint8Array). `scales` are already rounded to `scheme.scaleDtype` (stored = used). */
export interface IntQuantized {
  kind: 'int';
  scheme: IntScheme;
  shape: number[];
  /** [numel] one code per element, row-major like the input */
  codes: Int8Array | Uint8Array;
  /** [S] (scaleShape gives the row-major shape of the scale tensor) */
  scales: Float32Array;
  scaleShape: number[];
  /** [S] integer zero points, asymmetric schemes only */
  zeros?: Uint8Array;
}

/** Non-uniform grid: x̂ = s·codebook[book][q]. NF4 and log2 share one book; k-means has one per scale group. */
export interface CodebookQuantized {
  kind: 'codebook';
  scheme: CodebookScheme;
  shape: number[];
  /** [numel] indices into the book, 0 … 2^bits − 1 */
  codes: Uint8Array;
  /** [S] */
  scales: Float32Array;
  scaleShape: number[];
  /** [1 or S, 2^bits] levels in units of the scale, ascending */
  codebook: Float32Array;
}

/** Ternary / binary / SEQ: x̂ = s·q with small signed integer codes (SEQ 2-bit uses odd codes ±1, ±3). */
export interface LowBitQuantized {
  kind: 'lowbit';
  scheme: LowBitScheme;
  shape: number[];
  /** [numel] ∈ {−1, 0, 1} (ternary/binary) or {−3, −1, 1, 3} (seq_2bit) */
  codes: Int8Array;
  /** [S] f32 */
  scales: Float32Array;
  scaleShape: number[];
}

/** Element-wise float formats. `codes` are the format's bit patterns (Uint16Array for F16/BF16). */
export interface FloatQuantized {
  kind: 'float';
  scheme: FloatScheme;
  shape: number[];
  codes: Uint8Array | Uint16Array;
  /** [S] f32 scales (x̂ = s·decode(code)); absent for a plain cast */
  scales?: Float32Array;
  scaleShape?: number[];
}

/** OCP MX: 32-element blocks along the last axis, one E8M0 scale byte per block. */
export interface MxQuantized {
  kind: 'mx';
  scheme: MxScheme;
  shape: number[];
  /** [numel] element bit patterns (INT8: two's complement byte) */
  codes: Uint8Array;
  /** [numel / 32] E8M0 bytes */
  scales: Uint8Array;
}

/** NVFP4: 16-element blocks, E4M3 block scales, one f32 tensor scale. x̂ = e2m1(code)·e4m3(scale)·tensorScale. */
export interface NvFp4Quantized {
  kind: 'nvfp4';
  scheme: NvFp4Scheme;
  shape: number[];
  /** [numel] E2M1 codes (4 bits each, unpacked) */
  codes: Uint8Array;
  /** [numel / 16] E4M3 bytes */
  scales: Uint8Array;
  tensorScale: number;
}

/** A llama.cpp block type, bytes exactly as ggml stores them. */
export interface GgmlQuantized {
  kind: 'ggml';
  scheme: GgmlScheme;
  shape: number[];
  bytes: Uint8Array;
}

export type QuantizedTensor =
  | IntQuantized
  | CodebookQuantized
  | LowBitQuantized
  | FloatQuantized
  | MxQuantized
  | NvFp4Quantized
  | GgmlQuantized;

export interface QuantizeOptions {
  /** [K] per-input-channel importance (imatrix, mean x²). Used by k-means, ggml types; ignored by RTN int. */
  importance?: Float32Array;
  /** tensor name, used in error messages */
  name?: string;
  /** Clip range (from an observer). Int/codebook/float: each scale group's range is intersected with it
   * (symmetric schemes use max(|min|, |max|)). */
  clip?: { min: number; max: number };
  /** Shrink each scale group's range by this factor in (0, 1]: one for all groups, or [S] per group
   * (mseClipSearch / mseClipSearchPerGroup results). Int, code-book and scaled-float schemes. */
  clipRatio?: number | Float32Array;
  /** Seed for randomised code-book construction (k-means); default 0. */
  seed?: number;
  /** [S] scales to use instead of computing them from the data (QAT's learned scales, GPTQ's fixed grid).
   * Int: the step s (rounded to scaleDtype, nearest); lowbit: α (binary/SEQ) or γ (absmean) as f32. */
  scales?: Float32Array;
  /** [S] integer zero points to use with `scales` (asymmetric int only). */
  zeros?: Uint8Array;
}

export type { QuantScheme };
