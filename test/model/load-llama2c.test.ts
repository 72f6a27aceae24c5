// loadModel on llama2.c checkpoints: config, lazy tensors, vocabulary found beside the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { IoError } from '../../src/core/errors.js';
import { parameterCount } from '../../src/model/config.js';
import { SHARED, sharedSkip, tempDir, withTempDir } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin', 'models/stories260K/tok512.bin');
const CKPT = resolve(SHARED, 'models/stories260K/stories260K.bin');

test('stories260K loads with its tok512.bin vocabulary and lazy canonical tensors', { skip }, async () => {
  const m = await loadModel(CKPT);
  try {
    assert.equal(m.source.format, 'llama2c');
    assert.equal(m.config.ropeLayout, 'interleaved');
    assert.equal(m.config.tiedEmbeddings, true);
    assert.equal(m.config.headDim, 8);
    assert.equal(m.tokenizer?.vocabSize, 512);
    assert.equal(m.tensors.size, 1 + 5 * 9 + 1);
    assert.equal(parameterCount(m.config), 260032);
    const names = [...m.tensors.keys()];
    assert.equal(names[0], 'model.embed_tokens.weight');
    assert.equal(names.at(-1), 'model.norm.weight');
    assert.deepEqual(m.tensors.get('model.layers.4.mlp.down_proj.weight')!.shape, [64, 172]);
    // the final norm read through the loader equals the floats at its file offset
    const raw = readFileSync(CKPT);
    const off = 28 + 4 * (512 * 64 + 5 * (64 + 4096 + 2048 + 2048 + 4096 + 64 + 3 * 172 * 64));
    const want = new Float32Array(raw.buffer.slice(raw.byteOffset + off, raw.byteOffset + off + 256));
    assert.deepEqual(await m.tensors.get('model.norm.weight')!.readF32(), want);
  } finally {
    await m.close();
  }
});

test('a checkpoint without a vocabulary beside it fails naming what was searched', { skip }, async () => {
  await withTempDir('bitscale-l2c-', async (dir) => {
    const p = join(dir, 'model.bin');
    copyFileSync(CKPT, p);
    await assert.rejects(loadModel(p), (e: unknown) => e instanceof IoError && e.code === 'missing_file' && /tokenizer\.bin/.test(String(e.context.expected)) && e.context.file === p);
    const m = await loadModel(p, { tokenizer: resolve(SHARED, 'models/stories260K/tok512.bin') });
    assert.equal(m.tokenizer?.encode('Once')[0], 1);
    await m.close();
    const n = await loadModel(p, { tokenizer: null });
    assert.equal(n.tokenizer, null);
    await n.close();
  });
});

test('versioned checkpoints (v1 float32, v2 Q8_0) written by saveModel load back', { skip }, async () => {
  const dir = tempDir('bitscale-l2c-');
  const { saveModel } = await import('../../src/model/save.js');
  const m = await loadModel(CKPT);
  try {
    const tok = resolve(SHARED, 'models/stories260K/tok512.bin');
    await saveModel(m, join(dir, 'v1.bin'), { format: 'llama2c', llama2cVersion: 1 });
    await saveModel(m, join(dir, 'v2.bin'), { format: 'llama2c', llama2cVersion: 2 });
    const v1 = await loadModel(join(dir, 'v1.bin'), { tokenizer: tok });
    const v2 = await loadModel(join(dir, 'v2.bin'), { tokenizer: tok });
    assert.equal(v1.metadata['llama2c.version'], 1);
    assert.equal(v2.metadata['llama2c.group_size'], 64);
    for (const [name, t] of m.tensors) {
      const want = await t.readF32();
      assert.deepEqual(await v1.tensors.get(name)!.readF32(), want, name);
      const got = await v2.tensors.get(name)!.readF32();
      if (t.shape.length === 1) {
        assert.deepEqual(got, want, name); // norms stay float32
        continue;
      }
      // symmetric int8 with a float32 scale per 64 values: error at most half a step
      for (let g0 = 0; g0 < want.length; g0 += 64) {
        let amax = 0;
        for (let i = g0; i < g0 + 64; i++) amax = Math.max(amax, Math.abs(want[i]));
        for (let i = g0; i < g0 + 64; i++) assert.ok(Math.abs(got[i] - want[i]) <= (amax / 127) * 0.5001, `${name}[${i}]`);
      }
    }
    // 8.5 bits per weight for the quantized matrices: int8 + f32 scale per 64
    assert.equal((v2.tensors.get('model.layers.0.self_attn.q_proj.weight')!.byteLength * 8) / 4096, 8.5);
    await v1.close();
    await v2.close();
  } finally {
    await m.close();
  }
});

test('a tokenizer.json can stand in for tokenizer.bin', { skip }, async () => {
  const dir = tempDir('bitscale-l2c-');
  const { saveModel } = await import('../../src/model/save.js');
  const m = await loadModel(CKPT);
  await saveModel(m, join(dir, 'hf'), { format: 'hf' });
  const j = await loadModel(CKPT, { tokenizer: join(dir, 'hf', 'tokenizer.json') });
  assert.equal(j.tokenizer?.kind, 'hf');
  assert.deepEqual(j.tokenizer!.encode('Once upon a time'), m.tokenizer!.encode('Once upon a time'));
  await Promise.all([m.close(), j.close()]);
});
