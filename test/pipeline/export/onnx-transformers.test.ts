// transformers.js (@huggingface/transformers, offline: local folder only, no remote models) loads the
// exported folder and its greedy generation, KV cache included, picks the same tokens as the engine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { AutoModelForCausalLM, AutoTokenizer, env, Tensor as HfTensor } from '@huggingface/transformers';
import { prepareHostModel, type HostModel } from '../../../src/engine/host.js';
import { LlamaEngine, type EngineOptions } from '../../../src/engine/model.js';
import type { ModelConfig } from '../../../src/model/config.js';
import { loadModel } from '../../../src/model/load.js';
import { exportOnnx, hostWithRowGridCodes, type OnnxDtype } from '../../../src/pipeline/export/onnx.js';
import { F16_STORAGE_MIN_ELEMENTS } from '../../../src/engine/export-hf.js';
import { roundToF16 } from '../../../src/numerics/float16.js';
import { fakeQuant, parseScheme } from '../../../src/quant/index.js';
import { randomTokens, randomWeights, tinyConfig } from '../../engine/fixtures.js';
import { sharedPath, sharedSkip, tempDir } from '../../helpers.js';

const STORIES = sharedPath('models', 'stories260K', 'stories260K.bin');
const STEPS = 8;

const work = tempDir('bitscale-export-tjs-');
env.allowRemoteModels = false;
env.allowLocalModels = true;
env.localModelPath = work;

async function engineGreedy(host: HostModel, prompt: number[], steps: number, opts: EngineOptions = {}): Promise<number[]> {
  const e = LlamaEngine.fromHost(host, opts);
  try {
    const seq = [...prompt];
    for (let i = 0; i < steps; i++) {
      const l = await e.forward(seq, { lastOnly: true });
      let best = 0;
      for (let j = 1; j < l.length; j++) if (l[j] > l[best]) best = j;
      seq.push(best);
    }
    return seq;
  } finally {
    await e.close();
  }
}

async function tjsGreedy(name: string, dtype: OnnxDtype, inputs: Record<string, unknown>): Promise<number[]> {
  const model = await AutoModelForCausalLM.from_pretrained(name, { local_files_only: true, dtype });
  try {
    const out = (await model.generate({ ...inputs, max_new_tokens: STEPS, do_sample: false, min_new_tokens: STEPS } as never)) as HfTensor;
    return Array.from(out.data as BigInt64Array, Number);
  } finally {
    await model.dispose();
  }
}

for (const scheme of [null, 'int4-g32-asym'] as const) {
  test(`transformers.js greedy tokens equal the engine's (random GQA Llama, ${scheme ?? 'float'})`, async () => {
    const c = tinyConfig({ ropeLayout: 'half', eosTokenId: null });
    const host = await prepareHostModel(randomWeights(c, 31), { weights: scheme ? parseScheme(scheme) : null, lowBit: scheme ? 'nbits' : null });
    const name = `tiny-${scheme ?? 'float'}`;
    const r = await exportOnnx(host, null, join(work, name), { externalData: scheme ? 'always' : 'never' });
    const prompt = randomTokens(5, c.vocabSize, 6);
    const ids = new HfTensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
    const mask = new HfTensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
    const got = await tjsGreedy(name, r.dtype === 'q4' ? 'q4' : 'fp32', { input_ids: ids, attention_mask: mask });
    assert.deepEqual(got, await engineGreedy(host, prompt, STEPS));
  });
}

