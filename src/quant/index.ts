// Public quantization API (src/quant/index.ts): quantize / dequantize / fakeQuant / bitsPerWeight /
// parseScheme / formatScheme, the scheme and quantized-tensor types, and the building blocks PTQ, QAT
// and exporters reuse (int grid parameters, code books, packing layouts, observers).
// Legend: w is row-major with shape [N, K] (or any rank); granularity axes refer to that shape.

export { quantize, dequantize, fakeQuant, bitsPerWeight } from './api.js';
export type * from './types.js';
export type * from './scheme.js';
export { parseScheme, formatScheme } from './parse.js';
export { intParams, intQuantizeValue, intRange, rounder, symmetricSteps } from './affine.js';
export { scaleLayout, type ScaleLayout } from './layout.js';
export { roundScale, roundScaleUp, type ScaleRounding } from './scale.js';
export { NF4_LEVELS, codebookScale, log2Levels, nearestLevel, kmeans1d } from './codebook.js';
export { lowbitInitScales, LOWBIT_MIN_SCALE } from './lowbit.js';
export { MX_BLOCK, NVFP4_BLOCK } from './float-formats.js';

export {
  minMaxRange,
  percentileRange,
  mseClipSearch,
  mseClipSearchPerGroup,
  klRange,
  klThreshold,
  AbsHistogram,
  RunningRange,
  KL_BINS,
  type ClipRange,
  type MseClipOptions,
  type RunningOptions,
} from './observers.js';
export * from './pack.js';
export { validateQuantized } from './validate.js';
export {
  quantizeGgml,
  dequantizeGgml,
  ggmlSupports,
  GGML_CODECS,
  GGML_BLOCK_HOOKS,
  type GgmlCodec,
  type BlockHook,
  type GgmlHookType,
} from './ggml/index.js';
