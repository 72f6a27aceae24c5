// The verify step for a GGUF written by a streaming path (rtn-stream.ts, block-stream.ts), for models
// too large for verify.ts. That one holds the float weights, the quantized copy and engines over
// both in float32, and reloads the file into a third: about five float32 copies of the weights, so
// `quantize` with its default checks on Llama-3.2-1B's shape (4.9 GB in float32) reached 24 GB and
// was killed by the kernel after five minutes. Here the engines run the weights as stored
// (engine/native-host.ts), one after the other, each closed before the next opens: the float
// model's logits on the held-out windows, then the written file's, then llama.cpp's on that file.
// The KL divergence is measured on the file itself, so no reload check is needed (verify.ts's
// compares the file with the engine's quantized copy, which a streaming run never holds).
// Legend: W = held-out windows, T = tokens per window, V = vocabulary.

import { NumericError } from '../../core/errors.js';
import { ProgressTracker } from '../../core/progress.js';
import { LogitTally } from '../../eval/divergence.js';
import { loadModel } from '../../model/load.js';
import type { ModelWeights } from '../../model/weights.js';
import { isSelfCalibration } from '../calibrate/windows.js';
import { llamaCppTolerance, verdict, verdictText } from './tolerance.js';
import type { QuantizeOptions, QuantizeReport } from './types.js';
import { compareWithLlamaCpp } from './verify-llamacpp.js';

/** Float32 bytes of the weights above which a GGUF run verifies on the written file (1 GiB: ≈ 268 M parameters). */
export const STORED_VERIFY_BYTES = 2 ** 30;

/** Bytes of every tensor of `weights` in float32 (what verify.ts holds about five times over). */
export function float32Bytes(weights: ModelWeights): number {
  let n = 0;
  for (const t of weights.tensors.values()) n += t.shape.reduce((a, b) => a * b, 1) * 4;
  return n;
}

/**
 * Whether the run quantizes by a streaming path and verifies the written file (this module): GGUF
 * output with the checks on, RTN/GPTQ/AWQ, and either `verifyOn: 'file'` or, by default, a model
 * over STORED_VERIFY_BYTES in float32. Not for --target-bpw (its sensitivities need the float
 * model in memory), self-generated calibration (its held-out windows are sampled from the float
 * model in memory) or keepHost (the caller wants the quantized copy).
 */
export function verifiesStoredFile(o: QuantizeOptions, weights: ModelWeights): boolean {
  if (o.format !== 'gguf' || o.verify === false || o.keepHost || o.targetBpw !== undefined || isSelfCalibration(o.calib)) return false;
  if (o.method !== 'rtn' && o.method !== 'gptq' && o.method !== 'awq') return false;
  if (o.verifyOn === 'memory') return false;
  return o.verifyOn === 'file' || float32Bytes(weights) > STORED_VERIFY_BYTES;
}

/** Logits [T, V] of each window, on an engine over `weights` as stored; the engine is closed before returning. */
async function windowLogits(weights: ModelWeights, windows: number[][], o: QuantizeOptions): Promise<Float32Array[]> {
  // the engine (onnxruntime) is imported here, so that quantize.ts can ask verifiesStoredFile without it
  const { LlamaEngine } = await import('../../engine/model.js');
  const e = await LlamaEngine.create(weights, { native: true, signal: o.signal, onProgress: o.onProgress, ...(o.threads ? { session: { threads: o.threads } } : {}) });
  try {
    const out: Float32Array[] = [];
    for (const w of windows) {
      o.signal?.throwIfAborted();
      out.push(await e.forward(w));
    }
    return out;
  } finally {
    await e.close();
  }
}

/**
 * KL(P_float ‖ P_file) per token, top-1 agreement and the largest logit change on `windows`, between
 * the float model (`weights`) and the GGUF at `written`, then llama.cpp on that file against the
 * file's logits (its stated tolerance). Throws like verify.ts: non-finite outputs, a llama.cpp
 * check beyond its tolerance or one that could not run.
 */
export async function verifyStoredFile(o: QuantizeOptions, weights: ModelWeights, written: string, windows: number[][]): Promise<QuantizeReport['quality']> {
  const c = weights.config;
  const llamaCheck = o.checkLlamaCpp !== false;
  const vt = new ProgressTracker('verify', llamaCheck ? 3 : 2, o.onProgress, 'check');
  vt.emit('the float model on held-out windows (weights as stored)');
  const ref = await windowLogits(weights, windows, o);
  vt.tick('float logits computed');
  const back = await loadModel(written, { tokenizer: o.tokenizer });
  let test: Float32Array[];
  try {
    test = await windowLogits(back, windows, o);
  } finally {
    await back.close();
  }
  const tally = new LogitTally(c.vocabSize);
  for (let i = 0; i < windows.length; i++) tally.add(ref[i], test[i]);
  const { kld, maxAbs, scale } = tally;
  const shown = o.displayOut ?? o.out;
  if (!(Number.isFinite(kld) && Number.isFinite(maxAbs))) {
    throw new NumericError('non_finite', "the written model's outputs are not finite", { file: shown, field: 'KL divergence vs float', found: kld, hint: 'nothing was written at the final path' });
  }
  vt.tick(`KL divergence of the written file ${kld.toExponential(2)} nats/token (measured, no tolerance)`);
  let llamaCpp: QuantizeReport['quality']['llamaCpp'] = null;
  let llamaVerdict = null;
  if (llamaCheck) {
    const byWindow = new Map(windows.map((w, i) => [w, test[i]]));
    llamaCpp = await compareWithLlamaCpp(written, windows, c.vocabSize, async (w) => byWindow.get(w)!);
    const tol = o.tolerance?.llamaCpp ?? llamaCppTolerance(c.nLayers, scale);
    llamaVerdict = llamaCpp.available && llamaCpp.maxAbsLogitDiff !== null ? verdict(llamaCpp.maxAbsLogitDiff, tol) : null;
    vt.tick(llamaCpp.maxAbsLogitDiff === null ? `llama.cpp: ${llamaCpp.available ? 'failed' : 'not installed'}` : `llama.cpp on the file: ${verdictText(llamaVerdict!)}`);
    if (llamaCpp.available && llamaCpp.maxAbsLogitDiff === null) {
      throw new NumericError('mismatch', 'llama.cpp could not run the written file', { file: shown, field: 'llama.cpp check', found: llamaCpp.error ?? 'no logits', hint: 'nothing was written at the final path' });
    }
    if (llamaVerdict && !llamaVerdict.pass) {
      throw new NumericError('mismatch', "llama.cpp's logits on the written file differ from the engine's beyond the tolerance", { file: shown, field: 'llama.cpp check', expected: `max |Δ logit| <= ${llamaVerdict.tolerance.toExponential(2)}`, found: llamaCpp.maxAbsLogitDiff, hint: 'nothing was written at the final path' });
    }
  }
  return {
    windows: windows.length,
    kld,
    top1Agreement: tally.top1,
    logitScale: scale,
    maxAbsLogitDiff: maxAbs,
    reloadMaxAbsLogitDiff: null,
    llamaCpp,
    checks: { reload: null, llamaCpp: llamaVerdict },
    verifiedOn: 'file',
  };
}
