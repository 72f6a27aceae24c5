// llama.cpp's own quantizer (`llama_model_quantize` in the libllama that node-llama-cpp ships,
// release v0.5.0) called through koffi: the byte and speed reference for bitscale's GGUF output.
// Dev-only (koffi and node-llama-cpp are dev dependencies); used by tests and benchmarks.
//
// The parameter struct is declared here from that release's include/llama.h (the source ships
// inside node-llama-cpp as llama/gitRelease.bundle). Its order, as of v0.5.0:
//   int32 nthread, int32 ftype, int32 output_tensor_type, int32 token_embedding_type,
//   bool allow_requantize, quantize_output_tensor, only_copy, pure, keep_split, dry_run,
//   const imatrix_data* imatrix, const kv_override* kv_overrides,
//   const tensor_override* tt_overrides, const int32* prune_layers, size_t max_buf_size
// Arrays are terminated by an entry whose name/pattern is NULL (prune_layers by -1).

import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { GGML_TYPES, type GgmlType } from '../../src/core/dtype.js';

/** llama.h LLAMA_FTYPE_MOSTLY_* (the `general.file_type` values). */
export const LLAMA_FTYPES = {
  F32: 0, F16: 1, Q4_0: 2, Q4_1: 3, Q8_0: 7, Q5_0: 8, Q5_1: 9, Q2_K: 10, Q3_K_S: 11, Q3_K_M: 12, Q3_K_L: 13,
  Q4_K_S: 14, Q4_K_M: 15, Q5_K_S: 16, Q5_K_M: 17, Q6_K: 18, IQ2_XXS: 19, IQ2_XS: 20, Q2_K_S: 21, IQ3_XS: 22,
  IQ3_XXS: 23, IQ1_S: 24, IQ4_NL: 25, IQ3_S: 26, IQ3_M: 27, IQ2_S: 28, IQ2_M: 29, IQ4_XS: 30, IQ1_M: 31,
  BF16: 32, TQ1_0: 36, TQ2_0: 37, MXFP4_MOE: 38, Q1_0: 40, Q2_0: 41,
} as const;
export type LlamaFtypeName = keyof typeof LLAMA_FTYPES;

export interface LlamaCppQuantizeOptions {
  /** named file type (Q4_K_M, …) or its number */
  ftype: LlamaFtypeName | number;
  /** worker threads (llama.cpp's default, ≤ 0, is every core) */
  nthread?: number;
  pure?: boolean;
  allowRequantize?: boolean;
  /** false = --leave-output-tensor */
  quantizeOutputTensor?: boolean;
  outputTensorType?: GgmlType;
  tokenEmbeddingType?: GgmlType;
  /** importance matrix per tensor name (GGUF names): the diagonal of XᵀX over K */
  imatrix?: ReadonlyMap<string, Float32Array>;
  /** --tensor-type PATTERN=TYPE, in order */
  tensorTypes?: readonly { pattern: string; type: GgmlType }[];
  /** metadata to set in the output (llama-quantize's --override-kv, and what its CLI adds for --imatrix) */
  kvOverrides?: readonly ({ key: string; int: number } | { key: string; str: string })[];
  /** silence llama.cpp's log (default true) */
  quiet?: boolean;
}

type Koffi = any;
interface Lib {
  koffi: Koffi;
  /** the loaded libllama (for further functions) */
  so: Koffi;
  quantize: { async: (...a: unknown[]) => void };
  defaults: () => Record<string, unknown>;
}

let lib: Lib | null = null;
// llama.cpp's log of the current call: printed when not quiet, quoted in the error on failure
let log: string[] = [];
let echo = false;

/** Directory of libllama.v0.5.0.so inside node-llama-cpp's linux-x64 prebuilt package. */
export function libllamaPath(): string {
  const require = createRequire(import.meta.url);
  // the package exports only its entry (dist/index.js); the binaries sit beside dist/
  const entry = require.resolve('@node-llama-cpp/linux-x64');
  return join(dirname(dirname(entry)), 'bins', 'linux-x64', 'libllama.v0.5.0.so');
}

/** Loads libllama once (backend initialised, log captured) and declares the shared structs. */
export function loadLibllama(): Lib {
  if (lib) return lib;
  const require = createRequire(import.meta.url);
  const koffi: Koffi = require('koffi');
  const so = koffi.load(libllamaPath());
  koffi.struct('bs_imatrix_data', { name: 'const char *', data: 'const float *', size: 'size_t' });
  koffi.struct('bs_tensor_override', { pattern: 'const char *', type: 'int32_t' });
  // llama_model_kv_override: enum tag, char key[128], then a union (8-aligned) of i64/f64/bool/char[128]
  koffi.struct('bs_kv_override', { tag: 'int32_t', key: koffi.array('char', 128, 'Array'), _align: 'uint32_t', value: koffi.array('uint8_t', 128, 'Array') });
  koffi.struct('bs_quantize_params', {
    nthread: 'int32_t', ftype: 'int32_t', output_tensor_type: 'int32_t', token_embedding_type: 'int32_t',
    allow_requantize: 'bool', quantize_output_tensor: 'bool', only_copy: 'bool', pure: 'bool', keep_split: 'bool', dry_run: 'bool',
    imatrix: 'void *', kv_overrides: 'void *', tt_overrides: 'void *', prune_layers: 'void *', max_buf_size: 'size_t',
    // tail pad: a later field added to the struct would otherwise be written past our allocation
    _pad: koffi.array('uint8_t', 256),
  });
  const init = so.func('void llama_backend_init(void)');
  const proto = koffi.proto('void bs_log_cb(int level, const char *text, void *user)');
  const cb = koffi.register((_level: number, text: string) => {
    log.push(text);
    if (log.length > 400) log = log.slice(-200);
    if (echo) process.stderr.write(text);
  }, koffi.pointer(proto));
  so.func('void llama_log_set(bs_log_cb *cb, void *user)')(cb, null);
  init();
  lib = {
    koffi,
    so,
    quantize: so.func('uint32_t llama_model_quantize(const char *fname_inp, const char *fname_out, const bs_quantize_params *params)'),
    defaults: so.func('bs_quantize_params llama_model_quantize_default_params(void)'),
  };
  return lib;
}

