// Rows that stress the ggml quantizers' edge cases, shared by the WebAssembly-vs-TypeScript and
// the llama.cpp comparisons: all zero, all equal (±), subnormal and near-subnormal blocks (whose
// scale inverse overflows), huge values and ±FLT_MAX, a one-hot row, one outlier per block,
// alternating signs, exact rounding ties, plus ordinary Gaussian rows.
import { Rng } from '../../src/core/rng.js';

export const ROW_KINDS = [
  'zero', 'equal', 'negEqual', 'subnormal', 'nearSubnormal', 'large', 'huge', 'oneHot', 'alternating',
  'gauss', 'outlier', 'fltMax', 'minSubnormal', 'tiny', 'ties',
] as const;
export type RowKind = (typeof ROW_KINDS)[number];

/**
 * Kinds whose fp16 block scales overflow to Inf: llama.cpp refuses to write them ("quantized data
 * validation failed"), so comparisons with it leave them out.
 */
export const SCALE_OVERFLOW_KINDS: readonly RowKind[] = ['huge', 'fltMax'];

/** R rows of K values; row r has kind kinds[(r + shift) % kinds.length]. */
export function adversarialRows(R: number, K: number, seed: number, shift = 0, kinds: readonly RowKind[] = ROW_KINDS): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(R * K);
  for (let r = 0; r < R; r++) {
    const kind = kinds[(r + shift) % kinds.length];
    for (let j = 0; j < K; j++) {
      const g = rng.normal();
      let v: number;
      switch (kind) {
        case 'zero': v = 0; break;
        case 'equal': v = 0.125; break;
        case 'negEqual': v = -2; break;
        case 'subnormal': v = g * 1e-40; break;
        case 'nearSubnormal': v = g * 1e-38; break;
        case 'large': v = (rng.next() - 0.5) * 1e5; break; // |v| ≤ 5e4: fp16 mins still finite
        case 'huge': v = g * 3e37; break;
        case 'oneHot': v = j === 77 % K ? 1 : 0; break;
        case 'alternating': v = j % 2 ? 0.5 : -0.5; break;
        case 'gauss': v = g * 0.02; break;
        case 'outlier': v = j % 32 === 5 ? 1000 : g * 0.01; break;
        case 'fltMax': v = j % 16 === 0 ? (j % 32 === 0 ? 3.4028234e38 : -3.4028234e38) : g; break;
        case 'minSubnormal': v = j % 3 === 0 ? -1e-45 : 1e-45; break;
        case 'tiny': v = g * 1e-7; break;
        case 'ties': v = (rng.int(33) - 16) / 8; break;
      }
      x[r * K + j] = v;
    }
  }
  return x;
}

/** Importance weights for K columns, some of them zero (llama.cpp imatrix columns never seen). */
export function adversarialImatrix(K: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  return Float32Array.from({ length: K }, (_, i) => (i % 7 === 0 ? 0 : rng.next() * 3));
}
