import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { quantizeModel, TOOL_VERSION } from '../../../src/pipeline/quantize/quantize.js';
import { runImatrix } from '../../../src/pipeline/calibrate/calibrate.js';
import { readImatrix, importance } from '../../../src/formats/imatrix/index.js';
import { openGgufFile } from '../../../src/formats/io/index.js';
import { loadModel } from '../../../src/model/load.js';
import { saveModel } from '../../../src/model/save.js';
import { sharedPath, sharedSkip, tempDir } from '../../helpers.js';

// llama.cpp's quantizer through koffi (dev dependencies): the byte reference where it loads
let llamaCpp: typeof import('../../reference/llamacpp-quantize.js') | null = null;
let llamaCppSkip: string | false = false;
try {
  llamaCpp = await import('../../reference/llamacpp-quantize.js');
  if (!existsSync(llamaCpp.libllamaPath())) llamaCppSkip = 'libllama of node-llama-cpp not found';
} catch {
  llamaCppSkip = 'koffi or node-llama-cpp is not installed';
}

const skip = sharedSkip('models/stories260K/stories260K.bin', 'models/stories260K/tok512.bin');
const MODEL = sharedPath('models/stories260K/stories260K.bin');
const TOK = sharedPath('models/stories260K/tok512.bin');
const base = { model: MODEL, tokenizer: TOK, windows: 4, seqLen: 48, overwrite: true } as const;

test('GGUF Q4_0 by GPTQ: reloads exactly, GPTQ beats RTN, fallbacks as llama.cpp, manifest complete', { skip, timeout: 240_000 }, async () => {
  const dir = tempDir('bitscale-q-');
  const outG = join(dir, 'g.gguf');
  const g = await quantizeModel({ ...base, out: outG, format: 'gguf', scheme: 'q4_0', method: 'gptq', checkLlamaCpp: false });
  const r = await quantizeModel({ ...base, out: join(dir, 'r.gguf'), format: 'gguf', scheme: 'q4_0', method: 'rtn', checkLlamaCpp: false });
  assert.equal(g.quality.reloadMaxAbsLogitDiff, 0, 'the GGUF decodes to exactly the weights the pipeline used');
  assert.ok(g.quality.kld < r.quality.kld, `GPTQ KL ${g.quality.kld} vs RTN ${r.quality.kld}`);
  // stories260K: K = 172 for down_proj is not a multiple of 32 → F16, as llama.cpp does; the tied
  // embedding is the output, Q6_K in llama.cpp's Q4_0, and falls back to Q8_0 (rows of 64)
  assert.equal(g.fallbacks.length, 6);
  assert.ok(g.fallbacks.includes('model.embed_tokens.weight: Q6_K → Q8_0'), g.fallbacks.join('; '));
  assert.ok(g.tensors.filter((t) => t.type === 'Q4_0').every((t) => t.method === 'gptq'));

  const m = JSON.parse(readFileSync(`${outG}.manifest.json`, 'utf8'));
  assert.equal(m.version, TOOL_VERSION);
  assert.equal(m.version, JSON.parse(readFileSync('package.json', 'utf8')).version);
  assert.match(m.input.sha256[MODEL], /^[0-9a-f]{64}$/);
  assert.equal(m.calibration.seed, 0);
  assert.equal(m.settings.method, 'gptq');
  assert.equal(m.tensors.length, 36);
  assert.equal(m.settings.fileType, 'Q4_0');
});

test('same inputs and seed give the same bytes; another seed changes GPTQ output', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-q-');
  const run = (out: string, seed: number) => quantizeModel({ ...base, out: join(dir, out), format: 'gguf', scheme: 'q8_0', method: 'gptq', seed, verify: false });
  await run('a.gguf', 1);
  await run('b.gguf', 1);
  await run('c.gguf', 2);
  const a = readFileSync(join(dir, 'a.gguf'));
  assert.ok(a.equals(readFileSync(join(dir, 'b.gguf'))));
  assert.ok(!a.equals(readFileSync(join(dir, 'c.gguf'))));
});

