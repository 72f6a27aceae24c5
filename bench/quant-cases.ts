// Cases for bench/quant-throughput.bench.ts: each is a scheme string (parseScheme) and a weight shape.
// Append cases here (e.g. the ggml types): the harness times each one single-threaded and across
// worker threads, against a plain memory copy of the same data in the same run.

export interface QuantCase {
  /** label printed in the table */
  name: string;
  /** any string parseScheme accepts: 'int4-g128', 'q4_k', 'nvfp4', … */
  scheme: string;
  /** [rows, cols]; default [2048, 4096] (32 MiB of f32) */
  shape?: [number, number];
  /** importance ([cols]) is passed when true (types that need an imatrix) */
  needsImportance?: boolean;
}

export const QUANT_CASES: QuantCase[] = [
  { name: 'int4-g128 (RTN, sym, f16 scales)', scheme: 'int4-g128' },
  { name: 'int4-g128-asym', scheme: 'int4-g128-asym' },
  // ggml block types through src/quant/ggml (bit-exact with ggml's reference quantizers). The
  // K-quants run a scale search per 16/32 values, so they get a smaller tensor.
  { name: 'ggml Q8_0', scheme: 'q8_0' },
  { name: 'ggml Q4_0', scheme: 'q4_0' },
  { name: 'ggml Q4_K', scheme: 'q4_k', shape: [256, 4096] },
  { name: 'ggml Q6_K', scheme: 'q6_k', shape: [256, 4096] },
];
