// The verify step of `bitscale quantize`: on held-out windows (another seed than calibration), the
// float model against the quantized one (KL divergence, top-1 agreement, largest logit change), then
// the written file reloaded and run — by our reader and engine (packed formats must dequantize to
// exactly the computed weights first), by onnxruntime for an ONNX graph, and by llama.cpp for GGUF
// (verify-llamacpp.ts) — each against its stated tolerance (tolerance.ts). A check beyond its
// tolerance throws: the run fails and nothing reaches the final path.

import { NumericError } from '../../core/errors.js';
import { ProgressTracker } from '../../core/progress.js';
import { LogitTally } from '../../eval/divergence.js';
import type { HostModel } from '../../engine/host.js';
import { LlamaEngine } from '../../engine/model.js';
import { EngineSession } from '../../engine/session.js';
import type { ModelConfig } from '../../model/config.js';
import { loadModel } from '../../model/load.js';
import { formatScheme } from '../../quant/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import type { LinearResult } from './layer.js';
import { llamaCppTolerance, reloadTolerance, verdict, verdictText, type CheckVerdict } from './tolerance.js';
import type { QuantizeOptions } from './types.js';
import { compareWithLlamaCpp, type LlamaCppCheck } from './verify-llamacpp.js';
import { checkPackedLinears } from './write-packed.js';
import type { WrittenModel } from './write.js';

/**
 * KL(P_ref ‖ P_test) per token (nats) and top-1 agreement over the windows, with the largest logit
 * change the quantization caused and the float model's largest |logit| (the scales the
 * verification tolerances are stated in).
 */
async function compareLogits(ref: LlamaEngine, test: LlamaEngine, windows: number[][]): Promise<{ kld: number; top1: number; maxAbs: number; scale: number }> {
  const tally = new LogitTally(ref.config.vocabSize);
  for (const w of windows) tally.add(await ref.forward(w), await test.forward(w));
  return { kld: tally.kld, top1: tally.top1, maxAbs: tally.maxAbs, scale: tally.scale };
}

export interface Verification {
  evalWins: number[][];
  q: { kld: number; top1: number; maxAbs: number; scale: number };
  reloadDiff: number | null;
  llamaCpp: LlamaCppCheck | null;
  checks: { reload: CheckVerdict | null; llamaCpp: CheckVerdict | null };
}

