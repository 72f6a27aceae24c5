// ONNX export (transformers.js layout): onnxruntime on the written file against the engine on the
// same weights, for float, MatMulNBits (2/4/8 bits, symmetric and asymmetric) and dequantized-float
// schemes; left padding through attention_mask; external data alignment; atomic, non-clobbering output.
// Legend: B = batch, S = tokens, V = vocab.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { prepareHostModel } from '../../../src/engine/host.js';
import { LlamaEngine } from '../../../src/engine/model.js';
import { EngineSession } from '../../../src/engine/session.js';
import { hfPastNames } from '../../../src/engine/export-hf.js';
import { decodeModel } from '../../../src/formats/onnx/proto.js';
import { loadModel } from '../../../src/model/load.js';
import { exportOnnx, ONNX_EXPORT_LOGIT_TOLERANCE } from '../../../src/pipeline/export/onnx.js';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { parseScheme } from '../../../src/quant/index.js';
import type { Tensor } from '../../../src/core/tensor.js';
import { roundToF16 } from '../../../src/numerics/float16.js';
import { randomTokens, randomWeights, tinyConfig } from '../../engine/fixtures.js';
import { sharedPath, sharedSkip, tempDir } from '../../helpers.js';

/** padded and unpadded runs of the same tokens differ only in accumulation order */
const PADDING_ATOL = 1e-5;
const STORIES = sharedPath('models', 'stories260K', 'stories260K.bin');
const noStories = sharedSkip('models/stories260K/stories260K.bin');

const work = tempDir('bitscale-export-onnx-');

function i64(xs: number[], shape: number[]): Tensor<'I64'> {
  return { dtype: 'I64', shape, data: BigInt64Array.from(xs.map(BigInt)) };
}

// mode: how the engine runs the weights (its MatMulNBits path takes only what MatMulNBits can hold)
const CASES: { scheme: string | null; layout: 'half' | 'interleaved'; nbits: number; dtype: string; mode?: 'dq'; dq?: number }[] = [
  { scheme: null, layout: 'half', nbits: 0, dtype: 'fp32' },
  { scheme: null, layout: 'interleaved', nbits: 0, dtype: 'fp32' },
  { scheme: 'int4-g32', layout: 'half', nbits: 14, dtype: 'q4' },
  { scheme: 'int4-g16-asym', layout: 'half', nbits: 14, dtype: 'q4' },
  { scheme: 'int8-g32', layout: 'half', nbits: 14, dtype: 'q8' },
  { scheme: 'int2-g32-asym', layout: 'interleaved', nbits: 14, dtype: 'q2' },
  { scheme: 'int3-g32', layout: 'half', nbits: 0, dtype: 'fp32', mode: 'dq', dq: 14 },
  { scheme: 'int8-channel', layout: 'half', nbits: 0, dtype: 'fp32', mode: 'dq', dq: 14 },
  { scheme: 'int6-tensor-asym', layout: 'interleaved', nbits: 0, dtype: 'fp32', mode: 'dq', dq: 14 },
  { scheme: 'int4-g16', layout: 'half', nbits: 14, dtype: 'q4', mode: 'dq' },
];

