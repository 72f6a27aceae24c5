// A lazy TensorSource over "read these stored bytes" for any element dtype or ggml block type:
// read() returns the stored tensor (Tensor or QuantTensor), readF32() decodes it to float32
// (f16/bf16 bit-exact, ggml blocks through ggml's own dequantization).

import { DTYPES, GGML_TYPES, isDType, type DType, type GgmlType } from '../core/dtype.js';
import { ConfigError } from '../core/errors.js';
import { numel, type QuantTensor, type Tensor } from '../core/tensor.js';
import { tensorFromBytes } from '../formats/bytes.js';
import { decodeBf16Array, decodeF16Array } from '../numerics/float16.js';
import { dequantizeGgml } from '../quant/ggml/index.js';
import type { TensorSource } from './weights.js';

/** Element dtypes that are stored as themselves in GGUF (the rest are block types). */
function elementType(dtype: DType | GgmlType): DType | null {
  if (isDType(dtype) && !(dtype in GGML_TYPES && GGML_TYPES[dtype as GgmlType].quantized)) return dtype;
  return null;
}

/** Float32 values of an element-typed tensor (integers are converted). */
export function tensorToF32(t: Tensor): Float32Array {
  switch (t.dtype) {
    case 'F32':
      return t.data as Float32Array;
    case 'F16':
      return decodeF16Array(t.data as Uint16Array);
    case 'BF16':
      return decodeBf16Array(t.data as Uint16Array);
    case 'F64':
    case 'I32':
    case 'I16':
    case 'I8':
    case 'U8':
    case 'U16':
    case 'U32':
      return Float32Array.from(t.data as ArrayLike<number>);
    default:
      throw new ConfigError('unsupported', `cannot convert ${t.dtype} to float32`, { found: t.dtype });
  }
}

export function lazyTensor(
  name: string,
  shape: number[],
  dtype: DType | GgmlType,
  byteLength: number,
  readBytes: () => Promise<Uint8Array>,
  readInto?: (dst: Uint8Array) => Promise<void>,
  readRange?: (byteOffset: number, byteLength: number) => Promise<Uint8Array>,
  file?: { path: string; offset: number },
): TensorSource {
  const el = elementType(dtype);
  const read = async (): Promise<Tensor | QuantTensor> => {
    const bytes = await readBytes();
    if (el) return tensorFromBytes(el, shape, bytes);
    return { type: dtype as GgmlType, shape: [...shape], bytes };
  };
  return {
    name,
    shape: [...shape],
    dtype,
    byteLength,
    ...(readInto ? { readInto } : {}),
    read,
    ...(readRange ? { readRange } : {}),
    ...(file ? { file } : {}),
    async readF32() {
      const t = await read();
      if ('type' in t) return dequantizeGgml(t.type, t.bytes, numel(shape));
      const f = tensorToF32(t);
      // an F32 tensor's data may be a view on a shared buffer; hand out an owned copy
      return f === t.data ? Float32Array.from(f) : f;
    },
  };
}

/** Bits per weight of a stored tensor, headers and scales included. */
export function storedBitsPerWeight(t: Pick<TensorSource, 'shape' | 'byteLength'>): number {
  const n = numel(t.shape);
  return n === 0 ? 0 : (t.byteLength * 8) / n;
}

export function dtypeBytes(dtype: DType): number {
  return DTYPES[dtype].bytes;
}
