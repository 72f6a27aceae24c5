import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder } from '../../src/engine/ir.js';
import { gradGraph } from '../../src/engine/autodiff.js';
import { EngineSession } from '../../src/engine/session.js';
import { absmaxQuantGraph, parseLpSpec, quantizeActivation } from '../../src/train/lowprec.js';
import { bitnetActQuant, intFakeQuantRef } from '../../src/train/quantizers.js';
import { llamaConfig } from '../../src/train/model.js';
import { Trainer, TRAIN_DEFAULTS } from '../../src/train/trainer.js';
import { fakeQuant } from '../../src/quant/index.js';
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
    assert.deepEqual(tr.effectiveWeights().get(name), fakeQuant(tr.params.get(name)!, [16, 16], { kind: 'int', bits: 4, symmetric: true, granularity: { kind: 'channel', axis: 0 }, scaleDtype: 'F32', rounding: 'half_even' }));
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
