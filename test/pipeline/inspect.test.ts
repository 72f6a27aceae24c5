// inspect: stories260K's header values and parameter count, through the pipeline and the CLI.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { writeFileSync, copyFileSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { inspectModel } from '../../src/pipeline/inspect.js';
import { FormatError, ConfigError } from '../../src/core/errors.js';
import { SHARED, sharedSkip, withTempDir } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin');
const CKPT = resolve(SHARED, 'models/stories260K/stories260K.bin');

test('stories260K inspects as 264,128 stored parameters with its header values', { skip }, async () => {
  const r = await inspectModel(CKPT);
  assert.equal(r.parameters, 264128);
  assert.equal(r.weightParameters, 260032);
  assert.equal(r.format, 'llama2c');
  assert.equal(r.fileBytes, 1056540);
  const c = r.config;
  assert.deepEqual([c.hiddenSize, c.intermediateSize, c.nLayers, c.nHeads, c.nKvHeads, c.vocabSize, c.maxSeqLen], [64, 172, 5, 8, 4, 512, 512]);
  assert.equal(r.tensors.length, 48);
  assert.deepEqual(r.dtypeTotals.F32, { tensors: 48, parameters: 264128, bytes: 1056512, bitsPerWeight: 32 });
  assert.equal(r.tokenizer?.vocabSize, 512);
  assert.equal(r.tokenizer?.sample?.ids.length, 6);
});

test('CLI: bitscale inspect --json prints a numeric parameters field', { skip }, () => {
  const p = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'inspect', CKPT, '--json'], { encoding: 'utf8' });
  assert.equal(p.status, 0, p.stderr);
  const j = JSON.parse(p.stdout);
  assert.equal(j.parameters, 264128);
  assert.equal(typeof j.parameters, 'number');
  const text = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'inspect', CKPT], { encoding: 'utf8' });
  assert.match(text.stdout, /parameters 264,128/);
  assert.match(text.stdout, /model\.layers\.4\.mlp\.down_proj\.weight\s+w2\[4\]\s+64x172\s+F32\s+44,032\s+32\.00/);
});

test('inspect of damaged inputs: typed errors naming the file', { skip }, async () => {
  await withTempDir('bitscale-insp-', async (dir) => {
    const cut = join(dir, 'cut.bin');
    writeFileSync(cut, readFileSync(CKPT).subarray(0, 500_000));
    await assert.rejects(inspectModel(cut), (e: unknown) => e instanceof FormatError && e.code === 'truncated' && e.context.file === cut);
    // without a vocabulary beside it, a llama2.c checkpoint still inspects
    const lone = join(dir, 'model.bin');
    copyFileSync(CKPT, lone);
    assert.equal((await inspectModel(lone)).tokenizer, null);
    const hf = join(dir, 'hf');
    const { mkdirSync } = await import('node:fs');
    mkdirSync(hf);
    writeFileSync(join(hf, 'config.json'), JSON.stringify({ architectures: ['FalconForCausalLM'], hidden_size: 8 }));
    await assert.rejects(inspectModel(hf), (e: unknown) => e instanceof ConfigError && e.code === 'unsupported' && e.context.field === 'architectures' && String(e.context.file).endsWith('config.json'));
    const p = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'inspect', cut], { encoding: 'utf8' });
    assert.equal(p.status, 1);
    assert.match(p.stderr, /\[truncated\].*cut\.bin/);
  });
});

test('GGUF with llama3 scaling: rope_freqs listed and counted apart from the weights; Q8_0 bits per weight', async () => {
  const { syntheticModel, tinyConfig } = await import('../model/synthetic.js');
  const { saveModel } = await import('../../src/model/save.js');
  const { quantizeGgml } = await import('../../src/quant/ggml/index.js');
  await withTempDir('bitscale-insp-', async (dir) => {
    const m = syntheticModel(tinyConfig({ ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } }));
    const out = join(dir, 'm.gguf');
    await saveModel(m, out, {
      format: 'gguf',
      tensorType: (n) => (n.endsWith('gate_proj.weight') ? 'Q8_0' : undefined),
      tensor: async (n, src) => (n.endsWith('gate_proj.weight') ? { type: 'Q8_0', shape: src.shape, bytes: quantizeGgml('Q8_0', await src.readF32(), src.shape[0], src.shape[1]) } : null),
    });
    const r = await inspectModel(out);
    assert.equal(r.weightParameters, 2 * 64 * 32 + 2 * (32 + 32 * 32 * 2 + 16 * 32 * 2 + 3 * 64 * 32 + 32) + 32);
    assert.equal(r.parameters, r.weightParameters + 4);
    assert.ok(r.tensors.some((t) => t.name.startsWith('rope_freqs.weight')));
    assert.equal(r.dtypeTotals.Q8_0.tensors, 2);
    assert.equal(r.dtypeTotals.Q8_0.bitsPerWeight, 8.5);
    assert.equal(r.config.ropeScaling?.type, 'llama3');
  });
});