for (const k of CASES) {
  test(`export ${k.scheme ?? 'float'} (${k.layout} RoPE, GQA, engine ${k.mode ?? 'nbits'}): onnxruntime logits equal the engine's`, async () => {
    const c = tinyConfig({ ropeLayout: k.layout });
    const host = await prepareHostModel(randomWeights(c, 11), { weights: k.scheme ? parseScheme(k.scheme) : null, lowBit: k.scheme ? (k.mode ?? 'nbits') : null });
    const out = join(work, `m-${k.scheme ?? 'float'}-${k.layout}-${k.mode ?? 'nbits'}`);
    const r = await exportOnnx(host, null, out, { checkTokens: randomTokens(12, c.vocabSize, 4), manifest: { scheme: k.scheme ?? 'float', seed: 0 } });
    assert.equal(r.dtype, k.dtype);
    assert.equal(r.linears.filter((l) => l.op === 'MatMulNBits').length, k.nbits);
    assert.equal(r.linears.filter((l) => l.op === 'DequantizeLinear').length, k.dq ?? 0);
    assert.ok(r.maxAbsLogitDiff <= r.tolerance, `max diff ${r.maxAbsLogitDiff}`);
    const suffix = { fp32: '', q4: '_q4', q8: '_quantized', q2: '_q2' }[k.dtype];
    assert.ok(existsSync(join(out, 'onnx', `model${suffix}.onnx`)));
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    assert.equal(cfg.model_type, 'llama');
    assert.equal(cfg.num_key_value_heads, c.nKvHeads);
    assert.equal(cfg['transformers.js_config'].dtype, k.dtype);
    const man = JSON.parse(readFileSync(join(out, 'bitscale-manifest.json'), 'utf8'));
    assert.equal(man.check.maxAbsLogitDiff, r.maxAbsLogitDiff);
    assert.equal(man.settings.scheme, k.scheme ?? 'float');
    // every 4-bit weight stays inside MatMulNBits; no graph output is a 4-bit type
    const m = decodeModel(readFileSync(r.modelFile));
    assert.ok(m.graph.output.every((o) => o.type.tensor_type.elem_type !== 21 && o.type.tensor_type.elem_type !== 22));
    for (const n of m.graph.node.filter((x) => x.op_type === 'MatMulNBits')) {
      assert.equal(n.attribute!.find((a) => a.name === 'accuracy_level')!.i, 0);
    }
  });
}

test('export: left padding through attention_mask gives the unpadded logits; batch rows are independent', async () => {
  const c = tinyConfig({ ropeLayout: 'half' });
  const host = await prepareHostModel(randomWeights(c, 12), { weights: parseScheme('int4-g32-asym'), lowBit: 'nbits' });
  const r = await exportOnnx(host, null, join(work, 'pad'));
  const V = c.vocabSize;
  const a = randomTokens(6, V, 8);
  const b = randomTokens(4, V, 9);
  const s = await EngineSession.fromOnnx(r.modelFile, { threads: 2 });
  const e = LlamaEngine.fromHost(host);
  try {
    const empty = { dtype: 'F32' as const, shape: [2, c.nKvHeads, 0, c.headDim], data: new Float32Array(0) };
    const feeds: Record<string, Tensor> = {
      input_ids: i64([...a, 0, 0, ...b], [2, 6]),
      attention_mask: i64([1, 1, 1, 1, 1, 1, 0, 0, 1, 1, 1, 1], [2, 6]),
      position_ids: i64([0, 1, 2, 3, 4, 5, 1, 1, 0, 1, 2, 3], [2, 6]),
    };
    for (let i = 0; i < c.nLayers; i++) {
      feeds[hfPastNames(i).pastK] = empty;
      feeds[hfPastNames(i).pastV] = empty;
    }
    const out = await s.run(feeds);
    assert.deepEqual(out.logits.shape, [2, 6, V]);
    assert.deepEqual(out[hfPastNames(0).presentK].shape, [2, c.nKvHeads, 6, c.headDim]);
    const got = out.logits.data as Float32Array;
    const refA = await e.forward(a);
    const refB = await e.forward(b);
    let dA = 0;
    let dB = 0;
    for (let i = 0; i < 6 * V; i++) dA = Math.max(dA, Math.abs(got[i] - refA[i]));
    for (let i = 0; i < 4 * V; i++) dB = Math.max(dB, Math.abs(got[(6 + 2) * V + i] - refB[i]));
    assert.ok(dA <= PADDING_ATOL, `row 0: ${dA}`);
    assert.ok(dB <= PADDING_ATOL, `padded row 1: ${dB}`);
    // every value is finite, padded query rows included
    assert.ok(got.every((x) => Number.isFinite(x)));
  } finally {
    await s.release();
    await e.close();
  }
});

