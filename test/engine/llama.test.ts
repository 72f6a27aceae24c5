// Whole-model tests of the engine against the float64 reference forward (src/model/reference.ts)
// for each supported architecture variant, KV-cache equivalence, and errors raised before compute.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlamaEngine } from '../../src/engine/model.js';
import { referenceForward } from '../../src/model/reference.js';
import { engineModel, perplexity } from '../../src/eval/index.js';
import type { ModelConfig } from '../../src/model/config.js';
import { memorySource, randomTokens, randomWeights, tinyConfig } from './fixtures.js';

/** float32 engine vs float64 reference on a 2-layer model with O(1) logits */
const ENGINE_VS_REFERENCE_ATOL = 2e-4;
/** cached decoding vs full-sequence evaluation: same float32 math, different GEMM shapes */
const KV_CACHE_ATOL = 2e-5;

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const VARIANTS: [string, Partial<ModelConfig>][] = [
  ['llama2c-style (interleaved RoPE, GQA, tied)', { tiedEmbeddings: true }],
  ['llama HF layout (half RoPE, GQA)', { ropeLayout: 'half' }],
  ['llama3 rope scaling', { ropeLayout: 'half', ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 16 } }],
  ['mistral (MHA)', { architecture: 'mistral', nKvHeads: 4, ropeLayout: 'half' }],
  ['qwen2 (q/k/v bias)', { architecture: 'qwen2', attentionBias: true, ropeLayout: 'half', ropeTheta: 1e6 }],
  ['qwen3 (q/k norm, head dim != E/H)', { architecture: 'qwen3', qkNorm: true, headDim: 24, ropeLayout: 'half' }],
];

for (const [label, over] of VARIANTS) {
  test(`engine logits equal the float64 reference: ${label}`, async () => {
    const c = tinyConfig(over);
    const w = randomWeights(c, label.length);
    const tokens = randomTokens(13, c.vocabSize, label.length + 1);
    const eng = await LlamaEngine.create(w);
    const got = await eng.forward(tokens);
    const get = (n: string) => eng.host.tensors.get(n)!;
    const want = referenceForward(c, get, tokens);
    const d = maxDiff(got, want);
    assert.ok(d < ENGINE_VS_REFERENCE_ATOL, `max |engine − reference| = ${d}`);
    // the logits are not degenerate: positions differ from each other
    assert.ok(maxDiff(got.subarray(0, c.vocabSize), got.subarray(c.vocabSize, 2 * c.vocabSize)) > 0.1);
    await eng.close();
  });
}

test('KV-cache decoding equals full-sequence evaluation (chunks of 5, 1, 1, 4, 1)', async () => {
  const c = tinyConfig({ ropeLayout: 'half' });
  const eng = await LlamaEngine.create(randomWeights(c, 11));
  const tokens = randomTokens(12, c.vocabSize, 12);
  const full = await eng.forward(tokens);
  const dec = eng.decoder(16);
  const parts: Float32Array[] = [];
  let at = 0;
  for (const n of [5, 1, 1, 4, 1]) {
    parts.push(await dec.step(tokens.slice(at, at + n)));
    at += n;
  }
  const V = c.vocabSize;
  const cached = new Float32Array(12 * V);
  let o = 0;
  for (const p of parts) {
    cached.set(p, o);
    o += p.length;
  }
  const d = maxDiff(cached, full);
  assert.ok(d < KV_CACHE_ATOL, `max |cached − full| = ${d}`);
  // lastOnly returns the final row
  dec.reset();
  const last = await dec.step(tokens.slice(0, 7), { lastOnly: true });
  assert.ok(maxDiff(last, full.subarray(6 * V, 7 * V)) < KV_CACHE_ATOL);
  await assert.rejects(dec.step(tokens.slice(0, 10)), (e: Error & { code?: string }) => e.code === 'bad_option');
  await eng.close();
});

