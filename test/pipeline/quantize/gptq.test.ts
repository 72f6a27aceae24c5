import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { saveModel } from '../../../src/model/save.js';
import { rotaryRowOrder } from '../../../src/model/permute.js';
import { openSafetensorsFile } from '../../../src/formats/io/index.js';
import { unpackGptqWeight, unpackGptqZeros } from '../../../src/formats/gptq/pack.js';
import { decodeF16Array } from '../../../src/numerics/float16.js';
import { randomWeights, tinyConfig } from '../../engine/fixtures.js';
import { SHARED, sharedSkip, withTempDir } from '../../helpers.js';

const skip = sharedSkip('models/stories260K/tok512.bin');
const TOK = resolve(SHARED, 'models/stories260K/tok512.bin');
// MatMulNBits (accuracy_level 0) dequantizes to fp32 exactly; only accumulation order differs
const ONNX_NBITS_LOGITS_ATOL = 1e-3;

/** A random llama2.c model whose dims are multiples of 32 (GPTQ-packable), with a real tokenizer. */
async function tinyModel(dir: string): Promise<string> {
  const c = tinyConfig({ vocabSize: 512, hiddenSize: 64, intermediateSize: 128, nHeads: 4, nKvHeads: 4, headDim: 16, tiedEmbeddings: true });
  const path = join(dir, 'tiny.bin');
  await saveModel(randomWeights(c, 5), path, { format: 'llama2c' });
  return path;
}

test('GPTQ-packed safetensors unpack (AutoGPTQ v1 layout) to exactly the weights the engine ran', { skip, timeout: 120_000 }, async () => {
  await withTempDir('bitscale-gq-', async (dir) => {
    const model = await tinyModel(dir);
    const out = join(dir, 'gptq');
    const r = await quantizeModel({ model, tokenizer: TOK, out, format: 'safetensors', scheme: 'int4-g32-asym', method: 'gptq', actOrder: true, windows: 4, seqLen: 32, keepHost: true, verify: false });
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.deepEqual(
      { m: cfg.quantization_config.quant_method, b: cfg.quantization_config.bits, g: cfg.quantization_config.group_size, d: cfg.quantization_config.desc_act, s: cfg.quantization_config.sym },
      { m: 'gptq', b: 4, g: 32, d: true, s: false },
    );
    const st = await openSafetensorsFile(join(out, 'model.safetensors'));
    try {
      const host = r.host!;
      const c = host.config;
      for (const lin of ['self_attn.q_proj', 'self_attn.v_proj', 'mlp.down_proj']) {
        const base = `model.layers.1.${lin}`;
        const qw = (await st.readTensor(`${base}.qweight`)).data as Int32Array;
        const [rowsPacked, N] = st.info(`${base}.qweight`).shape;
        const K = (rowsPacked * 32) / 4;
        const nG = K / 32;
        const codes = unpackGptqWeight(qw, N, K, 4);
        const zeros = unpackGptqZeros((await st.readTensor(`${base}.qzeros`)).data as Int32Array, N, nG, 4);
        const scales = decodeF16Array((await st.readTensor(`${base}.scales`)).data as Uint16Array);
        const gIdx = (await st.readTensor(`${base}.g_idx`)).data as Int32Array;
        const ours = host.tensors.get(`${base}.weight`)!;
        // q rows are stored in Hugging Face's rotate-half order
        const order = lin === 'self_attn.q_proj' ? rotaryRowOrder(c.nHeads, c.headDim, c.ropeLayout, 'half') : null;
        for (let n = 0; n < N; n++) {
          const src = order ? order[n] : n;
          for (let k = 0; k < K; k++) {
            const g = gIdx[k];
            const v = Math.fround(scales[g * N + n] * (codes[n * K + k] - zeros[n * nG + g]));
            assert.equal(v, ours[src * K + k], `${base} [${n}, ${k}]`);
          }
        }
      }
    } finally {
      await st.close();
    }
  });
});

test('--target-bpw: per-tensor ggml types meet the budget and the GGUF reloads exactly', { skip, timeout: 120_000 }, async () => {
  await withTempDir('bitscale-mx-', async (dir) => {
    const model = await tinyModel(dir);
    const r = await quantizeModel({ model, tokenizer: TOK, out: join(dir, 'm.gguf'), format: 'gguf', scheme: 'q4_0', method: 'rtn', targetBpw: 5.0, windows: 4, seqLen: 32, checkLlamaCpp: false });
    const plan = r.plan!.plan;
    assert.ok(plan.totalBits <= plan.budgetBits && plan.bitsPerWeight <= 5.0);
    assert.ok(new Set(plan.tensors.map((t) => t.type)).size >= 2, 'a mixed plan');
    const types = new Map(r.tensors.map((t) => [t.name, t.type]));
    for (const t of plan.tensors) assert.equal(types.get(t.name), t.type);
    assert.equal(r.quality.reloadMaxAbsLogitDiff, 0);
  });
});

test('ONNX output: MatMulNBits with the GPTQ codes runs in onnxruntime and matches the engine', { skip, timeout: 120_000 }, async () => {
  await withTempDir('bitscale-ox-', async (dir) => {
    const model = await tinyModel(dir);
    for (const scheme of ['int4-g32', 'int4-g32-asym']) {
      const out = join(dir, `${scheme}.onnx`);
      const r = await quantizeModel({ model, tokenizer: TOK, out, format: 'onnx', scheme, method: 'gptq', windows: 4, seqLen: 32 });
      assert.ok(existsSync(`${out}.data`) && existsSync(`${out}.manifest.json`));
      assert.ok(r.quality.reloadMaxAbsLogitDiff! < ONNX_NBITS_LOGITS_ATOL, `${scheme}: onnxruntime vs engine ${r.quality.reloadMaxAbsLogitDiff}`);
    }
  });
});
