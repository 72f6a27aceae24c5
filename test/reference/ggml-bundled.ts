// The ggml inside the libllama that node-llama-cpp ships (llama.cpp release v0.5.0), called
// through koffi: ggml_quantize_chunk, the quantizer llama_model_quantize uses. The golden vectors in
// ../shared were made with an older ggml (d99724f2); where the two differ, this is the version
// bitscale's GGUF output is checked against. Dev-only. Legend: R = rows, K = values per row.

import { dirname, join } from 'node:path';
import { GGML_TYPES, type GgmlType } from '../../src/core/dtype.js';
import { libllamaPath, loadLibllama } from './llamacpp-quantize.js';

type Fn = (type: number, src: Float32Array, dst: Uint8Array, start: number, nrows: number, nPerRow: number, imatrix: Float32Array | null) => number;
let quantizeChunk: Fn | null = null;

/** ggml_quantize_chunk of the bundled libggml on [R, K] values (throws if the library cannot load). */
export function bundledQuantize(type: GgmlType, x: Float32Array, rows: number, perRow: number, imatrix?: Float32Array): Uint8Array {
  if (!quantizeChunk) {
    const { koffi } = loadLibllama();
    const ggml = koffi.load(join(dirname(libllamaPath()), 'libggml-base.so'));
    quantizeChunk = ggml.func('size_t ggml_quantize_chunk(int type, const float *src, _Out_ uint8_t *dst, int64_t start, int64_t nrows, int64_t n_per_row, const float *imatrix)') as Fn;
  }
  const t = GGML_TYPES[type];
  const dst = new Uint8Array((rows * perRow / t.blockSize) * t.typeSize);
  const n = quantizeChunk(t.id, x, dst, 0, rows, perRow, imatrix ?? null);
  if (n !== dst.length) throw new Error(`ggml_quantize_chunk(${type}) wrote ${n} bytes, expected ${dst.length}`);
  return dst;
}
