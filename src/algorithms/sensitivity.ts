// Per-tensor sensitivity for the bit allocator: the error each candidate ggml type would cause,
// measured as ‖(W − Ŵ)‖²_H = Σ_r δ_rᵀ·H·δ_r with the layer's Hessian/Gram matrix (an output-error
// proxy), or with its diagonal (the imatrix, E[x_j²]) when only that is known. Ŵ is the ggml
// codec's round trip unless a `quantize` callback supplies it (e.g. GPTQ onto the type).
// Legend: N = rows, K = columns; w is row-major [N, K].

import { GGML_TYPES, ggmlBitsPerWeight, type GgmlType } from '../core/dtype.js';
import { dequantizeGgml, ggmlSupports, quantizeGgml } from '../quant/ggml/index.js';
import type { TensorSensitivity } from './mixed.js';
import { diagWeightedError, weightedError } from './stats.js';

export interface SensitivityInputs {
  /** [K, K] Gram or Hessian of the tensor's input */
  hessian?: Float64Array;
  /** [K] E[x_j²]; also passed to the ggml quantizer */
  imatrix?: Float32Array;
  /** Ŵ for a candidate; `rtn` is the codec's round trip, computed only if called */
  quantize?: (type: GgmlType, rtn: () => Float32Array) => Float32Array;
}

/** Candidates: every type in `types` that the ggml codecs can quantize and whose block size divides K. */
export function measureSensitivity(name: string, w: Float32Array, n: number, k: number, types: readonly GgmlType[], inp: SensitivityInputs = {}): TensorSensitivity {
  const candidates = [];
  for (const type of types) {
    if (k % GGML_TYPES[type].blockSize !== 0 || !ggmlSupports(type).quantize) continue;
    const rtn = () => dequantizeGgml(type, quantizeGgml(type, w, n, k, inp.imatrix), n * k);
    const wq = inp.quantize ? inp.quantize(type, rtn) : rtn();
    const error = inp.hessian ? weightedError(w, wq, inp.hessian, n, k) : diagWeightedError(w, wq, inp.imatrix ?? null, n, k);
    candidates.push({ type, bits: ggmlBitsPerWeight(type) * n * k, error });
  }
  return { name, numel: n * k, candidates };
}
