// A packed int linear as the Hugging Face checkpoint formats store it (GPTQ: formats/gptq/,
// compressed-tensors: formats/compressed-tensors/), unpacked one code per element. Both readers
// return this; the model layer wraps it as a lazy tensor, the engine runs the codes as stored.
//   W[n, k] = fround(scales[n·nG + g] · (codes[n·K + k] − zeros[n·nG + g])),  g = gIdx ? gIdx[k] : ⌊k / groupSize⌋
// Legend: N = rows (output features), K = input features, nG = groups per row.

import type { Tensor } from '../core/tensor.js';
import { decodeBf16Array, decodeF16Array } from '../numerics/float16.js';

export interface PackedIntCodes {
  bits: number;
  /** columns per group (K: one group per row) */
  groupSize: number;
  /** [N·K] unsigned codes */
  codes: Uint8Array;
  /** [N·nG] unsigned zero points (2^(bits−1) for symmetric checkpoints) */
  zeros: Uint8Array;
  /** [N·nG] */
  scales: Float32Array;
  /** [K] group of each column (act-order checkpoints), or null */
  gIdx: Int32Array | null;
}

/** One packed linear of a checkpoint, checked (names, dtypes, shapes) and not yet read. */
export interface PackedLinear {
  /** what the file stores, e.g. `GPTQ int4-g128` */
  packing: string;
  /** stored bytes of all its parts */
  byteLength: number;
  readCodes(): Promise<PackedIntCodes>;
}

/** The weight [N·K] the stored codes define (the readers' formula above). */
export function dequantizePackedInt(c: PackedIntCodes, N: number, K: number): Float32Array {
  const nG = c.scales.length / N;
  const w = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const g = n * nG + (c.gIdx ? c.gIdx[k] : Math.floor(k / c.groupSize));
      w[n * K + k] = c.scales[g] * (c.codes[n * K + k] - c.zeros[g]);
    }
  }
  return w;
}

/** A stored F32/F16/BF16 scale tensor as float32 (the dtypes both formats allow for scales). */
export function scalesToF32(t: Tensor): Float32Array {
  if (t.dtype === 'F16') return decodeF16Array(t.data as Uint16Array);
  if (t.dtype === 'BF16') return decodeBf16Array(t.data as Uint16Array);
  return Float32Array.from(t.data as Float32Array);
}
