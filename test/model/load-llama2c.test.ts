// loadModel on llama2.c checkpoints: config, lazy tensors, vocabulary found beside the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { IoError } from '../../src/core/errors.js';
import { parameterCount } from '../../src/model/config.js';

const SHARED = resolve('..', 'shared');
const skip = existsSync(SHARED) ? false : 'needs ../shared (stories260K)';
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
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-l2c-'));
  try {
    const p = join(dir, 'model.bin');
    copyFileSync(CKPT, p);
    await assert.rejects(loadModel(p), (e: unknown) => e instanceof IoError && e.code === 'missing_file' && /tokenizer\.bin/.test(String(e.context.expected)) && e.context.file === p);
    const m = await loadModel(p, { tokenizer: resolve(SHARED, 'models/stories260K/tok512.bin') });
    assert.equal(m.tokenizer?.encode('Once')[0], 1);
    await m.close();
    const n = await loadModel(p, { tokenizer: null });
    assert.equal(n.tokenizer, null);
    await n.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
