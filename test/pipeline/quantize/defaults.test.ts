// `quantize` behaves as users of llama.cpp / GPTQModel / optimum expect: the output format follows
// --out and the scheme (as `convert` reads its output path), the library call without `format`
// does what the CLI does, --target-bpw below the reachable minimum says that minimum in bits per
// weight before any work, and ONNX variants are added side by side into one folder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { resolveQuantizeFormat } from '../../../src/pipeline/quantize/output-format.js';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { quantizeOnnxVariants } from '../../../src/pipeline/quantize/onnx-variants.js';
import { minTargetBpw } from '../../../src/pipeline/quantize/mixed.js';
import { prepareHostModel } from '../../../src/engine/host.js';
import { loadModel } from '../../../src/model/load.js';
import { cliIn } from '../../cli-run.js';
import { tempDir } from '../../helpers.js';

const MODEL = 'assets/default-model';
const noModel = existsSync(join(MODEL, 'config.json')) ? false : 'assets/default-model missing';

/** The CLI in this process (test/cli-run.ts), its status as `code`. */
async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await cliIn(argv);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('the output format follows --out and the scheme; a contradicting --format is refused', () => {
  assert.equal(resolveQuantizeFormat('m-q4.gguf', 'q4_k'), 'gguf');
  assert.equal(resolveQuantizeFormat('m-q4', 'q4_k'), 'gguf');
  assert.equal(resolveQuantizeFormat('m-gptq', 'int4-g128'), 'safetensors');
  assert.equal(resolveQuantizeFormat('m-nf4', 'nf4-g64'), 'fakequant');
  assert.equal(resolveQuantizeFormat('m.onnx', 'int4-g32'), 'onnx');
  assert.equal(resolveQuantizeFormat('m-onnx', 'fp32'), 'onnx');
  assert.equal(resolveQuantizeFormat('m-ct', 'int4-g128', 'compressed-tensors'), 'compressed-tensors');
  assert.throws(() => resolveQuantizeFormat('m.gguf', 'int4-g128', 'safetensors'), (e: Error & { code?: string; context?: { field?: string } }) => e.code === 'bad_option' && /ends in \.gguf but --format is safetensors/.test(e.message));
});

test('quantizeModel without `format` writes what the CLI would: a GPTQ folder for an int scheme and a folder path', { skip: noModel }, async () => {
  const dir = tempDir('bitscale-qdef-');
  const r = await quantizeModel({ model: MODEL, out: join(dir, 'gptq'), scheme: 'int4-g128', method: 'rtn' });
  assert.equal(r.format, 'safetensors');
  const cfg = JSON.parse(readFileSync(join(dir, 'gptq', 'config.json'), 'utf8'));
  assert.equal(cfg.quantization_config.quant_method, 'gptq');
  // and the CLI with the same arguments agrees
  const c = await cli(['quantize', MODEL, '--out', join(dir, 'cli-q4.gguf'), '--scheme', 'q4_0', '--no-verify', '--json', '--quiet']);
  assert.equal(c.code, 0, c.stderr);
  assert.equal(JSON.parse(c.stdout).format, 'gguf');
});

test('--target-bpw below the minimum says the minimum in bits per weight, before any work', { skip: noModel }, async () => {
  const w = await loadModel(MODEL);
  let min: number;
  try {
    min = minTargetBpw(await prepareHostModel(w)).bpw;
  } finally {
    await w.close();
  }
  const dir = tempDir('bitscale-qmin-');
  const t0 = Date.now();
  const c = await cli(['quantize', MODEL, '--out', join(dir, 'x.gguf'), '--scheme', 'q4_k', '--target-bpw', '1.5']);
  assert.equal(c.code, 2);
  assert.match(c.stderr, new RegExp(`below this model's minimum of ${min.toFixed(3)} bits per weight`));
  assert.match(c.stderr, /--target-bpw/);
  assert.ok(Date.now() - t0 < 20_000, 'refused before calibration');
  assert.equal(existsSync(join(dir, 'x.gguf')), false);
  // the minimum itself is accepted by the check (every linear at its cheapest type)
  assert.ok(min > 2 && min < 8, `minimum ${min}`);
});

