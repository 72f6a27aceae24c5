// `bitscale quantize --format compressed-tensors`: pack-quantized safetensors (layout in
// src/formats/compressed-tensors/write.ts, from github.com/vllm-project/compressed-tensors) load back
// through loadModel to exactly the weights the quantize run computed; unsupported schemes fail
// before any output. (The packing by hand: test/formats/compressed-tensors/pack.test.ts.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { loadModel } from '../../../src/model/load.js';
import { storedBitsPerWeight } from '../../../src/model/tensor-source.js';
import { openSafetensorsFile, writeSafetensorsFile } from '../../../src/formats/io/index.js';
import { saveModel } from '../../../src/model/save.js';
import { rotaryRowOrder } from '../../../src/model/permute.js';
import { randomWeights, tinyConfig } from '../../engine/fixtures.js';
import { SHARED, sharedSkip, withTempDir } from '../../helpers.js';

const MODEL = 'assets/default-model';
const skip = sharedSkip('models/stories260K/tok512.bin');
const TOK = resolve(SHARED, 'models/stories260K/tok512.bin');

async function roundTrip(scheme: string, method: 'gptq' | 'rtn', expect: { bits: number; strategy: string; groupSize: number | null; symmetric: boolean; bpw: [number, number] }) {
  await withTempDir('bitscale-ct-', async (dir) => {
    const out = join(dir, 'ct');
    const r = await quantizeModel({ model: MODEL, out, format: 'compressed-tensors', scheme, method, windows: 2, seqLen: 32, keepHost: true, verify: method === 'rtn' });
    const host = r.host!;
    if (method === 'rtn') assert.ok(r.quality.reloadMaxAbsLogitDiff !== null && r.quality.reloadMaxAbsLogitDiff < 0.05, `reload logit diff ${r.quality.reloadMaxAbsLogitDiff}`);
    assert.ok(existsSync(join(out, 'bitscale-manifest.json')) && existsSync(join(out, 'tokenizer.json')));
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    const qc = cfg.quantization_config;
    assert.equal(qc.quant_method, 'compressed-tensors');
    assert.equal(qc.format, 'pack-quantized');
    assert.equal(qc.quantization_status, 'compressed');
    assert.deepEqual(qc.ignore, ['lm_head']);
    assert.deepEqual(qc.config_groups.group_0.targets, ['Linear']);
    const wq = qc.config_groups.group_0.weights;
    assert.deepEqual(
      { num_bits: wq.num_bits, type: wq.type, symmetric: wq.symmetric, strategy: wq.strategy, group_size: wq.group_size, dynamic: wq.dynamic },
      { num_bits: expect.bits, type: 'int', symmetric: expect.symmetric, strategy: expect.strategy, group_size: expect.groupSize, dynamic: false },
    );
    const st = await openSafetensorsFile(join(out, 'model.safetensors'));
    const b = 'model.layers.0.mlp.down_proj';
    const [N, K] = [128, 384];
    const nG = expect.groupSize ? K / expect.groupSize : 1;
    assert.deepEqual(st.info(`${b}.weight_packed`).shape, [N, (K * expect.bits) / 32]);
    assert.equal(st.info(`${b}.weight_packed`).dtype, 'I32');
    assert.deepEqual(st.info(`${b}.weight_scale`).shape, [N, nG]);
    assert.deepEqual(Array.from((await st.readTensor(`${b}.weight_shape`)).data as BigInt64Array, Number), [N, K]);
    assert.equal(st.has(`${b}.weight_zero_point`), !expect.symmetric);
    if (!expect.symmetric) assert.deepEqual(st.info(`${b}.weight_zero_point`).shape, [(N * expect.bits) / 32, nG]);
    assert.equal(st.has(`${b}.weight`), false);
    await st.close();
    const m = await loadModel(out);
    try {
      let linears = 0;
      for (const [name, src] of m.tensors) {
        if (!/_proj\.weight$/.test(name)) continue;
        linears++;
        const bpw = storedBitsPerWeight(src);
        assert.ok(bpw > expect.bpw[0] && bpw < expect.bpw[1], `${name}: ${bpw} bits per weight as stored`);
        const want = host.tensors.get(name)!;
        const got = await src.readF32();
        for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) assert.fail(`${name}[${i}]: loaded ${got[i]}, quantized ${want[i]}`);
      }
      assert.equal(linears, host.config.nLayers * 7);
    } finally {
      await m.close();
    }
  });
}

test('default model, GPTQ int4-g128 → compressed-tensors → loadModel: every linear equals the GPTQ weights exactly', { timeout: 60_000 }, async () => {
  await roundTrip('int4-g128', 'gptq', { bits: 4, strategy: 'group', groupSize: 128, symmetric: true, bpw: [4, 4.2] });
});

test('default model, RTN int8-channel and int4-g64-asym → compressed-tensors: exact reload, zero points packed along rows', { timeout: 60_000 }, async () => {
  await roundTrip('int8-channel', 'rtn', { bits: 8, strategy: 'channel', groupSize: null, symmetric: true, bpw: [8, 8.2] });
  await roundTrip('int4-g64-asym', 'rtn', { bits: 4, strategy: 'group', groupSize: 64, symmetric: false, bpw: [4, 4.5] });
});

