// The tolerances quantize's verification states and enforces. A check beyond its tolerance fails
// the command: non-zero exit, nothing at the final path. Each is |Δ logit| over the held-out
// windows, in units of the float model's largest |logit| (the scale), from the arithmetic that
// legitimately separates the two sides:
// - reload (our reader + engine on the written file vs the in-memory quantized model): the same
//   weights (the run rounds the float tensors a file keeps in F16 before it measures, so the model in
//   memory is the model in the file), so only float32 summation order (FLOAT_SLACK).
// - llama.cpp (node-llama-cpp on the written GGUF vs our engine on the same file): llama.cpp rounds
//   the activations of quantized matmuls to Q8 (Q8_0 / Q8_K: half a step is 1/254 of the block's
//   largest value), the same 2·(L+1) growth, plus FLOAT_SLACK.
// Measured (docs/reliability.md): reload 0 – 3.4e-5 (every format), i.e. at most 0.2 % of this bound's 1e-4;
// llama.cpp 0.09 – 0.41 at scales 16 – 22, i.e. 0.6 – 1.9 % of the scale, within 2.5× of these bounds.
// Legend: L = decoder layers.

/** float32 summation-order slack, relative to the logit scale (as ONNX_EXPORT_LOGIT_TOLERANCE) */
export const FLOAT_SLACK = 1e-4;
/** half a Q8 step of llama.cpp's activation blocks, relative to the block's largest |value| */
export const Q8_ACT_HALF_STEP = 1 / 254;

/** Largest |Δ logit| allowed between the reloaded file and the in-memory quantized model. */
export function reloadTolerance(scale: number): number {
  return Math.max(1, scale) * FLOAT_SLACK;
}

/** Largest |Δ logit| allowed between llama.cpp and our engine on the same GGUF. */
export function llamaCppTolerance(nLayers: number, scale: number): number {
  return Math.max(1, scale) * (FLOAT_SLACK + Q8_ACT_HALF_STEP * 2 * (nLayers + 1));
}

export interface CheckVerdict {
  maxAbsLogitDiff: number;
  tolerance: number;
  pass: boolean;
}

export function verdict(maxAbsLogitDiff: number, tolerance: number): CheckVerdict {
  // NaN fails: `NaN <= x` is false
  return { maxAbsLogitDiff, tolerance, pass: maxAbsLogitDiff <= tolerance };
}

/** A check's verdict as printed (progress lines, the summary table): the value, the stated tolerance, pass or FAIL. */
export function verdictText(v: CheckVerdict): string {
  return `max |Δ logit| ${v.maxAbsLogitDiff.toExponential(2)} ${v.pass ? '<=' : '>'} tolerance ${v.tolerance.toExponential(2)}: ${v.pass ? 'pass' : 'FAIL'}`;
}
