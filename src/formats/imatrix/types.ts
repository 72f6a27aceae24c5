// An importance matrix (llama.cpp `llama-imatrix` output) in memory: per weight tensor, the sums
// of squared input activations per column and the number of tokens that produced them, the way
// llama.cpp's loader holds both file formats. Importance = sums / counts = E[x_j²].
// Legend: K = values per matrix row (input features), M = matrices in the tensor (experts; 1 for
// dense weights). `sums` is [M, K] row-major, `counts` is [M].

import { ShapeError } from '../../core/errors.js';

export interface ImatrixEntry {
  /** [M·K] Σ x_j² per matrix */
  sums: Float32Array;
  /** [M] tokens accumulated per matrix */
  counts: number[];
}

export interface Imatrix {
  /** GGUF tensor name of the weight (e.g. blk.0.attn_q.weight) → statistics */
  entries: Map<string, ImatrixEntry>;
  /** chunks of calibration text processed */
  chunkCount: number;
  /** tokens per chunk (0 when unknown, as for legacy files) */
  chunkSize: number;
  /** calibration file names */
  datasets: string[];
}

/** E[x_j²] per column ([M·K]); a matrix with count 0 gets zeros. */
export function importance(e: ImatrixEntry): Float32Array {
  const m = e.counts.length;
  if (m === 0 || e.sums.length % m !== 0) {
    throw new ShapeError('shape_mismatch', 'imatrix sums are not a whole number of rows per count', { expected: `a multiple of ${m}`, found: e.sums.length });
  }
  const k = e.sums.length / m;
  const out = new Float32Array(e.sums.length);
  for (let i = 0; i < m; i++) {
    const c = e.counts[i];
    for (let j = 0; j < k; j++) out[i * k + j] = c > 0 ? e.sums[i * k + j] / c : 0;
  }
  return out;
}
