// Fake-quant equivalence: a model whose linear weights run in real low bit (MatMulNBits, blocked
// DequantizeLinear) gives the same logits as the same model with quant.fakeQuant'd float weights.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { LlamaEngine, staticActivations } from '../../src/engine/model.js';
import { packMatMulNBits } from '../../src/engine/lowbit-linear.js';
import { buildLlamaGraph } from '../../src/engine/llama.js';
import { lowerToOnnx } from '../../src/engine/lower.js';
import { decodeModel } from '../../src/formats/onnx/proto.js';
import { parseScheme, quantize } from '../../src/quant/index.js';
import type { IntQuantized } from '../../src/quant/types.js';
import { randomTokens, randomWeights, tinyConfig } from './fixtures.js';

/** same dequantized weights, only the GEMM kernel and accumulation order differ */
const LOWBIT_VS_FAKEQUANT_ATOL = 1e-4;

function maxDiff(a: Float32Array, b: Float32Array): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const CASES: [string, 'nbits' | 'dq'][] = [
  ['int4-g32', 'nbits'],
  ['int4-g32-asym', 'nbits'],
  ['int2-g32-asym', 'nbits'],
  ['int8-g32', 'nbits'],
  ['int4-g16-asym', 'dq'],
  ['int3-g32', 'dq'],
  ['int6-g32-asym', 'dq'],
  ['int8-channel', 'dq'],
];

for (const [scheme, mode] of CASES) {
  test(`${mode} ${scheme} gives the fake-quant logits`, async () => {
    const c = tinyConfig({ ropeLayout: 'half' });
    const w = randomWeights(c, 21);
    const s = parseScheme(scheme);
    const fake = await LlamaEngine.create(w, { weights: s });
    const real = await LlamaEngine.create(w, { weights: s, lowBit: mode });
    const float = await LlamaEngine.create(w);
    assert.equal(real.host.lowBit.size, c.nLayers * 7);
    const tokens = randomTokens(10, c.vocabSize, 5);
    const a = await fake.forward(tokens);
    const b = await real.forward(tokens);
    const f = await float.forward(tokens);
    const d = maxDiff(a, b);
    assert.ok(d < LOWBIT_VS_FAKEQUANT_ATOL, `max |low-bit − fake-quant| = ${d}`);
    // and quantization did change the model (the comparison is not vacuous)
    assert.ok(maxDiff(a, f) > 10 * LOWBIT_VS_FAKEQUANT_ATOL);
    for (const e of [fake, real, float]) await e.close();
  });
}

test('MatMulNBits nodes carry an explicit accuracy_level 0 (exact fp32 dequantization)', async () => {
  const c = tinyConfig();
  const real = await LlamaEngine.create(randomWeights(c, 3), { weights: parseScheme('int4-g32'), lowBit: 'nbits' });
  const m = decodeModel(lowerToOnnx(buildLlamaGraph(real.host, { tokens: 4 })).model);
  const nodes = m.graph.node.filter((n) => n.op_type === 'MatMulNBits');
  assert.equal(nodes.length, c.nLayers * 7);
  for (const n of nodes) {
    assert.equal(n.domain, 'com.microsoft');
    const a = Object.fromEntries((n.attribute ?? []).map((x) => [x.name, x.i]));
    assert.deepEqual([a.accuracy_level, a.bits, a.block_size], [0, 4, 32]);
    assert.ok(a.K === c.hiddenSize || a.K === c.intermediateSize || a.K === c.nHeads * c.headDim);
  }
  assert.ok(m.opset_import.some((o) => o.domain === 'com.microsoft'));
  await real.close();
});

test('MatMulNBits packing: a hand-computed 4-bit block', () => {
  // one row, K = 16, one block: codes −8 … 7 (symmetric) → stored q + 8 = 0 … 15, low nibble first
  const q: IntQuantized = {
    kind: 'int',
    scheme: { kind: 'int', bits: 4, symmetric: true, granularity: { kind: 'group', size: 16 }, scaleDtype: 'F32', rounding: 'half_even' },
    shape: [1, 16],
    codes: Int8Array.from({ length: 16 }, (_, i) => i - 8),
    scales: Float32Array.of(0.5),
    scaleShape: [1, 1],
  };
  const p = packMatMulNBits(q);
  assert.deepEqual(Array.from(p.B), [0x10, 0x32, 0x54, 0x76, 0x98, 0xba, 0xdc, 0xfe]);
  assert.equal(p.zeroPoints, null);
  const a = quantize(Float32Array.from({ length: 64 }, (_, i) => i - 30), [1, 64], parseScheme('int2-g32-asym')) as IntQuantized;
  const pa = packMatMulNBits(a);
  // two blocks → two 2-bit zero points in one byte, block 0 in the low bits
  assert.equal(pa.zeroPoints!.length, 1);
  assert.equal(pa.zeroPoints![0], a.zeros![0] | (a.zeros![1] << 2));
  assert.throws(() => packMatMulNBits(quantize(new Float32Array(64).fill(1), [1, 64], parseScheme('int3-g32')) as IntQuantized), (e: Error & { code?: string }) => e.code === 'unsupported');
});

test('a static activation scale calibrated on a text equals dynamic per-tensor quantization on that text', async () => {
  const c = tinyConfig({ ropeLayout: 'half' });
  const w = randomWeights(c, 31);
  const tokens = randomTokens(12, c.vocabSize, 32);
  const float = await LlamaEngine.create(w);
  const ranges = await float.activationRanges(tokens);
  assert.equal(ranges.size, c.nLayers * 4 + 1);
  assert.ok([...ranges.values()].every((a) => a > 0));
  const host = float.host;
  // one site quantized, so its input (and calibrated range) is the float model's
  const site = '1.ffn_in';
  const calibrated = staticActivations(ranges, 4);
  const stat = LlamaEngine.fromHost(host, { activations: (s) => (s === site ? calibrated(s) : null) });
  const dyn = LlamaEngine.fromHost(host, { activations: (s) => (s === site ? { kind: 'int', bits: 4, symmetric: true, granularity: 'tensor' } : null) });
  const a = await stat.forward(tokens);
  const b = await dyn.forward(tokens);
  const f = await float.forward(tokens);
  assert.ok(maxDiff(a, b) < 1e-5, `static vs dynamic: ${maxDiff(a, b)}`);
  assert.ok(maxDiff(a, f) > 1e-2, 'int4 activations changed the logits');
  // on other tokens the static scales no longer match the data: results differ from dynamic
  const other = randomTokens(12, c.vocabSize, 33);
  assert.ok(maxDiff(await stat.forward(other), await dyn.forward(other)) > 1e-4);
  for (const e of [float, stat, dyn]) await e.close();
});
