// transformers.js's dtype → ONNX file suffix table (transformers.js 4.3.1 src/utils/dtypes.js,
// DEFAULT_DTYPE_SUFFIX_MAPPING), for the variants bitscale writes and reads: onnx/model{suffix}.onnx.
export const ONNX_DTYPE_SUFFIX = { fp32: '', fp16: '_fp16', q8: '_quantized', q4: '_q4', q4f16: '_q4f16', q2: '_q2', q2f16: '_q2f16' } as const;
export type OnnxDtype = keyof typeof ONNX_DTYPE_SUFFIX;
