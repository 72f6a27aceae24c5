import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../src/engine/ir.js';
import { gradGraph } from '../../src/engine/autodiff.js';
import { EngineSession } from '../../src/engine/session.js';
import { absmaxQuantGraph, minifloatQuantGraph, parseLpSpec, quantizeActivation, quantizeWeight } from '../../src/train/lowprec.js';
import { bitnetActQuant, intFakeQuantRef } from '../../src/train/quantizers.js';
import { llamaConfig } from '../../src/train/graph.js';
import { Trainer, TRAIN_DEFAULTS } from '../../src/train/trainer.js';
import { fakeQuant, parseScheme } from '../../src/quant/index.js';
import { ConfigError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';

/** onnxruntime float32 vs the float64 reference: x·s and the division by s each round once in f32 */
const ACT_F32_TOL = 1e-6;

test('in-graph activation quantizer = BitNet 8-bit per token (T3) and absmax per tensor, with an identity STE', async () => {
  const rng = new Rng(4);
  const T = 3;
  const E = 5;
  const xs = [0.5, -2.0, 1.0, 0.25, 0.1, ...Array.from({ length: 10 }, () => rng.normal())];
  const b = new GraphBuilder('act');
  const x = b.param('x', { dtype: 'F32', shape: [T, E], data: Float32Array.from(xs) });
  const stop = new Set<number>();
  const tok = b.identity(absmaxQuantGraph(b, x, 8, 'token'));
  const ten = b.identity(absmaxQuantGraph(b, x, 4, 'tensor'));
  const y = quantizeActivation(b, x, { bits: 4, granularity: 'tensor' }, stop);
  b.output('tok', tok);
  b.output('ten', ten);
  b.output('loss', b.sum(b.mul(y, y), [0, 1], false));
  const g = gradGraph(b.build(), { stop });
  const s = await EngineSession.fromGraph(g, { threads: 1 });
  const out = await s.run({});
  await s.release();
  const x32 = Array.from(Float32Array.from(xs));
  const refTok = bitnetActQuant(x32, T, E);
  const refTen = intFakeQuantRef(x32, T, E, 4, 'tensor');
  const gotTok = out.tok.data as Float32Array;
  const gotTen = out.ten.data as Float32Array;
  for (let i = 0; i < T * E; i++) {
    assert.ok(Math.abs(gotTok[i] - refTok[i]) <= ACT_F32_TOL * Math.max(1, Math.abs(refTok[i])), `token [${i}] ${gotTok[i]} vs ${refTok[i]}`);
    assert.ok(Math.abs(gotTen[i] - refTen[i]) <= ACT_F32_TOL * Math.max(1, Math.abs(refTen[i])), `tensor [${i}] ${gotTen[i]} vs ${refTen[i]}`);
  }
  // T3's first row exactly as printed: [0.503937, −2.0, 1.007874]
  assert.ok(Math.abs(gotTok[0] - 0.503937) < 1e-6 && gotTok[1] === -2 && Math.abs(gotTok[2] - 1.007874) < 1e-6);
  // STE: d/dx Σ q(x)² = 2·q(x) (the quantizer passes the gradient unchanged)
  const gx = out['grad.x'].data as Float32Array;
  for (let i = 0; i < T * E; i++) assert.equal(gx[i], 2 * gotTen[i]);
});

test('low-precision training: codec weights, quantized activations and KV; a run lowers the loss', async () => {
  const cfg = llamaConfig({ vocabSize: 32, hiddenSize: 16, intermediateSize: 32, nLayers: 1, nHeads: 2, context: 8 });
  const lp = { weights: parseLpSpec('4', 'weights'), activations: parseLpSpec('8:token', 'activations'), kv: parseLpSpec('4', 'kv') };
  assert.deepEqual(lp.weights, { bits: 4, granularity: 'channel' });
  const tr = await Trainer.create(cfg, { ...TRAIN_DEFAULTS, batch: 4, context: 8, steps: 20, lr: 1e-2, warmupSteps: 0, threads: 1, lowPrecision: lp });
  try {
    const name = 'model.layers.0.self_attn.q_proj.weight';
    // `--weights 4` is the absmax (restricted) per-channel grid
    assert.deepEqual(tr.effectiveWeights().get(name), fakeQuant(tr.params.get(name)!, [16, 16], parseScheme('int4-channel-restricted')));
    const data = Int32Array.from({ length: 400 }, (_, i) => (i * 3) % 32);
    const first = (await tr.step(data)).loss;
    let last = first;
    for (let s = 1; s < 20; s++) last = (await tr.step(data)).loss;
    assert.ok(last < first - 0.5, `loss ${first} → ${last}`);
  } finally {
    await tr.release();
  }
  assert.throws(() => parseLpSpec('9', 'weights'), ConfigError);
  assert.throws(() => parseLpSpec('4:token', 'weights'), ConfigError);
});

test('float formats: weights through the float codec; FP8/FP4 activations emulated in the graph equal the codec', async () => {
  const rng = new Rng(8);
  assert.deepEqual(parseLpSpec('e4m3', 'activations'), { bits: 8, granularity: 'tensor', format: 'e4m3' });
  const w = Float32Array.from({ length: 64 }, () => rng.normal(0, 0.1));
  assert.deepEqual(quantizeWeight(w, [4, 16], parseLpSpec('fp4', 'weights')), fakeQuant(w, [4, 16], { kind: 'float', format: 'FP4_E2M1', granularity: { kind: 'channel', axis: 0 } }));
  for (const [fmt, scheme, fmax] of [['e4m3', 'F8_E4M3', 448], ['e5m2', 'F8_E5M2', 57344], ['fp4', 'FP4_E2M1', 6]] as const) {
    // amax = the format's max: both sides then use the scale 1 exactly
    const xs = Float32Array.from({ length: 200 }, (_, i) => (i === 0 ? fmax : rng.normal(0, fmax / 8)));
    const b = new GraphBuilder('fp');
    const x = b.constant({ dtype: 'F32', shape: [200], data: xs });
    b.output('y', minifloatQuantGraph(b, x, fmt, 'tensor'));
    const s = await EngineSession.fromGraph(b.build(), { threads: 1 });
    const y = (await s.run({})).y.data as Float32Array;
    await s.release();
    assert.deepEqual(Array.from(y), Array.from(fakeQuant(xs, [200], { kind: 'float', format: scheme, granularity: { kind: 'tensor' } })), fmt);
  }
  // F16 activations: a cast round trip in the graph
  const b = new GraphBuilder('f16');
  const stop = new Set<number>();
  const x = b.constant({ dtype: 'F32', shape: [3], data: Float32Array.from([1 / 3, 1e-8, 70000]) });
  b.output('y', quantizeActivation(b, x, parseLpSpec('fp16', 'activations'), stop));
  const s = await EngineSession.fromGraph(b.build(), { threads: 1 });
  const y = (await s.run({})).y.data as Float32Array;
  await s.release();
  assert.equal(y[0], 0.333251953125);
  assert.equal(y[2], Infinity); // a plain cast overflows past 65504, as a real F16 activation would
});