test('export: external data file with 64 KiB-aligned offsets loads and matches', async () => {
  const c = tinyConfig({ ropeLayout: 'half' });
  const host = await prepareHostModel(randomWeights(c, 13), { weights: parseScheme('int4-g32'), lowBit: 'nbits' });
  const out = join(work, 'ext');
  const stages: string[] = [];
  const r = await exportOnnx(host, null, out, { externalData: 'always', onProgress: (e) => stages.push(`${e.done}/${e.total}`) });
  assert.deepEqual(stages, ['1/3', '2/3', '3/3']);
  assert.ok(r.bytes.externalData > 0);
  const dataFile = join(out, 'onnx', 'model_q4.onnx_data');
  assert.equal(readFileSync(dataFile).byteLength, r.bytes.externalData);
  const m = decodeModel(readFileSync(r.modelFile));
  const ext = m.graph.initializer.filter((t) => t.data_location === 1);
  assert.ok(ext.length > 0);
  for (const t of ext) {
    const kv = Object.fromEntries(t.external_data!.map((x) => [x.key, x.value]));
    assert.equal(kv.location, 'model_q4.onnx_data');
    assert.equal(Number(kv.offset) % 65536, 0, t.name);
  }
  const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
  // per file (transformers.js resolves a map by file name), so variants with and without external data can share the folder
  assert.deepEqual(cfg['transformers.js_config'].use_external_data_format, { 'model_q4.onnx': 1 });
  assert.ok(r.maxAbsLogitDiff <= r.tolerance);
});

test('export: refuses to overwrite an existing folder or the input; abort leaves nothing behind', async () => {
  const c = tinyConfig();
  const host = await prepareHostModel(randomWeights(c, 14));
  const out = join(work, 'once');
  await exportOnnx(host, null, out);
  await assert.rejects(exportOnnx(host, null, out), (e: Error & { code?: string }) => e.code === 'exists');
  await assert.rejects(exportOnnx(host, null, join(work, 'in'), { inputs: [join(work, 'in', 'model.safetensors')] }), (e: Error & { code?: string }) => e.code === 'would_overwrite_input');
  await exportOnnx(host, null, out, { overwrite: true });
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(exportOnnx(host, null, join(work, 'aborted'), { signal: ac.signal }));
  assert.equal(existsSync(join(work, 'aborted')), false);
  assert.deepEqual(readdirSync(work).filter((n) => n.includes('.tmp-')), []);
});

test('export: stories260K (int4-g32 MatMulNBits, float down_proj) with its tokenizer', { skip: noStories }, async () => {
  const w = await loadModel(STORIES);
  try {
    const host = await prepareHostModel(w, { weights: (n) => (n.includes('down_proj') ? null : parseScheme('int4-g32')), lowBit: 'nbits' });
    const out = join(work, 'stories');
    const r = await exportOnnx(host, w.tokenizer, out);
    assert.equal(r.linears.filter((l) => l.op === 'MatMulNBits').length, 6 * w.config.nLayers);
    assert.ok(r.maxAbsLogitDiff <= ONNX_EXPORT_LOGIT_TOLERANCE * 100 && r.maxAbsLogitDiff <= r.tolerance, `${r.maxAbsLogitDiff}`);
    const tok = JSON.parse(readFileSync(join(out, 'tokenizer.json'), 'utf8'));
    assert.equal(Object.keys(tok.model.vocab).length, w.config.vocabSize);
  } finally {
    await w.close();
  }
});

