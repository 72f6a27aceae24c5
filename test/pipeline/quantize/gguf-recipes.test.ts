// Named file types end to end on real models: the files (quantized token embedding and output
// included) reload in the engine to exactly the weights the pipeline used, load and run in llama.cpp
// (node-llama-cpp), evaluate with `bitscale eval`, and re-export to ONNX (with --allow-requantize);
// GPTQ onto a recipe writes the recipe's types (the same file size as RTN); the CLI takes
// llama-quantize's options and names the valid types when given a bad one.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openGgufFile } from '../../../src/formats/io/index.js';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';

const SHARED = resolve('..', 'shared');
const MODEL = resolve('assets/default-model');
const TEXT = resolve(SHARED, 'data/tinystories-valid-excerpt.txt');
const haveText = existsSync(TEXT);
/** max |Δ logit| engine-on-the-host vs engine-on-the-reloaded-GGUF for the default model */
const RELOAD_ATOL = 1e-4;

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
}

test('default model as Q4_K_M: quantized embedding and output, exact reload, llama.cpp runs it, eval and ONNX read it', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rq-'));
  try {
    const out = join(dir, 'm.gguf');
    const r = await quantizeModel({ model: MODEL, out, format: 'gguf', scheme: 'Q4_K_M', method: 'rtn' });
    assert.equal(r.fileType, 'Q4_K_M');
    // hidden 128: the K-quants fall back as in llama.cpp (Q4_K → Q5_0 for the embedding, Q6_K → Q8_0 for the output)
    const types = new Map(r.tensors.map((t) => [t.name, t.type]));
    assert.equal(types.get('model.embed_tokens.weight'), 'Q5_0');
    assert.equal(types.get('lm_head.weight'), 'Q8_0');
    // the file decodes to the weights the engine ran; what remains is float noise from the rotary
    // layout (this HF model is rotate-half, the GGUF interleaved): 8.6e-6 before this change too
    assert.ok(r.quality.reloadMaxAbsLogitDiff! < RELOAD_ATOL, `reload ${r.quality.reloadMaxAbsLogitDiff}`);
    if (r.quality.llamaCpp?.available) {
      assert.equal(r.quality.llamaCpp.error, undefined);
      assert.ok(r.quality.llamaCpp.top1Agreement! >= 0.9, `llama.cpp top-1 agreement ${r.quality.llamaCpp.top1Agreement}`);
    }
    const g = await openGgufFile(out);
    try {
      assert.equal(g.get('general.file_type'), 15);
      assert.equal(g.get('general.quantization_version'), 2);
      assert.equal(g.info('token_embd.weight').type, 'Q5_0');
    } finally {
      await g.close();
    }
    if (haveText) {
      const e = cli(['eval', out, '--text', TEXT, '--ctx', '64', '--max-windows', '2', '--json']);
      assert.equal(e.status, 0, e.stderr);
      assert.ok(Number.isFinite(JSON.parse(e.stdout.trim()).ppl));
    }
    // another quantization of a quantized file is requantizing: refused before any work unless allowed
    const onnx = join(dir, 'm.onnx');
    await assert.rejects(quantizeModel({ model: out, out: onnx, format: 'onnx', scheme: 'int4-g32', method: 'rtn', verify: false }), /requantizing from type Q5_0 is disabled/);
    assert.ok(!existsSync(onnx));
    const ox = await quantizeModel({ model: out, out: onnx, format: 'onnx', scheme: 'int4-g32', method: 'rtn', allowRequantize: true, seqLen: 16 });
    assert.ok(ox.quality.reloadMaxAbsLogitDiff! < 1e-3, `ONNX vs engine ${ox.quality.reloadMaxAbsLogitDiff}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('GPTQ onto Q3_K_M: every tensor of the recipe\'s type, GPTQ-optimised, the same file size as RTN', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rq-'));
  try {
    // (quality against llama.cpp's own Q3_K_M is measured by `npm run bench llamacpp-quality`)
    const base = { model: MODEL, format: 'gguf' as const, scheme: 'q3_k_m', windows: 4, seqLen: 32, checkLlamaCpp: false };
    const rtn = await quantizeModel({ ...base, out: join(dir, 'r.gguf'), method: 'rtn', verify: false });
    const g = await quantizeModel({ ...base, out: join(dir, 'g.gguf'), method: 'gptq' });
    const types = (x: { tensors: { name: string; type: string }[] }) => new Map(x.tensors.map((t) => [t.name, t.type]));
    assert.deepEqual(types(g), types(rtn));
    assert.equal(statSync(join(dir, 'g.gguf')).size, statSync(join(dir, 'r.gguf')).size);
    assert.ok(g.tensors.filter((t) => t.name.includes('.layers.')).every((t) => t.method === 'gptq'), 'every linear GPTQ-optimised');
    assert.ok(g.quality.reloadMaxAbsLogitDiff! < RELOAD_ATOL);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('CLI: llama-quantize options and type names; an unknown type lists the valid ones (exit 2); IQ without imatrix refused', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rq-'));
  try {
    const out = join(dir, 'p.gguf');
    const r = cli(['quantize', MODEL, '--out', out, '--scheme', 'q4_0', '--pure', '--output-tensor-type', 'q8_0', '--token-embedding-type', 'Q4_1', '--tensor-type', 'ATTN_V=q8_0', '--tensor-type', 'ffn_down=q5_0', '--no-verify', '--json']);
    assert.equal(r.status, 0, r.stderr);
    const rep = JSON.parse(r.stdout.trim()) as { fileType: string; tensors: { name: string; type: string }[] };
    const t = new Map(rep.tensors.map((x) => [x.name, x.type]));
    assert.equal(rep.fileType, 'Q4_0');
    assert.equal(t.get('lm_head.weight'), 'Q8_0');
    assert.equal(t.get('model.embed_tokens.weight'), 'Q4_1');
    assert.equal(t.get('model.layers.0.self_attn.v_proj.weight'), 'Q8_0', 'patterns are lower-cased, as llama-quantize does');
    assert.equal(t.get('model.layers.3.mlp.down_proj.weight'), 'Q5_0');
    assert.equal(t.get('model.layers.3.mlp.up_proj.weight'), 'Q4_0');
    const bad = cli(['quantize', MODEL, '--out', join(dir, 'b.gguf'), '--scheme', 'q4_k_x', '--output-tensor-type', 'q9_0']);
    assert.equal(bad.status, 2);
    assert.match(bad.stderr, /q4_k_m/);
    assert.match(bad.stderr, /iq2_xxs/);
    await assert.rejects(quantizeModel({ model: MODEL, out: join(dir, 'b.gguf'), format: 'gguf', scheme: 'q4_k_m', method: 'rtn', outputTensorType: 'q9_0' }), /unknown ggml type 'q9_0'/);
    // a 256-wide model, where IQ2_XS applies (a 128-wide one falls back to IQ4_NL, which needs none)
    const { writeShape } = await import('../../reference/recipe-compare.js');
    const wide = await writeShape(dir, { layers: 1, embd: 256, ff: 256, heads: 2, kvHeads: 2, vocab: 32, tied: true });
    await assert.rejects(quantizeModel({ model: wide, out: join(dir, 'b.gguf'), format: 'gguf', scheme: 'iq2_xs', method: 'rtn', tokenizer: null, verify: false }), (e: Error & { context?: { hint?: string } }) =>
      /this quantization requires an importance matrix/.test(e.message) && /--imatrix/.test(e.context?.hint ?? ''));
    assert.ok(!existsSync(join(dir, 'b.gguf')));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('--target-bpw recipe: the allocator chooses the linears\' types within the recipe\'s own size; embedding and output keep the recipe\'s', { timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rq-'));
  try {
    const base = { model: MODEL, format: 'gguf' as const, scheme: 'q4_k_m', windows: 4, seqLen: 32, checkLlamaCpp: false, verify: false };
    const recipe = await quantizeModel({ ...base, out: join(dir, 'r.gguf'), method: 'rtn' });
    const mixed = await quantizeModel({ ...base, out: join(dir, 'm.gguf'), method: 'rtn', targetBpw: 'recipe', mixedSensitivity: 'hessian' });
    assert.ok(mixed.plan, 'a mixed-precision plan');
    assert.ok(statSync(join(dir, 'm.gguf')).size <= statSync(join(dir, 'r.gguf')).size, 'no larger than the recipe');
    const types = (x: { tensors: { name: string; type: string }[] }) => new Map(x.tensors.map((t) => [t.name, t.type]));
    for (const n of ['model.embed_tokens.weight', 'lm_head.weight']) assert.equal(types(mixed).get(n), types(recipe).get(n), n);
    assert.ok(new Set(mixed.tensors.filter((t) => t.name.includes('.layers.')).map((t) => t.type)).size > 1, 'the linears are mixed');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
