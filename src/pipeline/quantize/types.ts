// The options and the report of `bitscale quantize` (quantize.ts), shared by its steps: plan,
// layers, writers, verification and manifest, and the two streaming GGUF paths.

import { BITSCALE_VERSION } from '../../core/version.js';
import type { LlamaFtype } from '../../core/ftype.js';
import type { ProgressFn } from '../../core/progress.js';
import type { HostModel } from '../../engine/host.js';
import type { AwqRecord } from './layer.js';
import type { GgufRecipeOptions } from './plan.js';
import type { MixedPlanResult, MixedSensitivity } from './mixed.js';
import type { LlamaCppCheck } from './verify-llamacpp.js';
import type { CheckVerdict } from './tolerance.js';
import type { RowsPool } from '../../quant/ggml/wasm/worker-queue.js';
import type { OrtRuntime } from '../../engine/session.js';

/** bitscale's version, recorded in manifests (kept equal to package.json by a test). */
export const TOOL_VERSION = BITSCALE_VERSION;

export type QuantizeFormat = 'gguf' | 'safetensors' | 'fakequant' | 'onnx' | 'compressed-tensors';
export type QuantizeMethod = 'rtn' | 'gptq' | 'awq';

export interface QuantizeOptions extends GgufRecipeOptions {
  model: string;
  out: string;
  format: QuantizeFormat;
  /** parseScheme grammar: a llama.cpp file type (q4_k_m, iq2_m, q8_0, …), int4-g128, int4-g128-asym, nf4-g64, … */
  scheme: string;
  method: QuantizeMethod;
  /** calibration text file (default: the built-in text) */
  calib?: string;
  /** calibration windows as token ids (all of one length), instead of text; they set the windows and their length */
  calibTokens?: number[][];
  /** llama.cpp imatrix file (legacy .dat or GGUF) for ggml importance-weighted rounding */
  imatrix?: string;
  /** mixed precision: per-tensor ggml types chosen to meet this bits-per-weight over the linears */
  targetBpw?: number | 'recipe';
  /** how --target-bpw compares tensors: Hessian proxy calibrated by a measured KL (default) or the proxy alone */
  mixedSensitivity?: MixedSensitivity;
  seed?: number;
  windows?: number;
  seqLen?: number;
  actOrder?: boolean;
  percdamp?: number;
  /** tokenizer file for llama2.c checkpoints; null loads none (streaming RTN needs none) */
  tokenizer?: string | null;
  /** reload the output and compare logits (default true) */
  verify?: boolean;
  /**
   * where the checks measure a GGUF output: 'memory' (verify.ts: the float and quantized models in
   * float32, plus a reload check of the file), 'file' (verify-stored.ts: streamed quantization, then
   * the float model and the written file on engines over their stored weights, one at a time).
   * Default: 'file' for models over 1 GiB in float32, else 'memory'.
   */
  verifyOn?: 'memory' | 'file';
  /** with verify and GGUF output: also compare with llama.cpp through node-llama-cpp (default true) */
  checkLlamaCpp?: boolean;
  /** |Δ logit| tolerances to enforce instead of the derived ones (pipeline/quantize/tolerance.ts) */
  tolerance?: { reload?: number; llamaCpp?: number };
  overwrite?: boolean;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
  /** return the quantized model (dequantized float tensors) in the report, for sweeps that evaluate it in memory */
  keepHost?: boolean;
  /** internal: the final path named in messages while `out` is a staging path */
  displayOut?: string;
  /** worker threads for the streaming RTN path (default: the machine's available parallelism) */
  threads?: number;
  /**
   * The streaming RTN path on the caller's pool instead of new worker threads (the page's Web
   * Workers), with `lookahead` bytes of tensors in flight (default 256 MiB; the page keeps it to a
   * tensor or two); the input is then hashed on this thread.
   */
  rtnStream?: { pool: RowsPool; lookahead?: number };
  /** ONNX folder output: one variant per float storage ('f32' → q4, 'f16' → q4f16 for int4 codes; default ['f32']) */
  onnxFloat?: ('f32' | 'f16')[];
  /**
   * the onnxruntime of every float result calibration feeds on (the calibration forward and its
   * statistics, GPTQ's GEMMs, --target-bpw's KL passes, --calib self's sampling): 'native'
   * (default; onnxruntime-node, fastest) or 'portable' (onnxruntime-web's WebAssembly kernels, as the
   * page runs them: the same output bytes on every machine and in the page). engine/ort-portable.ts
   */
  calibRuntime?: OrtRuntime;
  /** the recipe this run came from (recorded in the manifest) */
  recipe?: unknown;
}

/** quantizeModel's argument: `format` may be left out (then as the CLI: from --out and the scheme, see pipeline/quantize/output-format.ts). */
export type QuantizeRequest = Omit<QuantizeOptions, 'format'> & { format?: QuantizeFormat };

export interface QuantizeReport {
  out: string;
  manifest: string;
  format: QuantizeFormat;
  scheme: string;
  method: QuantizeMethod;
  /** the GGUF file type written (general.file_type), null for other schemes */
  fileType: LlamaFtype | null;
  tensors: { name: string; type: string; method: string; sqnrDb: number | null; note?: string }[];
  fallbacks: string[];
  awq: AwqRecord[];
  plan: MixedPlanResult | null;
  quality: {
    windows: number;
    kld: number;
    top1Agreement: number;
    /** the float model's largest |logit| on the windows, and the largest change quantization made */
    logitScale?: number;
    maxAbsLogitDiff?: number;
    reloadMaxAbsLogitDiff: number | null;
    llamaCpp: LlamaCppCheck | null;
    /** each verification with its tolerance; a failed one fails the command (nothing is written) */
    checks?: { reload: CheckVerdict | null; llamaCpp: CheckVerdict | null };
    /** 'file': measured on the written file (verify-stored.ts), so there was no separate reload check */
    verifiedOn?: 'memory' | 'file';
  };
  seconds: number;
  /** files written (the model file or the files of the output folder) */
  files: string[];
  /** the quantized model as the engine runs it (only with keepHost) */
  host?: HostModel;
}
