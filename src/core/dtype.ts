// One registry for element dtypes and ggml block types (like ggml's type_traits).
// Every container (safetensors, GGUF, ONNX) maps its ids through this table, never through
// scattered constants.

/** Element (non-block) data types, named as safetensors names them. */
export type DType =
  | 'F64'
  | 'F32'
  | 'F16'
  | 'BF16'
  | 'F8_E4M3'
  | 'F8_E5M2'
  | 'I64'
  | 'I32'
  | 'I16'
  | 'I8'
  | 'U64'
  | 'U32'
  | 'U16'
  | 'U8'
  | 'BOOL';

export interface DTypeTraits {
  /** bytes per element */
  bytes: number;
  /** ONNX TensorProto.DataType id, or null if ONNX has no such type */
  onnx: number | null;
  /** ggml type id for the element types GGUF stores, or null */
  ggml: number | null;
  isFloat: boolean;
}

export const DTYPES = {
  F64: { bytes: 8, onnx: 11, ggml: 28, isFloat: true },
  F32: { bytes: 4, onnx: 1, ggml: 0, isFloat: true },
  F16: { bytes: 2, onnx: 10, ggml: 1, isFloat: true },
  BF16: { bytes: 2, onnx: 16, ggml: 30, isFloat: true },
  F8_E4M3: { bytes: 1, onnx: 17, ggml: null, isFloat: true },
  F8_E5M2: { bytes: 1, onnx: 19, ggml: null, isFloat: true },
  I64: { bytes: 8, onnx: 7, ggml: 27, isFloat: false },
  I32: { bytes: 4, onnx: 6, ggml: 26, isFloat: false },
  I16: { bytes: 2, onnx: 5, ggml: 25, isFloat: false },
  I8: { bytes: 1, onnx: 3, ggml: 24, isFloat: false },
  U64: { bytes: 8, onnx: 13, ggml: null, isFloat: false },
  U32: { bytes: 4, onnx: 12, ggml: null, isFloat: false },
  U16: { bytes: 2, onnx: 4, ggml: null, isFloat: false },
  U8: { bytes: 1, onnx: 2, ggml: null, isFloat: false },
  BOOL: { bytes: 1, onnx: 9, ggml: null, isFloat: false },
} as const satisfies Record<DType, DTypeTraits>;

export function isDType(s: string): s is DType {
  return Object.prototype.hasOwnProperty.call(DTYPES, s);
}

/**
 * ggml tensor types (GGUF `ggml_type`), ids as in ggml at commit d99724f2.
 * Element types are included (F32, F16, …) because GGUF stores them under the same id space.
 */
export type GgmlType =
  | 'F32'
  | 'F16'
  | 'Q4_0'
  | 'Q4_1'
  | 'Q5_0'
  | 'Q5_1'
  | 'Q8_0'
  | 'Q8_1'
  | 'Q2_K'
  | 'Q3_K'
  | 'Q4_K'
  | 'Q5_K'
  | 'Q6_K'
  | 'Q8_K'
  | 'IQ2_XXS'
  | 'IQ2_XS'
  | 'IQ3_XXS'
  | 'IQ1_S'
  | 'IQ4_NL'
  | 'IQ3_S'
  | 'IQ2_S'
  | 'IQ4_XS'
  | 'I8'
  | 'I16'
  | 'I32'
  | 'I64'
  | 'F64'
  | 'IQ1_M'
  | 'BF16'
  | 'TQ1_0'
  | 'TQ2_0'
  | 'MXFP4'
  | 'NVFP4'
  | 'Q1_0'
  | 'Q2_0';

export interface GgmlTypeTraits {
  id: number;
  /** weights per block */
  blockSize: number;
  /** bytes per block */
  typeSize: number;
  /** true for block-quantized types */
  quantized: boolean;
}

