import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { fakeQuant, quantize } from '../../src/quant/index.js';
import { dequantizeGgml, quantizeGgml } from '../../src/quant/ggml/index.js';
import { paretoQForward, paretoQInitAlpha, type QatBits } from '../../src/train/quantizers.js';
import { projectAlphaToF16, qatScheme, qatWeights } from '../../src/train/qat.js';
import { llamaConfig, initParams } from '../../src/train/model.js';
import { ALPHA_SUFFIX, Trainer, TRAIN_DEFAULTS } from '../../src/train/trainer.js';
import { quantizeWeight } from '../../src/train/lowprec.js';

/** the codec's f32 products vs the float64 ParetoQ formula: one f32 rounding of α·level */
const ULP_REL = 2 ** -23;

const rng = new Rng(11);
const N = 8;
const K = 256;
const w = Float32Array.from({ length: N * K }, () => rng.normal(0, 0.05));

test('QAT forward = the quant codec with the learned scales (atol 0), ≈ the REFERENCE formula (1 f32 rounding)', () => {
  for (const bits of [1, 1.58, 2, 3, 4] as QatBits[]) {
    const alpha = Float32Array.from(paretoQInitAlpha(w, N, K, bits), (a) => a * 0.9);
    const mine = qatWeights(w, [N, K], alpha, bits, false);
    const codec = fakeQuant(w, [N, K], qatScheme(bits, false), { scales: alpha });
    assert.deepEqual(mine, codec, `bits ${bits}`);
    // the REFERENCE formula in float64 (3/4 bits: the codec keeps 16 significant bits of α)
    const q = quantize(w, [N, K], qatScheme(bits, false), { scales: alpha }) as { scales: Float32Array };
    const a64 = bits >= 3 ? Float64Array.from(q.scales) : Float64Array.from(alpha);
    const ref = paretoQForward(w, a64, N, K, bits);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ref[i] - mine[i]) <= Math.abs(ref[i]) * ULP_REL * 2, `bits ${bits} [${i}]: ${mine[i]} vs ${ref[i]}`);
  }
  // BitNet: absmean per tensor, as the lowbit codec computes it
  assert.deepEqual(qatWeights(w, [N, K], null, 1.58, true), fakeQuant(w, [N, K], { kind: 'lowbit', method: 'absmean_ternary', granularity: { kind: 'tensor' } }));
  // low-precision training weights: the int codec itself
  assert.deepEqual(quantizeWeight(w, [N, K], { bits: 4, granularity: 'channel' }), fakeQuant(w, [N, K], { kind: 'int', bits: 4, symmetric: true, granularity: { kind: 'channel', axis: 0 }, scaleDtype: 'F32', rounding: 'half_even' }));
});

test('ternary and binary QAT weights with fp16-projected scales survive TQ2_0 bit for bit', () => {
  for (const bits of [1, 1.58] as QatBits[]) {
    const alpha = projectAlphaToF16(Float32Array.from(paretoQInitAlpha(w, N, K, bits)), bits);
    const q = qatWeights(w, [N, K], alpha, bits, false);
    const back = dequantizeGgml('TQ2_0', quantizeGgml('TQ2_0', q, N, K), N * K);
    assert.deepEqual(back, q, `bits ${bits}`);
  }
});

test('trainer feeds the codec weights and learns the scales (α moves, weights stay on the grid)', async () => {
  const cfg = llamaConfig({ vocabSize: 32, hiddenSize: 16, intermediateSize: 24, nLayers: 1, nHeads: 2, context: 8 });
  const init = initParams(cfg, 1);
  const tr = await Trainer.create(cfg, { ...TRAIN_DEFAULTS, batch: 2, context: 8, steps: 3, lr: 1e-2, threads: 1, qat: { bits: 2, bitnet: false } }, init);
  try {
    const name = 'model.layers.0.mlp.up_proj.weight';
    const a0 = Float32Array.from(tr.params.get(name + ALPHA_SUFFIX)!);
    const data = Int32Array.from({ length: 200 }, (_, i) => (i * 5) % 32);
    for (let s = 0; s < 3; s++) await tr.step(data);
    const a1 = tr.params.get(name + ALPHA_SUFFIX)!;
    assert.notDeepEqual(a1, a0, 'scales are learned');
    const eff = tr.effectiveWeights().get(name)!;
    assert.deepEqual(eff, fakeQuant(tr.params.get(name)!, [24, 16], qatScheme(2, false), { scales: a1 }));
    for (let n = 0; n < 24; n++) {
      const levels = new Set(Array.from(eff.subarray(n * 16, n * 16 + 16)).map((x) => Math.round((x / (Math.fround(a1[n]) / 4)) * 1e6) / 1e6));
      for (const l of levels) assert.ok([-3, -1, 1, 3].includes(l), `row ${n} level ${l}`);
    }
  } finally {
    await tr.release();
  }
});