// QAT's 2-bit grids as MatMulNBits (model_q2.onnx): SEQ 2-bit (α/4)·{−3, −1, 1, 3} as u·(α/2) with float
// zero points 1.5, and ternary (α/1.5)·{−1, 0, 1} with the default zero point 2, also with BitNet's 8-bit
// per-token absmax activations in the graph
const ABSMAX8 = { kind: 'absmax' as const, bits: 8, eps: 1e-5 };
/** same weights and quantizers in both, fp32; accumulation order only */
const Q2_LOGIT_ATOL = 1e-4;
for (const [method, act] of [['seq_2bit', null], ['seq_ternary', null], ['seq_ternary', ABSMAX8]] as const) {
  test(`transformers.js greedy tokens equal the engine's (2-bit MatMulNBits, ${method}${act ? ', 8-bit absmax activations' : ''})`, async () => {
    const c = tinyConfig({ ropeLayout: 'half', eosTokenId: null });
    const host0 = await prepareHostModel(randomWeights(c, 34));
    const steps = new Map<string, Float32Array>();
    for (const [name, w] of host0.tensors) {
      if (!name.startsWith('model.layers.') || !name.endsWith('proj.weight')) continue;
      const N = name.includes('down_proj') ? c.hiddenSize : w.length / c.hiddenSize;
      const K = w.length / N;
      const alpha = Float32Array.from({ length: N }, (_, n) => Math.max(...Array.from(w.subarray(n * K, (n + 1) * K), Math.abs)));
      host0.tensors.set(name, fakeQuant(w, [N, K], { kind: 'lowbit', method, granularity: { kind: 'channel', axis: 0 } }, { name, scales: alpha }));
      steps.set(name, alpha.map((a) => a / (method === 'seq_2bit' ? 2 : 1.5)));
    }
    const host = hostWithRowGridCodes(host0, steps, method === 'seq_2bit' ? { bits: 2, zeroPoint: 1.5 } : { bits: 2 });
    const name = `q2-${method}${act ? '-a8' : ''}`;
    const r = await exportOnnx(host, null, join(work, name), { activations: act });
    assert.equal(r.dtype, 'q2');
    const nb = r.linears.filter((l) => l.op === 'MatMulNBits' && l.bits === 2 && !!l.floatZeroPoints === (method === 'seq_2bit'));
    assert.equal(nb.length, 7 * c.nLayers);
    const prompt = randomTokens(5, c.vocabSize, 9);
    const ids = new HfTensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
    const mask = new HfTensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
    const engineOpts: EngineOptions = act ? { activations: (site) => (site === 'lm_head' ? null : act) } : {};
    assert.deepEqual(await tjsGreedy(name, 'q2', { input_ids: ids, attention_mask: mask }), await engineGreedy(host, prompt, STEPS, engineOpts));
    if (act) {
      // the logits carry the activation quantizer: equal to the engine with it, not without it
      const model = await AutoModelForCausalLM.from_pretrained(name, { local_files_only: true, dtype: 'q2' });
      const got = ((await (model as unknown as (x: unknown) => Promise<{ logits: HfTensor }>)({ input_ids: ids, attention_mask: mask })).logits.data as Float32Array);
      await model.dispose();
      const diff = async (o: EngineOptions) => {
        const e = LlamaEngine.fromHost({ ...host, lowBit: new Map() }, o);
        const ref = await e.forward(prompt);
        await e.close();
        return ref.reduce((m, r, i) => Math.max(m, Math.abs(r - got[i])), 0);
      };
      const [withAct, withoutAct] = [await diff(engineOpts), await diff({})];
      assert.ok(withAct <= Q2_LOGIT_ATOL, `with activation quant: max |Δ logit| ${withAct}`);
      assert.ok(withoutAct > 10 * Q2_LOGIT_ATOL, `without: ${withoutAct}`);
    }
  });
}

/** transformers.js vs the engine on the same dequantized weights: fp32 both, accumulation order only */
const TJS_LOGIT_ATOL = 1e-4;

// int8-container DequantizeLinear weights: blocked along K even per channel, because onnxruntime's default
// optimizations (which transformers.js uses) make a per-axis int8 DQ → MatMul inexact (3e-2 measured)
for (const scheme of ['int3-g32', 'int8-channel', 'int4-channel-asym', 'int6-tensor']) {
  test(`transformers.js logits equal the engine's for DequantizeLinear weights (${scheme})`, async () => {
    const c = tinyConfig({ ropeLayout: 'half', eosTokenId: null });
    const host = await prepareHostModel(randomWeights(c, 33), { weights: parseScheme(scheme), lowBit: 'dq' });
    const name = `dq-${scheme}`;
    const r = await exportOnnx(host, null, join(work, name));
    assert.equal(r.linears.filter((l) => l.op === 'DequantizeLinear').length, 7 * c.nLayers);
    const prompt = randomTokens(6, c.vocabSize, 8);
    const model = await AutoModelForCausalLM.from_pretrained(name, { local_files_only: true, dtype: 'fp32' });
    try {
      const ids = new HfTensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
      const mask = new HfTensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
      const out = (await (model as unknown as (x: unknown) => Promise<{ logits: HfTensor }>)({ input_ids: ids, attention_mask: mask })).logits;
      const e = LlamaEngine.fromHost({ ...host, lowBit: new Map() });
      const ref = await e.forward(prompt);
      await e.close();
      const got = out.data as Float32Array;
      assert.equal(got.length, ref.length);
      let d = 0;
      for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(got[i] - ref[i]));
      assert.ok(d <= TJS_LOGIT_ATOL, `max |Δ logit| ${d}`);
    } finally {
      await model.dispose();
    }
  });
}

const ARCHS: [string, Partial<ModelConfig>][] = [
  ['qwen2 (q/k/v bias)', { architecture: 'qwen2', attentionBias: true }],
  ['qwen3 (q/k norm)', { architecture: 'qwen3', qkNorm: true }],
  ['mistral', { architecture: 'mistral' }],
  ['llama tied embeddings, llama3 RoPE scaling', { tiedEmbeddings: true, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } }],
];
for (const [label, over] of ARCHS) {
  test(`transformers.js greedy tokens equal the engine's (${label}, float)`, async () => {
    const c = tinyConfig({ ropeLayout: 'half', eosTokenId: null, ...over });
    const host = await prepareHostModel(randomWeights(c, 32));
    const name = `arch-${label.split(' ')[0]}-${c.tiedEmbeddings ? 'tied' : 'untied'}`;
    await exportOnnx(host, null, join(work, name));
    const prompt = randomTokens(5, c.vocabSize, 7);
    const ids = new HfTensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
    const mask = new HfTensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
    assert.deepEqual(await tjsGreedy(name, 'fp32', { input_ids: ids, attention_mask: mask }), await engineGreedy(host, prompt, STEPS));
  });
}

