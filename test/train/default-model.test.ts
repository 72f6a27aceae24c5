import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { parameterCount } from '../../src/model/config.js';
import { mobyDickText, tokenize, unigramLoss } from '../../src/train/data.js';
import { Trainer, TRAIN_DEFAULTS } from '../../src/train/trainer.js';
import { paramSpecs } from '../../src/train/graph.js';

const DIR = join('assets', 'default-model');

test('the built-in default model loads, is small, and beats the unigram baseline on held-out Moby-Dick', { skip: !existsSync(join(DIR, 'model.safetensors')) && 'assets/default-model not generated' }, async () => {
  const bytes = ['model.safetensors', 'config.json', 'tokenizer.json'].reduce((a, f) => a + statSync(join(DIR, f)).size, 0);
  assert.ok(bytes < 10 * 1024 * 1024, `${bytes} bytes`);
  const m = await loadModel(DIR);
  try {
    const n = parameterCount(m.config);
    assert.ok(n >= 0.5e6 && n <= 2e6, `${n} parameters`);
    assert.ok(m.tokenizer, 'tokenizer.json loads');
    const text = mobyDickText();
    const sample = 'Call me Ishmael. Some years ago—never mind how long precisely';
    assert.equal(m.tokenizer.decode(m.tokenizer.encode(sample, { bos: false })), sample);
    // the same split the training run used: the last 5% of the tokens
    const split = tokenize(text, m.tokenizer, 0.05);
    const weights = new Map<string, Float32Array>();
    for (const p of paramSpecs(m.config)) weights.set(p.name, await m.tensors.get(p.name)!.readF32());
    const tr = await Trainer.create(m.config, { ...TRAIN_DEFAULTS, batch: 8, context: 128 }, weights);
    const val = await tr.evaluate(split.val, 4);
    await tr.release();
    const uni = unigramLoss(split.train, split.val, m.tokenizer.vocabSize);
    assert.ok(val < uni - 1, `validation ${val} vs unigram ${uni}`);
  } finally {
    await m.close();
  }
});
