import { test } from 'node:test';
import assert from 'node:assert/strict';
import { resolve } from 'node:path';
import { loadModel } from '../../../src/model/load.js';
import { prepareHostModel } from '../../../src/engine/host.js';
import { LlamaEngine } from '../../../src/engine/model.js';
import { BlockRunner } from '../../../src/engine/block-runner.js';
import { calibrationWindows, embedWindows } from '../../../src/pipeline/calibrate/calibrate.js';
import { BUILTIN_CALIBRATION_TEXT } from '../../../src/pipeline/calibrate/text.table.js';
import { SHARED, sharedSkip } from '../../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin', 'models/stories260K/tok512.bin');
// block-by-block graphs vs the engine's whole-model graph: same float32 math, other op order
const BLOCK_CHAIN_LOGITS_ATOL = 1e-4;

test('the calibration block graph, chained over the layers, reproduces the engine logits', { skip }, async () => {
  const w = await loadModel(resolve(SHARED, 'models/stories260K/stories260K.bin'), { tokenizer: resolve(SHARED, 'models/stories260K/tok512.bin') });
  const host = await prepareHostModel(w);
  const c = w.config;
  const wins = calibrationWindows(w.tokenizer!, BUILTIN_CALIBRATION_TEXT, { windows: 2, seqLen: 24, seed: 5 });
  assert.deepEqual(wins, calibrationWindows(w.tokenizer!, BUILTIN_CALIBRATION_TEXT, { windows: 2, seqLen: 24, seed: 5 }), 'seeded windows');
  assert.equal(wins[0][0], w.tokenizer!.bosId);
  const runner = await BlockRunner.create(c, 24);
  const eng = LlamaEngine.fromHost(host);
  try {
    const xs = embedWindows(host, wins);
    for (let l = 0; l < c.nLayers; l++) for (let i = 0; i < xs.length; i++) xs[i] = (await runner.run(l, (n) => host.tensors.get(n)!, xs[i], l === 0)).y;
    const E = c.hiddenSize, V = c.vocabSize;
    const nw = host.tensors.get('model.norm.weight')!;
    const head = host.tensors.get(c.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight')!;
    for (let i = 0; i < wins.length; i++) {
      const ref = await eng.forward(wins[i]);
      const x = xs[i];
      let md = 0;
      for (let t = 0; t < wins[i].length; t++) {
        let ss = 0;
        for (let j = 0; j < E; j++) ss += x[t * E + j] ** 2;
        const r = 1 / Math.sqrt(ss / E + c.rmsNormEps);
        for (let v = 0; v < V; v++) {
          let s = 0;
          for (let j = 0; j < E; j++) s += x[t * E + j] * r * nw[j] * head[v * E + j];
          md = Math.max(md, Math.abs(s - ref[t * V + v]));
        }
      }
      assert.ok(md < BLOCK_CHAIN_LOGITS_ATOL, `window ${i}: max |Δ logit| ${md}`);
    }
  } finally {
    await runner.close();
    await eng.close();
    await w.close();
  }
});