test('transformers.js loads stories260K (int4-g32) with its tokenizer; greedy tokens equal the engine\'s', { skip: sharedSkip('models/stories260K/stories260K.bin') }, async () => {
  const w = await loadModel(STORIES);
  try {
    const host = await prepareHostModel(w, { weights: (n) => (n.includes('down_proj') ? null : parseScheme('int4-g32')), lowBit: 'nbits' });
    await exportOnnx(host, w.tokenizer, join(work, 'stories'));
    const tok = await AutoTokenizer.from_pretrained('stories', { local_files_only: true });
    const enc = tok('Once upon a time');
    const prompt = Array.from(enc.input_ids.data as BigInt64Array, Number);
    assert.deepEqual(prompt, w.tokenizer!.encode('Once upon a time', { bos: true }));
    const got = await tjsGreedy('stories', 'q4', enc);
    assert.deepEqual(got, await engineGreedy(host, prompt, STEPS));
  } finally {
    await w.close();
  }
});

// optimum/transformers.js-style folders: fp32, fp16, q8, q4 and q4f16 side by side, each added without
// deleting the others, one manifest listing them all; transformers.js loads every dtype offline and its
// greedy tokens equal the engine's on the weights that file holds (float16-stored weights rounded)
test('ONNX variants side by side: fp32, fp16, q8, q4, q4f16 in one folder, each loaded by transformers.js', { timeout: 120_000 }, async () => {
  const c = tinyConfig({ ropeLayout: 'half', eosTokenId: null });
  const weights = randomWeights(c, 41);
  const float = await prepareHostModel(weights);
  const q8 = await prepareHostModel(weights, { weights: parseScheme('int8-g32'), lowBit: 'nbits' });
  const q4 = await prepareHostModel(weights, { weights: parseScheme('int4-g32'), lowBit: 'nbits' });
  const name = 'variants';
  const out = join(work, name);
  const plan = [
    { dtype: 'fp32', host: float, f16: false },
    { dtype: 'q4', host: q4, f16: false },
    { dtype: 'fp16', host: float, f16: true },
    { dtype: 'q8', host: q8, f16: false },
    { dtype: 'q4f16', host: q4, f16: true },
  ] as const;
  const files = (d: string) => readdirSync(join(out, 'onnx')).filter((f) => f.startsWith(d)).length;
  for (const [i, v] of plan.entries()) {
    const r = await exportOnnx(v.host, null, out, { floatStorage: v.f16 ? 'f16' : 'f32', manifest: { scheme: v.dtype } });
    assert.equal(r.dtype, v.dtype);
    assert.deepEqual(r.variants, plan.slice(0, i + 1).map((x) => x.dtype).sort());
    assert.equal(files('model'), i + 1, 'every earlier variant is still there');
  }
  // adding a variant the folder already holds needs --force, and then replaces only that variant
  await assert.rejects(exportOnnx(q4, null, out), (e: Error & { code?: string }) => e.code === 'exists');
  await exportOnnx(q4, null, out, { overwrite: true });
  assert.equal(files('model'), plan.length);
  const man = JSON.parse(readFileSync(join(out, 'bitscale-manifest.json'), 'utf8'));
  assert.deepEqual(Object.keys(man.variants).sort(), ['fp16', 'fp32', 'q4', 'q4f16', 'q8']);
  assert.equal(man.variants.q4f16.file, 'onnx/model_q4f16.onnx');
  // float16 storage halves the float weights: the fp16 file is well under the fp32 one
  const size = (f: string) => statSync(join(out, 'onnx', f)).size;
  assert.ok(size('model_fp16.onnx') < 0.6 * size('model.onnx'), `fp16 ${size('model_fp16.onnx')} vs fp32 ${size('model.onnx')}`);
  assert.ok(size('model_q4f16.onnx') < size('model_q4.onnx'));
  // a folder of another model is not mixed with this one
  const other = await prepareHostModel(randomWeights(tinyConfig({ ropeLayout: 'half', eosTokenId: null, nLayers: 1 }), 41));
  await assert.rejects(exportOnnx(other, null, out), /another model/);

  const prompt = randomTokens(5, c.vocabSize, 7);
  const ids = new HfTensor('int64', BigInt64Array.from(prompt.map(BigInt)), [1, prompt.length]);
  const mask = new HfTensor('int64', new BigInt64Array(prompt.length).fill(1n), [1, prompt.length]);
  const rounded = (h: HostModel): HostModel => ({ ...h, tensors: new Map([...h.tensors].map(([n, t]) => [n, h.lowBit.has(n) || t.length < F16_STORAGE_MIN_ELEMENTS ? t : Float32Array.from(t, roundToF16)])) });
  for (const v of plan) {
    const got = await tjsGreedy(name, v.dtype, { input_ids: ids, attention_mask: mask });
    assert.deepEqual(got, await engineGreedy(v.f16 ? rounded(v.host) : v.host, prompt, STEPS), v.dtype);
  }
});
