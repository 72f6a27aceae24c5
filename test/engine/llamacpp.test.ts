// The engine on GGUF files against llama.cpp (node-llama-cpp): stories260K converted by saveModel,
// and a generated Llama with Hugging Face (rotate-half) RoPE rows, GQA and dims that are multiples
// of 256. Logits and perplexity must agree; the HF conversion must still equal llama2.c's logits.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { saveModel } from '../../src/model/save.js';
import { LlamaEngine } from '../../src/engine/model.js';
import { engineModel, perplexity } from '../../src/eval/index.js';
import type { ModelWeights } from '../../src/model/weights.js';
import { randomTokens, randomWeights, tinyConfig } from './fixtures.js';
import { openLlamaCpp } from '../../src/eval/llamacpp.js';
import { SHARED, sharedSkip, withTempDir } from '../helpers.js';

const skip = sharedSkip('golden/stories260K', 'models/stories260K/stories260K.bin');
const GOLD = resolve(SHARED, 'golden/stories260K');

/** our float32 graph vs llama.cpp's float32 CPU kernels (RUNTIME-NOTES measured 1.3e-6 on a tiny model) */
const LLAMACPP_LOGITS_ATOL = 1e-4;
const LLAMACPP_NLL_ATOL = 1e-4;
const GOLDEN_LOGITS_ATOL = 1e-4;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function checkAgainstLlamaCpp(w: ModelWeights, gguf: string, tokens: number[]): Promise<void> {
  const V = w.config.vocabSize;
  const fromGguf = await loadModel(gguf);
  const eng = await LlamaEngine.create(fromGguf);
  const ref = await openLlamaCpp(gguf, Math.max(256, tokens.length), V, 1);
  try {
    const ours = await eng.forward(tokens);
    const theirs = await ref.logits(tokens);
    const d = maxDiff(ours, theirs);
    assert.ok(d < LLAMACPP_LOGITS_ATOL, `max |engine − llama.cpp| logits = ${d}`);
    // logits at chosen positions only (the quantize check's spaced positions): those rows of the whole
    const at = [0, 3, tokens.length - 1];
    const some = await ref.logits(tokens, at);
    assert.equal(some.length, at.length * V);
    at.forEach((t, r) => assert.deepEqual(some.subarray(r * V, (r + 1) * V), theirs.subarray(t * V, (t + 1) * V), `position ${t}`));
    // perplexity of the same window: BOS + the rest, every prediction scored
    const lp = await ref.logProbs(tokens);
    const nllRef = -lp.reduce((a, b) => a + b, 0) / lp.length;
    const r = await perplexity(engineModel(eng), tokens.slice(1), { ctx: tokens.length, bosId: tokens[0] });
    assert.equal(r.count, lp.length);
    assert.ok(Math.abs(r.nll - nllRef) < LLAMACPP_NLL_ATOL, `NLL engine ${r.nll} vs llama.cpp ${nllRef}`);
  } finally {
    await ref.close();
    await eng.close();
    await fromGguf.close();
  }
}

test('stories260K as GGUF and as an HF directory: engine = llama.cpp = llama2.c', { skip }, async () => {
  await withTempDir('bitscale-ggufref-', async (dir) => {
    const w = await loadModel(resolve(SHARED, 'models/stories260K/stories260K.bin'));
    const gguf = join(dir, 'stories260K.gguf');
    await saveModel(w, gguf, { format: 'gguf' });
    const b = readFileSync(resolve(GOLD, 'tinystories-excerpt.tokens.i32'));
    const tokens = Array.from(new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4));
    await checkAgainstLlamaCpp(w, gguf, tokens);

    const gb = readFileSync(resolve(GOLD, 'tinystories-excerpt.logits.f32'));
    const gold = new Float32Array(gb.buffer, gb.byteOffset, gb.byteLength / 4);
    const hfDir = join(dir, 'hf');
    await saveModel(w, hfDir, { format: 'hf' });
    for (const path of [gguf, hfDir]) {
      const m = await loadModel(path);
      const eng = await LlamaEngine.create(m);
      const d = maxDiff(await eng.forward(tokens.slice(0, 128)), gold);
      assert.ok(d < GOLDEN_LOGITS_ATOL, `${path}: max |engine − llama2.c| = ${d}`);
      await eng.close();
      await m.close();
    }
    await w.close();
  });
});

test('generated Llama (half RoPE layout, GQA 4/2, E = F = 256·k): engine = llama.cpp', { skip }, async () => {
  await withTempDir('bitscale-ggufref-', async (dir) => {
    const stories = await loadModel(resolve(SHARED, 'models/stories260K/stories260K.bin'));
    const c = tinyConfig({ vocabSize: 512, hiddenSize: 256, intermediateSize: 512, nHeads: 4, nKvHeads: 2, headDim: 64, ropeLayout: 'half', maxSeqLen: 256 });
    const w = { ...randomWeights(c, 77), tokenizer: stories.tokenizer };
    const gguf = join(dir, 'gen.gguf');
    await saveModel(w, gguf, { format: 'gguf' });
    const tokens = [1, ...randomTokens(95, 512, 78).map((t) => Math.max(3, t))];
    await checkAgainstLlamaCpp(w, gguf, tokens);
    // the GGUF (interleaved rows) and the in-memory model (half rows) give the same logits
    const a = await LlamaEngine.create(w);
    const g = await loadModel(gguf);
    const bEng = await LlamaEngine.create(g);
    const d = maxDiff(await a.forward(tokens), await bEng.forward(tokens));
    assert.ok(d < 1e-5, `half vs interleaved layout: ${d}`);
    await a.close();
    await bEng.close();
    await g.close();
    await stories.close();
  });
});
