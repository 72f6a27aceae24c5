// Round-to-nearest for every scheme, through the quant layer's own codecs (so RTN, QAT
// fake-quant and export agree bit for bit). ggml types go through quantizeGgml, which also takes
// llama.cpp's importance matrix: "importance-weighted rounding" is RTN with an imatrix.
// Legend: N = rows (output features), K = columns (input features); w is row-major [N, K].

import { ConfigError } from '../core/errors.js';
import { GGML_TYPES } from '../core/dtype.js';
import { dequantize, quantize, type QuantScheme, type QuantizedTensor } from '../quant/index.js';
import { dequantizeGgml, quantizeGgml } from '../quant/ggml/index.js';

export interface RtnResult {
  /** Ŵ as the runtime will see it, [N, K] */
  weights: Float32Array;
  /** ggml schemes: the block bytes */
  ggmlBytes?: Uint8Array;
  /** other schemes: the quantized tensor (codes, scales, zero points) */
  quantized?: QuantizedTensor;
}

export function rtn(w: Float32Array, shape: [number, number], scheme: QuantScheme, imatrix?: Float32Array): RtnResult {
  const [n, k] = shape;
  if (scheme.kind === 'ggml') {
    const bs = GGML_TYPES[scheme.type].blockSize;
    if (k % bs !== 0) {
      throw new ConfigError('bad_option', `${scheme.type} needs rows that are a multiple of ${bs}`, { field: 'K', expected: `a multiple of ${bs}`, found: k });
    }
    const bytes = quantizeGgml(scheme.type, w, n, k, imatrix);
    return { weights: dequantizeGgml(scheme.type, bytes, n * k), ggmlBytes: bytes };
  }
  const q = quantize(w, shape, scheme);
  return { weights: dequantize(q), quantized: q };
}
