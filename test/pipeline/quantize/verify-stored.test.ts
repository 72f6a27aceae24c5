// Checks on the written file (src/pipeline/quantize/verify-stored.ts), the default for GGUF output
// of models over 1 GiB in float32: the streamed run writes the same bytes as the in-memory one, and
// its KL divergence, top-1 agreement and llama.cpp check, measured on the file by engines over the
// stored weights, equal the in-memory path's (which measures the engine's dequantized copy of the
// same weights). Which path a run takes, and the up-front refusal of in-memory runs larger than
// the machine.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { tempDir } from '../../helpers.js';
import { quantizeModel, checkInMemoryFits, type QuantizeOptions } from '../../../src/pipeline/quantize/quantize.js';
import { float32Bytes, STORED_VERIFY_BYTES, verifiesStoredFile } from '../../../src/pipeline/quantize/verify-stored.js';
import type { ModelWeights, TensorSource } from '../../../src/model/weights.js';
import { ConfigError, NumericError } from '../../../src/core/errors.js';
import { cliIn } from '../../cli-run.js';
import { importLlamaCpp } from '../../../src/eval/llamacpp.js';
import { checkedPositions, LLAMACPP_LOGITS_PER_WINDOW } from '../../../src/pipeline/quantize/verify-llamacpp.js';

const MODEL = resolve('assets/default-model');
/** float rounding between an engine over dequantized float32 weights and one over the stored codes (MatMulNBits, fp32 accuracy) */
const KL_REL = 1e-4;
const LOGIT_ABS = 1e-3;

test('RTN Q4_K_M GGUF checked on the written file: same bytes, same KL / top-1 / llama.cpp figures as the in-memory checks', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-vs-');
  const o: QuantizeOptions = { model: MODEL, out: join(dir, 'm.gguf'), format: 'gguf', scheme: 'q4_k_m', method: 'rtn', seed: 3 };
  const mem = await quantizeModel({ ...o, verifyOn: 'memory' });
  const file = await quantizeModel({ ...o, out: join(dir, 'f.gguf'), verifyOn: 'file' });
  assert.deepEqual(readFileSync(join(dir, 'f.gguf')), readFileSync(join(dir, 'm.gguf')));
  assert.equal(mem.quality.verifiedOn, undefined);
  assert.equal(file.quality.verifiedOn, 'file');
  assert.equal(file.quality.windows, 2);
  assert.ok(mem.quality.kld > 0 && Number.isFinite(mem.quality.kld));
  assert.ok(Math.abs(file.quality.kld - mem.quality.kld) <= KL_REL * mem.quality.kld, `KL ${file.quality.kld} vs ${mem.quality.kld}`);
  assert.equal(file.quality.top1Agreement, mem.quality.top1Agreement);
  assert.ok(Math.abs(file.quality.maxAbsLogitDiff! - mem.quality.maxAbsLogitDiff!) <= LOGIT_ABS);
  assert.equal(file.quality.logitScale, mem.quality.logitScale);
  // no reload check on this path: the file is what was measured
  assert.equal(file.quality.reloadMaxAbsLogitDiff, null);
  assert.equal(file.quality.checks?.reload, null);
  assert.ok(mem.quality.checks?.reload?.pass);
  // llama.cpp compared with the file's logits: a verdict on both paths when node-llama-cpp runs
  if (mem.quality.llamaCpp?.available) {
    assert.ok(file.quality.checks?.llamaCpp?.pass);
    assert.ok(Math.abs(file.quality.llamaCpp!.maxAbsLogitDiff! - mem.quality.llamaCpp.maxAbsLogitDiff!) <= LOGIT_ABS);
  }
  const manifest = JSON.parse(readFileSync(join(dir, 'f.gguf.manifest.json'), 'utf8')) as { quality: { kld: number; verifiedOn: string }; settings: { streaming: boolean }; calibration: { source: string; seqLen: number } };
  assert.equal(manifest.quality.verifiedOn, 'file');
  assert.equal(manifest.quality.kld, file.quality.kld);
  assert.equal(manifest.settings.streaming, true);
  assert.equal(manifest.calibration.source, 'bitscale-builtin-v1');
});

test('GPTQ Q4_0 GGUF checked on the written file: the streamed GPTQ bytes of --no-verify, the in-memory KL', { timeout: 180_000 }, async () => {
  const dir = tempDir('bitscale-vs-');
  const o: QuantizeOptions = { model: MODEL, out: join(dir, 'n.gguf'), format: 'gguf', scheme: 'q4_0', method: 'gptq', windows: 2, seqLen: 32, seed: 4, checkLlamaCpp: false };
  await quantizeModel({ ...o, verify: false });
  const file = await quantizeModel({ ...o, out: join(dir, 'f.gguf'), verifyOn: 'file' });
  const mem = await quantizeModel({ ...o, out: join(dir, 'm.gguf'), verifyOn: 'memory' });
  assert.deepEqual(readFileSync(join(dir, 'f.gguf')), readFileSync(join(dir, 'n.gguf')));
  assert.deepEqual(readFileSync(join(dir, 'f.gguf')), readFileSync(join(dir, 'm.gguf')));
  assert.equal(file.quality.verifiedOn, 'file');
  assert.ok(Math.abs(file.quality.kld - mem.quality.kld) <= KL_REL * mem.quality.kld, `KL ${file.quality.kld} vs ${mem.quality.kld}`);
  assert.equal(file.quality.top1Agreement, mem.quality.top1Agreement);
  assert.equal(file.quality.llamaCpp, null);
});

