// Attention in KV-head groups (EngineOptions.attentionGroups → AttentionInputs.headGroups: each
// group's queries wait for the previous group's output, so one group's scores exist at a time)
// gives the same results as all heads at once: full-sequence logits, KV-cache decoding, in-graph
// scoring on native Q4_K weights; the groups are chained in the graph; a count that does not divide
// the KV heads is a typed error.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { buildLlamaGraph } from '../../src/engine/llama.js';
import { LlamaEngine } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import { chainDepths, randomTokens, randomWeights, tinyConfig } from './fixtures.js';
import { writeTypedGguf } from './native-fixtures.js';
import { tempDir } from '../helpers.js';

/** grouped against all-at-once attention: the same dot products and softmax rows, batched otherwise */
const GROUPS_ATOL = 1e-5;

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number => {
  assert.equal(a.length, b.length);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  return d;
};

const cfg = tinyConfig({ nLayers: 2, vocabSize: 120, hiddenSize: 64, intermediateSize: 96, nHeads: 8, nKvHeads: 4, headDim: 8 });

test('attention in KV-head groups equals all heads at once: logits and KV-cache decoding', { timeout: 60_000 }, async () => {
  const w = randomWeights(cfg, 41);
  const tokens = randomTokens(13, cfg.vocabSize, 42);
  const one = await LlamaEngine.create(w);
  const ref = await one.forward(tokens);
  for (const groups of [2, 4]) {
    const e = await LlamaEngine.create(w, { attentionGroups: groups });
    assert.ok(maxDiff(await e.forward(tokens), ref) < GROUPS_ATOL, `${groups} groups, full sequence`);
    const dec = e.decoder(16);
    const a = await dec.step(tokens.slice(0, 9));
    const b = await dec.step(tokens.slice(9));
    const cached = new Float32Array(ref.length);
    cached.set(a);
    cached.set(b, a.length);
    assert.ok(maxDiff(cached, ref) < GROUPS_ATOL, `${groups} groups, KV cache`);
    await e.close();
  }
  await one.close();
});

test('attention in KV-head groups equals all heads at once: in-graph scoring on native Q4_K weights', { timeout: 60_000 }, async () => {
  const c = tinyConfig({ vocabSize: 300, hiddenSize: 256, intermediateSize: 256, nHeads: 8, nKvHeads: 4, headDim: 32, ropeLayout: 'half' });
  const path = join(tempDir('bitscale-attn-groups-'), 'q4k.gguf');
  await writeTypedGguf(randomWeights(c, 43), path, 'Q4_K', true);
  const m = await loadModel(path);
  try {
    const seqs = [randomTokens(24, c.vocabSize, 44)];
    const tgs = [randomTokens(24, c.vocabSize, 45)];
    const one = await LlamaEngine.create(m, { native: true, attentionGroups: 1 });
    const ref = await one.logProbs(seqs, tgs);
    await one.close();
    const e = await LlamaEngine.create(m, { native: true, attentionGroups: 4 });
    assert.ok(maxDiff(await e.logProbs(seqs, tgs), ref) < GROUPS_ATOL);
    await e.close();
  } finally {
    await m.close();
  }
});

test('KV-head groups are chained: the k-th group\'s softmax depends on the k − 1 before it', async () => {
  const e = await LlamaEngine.create(randomWeights(tinyConfig({ ...cfg, nLayers: 1 }), 46));
  const g = buildLlamaGraph(e.host, { tokens: 6, attentionGroups: 4 });
  assert.deepEqual(chainDepths(g, 'Softmax'), [0, 1, 2, 3]);
  assert.throws(() => buildLlamaGraph(e.host, { tokens: 6, attentionGroups: 3 }), /attention head groups must divide the KV heads/);
  await e.close();
});
