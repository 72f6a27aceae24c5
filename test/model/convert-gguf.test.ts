// llama2.c → GGUF: the file loads back with identical tensors, and llama.cpp (node-llama-cpp)
// greedy-generates exactly run.c's text from it, which checks the metadata, the Q/K permutation
// to llama.cpp's rotary layout and the embedded vocabulary against an independent runtime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { saveModel } from '../../src/model/save.js';
import { IoError } from '../../src/core/errors.js';
import { SHARED, sharedSkip, tempDir } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin', 'data/tinystories-sample.txt', 'golden/stories260K/greedy-256.txt');
const CKPT = resolve(SHARED, 'models/stories260K/stories260K.bin');

test('llama2.c → GGUF F32 → load: identical tensors, config and tokenizer; llama.cpp greedy text equals run.c', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-gguf-');
  const out = join(dir, 'stories260K.gguf');
  const m = await loadModel(CKPT);
  try {
    const r = await saveModel(m, out, { format: 'gguf', dtype: 'F32' });
    assert.equal(r.tensors, 47);
    const g = await loadModel(out);
    try {
      assert.equal(g.source.format, 'gguf');
      assert.deepEqual(g.config, m.config);
      assert.deepEqual([...g.tensors.keys()], [...m.tensors.keys()]);
      for (const [name, t] of m.tensors) {
        assert.deepEqual(await g.tensors.get(name)!.readF32(), await t.readF32(), name);
      }
      const text = readFileSync(resolve(SHARED, 'data/tinystories-sample.txt'), 'utf8');
      assert.deepEqual(g.tokenizer!.encode(text), m.tokenizer!.encode(text));
      assert.equal(g.tokenizer!.decode(g.tokenizer!.encode(text)), text);
    } finally {
      await g.close();
    }

    // the independent reference: llama.cpp loads the file and greedy-decodes from BOS
    const { getLlama } = await import('node-llama-cpp');
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
    const model = await llama.loadModel({ modelPath: out });
    // threads: 1 — with the default thread count evaluation stalled on this 2-core machine
    const ctx = await model.createContext({ contextSize: 512, threads: 1, flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } as never);
    const seq = ctx.getSequence();
    const ids: number[] = [];
    let tok = 1;
    // run.c -n 256 from BOS: 256 forward steps, each printing the argmax token, stopping at BOS
    for (let i = 0; i < 256; i++) {
      const res = await seq.controlledEvaluate([[tok as never, { generateNext: { token: true, options: { temperature: 0 } } }]] as never);
      const next = (res[0] as { next: { token: number } }).next.token;
      if (next === 1) break;
      ids.push(next);
      tok = next;
    }
    const golden = readFileSync(resolve(SHARED, 'golden/stories260K/greedy-256.txt'), 'utf8');
    assert.equal(m.tokenizer!.decode([1, ...ids]), golden);
    assert.equal(model.detokenize(ids as never), golden);
    await ctx.dispose();
    await model.dispose();
  } finally {
    await m.close();
  }
});

test('saveModel refuses to overwrite its input or an existing output', { skip }, async () => {
  const dir = tempDir('bitscale-gguf-');
  const m = await loadModel(CKPT);
  try {
    await assert.rejects(saveModel(m, CKPT, { format: 'gguf' }), (e: unknown) => e instanceof IoError && e.code === 'would_overwrite_input');
    const out = join(dir, 'a.gguf');
    await saveModel(m, out, { format: 'gguf', dtype: 'F16' });
    await assert.rejects(saveModel(m, out, { format: 'gguf' }), (e: unknown) => e instanceof IoError && e.code === 'exists');
    // F16 weights, F32 norms, as llama.cpp's converter writes them
    const g = await loadModel(out);
    assert.equal(g.tensors.get('model.layers.0.self_attn.q_proj.weight')!.dtype, 'F16');
    assert.equal(g.tensors.get('model.norm.weight')!.dtype, 'F32');
    await g.close();
  } finally {
    await m.close();
  }
});

test('F16 and BF16 GGUF load in llama.cpp and open with run.c’s greedy text', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-gguf-');
  const m = await loadModel(CKPT);
  const { getLlama } = await import('node-llama-cpp');
  const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const golden = readFileSync(resolve(SHARED, 'golden/stories260K/greedy-256.txt'), 'utf8');
  try {
    for (const dtype of ['F16', 'BF16'] as const) {
      const out = join(dir, `s-${dtype}.gguf`);
      await saveModel(m, out, { format: 'gguf', dtype });
      const model = await llama.loadModel({ modelPath: out });
      const ctx = await model.createContext({ contextSize: 64, threads: 1, flashAttention: false } as never);
      const seq = ctx.getSequence();
      const ids: number[] = [];
      let tok = 1;
      for (let i = 0; i < 24; i++) {
        const res = await seq.controlledEvaluate([[tok as never, { generateNext: { token: true, options: { temperature: 0 } } }]] as never);
        tok = (res[0] as { next: { token: number } }).next.token;
        ids.push(tok);
      }
      // 16-bit weights may change late tokens, not this opening
      assert.ok(golden.startsWith(m.tokenizer!.decode([1, ...ids])), dtype);
      await ctx.dispose();
      await model.dispose();
    }
  } finally {
    await m.close();
  }
});