test('a failed check on the written file writes nothing at the final path', { timeout: 120_000 }, async (t) => {
  const dir = tempDir('bitscale-vs-');
  const out = join(dir, 'x.gguf');
  if (!(await importLlamaCpp())) return t.skip('node-llama-cpp is not installed');
  await assert.rejects(
    quantizeModel({ model: MODEL, out, format: 'gguf', scheme: 'q4_0', method: 'rtn', verifyOn: 'file', tolerance: { llamaCpp: 1e-9 } }),
    (e: unknown) => e instanceof NumericError && e.code === 'mismatch' && /llama\.cpp/.test(e.message) && e.context.file === out,
  );
  assert.ok(!existsSync(out) && !existsSync(`${out}.manifest.json`));
});

/** A ModelWeights with only shapes (nothing here reads data). */
function shapes(elems: number): ModelWeights {
  const t = { name: 'w', dtype: 'F16', shape: [elems / 1024, 1024] } as unknown as TensorSource;
  return { tensors: new Map([['w', t]]) } as unknown as ModelWeights;
}

test('which runs check the written file: GGUF, the checks on, over 1 GiB in float32 unless told', () => {
  const big = shapes(STORED_VERIFY_BYTES / 4 + 1024);
  const small = shapes(STORED_VERIFY_BYTES / 4);
  assert.equal(float32Bytes(big), STORED_VERIFY_BYTES + 4096);
  const o: QuantizeOptions = { model: 'm', out: 'o.gguf', format: 'gguf', scheme: 'q4_k_m', method: 'rtn' };
  assert.equal(verifiesStoredFile(o, big), true);
  assert.equal(verifiesStoredFile(o, small), false);
  assert.equal(verifiesStoredFile({ ...o, verifyOn: 'file' }, small), true);
  assert.equal(verifiesStoredFile({ ...o, verifyOn: 'memory' }, big), false);
  assert.equal(verifiesStoredFile({ ...o, method: 'gptq' }, big), true);
  for (const other of [{ verify: false }, { format: 'safetensors' as const }, { targetBpw: 4.5 }, { calib: 'self' }, { keepHost: true }]) {
    assert.equal(verifiesStoredFile({ ...o, ...other, verifyOn: 'file' }, big), false, JSON.stringify(other));
  }
});

test('an in-memory run larger than the machine is refused before any work, naming the file and the sizes', () => {
  const w = shapes(1 << 28); // 1 GiB in float32
  const o: QuantizeOptions = { model: 'model.safetensors', out: 'o', format: 'safetensors', scheme: 'int4-g128', method: 'rtn' };
  assert.throws(
    () => checkInMemoryFits(w, o, 4 * 2 ** 30),
    (e: unknown) => e instanceof ConfigError && e.code === 'too_large' && e.context.file === 'model.safetensors' && /5 float32 copies of 1\.0 GiB/.test(String(e.context.found)) && /--no-verify/.test(String(e.context.hint)),
  );
  checkInMemoryFits(w, o, 6 * 2 ** 30); // 5 GiB fits in 6
  checkInMemoryFits(w, { ...o, verify: false }, 3 * 2 ** 30); // two copies without the checks
});

test('quantize --verify-on: memory | file, not with --no-verify', async () => {
  const dir = tempDir('bitscale-vs-');
  const base = ['quantize', MODEL, '--out', join(dir, 'o.gguf'), '--scheme', 'q8_0', '--quiet'];
  const bad = await cliIn([...base, '--verify-on', 'disk']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--verify-on/);
  const both = await cliIn([...base, '--verify-on', 'file', '--no-verify']);
  assert.equal(both.status, 2);
  assert.match(both.stderr, /--verify-on[\s\S]*--no-verify/);
  assert.ok(!existsSync(join(dir, 'o.gguf')));
});

test('the llama.cpp check compares every position up to its logit budget, else evenly spaced ones ending at the last', () => {
  assert.deepEqual(checkedPositions(128, 512), Array.from({ length: 128 }, (_, t) => t));
  assert.equal(checkedPositions(LLAMACPP_LOGITS_PER_WINDOW / 1024, 1024).length, LLAMACPP_LOGITS_PER_WINDOW / 1024);
  const at = checkedPositions(512, 128256);
  assert.equal(at.length, Math.floor(LLAMACPP_LOGITS_PER_WINDOW / 128256)); // 65
  assert.equal(at[at.length - 1], 511);
  for (let k = 1; k < at.length; k++) assert.ok(at[k] > at[k - 1] && at[k] - at[k - 1] <= 8, `gap at ${k}`);
  assert.ok(at[0] >= 0 && at[0] < 8);
  assert.deepEqual(checkedPositions(10, LLAMACPP_LOGITS_PER_WINDOW * 2), [9]); // at least one: the last
});

test('a recipe gives verify-on like the flag; a bad value is refused before any work', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-vs-');
  const out = join(dir, 'r.gguf');
  const yaml = join(dir, 'r.yaml');
  writeFileSync(yaml, `bitscale: 1\nquantize:\n  model: ${MODEL}\n  out: ${out}\n  scheme: q8_0\n  verify-on: file\n`);
  const ok = await cliIn(['quantize', '--recipe', yaml, '--quiet']);
  assert.equal(ok.status, 0, ok.stderr);
  assert.equal((JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8')) as { quality: { verifiedOn?: string } }).quality.verifiedOn, 'file');
  writeFileSync(yaml, `bitscale: 1\nquantize:\n  model: ${MODEL}\n  out: ${join(dir, 'bad.gguf')}\n  scheme: q8_0\n  verify-on: disk\n`);
  const bad = await cliIn(['quantize', '--recipe', yaml, '--quiet']);
  assert.equal(bad.status, 1); // a recipe's invalid field: bad_config, as every recipe error
  assert.match(bad.stderr, /verify-on[\s\S]*memory[\s\S]*file/);
  assert.ok(!existsSync(join(dir, 'bad.gguf')));
});
