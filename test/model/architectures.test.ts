// Architectures beyond stories260K through HF and GGUF: Qwen2 (q/k/v bias), Qwen3 (q/k norm,
// head_dim ≠ hidden/heads), Llama 3 RoPE scaling (rope_freqs tensor for llama.cpp), GQA. Each
// converts HF → GGUF → HF with identical tensors and config.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { saveModel } from '../../src/model/save.js';
import { llama3RopeFactors } from '../../src/model/rope-scaling.js';
import { ropeInvFreq } from '../../src/engine/rope.js';
import { openGgufFile } from '../../src/formats/io/index.js';
import { syntheticModel, tinyConfig } from './synthetic.js';
import type { ModelConfig } from '../../src/model/config.js';
import { withTempDir } from '../helpers.js';

const CASES: [string, Partial<ModelConfig>][] = [
  ['qwen2 with q/k/v bias', { architecture: 'qwen2', attentionBias: true, tiedEmbeddings: true }],
  ['qwen3 with q/k norm and head_dim 16', { architecture: 'qwen3', qkNorm: true, headDim: 16 }],
  ['llama 3 rope scaling', { ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 64 } }],
  ['mistral', { architecture: 'mistral', nKvHeads: 1 }],
];

for (const [label, over] of CASES) {
  test(`${label}: HF → GGUF → HF keeps tensors and config`, async () => {
    await withTempDir('bitscale-arch-', async (dir) => {
      const m = syntheticModel(tinyConfig(over), 3);
      await saveModel(m, join(dir, 'hf'), { format: 'hf' });
      const h = await loadModel(join(dir, 'hf'));
      assert.deepEqual(h.config, m.config);
      await saveModel(h, join(dir, 'm.gguf'), { format: 'gguf' });
      const g = await loadModel(join(dir, 'm.gguf'));
      const expectLayout = m.config.architecture.startsWith('qwen') ? 'half' : 'interleaved';
      assert.equal(g.config.ropeLayout, expectLayout);
      // mistral is written as GGUF "llama" (same graph), so it comes back as llama
      assert.deepEqual({ ...g.config, ropeLayout: 'half', architecture: m.config.architecture }, m.config);
      await saveModel(g, join(dir, 'back'), { format: 'hf' });
      const b = await loadModel(join(dir, 'back'));
      assert.deepEqual([...b.tensors.keys()], [...m.tensors.keys()]);
      for (const [name, t] of m.tensors) assert.deepEqual(await b.tensors.get(name)!.readF32(), await t.readF32(), name);
      await Promise.all([h.close(), g.close(), b.close()]);
    });
  });
}

test('llama3 rope_freqs divisors agree with the engine’s scaled inverse frequencies', async () => {
  const c = tinyConfig({ headDim: 64, nHeads: 2, hiddenSize: 128, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } });
  const f = llama3RopeFactors(c);
  const inv = ropeInvFreq(c);
  const base = ropeInvFreq({ ...c, ropeScaling: null });
  assert.equal(f[0], 1);
  assert.equal(f[31], 8);
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(base[i] / f[i] - inv[i]) <= 1e-6 * base[i], `pair ${i}`);
  await withTempDir('bitscale-arch-', async (dir) => {
    await saveModel(syntheticModel(c), join(dir, 'l3.gguf'), { format: 'gguf' });
    const g = await openGgufFile(join(dir, 'l3.gguf'));
    assert.deepEqual(g.info('rope_freqs.weight').shape, [32]);
    await g.close();
  });
});