test('imatrix: collected statistics written as GGUF and legacy, used by RTN for ggml rounding', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-im-');
  const f = join(dir, 'im.gguf');
  await runImatrix({ model: MODEL, tokenizer: TOK, out: f, windows: 3, seqLen: 32, overwrite: true });
  await runImatrix({ model: MODEL, tokenizer: TOK, out: join(dir, 'im.dat'), format: 'dat', windows: 3, seqLen: 32, overwrite: true });
  const im = await readImatrix(readFileSync(f));
  const dat = await readImatrix(readFileSync(join(dir, 'im.dat')));
  assert.equal(im.entries.size, 35);
  const q = im.entries.get('blk.0.attn_q.weight')!;
  assert.deepEqual(q.counts, [96]);
  assert.equal(q.sums.length, 64);
  // the two formats agree on E[x²]
  const a = importance(q);
  const b = importance(dat.entries.get('blk.0.attn_q.weight')!);
  a.forEach((v, i) => assert.ok(Math.abs(v - b[i]) <= 1e-6 * Math.abs(v)));
  const plain = await quantizeModel({ ...base, out: join(dir, 'p.gguf'), format: 'gguf', scheme: 'q4_0', method: 'rtn', verify: false });
  const withIm = await quantizeModel({ ...base, out: join(dir, 'i.gguf'), format: 'gguf', scheme: 'q4_0', method: 'rtn', imatrix: f, verify: false });
  for (const r of [plain, withIm]) {
    assert.deepEqual(new Set(r.tensors.map((t) => t.method)), new Set(['rtn']));
    assert.equal(r.tensors.filter((t) => t.type === 'Q4_0').length, 30, 'every linear but the five 172-wide down_proj');
  }
  assert.ok(!readFileSync(join(dir, 'p.gguf')).equals(readFileSync(join(dir, 'i.gguf'))), 'the imatrix changes the rounding');
});

test('imatrix RTN to Q4_0 writes the blocks llama.cpp\'s own quantizer writes with that imatrix', { skip: skip || llamaCppSkip, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-imlc-');
  const f = join(dir, 'im.gguf');
  await runImatrix({ model: MODEL, tokenizer: TOK, out: f, windows: 3, seqLen: 32, overwrite: true });
  const im = await readImatrix(readFileSync(f));
  await quantizeModel({ ...base, out: join(dir, 'p.gguf'), format: 'gguf', scheme: 'q4_0', method: 'rtn', verify: false });
  await quantizeModel({ ...base, out: join(dir, 'i.gguf'), format: 'gguf', scheme: 'q4_0', method: 'rtn', imatrix: f, verify: false });
  // llama.cpp's llama_model_quantize (Q4_0, pure) on the float model with the same imatrix
  const weights = await loadModel(MODEL, { tokenizer: TOK });
  try {
    await saveModel(weights, join(dir, 'f32.gguf'), { format: 'gguf', dtype: 'F32' });
  } finally {
    await weights.close();
  }
  await llamaCpp!.llamaCppQuantize(join(dir, 'f32.gguf'), join(dir, 'lc.gguf'), { ftype: 'Q4_0', pure: true, nthread: 1, imatrix: new Map([...im.entries].map(([k, e]) => [k, importance(e)])) });
  const [ours, plainG, ref] = await Promise.all(['i.gguf', 'p.gguf', 'lc.gguf'].map((n) => openGgufFile(join(dir, n))));
  try {
    let compared = 0;
    let plainDiffers = 0;
    for (const t of ours.tensors) {
      if (t.type !== 'Q4_0' || !t.name.startsWith('blk.')) continue;
      assert.equal(ref.info(t.name).type, 'Q4_0', t.name);
      const want = await ref.readBytes(t.name);
      assert.deepEqual(await ours.readBytes(t.name), want, `${t.name}: imatrix RTN vs llama.cpp`);
      if (!Buffer.from(await plainG.readBytes(t.name)).equals(Buffer.from(want))) plainDiffers++;
      compared++;
    }
    assert.equal(compared, 30);
    assert.ok(plainDiffers > 0, 'without the imatrix the blocks are not llama.cpp\'s imatrix blocks');
  } finally {
    await Promise.all([ours, plainG, ref].map((g) => g.close()));
  }
});

test('fake-quant safetensors reload to the quantized weights; impossible GPTQ packing is a typed error before any work', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-fq-');
  const r = await quantizeModel({ ...base, out: join(dir, 'fq'), format: 'fakequant', scheme: 'int4-g32-asym', method: 'awq' });
  assert.ok(r.quality.reloadMaxAbsLogitDiff! < 1e-3, `reload ${r.quality.reloadMaxAbsLogitDiff}`);
  assert.ok(r.awq.length >= 3 && r.awq.every((a) => a.lossAwq <= a.lossRtn));
  assert.ok(existsSync(join(dir, 'fq', 'bitscale-manifest.json')));
  await assert.rejects(
    quantizeModel({ ...base, out: join(dir, 'st'), format: 'safetensors', scheme: 'int4-g32', method: 'gptq' }),
    (e: any) => e.code === 'unsupported' && /mlp|proj/.test(e.context.tensor),
  );
  await assert.rejects(quantizeModel({ ...base, out: join(dir, 'x.gguf'), format: 'gguf', scheme: 'int4-g32', method: 'rtn' }), { code: 'bad_option' });
});
