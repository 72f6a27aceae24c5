// The record of one sweep: what was run, what it measured, and how to reproduce it. Written as
// JSON (and CSV) by pipeline/sweep/sweep.ts, read by report/ to draw the size/quality frontier.

/** One quantized variant of the base model. */
export interface SweepPointSpec {
  /** stable id, e.g. 'rtn-int4-g32' */
  id: string;
  method: 'base' | 'rtn' | 'gptq' | 'awq' | 'imatrix' | 'mixed' | 'qat';
  /** scheme string as parseScheme reads it ('int4-g32', 'q4_0', …) or 'f32' for the base */
  scheme: string;
  /** nominal bits per weight (the scheme's element bits: 1.58 for ternary) */
  bits: number;
  /** output container ('fakequant': float safetensors holding the dequantized weights, for shapes no packed format takes) */
  format: 'gguf' | 'safetensors' | 'fakequant' | 'onnx' | 'compressed-tensors' | 'none';
  /** target bits-per-weight for mixed-precision points */
  targetBpw?: number;
}

export interface SweepPointResult extends SweepPointSpec {
  /** bytes of the written file on disk (0 when no file was written) */
  fileBytes: number;
  /** exact bits per weight of the quantized tensors (scales and headers included) */
  bpw: number;
  /** mean NLL (nats/token) and perplexity on the evaluation text */
  nll: number;
  ppl: number;
  /** 95% confidence interval of the perplexity */
  pplLo: number;
  pplHi: number;
  /** mean KL(base ‖ variant) per token, nats, and top-1 agreement with the base model in [0, 1] */
  kld: number;
  top1: number;
  /** 95% interval of the mean KL divergence (absent in records written before it was measured) */
  kldLo?: number;
  kldHi?: number;
  /**
   * 95% interval of NLL(variant) − NLL(base) from per-token differences on the same tokens (a paired
   * interval, much narrower than the two perplexity intervals): containing 0 means the variant is
   * within noise of the base model
   */
  dnllLo?: number;
  dnllHi?: number;
  /**
   * evaluation throughput, tokens/s, of bitscale's engine on the dequantized weights: the same float
   * graph for every point, so it says nothing about the file's speed in its runtime (the report
   * does not show it per point)
   */
  tokensPerS: number;
  /** wall time to produce the variant, seconds */
  quantizeS: number;
  /**
   * on the size/quality Pareto frontier over (bpw, mean NLL), counting points whose 95% intervals
   * overlap as equal (scaling/pareto-ci.ts)
   */
  onFrontier: boolean;
  /** the same over (bpw, KL divergence to the base model) */
  onFrontierKld?: boolean;
  /** the exact command that reproduces this point (the quantized file; for the base, its evaluation) */
  command: string;
  /** the command that measures this point's numbers again from its file (eval with the same text, window and token limit) */
  evalCommand?: string;
  /** the written file or folder (absent for the base model) */
  out?: string;
  /** scaling-law prediction of the NLL where one applies */
  predictedNll?: number;
}

/** Per-tensor sensitivity: the NLL increase when only this tensor is quantized at low bits. */
export interface SensitivityRow {
  tensor: string;
  scheme: string;
  deltaNll: number;
  /** relative weight error ‖W − Ŵ‖² / ‖W‖² */
  relErr: number;
}

export interface SweepRecord {
  tool: { name: 'bitscale'; version: string };
  createdAt: string;
  model: { path: string; sha256: string; parameters: number; description: string; /** bytes of the input model's files */ bytes?: number };
  text: { path: string; sha256: string; tokens: number; protocol: string; /** window length and text-token limit of the evaluation */ ctx?: number; maxTokens?: number };
  seed: number;
  /** the onnxruntime of calibration's float results (--calib-runtime; absent in older records: 'native') */
  calibRuntime?: 'native' | 'portable';
  points: SweepPointResult[];
  sensitivity: SensitivityRow[];
  /** fitted or published scaling-law panel data, when available */
  law?: { description: string; fitted: Record<string, number>; maeNll: number | null; caveats: string[] };
  /** the recipe the sweep was run from: path, sha256 and its sweep section */
  recipe?: unknown;
  /** size budgets of the "what to ship" answer, as given (`4.5` or `4.5bpw`, `800MB`, `1.5GB`) */
  budgets?: string[];
  /** the "what to ship" answer per target runtime and budget (report/decision.ts) */
  recommendations?: ShipChoice[];
  /** total wall time of the sweep, seconds */
  elapsedS: number;
}

/** One "what to ship" answer: the recommended point for a target runtime within a size budget. */
export interface ShipChoice {
  /** 'gguf' (llama.cpp / ollama), 'onnx' (onnxruntime / transformers.js), 'safetensors' (transformers / vLLM) */
  runtime: 'gguf' | 'onnx' | 'safetensors';
  /** the budget as given ('4.5bpw', '800MB'), 'none' (the best measured), or 'float-ppl' (the smallest point whose perplexity is within noise of the float model's) */
  budget: string;
  /** the recommended point, or null when no point of this runtime fits */
  pointId: string | null;
  /** the quality measure the choice was made on ('kld' when every candidate has a KL interval, else 'nll') */
  metric: 'kld' | 'nll';
  /** other points within the budget indistinguishable from the choice (overlapping 95% intervals) */
  equivalent: string[];
  /** why nothing was chosen, or a caveat */
  note?: string;
}