test('errors before any computation: unknown architecture, missing tensor, wrong shape, bad token', async () => {
  const c = tinyConfig();
  const bad = randomWeights({ ...c, architecture: 'gpt2' as never });
  await assert.rejects(LlamaEngine.create(bad), (e: Error & { code?: string }) => e.code === 'unsupported' && /architecture/.test(e.message));

  const w = randomWeights(c);
  w.tensors.delete('model.layers.1.mlp.up_proj.weight');
  await assert.rejects(LlamaEngine.create(w), (e: Error & { code?: string }) => e.code === 'missing_tensor' && /model\.layers\.1\.mlp\.up_proj\.weight/.test(e.message));

  const w2 = randomWeights(c);
  let reads = 0;
  for (const [k, s] of w2.tensors) w2.tensors.set(k, { ...s, readF32: async () => (reads++, s.readF32()) });
  w2.tensors.set('model.layers.0.self_attn.k_proj.weight', memorySource('k', [64, 64], new Float32Array(64 * 64)));
  await assert.rejects(LlamaEngine.create(w2), (e: Error & { code?: string }) => e.code === 'shape_mismatch' && /\[32, 64\]/.test(e.message) && /\[64, 64\]/.test(e.message));
  assert.equal(reads, 0, 'no tensor data read before validation');

  const gqa = randomWeights({ ...c, nKvHeads: 3 });
  await assert.rejects(LlamaEngine.create(gqa), (e: Error & { code?: string }) => e.code === 'bad_config');

  const eng = await LlamaEngine.create(randomWeights(c));
  await assert.rejects(eng.forward([1, 2, 96]), (e: Error & { code?: string }) => e.code === 'bad_option' && /index 2/.test(e.message));
  await eng.close();
});

test('KV-cache precision: quantized keys/values change the logits, and cached decoding still equals full evaluation', async () => {
  const c = tinyConfig({ ropeLayout: 'half' });
  const w = randomWeights(c, 41);
  const float = await LlamaEngine.create(w);
  const kv4 = LlamaEngine.fromHost(float.host, { kvCache: { kind: 'int', bits: 4, symmetric: true, granularity: 'token' } });
  const tokens = randomTokens(9, c.vocabSize, 42);
  const full = await kv4.forward(tokens);
  assert.ok(maxDiff(full, await float.forward(tokens)) > 1e-3);
  const dec = kv4.decoder(12);
  const a = await dec.step(tokens.slice(0, 6));
  const b = await dec.step(tokens.slice(6));
  const cached = new Float32Array(full.length);
  cached.set(a);
  cached.set(b, a.length);
  assert.ok(maxDiff(cached, full) < KV_CACHE_ATOL);
  await float.close();
  await kv4.close();
});

test('engineModel pads a short final window into the long session without changing its logits', async () => {
  const c = tinyConfig();
  const eng = await LlamaEngine.create(randomWeights(c, 51));
  const m = engineModel(eng);
  const long = randomTokens(16, c.vocabSize, 52);
  await m.logits(long);
  const short = long.slice(3, 9);
  const padded = await m.logits(short);
  assert.equal(padded.length, short.length * c.vocabSize);
  assert.ok(maxDiff(padded, await eng.forward(short)) < KV_CACHE_ATOL);
  await eng.close();
});

test('batched windows (B sequences per run, short last batch padded) give the unbatched perplexity', async () => {
  const c = tinyConfig();
  const eng = await LlamaEngine.create(randomWeights(c, 61));
  const ids = randomTokens(75, c.vocabSize, 62);
  const one = await perplexity(engineModel(eng), ids, { ctx: 9, bosId: 1, batch: 1 });
  const three = await perplexity(engineModel(eng), ids, { ctx: 9, bosId: 1, batch: 3 });
  assert.equal(three.count, 75);
  assert.equal(three.windows, one.windows);
  for (let i = 0; i < one.tokenNll.length; i++) assert.ok(Math.abs(one.tokenNll[i] - three.tokenNll[i]) < 1e-5, `token ${i}`);
  const batched = await eng.forwardBatch([ids.slice(0, 8), ids.slice(8, 16)]);
  const V = c.vocabSize;
  assert.ok(maxDiff(batched.subarray(8 * V), await eng.forward(ids.slice(8, 16))) < KV_CACHE_ATOL);
  await eng.close();
});