test('ONNX variants through the CLI: --variants fp32,q4, then --dtype f16 adds q4f16 without deleting them', { skip: noModel, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-qvar-');
  const out = join(dir, 'onnx-folder');
  const a = await cli(['quantize', MODEL, '--out', out, '--variants', 'fp32,q4', '--json', '--quiet']);
  assert.equal(a.code, 0, a.stderr);
  assert.deepEqual(JSON.parse(a.stdout).variants, ['fp32', 'q4']);
  const b = await cli(['quantize', MODEL, '--out', out, '--format', 'onnx', '--scheme', 'int4-g32', '--dtype', 'f16', '--json', '--quiet']);
  assert.equal(b.code, 0, b.stderr);
  assert.deepEqual(readdirSync(join(out, 'onnx')).sort(), ['model.onnx', 'model_q4.onnx', 'model_q4f16.onnx']);
  const man = JSON.parse(readFileSync(join(out, 'bitscale-manifest.json'), 'utf8'));
  assert.deepEqual(Object.keys(man.variants).sort(), ['fp32', 'q4', 'q4f16']);
  // the quantize details (method, calibration, measured quality) sit with the variants they made
  assert.equal(man.variants.q4f16.quantize.settings.method, 'rtn');
  assert.ok(Number.isFinite(man.variants.q4.quantize.quality.kld));
  assert.equal(existsSync(`${out}.manifest.json`), false, 'one manifest, inside the folder');
  // a variant the folder holds is refused before any work (no progress line, nothing added), and
  // --variants is one transaction: q8 is not added when q4 is refused
  const again = await cli(['quantize', MODEL, '--out', out, '--format', 'onnx', '--scheme', 'int4-g32']);
  assert.equal(again.code, 1, again.stderr);
  assert.match(again.stderr, /\[exists\].*already holds the q4 variant.*model_q4\.onnx/);
  assert.doesNotMatch(again.stderr, /%/, 'refused before quantizing');
  const both = await cli(['quantize', MODEL, '--out', out, '--variants', 'q8,q4']);
  assert.equal(both.code, 1, both.stderr);
  assert.match(both.stderr, /already holds the q4 variant/);
  assert.doesNotMatch(both.stderr, /%/, 'refused before quantizing');
  assert.deepEqual(readdirSync(join(out, 'onnx')).sort(), ['model.onnx', 'model_q4.onnx', 'model_q4f16.onnx']);
  const bad = await cli(['quantize', MODEL, '--out', out, '--variants', 'q3']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /unknown ONNX variant/);
});

test('--variants is one transaction: interrupted in its second variant, the folder is as it was', { skip: noModel, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-qvar-txn-');
  const out = join(dir, 'onnx-folder');
  await quantizeOnnxVariants({ model: MODEL, out, method: 'rtn', variants: ['fp32'] });
  const before = readFileSync(join(out, 'bitscale-manifest.json'), 'utf8');
  // fp16 is written first (into the staged copy), then the q4 quantization is interrupted
  const ac = new AbortController();
  await assert.rejects(
    quantizeOnnxVariants({ model: MODEL, out, method: 'rtn', variants: ['fp16', 'q4'], signal: ac.signal, onProgress: () => ac.abort() }),
    /interrupted/,
  );
  assert.deepEqual(readdirSync(join(out, 'onnx')).sort(), ['model.onnx'], 'neither fp16 nor q4 was added');
  assert.equal(readFileSync(join(out, 'bitscale-manifest.json'), 'utf8'), before);
  assert.deepEqual(readdirSync(dir), ['onnx-folder'], 'no staging folder or lock left behind');
});