// QK_K = 256 for the K-, IQ- and TQ- super-blocks.
export const GGML_TYPES = {
  F32: { id: 0, blockSize: 1, typeSize: 4, quantized: false },
  F16: { id: 1, blockSize: 1, typeSize: 2, quantized: false },
  Q4_0: { id: 2, blockSize: 32, typeSize: 18, quantized: true },
  Q4_1: { id: 3, blockSize: 32, typeSize: 20, quantized: true },
  Q5_0: { id: 6, blockSize: 32, typeSize: 22, quantized: true },
  Q5_1: { id: 7, blockSize: 32, typeSize: 24, quantized: true },
  Q8_0: { id: 8, blockSize: 32, typeSize: 34, quantized: true },
  Q8_1: { id: 9, blockSize: 32, typeSize: 36, quantized: true },
  Q2_K: { id: 10, blockSize: 256, typeSize: 84, quantized: true },
  Q3_K: { id: 11, blockSize: 256, typeSize: 110, quantized: true },
  Q4_K: { id: 12, blockSize: 256, typeSize: 144, quantized: true },
  Q5_K: { id: 13, blockSize: 256, typeSize: 176, quantized: true },
  Q6_K: { id: 14, blockSize: 256, typeSize: 210, quantized: true },
  Q8_K: { id: 15, blockSize: 256, typeSize: 292, quantized: true },
  IQ2_XXS: { id: 16, blockSize: 256, typeSize: 66, quantized: true },
  IQ2_XS: { id: 17, blockSize: 256, typeSize: 74, quantized: true },
  IQ3_XXS: { id: 18, blockSize: 256, typeSize: 98, quantized: true },
  IQ1_S: { id: 19, blockSize: 256, typeSize: 50, quantized: true },
  IQ4_NL: { id: 20, blockSize: 32, typeSize: 18, quantized: true },
  IQ3_S: { id: 21, blockSize: 256, typeSize: 110, quantized: true },
  IQ2_S: { id: 22, blockSize: 256, typeSize: 82, quantized: true },
  IQ4_XS: { id: 23, blockSize: 256, typeSize: 136, quantized: true },
  I8: { id: 24, blockSize: 1, typeSize: 1, quantized: false },
  I16: { id: 25, blockSize: 1, typeSize: 2, quantized: false },
  I32: { id: 26, blockSize: 1, typeSize: 4, quantized: false },
  I64: { id: 27, blockSize: 1, typeSize: 8, quantized: false },
  F64: { id: 28, blockSize: 1, typeSize: 8, quantized: false },
  IQ1_M: { id: 29, blockSize: 256, typeSize: 56, quantized: true },
  BF16: { id: 30, blockSize: 1, typeSize: 2, quantized: false },
  TQ1_0: { id: 34, blockSize: 256, typeSize: 54, quantized: true },
  TQ2_0: { id: 35, blockSize: 256, typeSize: 66, quantized: true },
  MXFP4: { id: 39, blockSize: 32, typeSize: 17, quantized: true },
  NVFP4: { id: 40, blockSize: 64, typeSize: 36, quantized: true },
  Q1_0: { id: 41, blockSize: 128, typeSize: 18, quantized: true },
  Q2_0: { id: 42, blockSize: 64, typeSize: 18, quantized: true },
} as const satisfies Record<GgmlType, GgmlTypeTraits>;

const GGML_BY_ID = new Map<number, GgmlType>(
  (Object.entries(GGML_TYPES) as [GgmlType, GgmlTypeTraits][]).map(([name, t]) => [t.id, name]),
);

/** ggml type name for a GGUF type id, or undefined for an unknown id. */
export function ggmlTypeFromId(id: number): GgmlType | undefined {
  return GGML_BY_ID.get(id);
}

export function isGgmlType(s: string): s is GgmlType {
  return Object.prototype.hasOwnProperty.call(GGML_TYPES, s);
}

/** Bytes needed for `nElements` of a ggml type; throws if not a whole number of blocks. */
export function ggmlByteSize(type: GgmlType, nElements: number): number {
  const t = GGML_TYPES[type];
  if (nElements % t.blockSize !== 0) {
    throw new RangeError(`${type}: ${nElements} elements is not a multiple of the block size ${t.blockSize}`);
  }
  return (nElements / t.blockSize) * t.typeSize;
}

/** Bits per weight of a ggml type, headers and scales included. */
export function ggmlBitsPerWeight(type: GgmlType): number {
  const t = GGML_TYPES[type];
  return (t.typeSize * 8) / t.blockSize;
}