test('sharded safetensors (index.json) and a lone .safetensors path load like the single file', async () => {
  const { writeSafetensorsFile, atomicWriteFile } = await import('../../src/formats/io/index.js');
  const { rmSync: rm, renameSync } = await import('node:fs');
  await withTempDir('bitscale-shard-', async (dir) => {
    const m = syntheticModel(tinyConfig({ nLayers: 3 }), 5);
    await saveModel(m, join(dir, 'hf'), { format: 'hf' });
    const names = [...m.tensors.keys()];
    const half = Math.ceil(names.length / 2);
    const weightMap: Record<string, string> = {};
    for (const [k, part] of [names.slice(0, half), names.slice(half)].entries()) {
      const file = `model-0000${k + 1}-of-00002.safetensors`;
      const entries = await Promise.all(part.map(async (n) => ({ name: n, dtype: 'F32' as const, shape: m.tensors.get(n)!.shape, data: await m.tensors.get(n)!.readF32() })));
      await writeSafetensorsFile(join(dir, 'hf', file), entries, { metadata: { format: 'pt' } });
      for (const n of part) weightMap[n] = file;
    }
    renameSync(join(dir, 'hf', 'model.safetensors'), join(dir, 'lone.safetensors'));
    await atomicWriteFile(join(dir, 'hf', 'model.safetensors.index.json'), JSON.stringify({ metadata: {}, weight_map: weightMap }));
    const s = await loadModel(join(dir, 'hf'));
    assert.deepEqual([...s.tensors.keys()], names);
    for (const [name, t] of m.tensors) assert.deepEqual(await s.tensors.get(name)!.readF32(), await t.readF32(), name);
    await s.close();
    // a lone file next to a config.json: put it back beside the config under another name
    renameSync(join(dir, 'lone.safetensors'), join(dir, 'hf', 'weights.safetensors'));
    rm(join(dir, 'hf', 'model.safetensors.index.json'));
    const one = await loadModel(join(dir, 'hf', 'weights.safetensors'));
    assert.equal(one.source.format, 'safetensors');
    assert.deepEqual(await one.tensors.get(names[3])!.readF32(), await m.tensors.get(names[3])!.readF32());
    await one.close();
  });
});

test('a vocabulary shorter than the embedding is padded with unused [PAD] tokens in GGUF', async () => {
  const { TOKEN_TYPE, spmVocabFromLlama2c } = await import('../../src/formats/tokenizer/vocab.js');
  const { SpmTokenizer } = await import('../../src/formats/tokenizer/spm.js');
  const enc = new TextEncoder();
  const pieces = ['<unk>', '\n<s>\n', '\n</s>\n', ...Array.from({ length: 256 }, (_, i) => `<0x${i.toString(16).toUpperCase().padStart(2, '0')}>`), ' ', 'a', ' a'].map((p) => enc.encode(p));
  const tok = new SpmTokenizer(spmVocabFromLlama2c({ maxTokenLength: 6, pieces, scores: Float32Array.from(pieces, (_, i) => -i) }));
  await withTempDir('bitscale-pad-', async (dir) => {
    const m = syntheticModel(tinyConfig({ vocabSize: 264 }), 1, tok);
    await saveModel(m, join(dir, 'p.gguf'), { format: 'gguf' });
    const g = await openGgufFile(join(dir, 'p.gguf'));
    const tokens = g.get('tokenizer.ggml.tokens') as string[];
    assert.equal(tokens.length, 264);
    assert.deepEqual(tokens.slice(261), ['\u2581a', '[PAD262]', '[PAD263]']);
    assert.equal((g.get('tokenizer.ggml.token_type') as number[])[263], TOKEN_TYPE.UNUSED);
    await g.close();
    const back = await loadModel(join(dir, 'p.gguf'));
    assert.deepEqual(back.tokenizer!.encode(' a a'), tok.encode(' a a'));
    await back.close();
  });
});

test('GGUF with an unknown architecture or a missing tensor: typed errors naming the key or tensor', async () => {
  const { writeGgufFile } = await import('../../src/formats/io/index.js');
  const { gv } = await import('../../src/formats/gguf/index.js');
  const { ConfigError, FormatError } = await import('../../src/core/errors.js');
  await withTempDir('bitscale-bad-', async (dir) => {
    const p = join(dir, 'falcon.gguf');
    await writeGgufFile(p, [['general.architecture', gv.str('falcon')]], [{ name: 'token_embd.weight', type: 'F32', shape: [4, 8], data: new Float32Array(32) }]);
    await assert.rejects(loadModel(p), (e: unknown) => e instanceof ConfigError && e.code === 'unsupported' && e.context.field === 'general.architecture' && e.context.file === p);
    const m = syntheticModel(tinyConfig({ architecture: 'llama', ropeLayout: 'interleaved' }), 2);
    const cut = { ...m, tensors: new Map([...m.tensors].filter(([n]) => n !== 'model.layers.1.self_attn.v_proj.weight')) };
    const q = join(dir, 'cut.gguf');
    await saveModel(cut, q, { format: 'gguf' });
    await assert.rejects(loadModel(q), (e: unknown) => e instanceof FormatError && e.code === 'missing_tensor' && e.context.tensor === 'model.layers.1.self_attn.v_proj.weight');
  });
});