export async function verifyQuantized(
  o: QuantizeOptions,
  x: { config: ModelConfig; floatHost: HostModel; host: HostModel; results: LinearResult[]; scheme: QuantScheme; written: WrittenModel; heldOut: (n: number, seed: number) => Promise<number[][]>; seed: number },
): Promise<Verification> {
  const { floatHost, host, results, scheme, seed } = x;
  const { onnxFolderDiff, onnxTokensShape } = x.written;
  const c = x.config;
  // measured quality: held-out windows (another seed), float vs quantized engine, and the reload
  const verify = o.verify ?? true;
  const evalWins = verify ? await x.heldOut(2, seed + 7919) : [];
  const refEngine = LlamaEngine.fromHost(floatHost);
  const qEngine = LlamaEngine.fromHost(host);
  // verification can take a while (reload, llama.cpp): one progress line per check, named as it starts
  const llamaCheck = verify && o.format === 'gguf' && o.checkLlamaCpp !== false;
  const vt = new ProgressTracker('verify', verify ? (onnxFolderDiff !== null ? 1 : llamaCheck ? 3 : 2) : 0, o.onProgress, 'check');
  if (verify) vt.emit('KL divergence vs the float model on held-out windows');
  const q = verify ? await compareLogits(refEngine, qEngine, evalWins) : { kld: NaN, top1: NaN, maxAbs: NaN, scale: NaN };
  const shown = o.displayOut ?? o.out;
  if (verify && !(Number.isFinite(q.kld) && Number.isFinite(q.maxAbs))) {
    throw new NumericError('non_finite', "the quantized model's outputs are not finite", { file: shown, field: 'KL divergence vs float', found: q.kld, hint: `a value overflowed the scheme's range (${formatScheme(scheme)}); nothing was written at the final path` });
  }
  if (verify) vt.tick(`KL divergence ${q.kld.toExponential(2)} nats/token (measured, no tolerance)`);
  // the stated tolerances (pipeline/quantize/tolerance.ts), known before the checks so each prints its verdict
  const reloadTol = o.tolerance?.reload ?? reloadTolerance(q.scale);
  const llamaTol = o.tolerance?.llamaCpp ?? llamaCppTolerance(c.nLayers, q.scale);
  let reloadDiff: number | null = null;
  let llamaCpp: LlamaCppCheck | null = null;
  if (onnxFolderDiff !== null) {
    reloadDiff = onnxFolderDiff;
  } else if (verify && o.format === 'onnx') {
    const sess = await EngineSession.fromOnnx(o.out);
    try {
      reloadDiff = 0;
      for (const w of evalWins) {
        const pos = { dtype: 'I64' as const, shape: [w.length], data: BigInt64Array.from(w.map((_, i) => BigInt(i))) };
        const r = await sess.run({ tokens: { dtype: 'I64', shape: onnxTokensShape, data: BigInt64Array.from(w.map((t) => BigInt(t))) }, positions: pos }, ['logits']);
        const a = r.logits.data as Float32Array;
        const b = await qEngine.forward(w);
        for (let i = 0; i < a.length; i++) reloadDiff = Math.max(reloadDiff, Math.abs(a[i] - b[i]));
      }
    } finally {
      await sess.release();
    }
    vt.tick(`onnxruntime on the file: ${verdictText(verdict(reloadDiff, reloadTol))}`);
  } else if (verify) {
    const back = await loadModel(o.out, { tokenizer: o.tokenizer });
    try {
      // packed safetensors: every linear must dequantize to exactly the weights this run computed
      // (the readers use the fp16 scales the grids rounded with), and the float tensors were
      // rounded to the file's F16 above, so the logits below agree to float rounding
      if (o.format === 'safetensors' || o.format === 'compressed-tensors') await checkPackedLinears(back, host, results, o.format === 'safetensors' ? 'GPTQ' : 'compressed-tensors');
      const e = await LlamaEngine.create(back);
      if (llamaCheck) {
        new ProgressTracker('llama.cpp', 1, o.onProgress, 'check').emit('loading the GGUF in node-llama-cpp and comparing logits');
        llamaCpp = await compareWithLlamaCpp(o.out, evalWins, c.vocabSize, (w) => e.forward(w));
        vt.tick(llamaCpp.maxAbsLogitDiff === null ? `llama.cpp: ${llamaCpp.available ? 'failed' : 'not installed'}` : `llama.cpp on the file: ${verdictText(verdict(llamaCpp.maxAbsLogitDiff, llamaTol))}`);
      }
      reloadDiff = 0;
      for (const w of evalWins) {
        const a = await e.forward(w);
        const b = await qEngine.forward(w);
        for (let i = 0; i < a.length; i++) reloadDiff = Math.max(reloadDiff, Math.abs(a[i] - b[i]));
      }
      await e.close();
      vt.tick(`reloaded file: ${verdictText(verdict(reloadDiff, reloadTol))}`);
    } finally {
      await back.close();
    }
  }
  await refEngine.close();
  await qEngine.close();
  const checks = {
    // an ONNX folder reports its export check's difference even with verify off: no verdict without the logit scale
    reload: reloadDiff === null || !verify ? null : verdict(reloadDiff, reloadTol),
    llamaCpp: llamaCpp?.available && llamaCpp.maxAbsLogitDiff !== null ? verdict(llamaCpp.maxAbsLogitDiff, llamaTol) : null,
  };
  if (checks.reload && !checks.reload.pass) {
    throw new NumericError('mismatch', 'the written file does not reproduce the quantized model', { file: shown, field: 'reload check', expected: `max |Δ logit| <= ${checks.reload.tolerance.toExponential(2)}`, found: checks.reload.maxAbsLogitDiff, hint: 'nothing was written at the final path' });
  }
  if (llamaCpp?.available && llamaCpp.maxAbsLogitDiff === null) {
    throw new NumericError('mismatch', 'llama.cpp could not run the written file', { file: shown, field: 'llama.cpp check', found: llamaCpp.error ?? 'no logits', hint: 'nothing was written at the final path' });
  }
  if (checks.llamaCpp && !checks.llamaCpp.pass) {
    throw new NumericError('mismatch', "llama.cpp's logits on the written file differ from the engine's beyond the tolerance", { file: shown, field: 'llama.cpp check', expected: `max |Δ logit| <= ${checks.llamaCpp.tolerance.toExponential(2)}`, found: checks.llamaCpp.maxAbsLogitDiff, hint: 'nothing was written at the final path' });
  }
  return { evalWins, q, reloadDiff, llamaCpp, checks };
}
