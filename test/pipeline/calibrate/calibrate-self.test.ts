// Self-generated calibration (--calib self): windows sampled from the float model at temperature 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ConfigError } from '../../../src/core/errors.js';
import { prepareHostModel } from '../../../src/engine/host.js';
import { LlamaEngine } from '../../../src/engine/model.js';
import { loadModel } from '../../../src/model/load.js';
import { selfCalibrationWindows } from '../../../src/pipeline/calibrate/windows.js';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { runImatrix } from '../../../src/pipeline/calibrate/calibrate.js';
import { readImatrix } from '../../../src/formats/imatrix/index.js';
import { SHARED, sharedSkip, withTempDir } from '../../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin', 'models/stories260K/tok512.bin');
const MODEL = resolve(SHARED, 'models/stories260K/stories260K.bin');
const TOK = resolve(SHARED, 'models/stories260K/tok512.bin');

/**
 * Sampling at temperature 1 makes E[−log p(sampled token)] equal the model's mean entropy; over
 * 16 × 63 samples the standard error is about 0.05 nats, so 0.2 nats is a 4σ bound. A greedy or
 * sharpened sampler gives an NLL far below the entropy, a flattened one far above.
 */
const NLL_ENTROPY_TOL = 0.2;

test('self-generated windows: BOS first, full length, seeded, and drawn from the model at temperature 1', { skip, timeout: 120_000 }, async () => {
  const w = await loadModel(MODEL, { tokenizer: TOK });
  const host = await prepareHostModel(w);
  await w.close();
  const T = 64;
  const a = await selfCalibrationWindows(host, { windows: 16, seqLen: T, seed: 3 });
  const b = await selfCalibrationWindows(host, { windows: 16, seqLen: T, seed: 3 });
  const c = await selfCalibrationWindows(host, { windows: 2, seqLen: T, seed: 4 });
  assert.deepEqual(a, b, 'same seed, same windows');
  assert.notDeepEqual(a.slice(0, 2), c, 'another seed, other windows');
  assert.equal(new Set(a.map((x) => x.join(','))).size, 16, 'windows differ from each other');
  const bos = host.config.bosTokenId!;
  for (const win of a) {
    assert.equal(win.length, T);
    assert.equal(win[0], bos);
  }

  const e = LlamaEngine.fromHost(host);
  const V = host.config.vocabSize;
  let nll = 0;
  let ent = 0;
  let n = 0;
  for (const win of a) {
    const logits = await e.forward(win);
    for (let t = 0; t + 1 < win.length; t++) {
      const row = logits.subarray(t * V, (t + 1) * V);
      let m = -Infinity;
      for (const v of row) m = Math.max(m, v);
      let z = 0;
      for (const v of row) z += Math.exp(v - m);
      const lz = m + Math.log(z);
      nll -= row[win[t + 1]] - lz;
      for (const v of row) ent -= Math.exp(v - lz) * (v - lz);
      n++;
    }
  }
  await e.close();
  nll /= n;
  ent /= n;
  assert.ok(Math.abs(nll - ent) < NLL_ENTROPY_TOL, `mean NLL of the samples ${nll.toFixed(3)} vs mean entropy ${ent.toFixed(3)}`);
});

test('a model without BOS cannot self-calibrate: typed error naming --calib', { skip }, async () => {
  const w = await loadModel(MODEL, { tokenizer: TOK });
  const host = await prepareHostModel(w);
  await w.close();
  const noBos = { ...host, config: { ...host.config, bosTokenId: null } };
  await assert.rejects(selfCalibrationWindows(noBos, { windows: 1, seqLen: 8, seed: 0 }), (e: unknown) => e instanceof ConfigError && e.code === 'bad_option' && /--calib/.test(JSON.stringify(e.context)));
});

test('quantize and imatrix with --calib self: reproducible bytes, source in the manifest and the imatrix', { skip, timeout: 240_000 }, async () => {
  await withTempDir('bitscale-self-', async (dir) => {
    const o = { model: MODEL, tokenizer: TOK, calib: 'self', windows: 4, seqLen: 48, format: 'gguf' as const, scheme: 'q4_0', method: 'gptq' as const, overwrite: true, checkLlamaCpp: false };
    const r1 = await quantizeModel({ ...o, out: join(dir, 'a.gguf') });
    await quantizeModel({ ...o, out: join(dir, 'b.gguf'), verify: false });
    assert.deepEqual(readFileSync(join(dir, 'a.gguf')), readFileSync(join(dir, 'b.gguf')), 'same seed, same bytes');
    const m = JSON.parse(readFileSync(`${join(dir, 'a.gguf')}.manifest.json`, 'utf8'));
    assert.match(m.calibration.source, /^self-generated/);
    assert.equal(m.calibration.windows, 4);
    assert.ok(r1.quality.kld > 0 && r1.quality.kld < 0.5, `held-out KLD ${r1.quality.kld}`);

    const im = await runImatrix({ model: MODEL, tokenizer: TOK, calib: 'self', windows: 4, seqLen: 48, out: join(dir, 'im.gguf'), overwrite: true });
    assert.match(im.source, /^self-generated/);
    assert.equal(im.tokens, 4 * 48);
    const back = await readImatrix(readFileSync(join(dir, 'im.gguf')), 'im.gguf');
    assert.deepEqual(back.datasets, [im.source]);
  });
});
