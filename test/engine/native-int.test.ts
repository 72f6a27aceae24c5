// Int-grid weights run natively: the int schemes of `eval --w-bits` (quantized from the float weights
// one tensor at a time, codes straight to MatMulNBits), GPTQ-packed and compressed-tensors checkpoints
// written by `bitscale quantize` (act-order ones through a column permutation), all equal to the
// dequantized engine within 1e-4 nats. Also: KV-cache decoding on low-bit weights equals the full
// forward; the native host keeps no weight matrix in memory and removes its weight file on close;
// the int8-activation mode is stated and measurably differs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LlamaEngine } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import { quantizeModel } from '../../src/pipeline/quantize/quantize.js';
import { parseScheme } from '../../src/quant/index.js';
import { randomTokens, randomWeights, tinyConfig } from './fixtures.js';
import { compareNative, writeTypedGguf } from './native-fixtures.js';

const MODEL = 'assets/default-model';
const KV_CACHE_ATOL = 2e-5;

function moby(w: { tokenizer: { encode(t: string, o: { bos: boolean }): number[] } | null }, n: number): number[] {
  return w.tokenizer!.encode(readFileSync(resolve(MODEL, 'README.md'), 'utf8'), { bos: false }).slice(0, n);
}

for (const s of ['int2-g32-asym', 'int3-g64', 'int4-g128', 'int4-g32-asym', 'int5-g32', 'int6-channel', 'int8-channel', 'int8-tensor']) {
  test(`--w-bits ${s} runs on its codes: native = fake-quant within 1e-4 nats`, { timeout: 60_000 }, async () => {
    const w = await loadModel(MODEL);
    const r = await compareNative(s, w, moby(w, 127), 128, { weights: parseScheme(s) });
    assert.equal(r.nbits, w.config.nLayers * 7, `${s}: every linear on MatMulNBits`);
    assert.equal(r.float, 1, `${s}: only the float lm_head`);
    await w.close();
  });
}

test('schemes without a kernel form (per-input-channel scales, NF4) run in float and match the same way', { timeout: 60_000 }, async () => {
  const w = await loadModel(MODEL);
  for (const s of ['int4-channel1', 'nf4-g64']) {
    const r = await compareNative(s, w, moby(w, 127), 128, { weights: parseScheme(s) });
    assert.equal(r.nbits, 0, s);
  }
  await w.close();
});

const CHECKPOINTS: [string, Parameters<typeof quantizeModel>[0]['format'], string, boolean][] = [
  ['gptq-rtn-int4-g128', 'safetensors', 'int4-g128', false],
  ['gptq-int3-g32-actorder', 'safetensors', 'int3-g32', true],
  ['ct-int4-g32-asym-actorder', 'compressed-tensors', 'int4-g32-asym', true],
  ['ct-int8-channel', 'compressed-tensors', 'int8-channel', false],
];
for (const [label, format, scheme, act] of CHECKPOINTS) {
  test(`${label} checkpoint runs on its stored codes${act ? ' (act-order columns permuted)' : ''}`, { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'bitscale-native-st-'));
    try {
      const out = join(dir, label);
      await quantizeModel({ model: MODEL, out, format, scheme, method: act ? 'gptq' : 'rtn', actOrder: act, windows: 1, seqLen: 32, verify: false });
      const m = await loadModel(out);
      try {
        const base = await loadModel(MODEL); // the safetensors checkpoint carries no tokenizer
        const ids = moby(base, 127);
        await base.close();
        const r = await compareNative(label, m, ids, 128);
        assert.equal(r.nbits, m.config.nLayers * 7, `${label}: every packed linear on MatMulNBits`);
        if (act) {
          const e = await LlamaEngine.create(m, { native: true });
          assert.ok(e.host.weightPaths!.some((p) => /act-order perm/.test(p.detail)), `${label}: act-order columns permuted`);
          await e.close();
        }
      } finally {
        await m.close();
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

test('KV-cache decoding on native Q4_K weights equals the full-sequence forward', { timeout: 60_000 }, async () => {
  const c = tinyConfig({ vocabSize: 300, hiddenSize: 256, intermediateSize: 256, nHeads: 4, nKvHeads: 2, headDim: 64, ropeLayout: 'half' });
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-native-kv-'));
  try {
    const path = join(dir, 'q4k.gguf');
    await writeTypedGguf(randomWeights(c, 23), path, 'Q4_K', true);
    const m = await loadModel(path);
    // a small unpacked bound splits the 8-bit coded mins into row parts too
    const e = await LlamaEngine.create(m, { native: { maxUnpackedFloats: 2000 } });
    assert.ok(e.host.weightPaths!.every((p) => p.path === 'nbits' && /8-bit mins/.test(p.detail)));
    const st = e.host.stored!.get('model.layers.0.mlp.up_proj.weight')!;
    assert.ok(st.kind === 'nbits' && st.parts[0].mins?.kind === 'coded' && st.parts[0].mins.parts.length > 1);
    const tokens = randomTokens(12, c.vocabSize, 24);
    const full = await e.forward(tokens);
    const dec = e.decoder(16);
    const parts = [await dec.step(tokens.slice(0, 5)), await dec.step(tokens.slice(5, 6)), await dec.step(tokens.slice(6))];
    const cached = new Float32Array(full.length);
    let o = 0;
    for (const p of parts) {
      cached.set(p, o);
      o += p.length;
    }
    let d = 0;
    for (let i = 0; i < full.length; i++) d = Math.max(d, Math.abs(full[i] - cached[i]));
    assert.ok(d < KV_CACHE_ATOL, `max |cached − full| = ${d}`);
    await e.close();
    await m.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('the native host holds no weight matrix in memory, and its weight file goes with the engine', { timeout: 60_000 }, async () => {
  const w = await loadModel(MODEL);
  const e = await LlamaEngine.create(w, { native: true, weights: parseScheme('q4_0') });
  const h = e.host;
  assert.ok([...h.tensors.values()].every((t) => t.length <= w.config.hiddenSize), 'only norms in memory');
  assert.equal(h.stored!.size, w.config.nLayers * 7 + 1);
  const st = [...h.stored!.values()][0];
  assert.equal(st.kind, 'nbits');
  const file = st.kind === 'nbits' && st.parts[0].B.data === null ? st.parts[0].B.stored.path : '';
  assert.ok(existsSync(file), 'weight file exists while the engine is open');
  await e.forward(moby(w, 20));
  await e.close();
  assert.ok(!existsSync(file), 'weight file removed on close');
  await w.close();
});

test('int8-activation MatMulNBits (accuracy level 4) is a separate, stated mode: close to, but not, the exact result', { timeout: 60_000 }, async () => {
  const w = await loadModel(MODEL);
  const ids = moby(w, 127);
  const exact = await LlamaEngine.create(w, { native: true, weights: parseScheme('int4-g32') });
  const fast = LlamaEngine.fromHost(exact.host, { accuracyLevel: 4 });
  const a = await exact.forward(ids);
  const b = await fast.forward(ids);
  let d = 0;
  for (let i = 0; i < a.length; i++) d = Math.max(d, Math.abs(a[i] - b[i]));
  assert.ok(d > 1e-4 && d < 0.5, `max logit difference int8 vs fp32: ${d}`);
  await fast.close();
  await exact.close();
  await w.close();
});