/**
 * Quantizes the GGUF at `inPath` into `outPath` exactly as `llama-quantize` would (runs on a
 * koffi worker thread, so the event loop stays free). Rejects with the return code on failure.
 */
/**
 * A `llama_model_quantize_params` for these options (llama.cpp's defaults otherwise). Buffers that
 * must outlive the call are pushed to `keep`; `freeParams(keep)` releases them.
 */
export function quantizeParams(opts: LlamaCppQuantizeOptions, keep: unknown[]): Record<string, unknown> {
  const l = loadLibllama();
  const { koffi } = l;
  const p = l.defaults();
  p.ftype = typeof opts.ftype === 'number' ? opts.ftype : LLAMA_FTYPES[opts.ftype];
  if (opts.nthread !== undefined) p.nthread = opts.nthread;
  if (opts.pure !== undefined) p.pure = opts.pure;
  if (opts.allowRequantize !== undefined) p.allow_requantize = opts.allowRequantize;
  if (opts.quantizeOutputTensor !== undefined) p.quantize_output_tensor = opts.quantizeOutputTensor;
  if (opts.outputTensorType) p.output_tensor_type = GGML_TYPES[opts.outputTensorType].id;
  if (opts.tokenEmbeddingType) p.token_embedding_type = GGML_TYPES[opts.tokenEmbeddingType].id;
  if (opts.imatrix?.size) {
    const rows = [...opts.imatrix].map(([name, data]) => {
      const d = Float32Array.from(data);
      keep.push(d);
      return { name, data: d, size: d.length };
    });
    rows.push({ name: null as never, data: null as never, size: 0 });
    const arr = koffi.alloc('bs_imatrix_data', rows.length);
    koffi.encode(arr, koffi.array('bs_imatrix_data', rows.length), rows);
    keep.push(arr);
    p.imatrix = arr;
  }
  if (opts.kvOverrides?.length) {
    // LLAMA_KV_OVERRIDE_TYPE_INT = 0, _STR = 3; an empty key ends the list
    const enc = new TextEncoder();
    const chars = (t: string, n: number) => {
      const b = new Array<number>(n).fill(0);
      enc.encode(t).slice(0, n - 1).forEach((x, i) => (b[i] = x));
      return b;
    };
    const rows = opts.kvOverrides.map((o) => {
      const v = 'int' in o ? [...new Uint8Array(BigInt64Array.of(BigInt(o.int)).buffer), ...new Array<number>(120).fill(0)] : chars(o.str, 128);
      return { tag: 'int' in o ? 0 : 3, key: chars(o.key, 128).map((x) => (x > 127 ? x - 256 : x)), _align: 0, value: v };
    });
    rows.push({ tag: 0, key: new Array<number>(128).fill(0), _align: 0, value: new Array<number>(128).fill(0) });
    const arr = koffi.alloc('bs_kv_override', rows.length);
    koffi.encode(arr, koffi.array('bs_kv_override', rows.length), rows);
    keep.push(arr);
    p.kv_overrides = arr;
  }
  if (opts.tensorTypes?.length) {
    const rows = [...opts.tensorTypes.map((t) => ({ pattern: t.pattern, type: GGML_TYPES[t.type].id })), { pattern: null, type: 0 }];
    const arr = koffi.alloc('bs_tensor_override', rows.length);
    koffi.encode(arr, koffi.array('bs_tensor_override', rows.length), rows);
    keep.push(arr);
    p.tt_overrides = arr;
  }
  return p;
}

/** Frees the koffi allocations quantizeParams kept. */
export function freeParams(keep: unknown[]): void {
  const { koffi } = loadLibllama();
  for (const k of keep) if (k && typeof k === 'object' && !ArrayBuffer.isView(k)) koffi.free(k);
  keep.length = 0;
}

/**
 * Quantizes the GGUF at `inPath` into `outPath` exactly as `llama-quantize` would (runs on a
 * koffi worker thread, so the event loop stays free). Rejects with the return code on failure.
 */
export async function llamaCppQuantize(inPath: string, outPath: string, opts: LlamaCppQuantizeOptions): Promise<void> {
  const l = loadLibllama();
  log = [];
  echo = !(opts.quiet ?? true);
  const keep: unknown[] = []; // buffers that must outlive the call
  const p = quantizeParams(opts, keep);
  const rc = await new Promise<number>((res, rej) => {
    l.quantize.async(inPath, outPath, p, (err: Error | null, r: number) => (err ? rej(err) : res(r)));
  });
  freeParams(keep);
  if (rc !== 0) throw new Error(`llama_model_quantize(${inPath} → ${outPath}, ftype ${String(opts.ftype)}) returned ${rc}\n${log.slice(-8).join('')}`);
}

/** The last lines llama.cpp logged (for tests that check its error messages). */
export function llamaCppLog(): string {
  return log.join('');
}
