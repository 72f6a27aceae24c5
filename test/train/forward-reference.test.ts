// The training graph's forward (src/train/model.ts, run through onnxruntime as the trainer runs it)
// against the float64 reference forward (src/model/reference.ts, itself checked against llama2.c):
// logits at every position for stories260K (a llama2.c checkpoint: interleaved rotary rows, tied
// embeddings, GQA) and for the built-in default model (Hugging Face layout, untied head).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { referenceForward } from '../../src/model/reference.js';
import type { ModelConfig } from '../../src/model/config.js';
import { EngineSession } from '../../src/engine/session.js';
import { buildTrainGraph, paramSpecs } from '../../src/train/model.js';

const SHARED = resolve('..', 'shared');
const STORIES = resolve(SHARED, 'models/stories260K/stories260K.bin');
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

async function compare(path: string, tokens: readonly number[]): Promise<void> {
  const m = await loadModel(path);
  try {
    const weights = new Map<string, Float32Array>();
    for (const p of paramSpecs(m.config)) weights.set(p.name, await m.tensors.get(p.name)!.readF32());
    const got = await trainGraphLogits(m.config, weights, tokens);
    const want = referenceForward(m.config, (n) => weights.get(n)!, tokens);
    assert.equal(got.length, want.length);
    assert.equal(got.length, tokens.length * m.config.vocabSize);
    let d = 0;
    let at = 0;
    for (let i = 0; i < got.length; i++) {
      const e = Math.abs(got[i] - want[i]);
      if (!(e <= d)) [d, at] = [e, i];
    }
    const V = m.config.vocabSize;
    assert.ok(d < TRAIN_FORWARD_VS_REFERENCE_ATOL, `max |train graph − reference| = ${d} at position ${Math.floor(at / V)}, token ${at % V}`);
  } finally {
    await m.close();
  }
}

test('training graph logits equal the reference forward on stories260K (interleaved RoPE, tied head, GQA)', { skip: !existsSync(STORIES) && 'needs ../shared (stories260K)' }, async () => {
  const tb = readFileSync(resolve(SHARED, 'golden/stories260K/tinystories-excerpt.tokens.i32'));
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
