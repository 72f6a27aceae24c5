// The record of one sweep: what was run, what it measured, and how to reproduce it. Written as
// JSON (and CSV) by pipeline/sweep.ts, read by report/ to draw the size/quality frontier.

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
  format: 'gguf' | 'safetensors' | 'fakequant' | 'onnx' | 'none';
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
  /** evaluation throughput, tokens/s */
  tokensPerS: number;
  /** wall time to produce the variant, seconds */
  quantizeS: number;
  /** on the size/quality Pareto frontier (size = fileBytes or bpw, quality = nll) */
  onFrontier: boolean;
  /** the exact command that reproduces this point */
  command: string;
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
  model: { path: string; sha256: string; parameters: number; description: string };
  text: { path: string; sha256: string; tokens: number; protocol: string };
  seed: number;
  points: SweepPointResult[];
  sensitivity: SensitivityRow[];
  /** fitted or published scaling-law panel data, when available */
  law?: { description: string; fitted: Record<string, number>; maeNll: number | null; caveats: string[] };
  /** total wall time of the sweep, seconds */
  elapsedS: number;
}