test('unsupported schemes fail with a ConfigError before any output', { timeout: 30_000 }, async () => {
  await withTempDir('bitscale-ct-bad-', async (dir) => {
    const out = join(dir, 'ct');
    await assert.rejects(quantizeModel({ model: MODEL, out, format: 'compressed-tensors', scheme: 'int3-g128', method: 'rtn' }), { name: 'ConfigError', code: 'unsupported' });
    await assert.rejects(quantizeModel({ model: MODEL, out, format: 'compressed-tensors', scheme: 'q4_0', method: 'rtn' }), { name: 'ConfigError', code: 'bad_option' });
    // 96 divides 384 (down_proj) but not 128 (q_proj): named tensor, expected, found
    await assert.rejects(
      quantizeModel({ model: MODEL, out, format: 'compressed-tensors', scheme: 'int4-g96', method: 'rtn' }),
      (e: Error & { code?: string; context?: { tensor?: string; expected?: string } }) => e.name === 'ConfigError' && e.code === 'unsupported' && /q_proj/.test(e.context?.tensor ?? '') && /96/.test(e.context?.expected ?? ''),
    );
    assert.deepEqual(readdirSync(dir), [], 'no output or temporary directory left behind');
  });
});

test('llama2.c model (interleaved RoPE), GPTQ act-order int4-g32-asym: q/k rows in rotate-half order, weight_g_idx, exact reload', { skip, timeout: 60_000 }, async () => {
  await withTempDir('bitscale-ct-ll-', async (dir) => {
    const c = tinyConfig({ vocabSize: 512, hiddenSize: 64, intermediateSize: 128, nHeads: 4, nKvHeads: 4, headDim: 16, tiedEmbeddings: true });
    const model = join(dir, 'tiny.bin');
    await saveModel(randomWeights(c, 5), model, { format: 'llama2c' });
    const out = join(dir, 'ct');
    // verify: the pipeline itself reloads and compares every linear exactly (checkPackedLinears)
    const r = await quantizeModel({ model, tokenizer: TOK, out, format: 'compressed-tensors', scheme: 'int4-g32-asym', method: 'gptq', actOrder: true, windows: 2, seqLen: 32, keepHost: true });
    const host = r.host!;
    assert.notEqual(host.config.ropeLayout, 'half');
    const qc = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8')).quantization_config;
    assert.equal(qc.config_groups.group_0.weights.actorder, 'group');
    const m = await loadModel(out);
    try {
      assert.equal(m.config.ropeLayout, 'half');
      const name = 'model.layers.1.self_attn.q_proj.weight';
      const order = rotaryRowOrder(c.nHeads, c.headDim, host.config.ropeLayout, 'half');
      const want = host.tensors.get(name)!;
      const got = await m.tensors.get(name)!.readF32();
      const K = c.hiddenSize;
      for (let row = 0; row < order.length; row++) {
        for (let k = 0; k < K; k++) if (got[row * K + k] !== want[order[row] * K + k]) assert.fail(`${name}[${row}, ${k}]`);
      }
    } finally {
      await m.close();
    }
    const st = await openSafetensorsFile(join(out, 'model.safetensors'));
    const gi = (await st.readTensor('model.layers.0.mlp.up_proj.weight_g_idx')).data as Int32Array;
    await st.close();
    assert.ok(gi.some((g, k) => g !== Math.floor(k / 32)), 'act-order groups are not the default ⌊k/G⌋');
  });
});

test('malformed pack-quantized checkpoints: typed errors naming the tensor or config field', { timeout: 30_000 }, async () => {
  await withTempDir('bitscale-ct-mal-', async (dir) => {
    const out = join(dir, 'ct');
    await quantizeModel({ model: MODEL, out, format: 'compressed-tensors', scheme: 'int4-g128-asym', method: 'rtn', verify: false });
    const st = await openSafetensorsFile(join(out, 'model.safetensors'));
    const tensors = [];
    // up_proj: N = 384, K = 128, one group: zero points int32 [384·4/32, 1] stored transposed
    const bad = 'model.layers.0.mlp.up_proj.weight_zero_point';
    for (const n of st.names()) {
      const t = await st.readTensor(n);
      tensors.push({ name: n, dtype: t.dtype, shape: n === bad ? [t.shape[1], t.shape[0]] : t.shape, data: t.data });
    }
    await st.close();
    const broken = join(dir, 'broken');
    mkdirSync(broken);
    await writeSafetensorsFile(join(broken, 'model.safetensors'), tensors as never);
    const cfgText = readFileSync(join(out, 'config.json'), 'utf8');
    writeFileSync(join(broken, 'config.json'), cfgText);
    await assert.rejects(loadModel(broken), (e: Error & { code?: string; context?: { tensor?: string; expected?: string; found?: string } }) =>
      e.name === 'FormatError' && e.code === 'shape_mismatch' && e.context?.tensor === bad && e.context.expected === '[48, 1]' && e.context.found === '[1, 48]');
    const cfg = JSON.parse(cfgText);
    cfg.quantization_config.config_groups.group_0.weights.num_bits = 3;
    writeFileSync(join(out, 'config.json'), JSON.stringify(cfg));
    await assert.rejects(loadModel(out), (e: Error & { code?: string; context?: { field?: string } }) => e.name === 'ConfigError' && e.context?.field === 'quantization_config.config_groups.group_0.weights.num_bits');
    cfg.quantization_config.config_groups.group_0.weights.num_bits = 4;
    cfg.quantization_config.format = 'float-quantized';
    writeFileSync(join(out, 'config.json'), JSON.stringify(cfg));
    await assert.rejects(loadModel(out), { name: 'ConfigError', code: 'unsupported' });
  });
});
