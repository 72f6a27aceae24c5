// A packed int linear of a checkpoint (GPTQ or compressed-tensors, read by formats/) as a lazy
// TensorSource `<base>.weight` [N, K]: read/readF32 dequantize (formats/packed-int.ts), readCodes
// hands the stored codes to engines that run them as they are. byteLength is the packed size, so
// bits per weight read as stored.

import type { Tensor } from '../core/tensor.js';
import { dequantizePackedInt, type PackedLinear } from '../formats/packed-int.js';
import type { TensorSource } from './weights.js';

export function packedTensorSource(name: string, shape: number[], p: PackedLinear): TensorSource {
  const [N, K] = shape;
  const readF32 = async (): Promise<Float32Array> => dequantizePackedInt(await p.readCodes(), N, K);
  return {
    name,
    shape: [N, K],
    dtype: 'F32',
    packing: p.packing,
    byteLength: p.byteLength,
    readF32,
    readCodes: () => p.readCodes(),
    read: async (): Promise<Tensor> => ({ dtype: 'F32', shape: [N, K], data: await readF32() }),
  };
}
