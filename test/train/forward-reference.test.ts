// The training graph's forward (src/train/graph.ts, run through onnxruntime as the trainer runs it)
// against the float64 reference forward (src/model/reference.ts, itself checked against llama2.c):
// logits at every position for stories260K (a llama2.c checkpoint: interleaved rotary rows, tied
// embeddings, GQA) and for the built-in default model (Hugging Face layout, untied head).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { referenceForward } from '../../src/model/reference.js';
import type { ModelConfig } from '../../src/model/config.js';
import { EngineSession } from '../../src/engine/session.js';
import { Rng } from '../../src/core/rng.js';
import { buildTrainGraph, initParams, llamaConfig, paramSpecs } from '../../src/train/graph.js';
import { sharedPath, sharedSkip } from '../helpers.js';

const STORIES = sharedPath('models/stories260K/stories260K.bin');
const TOKENS = 'golden/stories260K/tinystories-excerpt.tokens.i32';
const DEFAULT_MODEL = join('assets', 'default-model');

/** float32 training graph vs the float64 oracle (the engine's float32 path holds 1e-4 vs llama2.c) */
const TRAIN_FORWARD_VS_REFERENCE_ATOL = 1e-4;

/** Logits [T, V] of the training graph for one sequence (B = 1, S = T), weights as graph constants. */
async function trainGraphLogits(c: ModelConfig, weights: Map<string, Float32Array>, tokens: readonly number[]): Promise<Float32Array> {
  const S = tokens.length;
  const g = buildTrainGraph(c, 1, S, undefined, weights, { logits: true });
  const s = await EngineSession.fromGraph(g.graph, { threads: 1 });
  try {
    const ids = { dtype: 'I64' as const, shape: [1, S], data: BigInt64Array.from(tokens, BigInt) };
    const out = await s.run({ tokens: ids, targets: ids }, ['logits']);
    return out.logits.data as Float32Array;
  } finally {
    await s.release();
  }
}

async function compareWeights(c: ModelConfig, weights: Map<string, Float32Array>, tokens: readonly number[]): Promise<void> {
  const got = await trainGraphLogits(c, weights, tokens);
  const want = referenceForward(c, (n) => weights.get(n)!, tokens);
  assert.equal(got.length, want.length);
  assert.equal(got.length, tokens.length * c.vocabSize);
  let d = 0;
  let at = 0;
  for (let i = 0; i < got.length; i++) {
    const e = Math.abs(got[i] - want[i]);
    if (!(e <= d)) [d, at] = [e, i];
  }
  const V = c.vocabSize;
  assert.ok(d < TRAIN_FORWARD_VS_REFERENCE_ATOL, `max |train graph − reference| = ${d} at position ${Math.floor(at / V)}, token ${at % V}`);
}

async function compare(path: string, tokens: readonly number[]): Promise<void> {
  const m = await loadModel(path);
  try {
    const weights = new Map<string, Float32Array>();
    for (const p of paramSpecs(m.config)) weights.set(p.name, await m.tensors.get(p.name)!.readF32());
    await compareWeights(m.config, weights, tokens);
  } finally {
    await m.close();
  }
}

test('training graph logits equal the reference forward on stories260K (interleaved RoPE, tied head, GQA)', { skip: sharedSkip('models/stories260K/stories260K.bin', TOKENS) }, async () => {
  const tb = readFileSync(sharedPath(TOKENS));
  const tokens = Array.from(new Int32Array(tb.buffer, tb.byteOffset, tb.byteLength / 4)).slice(0, 64);
  await compare(STORIES, tokens);
});

test('training graph logits equal the reference forward on the built-in default model', { skip: !existsSync(join(DEFAULT_MODEL, 'model.safetensors')) && 'assets/default-model not generated' }, async () => {
  const m = await loadModel(DEFAULT_MODEL);
  const tokens = m.tokenizer!.encode('Call me Ishmael. Some years ago—never mind how long precisely—having little or no money in my purse', { bos: true }).slice(0, 48);
  await m.close();
  assert.ok(tokens.length >= 16, `${tokens.length} tokens`);
  await compare(DEFAULT_MODEL, tokens);
});

test('training graph logits equal the reference forward on generated models: both RoPE layouts, tied and untied head, GQA', async () => {
  const base = llamaConfig({ vocabSize: 40, hiddenSize: 32, intermediateSize: 48, nLayers: 2, nHeads: 4, nKvHeads: 2, context: 24 });
  for (const over of [{}, { ropeLayout: 'interleaved' as const }, { ropeLayout: 'interleaved' as const, tiedEmbeddings: true, nKvHeads: 1 }]) {
    const c: ModelConfig = { ...base, ...over };
    const w = initParams(c, 7);
    // larger than the init so that attention is far from uniform and the layout matters
    for (const [k, v] of w) if (!k.includes('norm')) for (let i = 0; i < v.length; i++) v[i] *= 10;
    const r = new Rng(3);
    await compareWeights(c, w, Array.from({ length: 24 }, () => r.int(c.vocabSize)));
  }
});