test('bitscale quantize --format onnx --scheme int4-g32 --out DIR writes the transformers.js folder (stories260K)', { skip: noStories }, async () => {
  const out = join(work, 'quantized');
  const r = await quantizeModel({ model: STORIES, out, format: 'onnx', scheme: 'int4-g32', method: 'rtn', windows: 2, seqLen: 32 });
  assert.ok(existsSync(join(out, 'onnx', 'model_q4.onnx')));
  assert.ok(existsSync(join(out, 'tokenizer.json')));
  const man = JSON.parse(readFileSync(join(out, 'bitscale-manifest.json'), 'utf8'));
  // K = 172 (down_proj) is not a whole number of 32-groups: those stay float
  assert.equal(man.linears.matMulNBits, 30);
  assert.equal(man.settings.scheme, 'int4-g32');
  assert.ok(r.quality.reloadMaxAbsLogitDiff !== null && r.quality.reloadMaxAbsLogitDiff <= man.check.tolerance);
  assert.equal(r.quality.reloadMaxAbsLogitDiff, man.check.maxAbsLogitDiff);
});

test('export: a file whose logits disagree with the engine is an error and leaves nothing; same inputs give the same bytes', async () => {
  const c = tinyConfig({ ropeLayout: 'half' });
  const host = await prepareHostModel(randomWeights(c, 15), { weights: parseScheme('int4-g32'), lowBit: 'nbits' });
  const a = await exportOnnx(host, null, join(work, 'det-a'));
  const b = await exportOnnx(host, null, join(work, 'det-b'));
  assert.ok(Buffer.from(readFileSync(a.modelFile)).equals(readFileSync(b.modelFile)));
  // codes that no longer match the float weights the engine evaluates: doubled scales on one linear
  const name = 'model.layers.1.mlp.up_proj.weight';
  const lb = host.lowBit.get(name)!;
  const bad = { ...host, lowBit: new Map(host.lowBit).set(name, { ...lb, q: { ...lb.q, scales: lb.q.scales.map((s) => 2 * s) } }) };
  await assert.rejects(exportOnnx(bad, null, join(work, 'bad')), (e: Error & { code?: string }) => e.code === 'mismatch');
  assert.equal(existsSync(join(work, 'bad')), false);
  assert.deepEqual(readdirSync(work).filter((n) => n.includes('.tmp-')), []);
});

// the ONNX folder read back (model/load-onnx.ts): every weight as the file holds it, so eval, generate
// and inspect run on exported folders; exact for MatMulNBits (2/4/8-bit, symmetric and asymmetric),
// DequantizeLinear, float16 storage and external data, in either RoPE layout
test('loadModel reads an exported ONNX folder back: every weight exactly as the file holds it', async () => {
  for (const [scheme, layout, f16, ext] of [
    ['int4-g32-asym', 'half', false, 'always'],
    ['int8-g32', 'interleaved', false, 'never'],
    ['int2-g16-asym', 'half', true, 'never'],
    ['int3-g32', 'half', false, 'never'],
    [null, 'interleaved', true, 'always'],
  ] as const) {
    const c = tinyConfig({ ropeLayout: layout });
    const host = await prepareHostModel(randomWeights(c, 23), scheme ? { weights: parseScheme(scheme), lowBit: 'nbits' } : {});
    const out = join(work, `read-${scheme ?? 'float'}-${layout}-${f16}`);
    const r = await exportOnnx(host, null, out, { floatStorage: f16 ? 'f16' : 'f32', externalData: ext });
    for (const path of [out, r.modelFile]) {
      const back = await loadModel(path);
      try {
        assert.equal(back.source.format, 'onnx');
        assert.equal(back.config.ropeLayout, layout);
        for (const [name, want] of host.tensors) {
          const got = await back.tensors.get(name)!.readF32();
          const coded = r.linears.some((l) => l.name === name && l.op !== 'float');
          const expect = f16 && !coded && want.length >= 1024 ? Float32Array.from(want, roundToF16) : want;
          assert.deepEqual(got, expect, `${scheme} ${layout}: ${name}`);
        }
      } finally {
        await back.close();
      }
    }
  }
});
