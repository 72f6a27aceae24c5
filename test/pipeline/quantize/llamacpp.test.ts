import { test } from 'node:test';
import assert from 'node:assert/strict';

import { join } from 'node:path';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { compareWithLlamaCpp } from '../../../src/pipeline/quantize/verify-llamacpp.js';
import { loadModel } from '../../../src/model/load.js';
import { LlamaEngine } from '../../../src/engine/model.js';
import { sharedPath, sharedSkip, tempDir } from '../../helpers.js';

let skip: string | false = sharedSkip('models/stories260K/stories260K.bin', 'models/stories260K/tok512.bin');
try {
  await import('node-llama-cpp');
} catch {
  skip ||= 'node-llama-cpp is not installed';
}
const MODEL = sharedPath('models/stories260K/stories260K.bin');
const TOK = sharedPath('models/stories260K/tok512.bin');

// llama.cpp quantizes activations to Q8 inside its quantized matmuls; measured max |Δ logit| 0.1–0.3
// against our float-activation forward of the same Q4_0 / Q8_0 weights on stories260K
const LLAMACPP_QUANT_LOGITS_ATOL = 0.6;

test('a GPTQ Q4_0 GGUF runs in llama.cpp, which tracks the quantized weights rather than the float ones', { skip, timeout: 180_000 }, async () => {
  const dir = tempDir('bitscale-lc-');
  const out = join(dir, 'g.gguf');
  await quantizeModel({ model: MODEL, tokenizer: TOK, windows: 4, seqLen: 48, out, format: 'gguf', scheme: 'q4_0', method: 'gptq', checkLlamaCpp: false });
  const float = await loadModel(MODEL, { tokenizer: TOK });
  const back = await loadModel(out);
  const fe = await LlamaEngine.create(float);
  const qe = await LlamaEngine.create(back);
  try {
    const wins = [[1, ...float.tokenizer!.encode('Once upon a time there was a little dog who liked to run in the park').slice(0, 40)]];
    const vsFloat = await compareWithLlamaCpp(out, wins, float.config.vocabSize, (w) => fe.forward(w));
    const vsQuant = await compareWithLlamaCpp(out, wins, float.config.vocabSize, (w) => qe.forward(w));
    // node-llama-cpp imported above, so an unavailable or failed comparison is a failure, not a skip
    assert.ok(vsQuant.available && vsFloat.available, 'node-llama-cpp imports but the comparison did not run');
    assert.equal(vsFloat.error, undefined, `llama.cpp vs the float engine failed: ${vsFloat.error}`);
    assert.ok(vsQuant.maxAbsLogitDiff !== null && vsQuant.maxAbsLogitDiff < LLAMACPP_QUANT_LOGITS_ATOL, `llama.cpp vs engine: ${vsQuant.maxAbsLogitDiff} ${vsQuant.error ?? ''}`);
    assert.ok(vsQuant.top1Agreement! >= 0.9, `top-1 ${vsQuant.top1Agreement}`);
    assert.ok(vsQuant.maxAbsLogitDiff! < vsFloat.maxAbsLogitDiff!, `quantized ${vsQuant.maxAbsLogitDiff} vs float ${vsFloat.maxAbsLogitDiff}`);
  } finally {
    await fe.close();
    await qe.close();
    await float.close();
    await back.close();
  }
});
