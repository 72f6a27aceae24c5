// Host tensors: a dtype, a shape and a typed array (row-major). Quantized tensors are carried as
// raw bytes plus their ggml type (see `QuantTensor`), never decoded implicitly.

import type { DType, GgmlType } from './dtype.js';
import { ShapeError } from './errors.js';

/** Typed-array storage per element dtype (16-bit floats and FP8 are kept as raw bit patterns). */
export interface DTypeStorage {
  F64: Float64Array;
  F32: Float32Array;
  F16: Uint16Array;
  BF16: Uint16Array;
  F8_E4M3: Uint8Array;
  F8_E5M2: Uint8Array;
  I64: BigInt64Array;
  I32: Int32Array;
  I16: Int16Array;
  I8: Int8Array;
  U64: BigUint64Array;
  U32: Uint32Array;
  U16: Uint16Array;
  U8: Uint8Array;
  BOOL: Uint8Array;
}

export interface Tensor<D extends DType = DType> {
  dtype: D;
  /** row-major; the last dimension is contiguous */
  shape: number[];
  data: DTypeStorage[D];
}

/** A block-quantized tensor exactly as ggml stores it. `shape` is in elements (ggml order reversed: row-major). */
export interface QuantTensor {
  type: GgmlType;
  shape: number[];
  bytes: Uint8Array;
}

export function numel(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function tensorF32(shape: number[], data?: Float32Array): Tensor<'F32'> {
  const n = numel(shape);
  const d = data ?? new Float32Array(n);
  if (d.length !== n) {
    throw new ShapeError('shape_mismatch', 'data length does not match shape', { expected: n, found: d.length });
  }
  return { dtype: 'F32', shape: [...shape], data: d };
}

/** Throws a ShapeError naming `what` if `shape` differs from `expected` (-1 matches any size). */
export function assertShape(shape: readonly number[], expected: readonly number[], what: string): void {
  const ok = shape.length === expected.length && expected.every((e, i) => e === -1 || e === shape[i]);
  if (!ok) {
    throw new ShapeError('shape_mismatch', `wrong shape for ${what}`, {
      tensor: what,
      expected: `[${expected.join(', ')}]`,
      found: `[${shape.join(', ')}]`,
    });
  }
}
