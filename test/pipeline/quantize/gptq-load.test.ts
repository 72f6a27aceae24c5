// GPTQ safetensors written by `bitscale quantize --method gptq --format safetensors` load back
// through loadModel (formats/gptq/read.ts): every linear dequantizes to exactly the weights the
// quantize run computed, and malformed packed tensors give typed errors naming the tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { loadModel } from '../../../src/model/load.js';
import { storedBitsPerWeight } from '../../../src/model/tensor-source.js';
import { openSafetensorsFile, writeSafetensorsFile } from '../../../src/formats/io/index.js';
import { tempDir } from '../../helpers.js';

const MODEL = 'assets/default-model';

test('default model, GPTQ int4-g128 → safetensors → loadModel: dequantized weights equal the GPTQ weights exactly', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-gql-');
  const out = join(dir, 'gptq');
  const r = await quantizeModel({ model: MODEL, out, format: 'safetensors', scheme: 'int4-g128', method: 'gptq', windows: 4, seqLen: 64, keepHost: true, verify: false });
  const host = r.host!;
  assert.equal(host.config.ropeLayout, 'half', 'the default model is a rotate-half HF checkpoint (no row permutation to undo)');
  const m = await loadModel(out);
  try {
    assert.deepEqual((m.metadata['hf.quantization_config'] as { quant_method: string }).quant_method, 'gptq');
    let linears = 0;
    for (const [name, src] of m.tensors) {
      const want = host.tensors.get(name)!;
      const got = await src.readF32();
      assert.equal(got.length, want.length, name);
      if (/_proj\.weight$/.test(name)) {
        linears++;
        const bpw = storedBitsPerWeight(src);
        assert.ok(bpw > 4 && bpw < 4.5, `${name}: ${bpw} bits per weight as stored`);
        for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) assert.fail(`${name}[${i}]: loaded ${got[i]}, GPTQ ${want[i]}`);
      }
    }
    assert.equal(linears, host.config.nLayers * 7);
  } finally {
    await m.close();
  }

  // a qzeros tensor of the wrong shape: typed error naming the tensor, expected and found
  const st = await openSafetensorsFile(join(out, 'model.safetensors'));
  const names = st.names();
  const tensors = [];
  for (const n of names) {
    const t = await st.readTensor(n);
    const bad = n === 'model.layers.0.mlp.up_proj.qzeros';
    tensors.push({ name: n, dtype: t.dtype, shape: bad ? [t.shape[0] * 2, t.shape[1] / 2] : t.shape, data: t.data });
  }
  await st.close();
  const broken = join(dir, 'broken');
  mkdirSync(broken);
  await writeSafetensorsFile(join(broken, 'model.safetensors'), tensors as never);
  writeFileSync(join(broken, 'config.json'), readFileSync(join(out, 'config.json')));
  await assert.rejects(loadModel(broken), (e: Error & { code?: string }) => e.code === 'shape_mismatch' && e.message.includes('model.layers.0.mlp.up_proj.qzeros'));
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  cfg.quantization_config.bits = 5;
  writeFileSync(join(broken, 'config.json'), JSON.stringify(cfg));
  await assert.rejects(loadModel(broken), { code: 'bad_config' });
});

test('quantize --format safetensors verifies its own output: exact reload of every linear, reloaded logits reported', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-gqv-');
  const r = await quantizeModel({ model: MODEL, out: join(dir, 'g'), format: 'safetensors', scheme: 'int4-g128', method: 'gptq', windows: 2, seqLen: 32 });
  // the linears reload bit for bit (checked inside quantizeModel) and the measured model already
  // holds the F16 embeddings/norms the checkpoint stores: the reloaded logits agree to rounding
  assert.ok(r.quality.reloadMaxAbsLogitDiff !== null && r.quality.reloadMaxAbsLogitDiff < 1e-4, `reload logit diff ${r.quality.reloadMaxAbsLogitDiff}`);
  // the folder is complete: tokenizer and generation config beside the weights, so eval/generate run on it
  for (const f of ['tokenizer.json', 'tokenizer_config.json', 'generation_config.json']) assert.ok(existsSync(join(dir, 'g', f)), f);
  const back = await loadModel(join(dir, 'g'));
  const orig = await loadModel(MODEL);
  try {
    assert.ok(back.tokenizer, 'the GPTQ folder loads with its tokenizer');
    assert.deepEqual(back.tokenizer.encode('Call me Ishmael.', { bos: false }), orig.tokenizer!.encode('Call me Ishmael.', { bos: false }));
  } finally {
    await back.close();
    await orig.close();
  }
  const m = JSON.parse(readFileSync(join(dir, 'g', 'bitscale-manifest.json'), 'utf8'));
  assert.equal(m.quality.reloadMaxAbsLogitDiff, r.quality.reloadMaxAbsLogitDiff);
});
