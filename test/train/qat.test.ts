import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { fakeQuant, parseScheme, quantize } from '../../src/quant/index.js';
import { rtnOnGrid } from '../../src/algorithms/gptq.js';
import { gridFor, targetFor } from '../../src/pipeline/quantize/layer.js';
import { dequantizeGgml, quantizeGgml } from '../../src/quant/ggml/index.js';
import { paretoQForward, paretoQInitAlpha, type QatBits } from '../../src/train/quantizers.js';
import { projectAlphaToF16, qatScheme, qatWeights } from '../../src/train/qat.js';
import { llamaConfig, initParams } from '../../src/train/graph.js';
import { ALPHA_SUFFIX, Trainer, TRAIN_DEFAULTS } from '../../src/train/trainer.js';
import { quantizeWeight } from '../../src/train/lowprec.js';

/** the codec's f32 products vs the float64 ParetoQ formula: one f32 rounding of α·level */
const ULP_REL = 2 ** -23;

const rng = new Rng(11);
const N = 8;
const K = 256;
const w = Float32Array.from({ length: N * K }, () => rng.normal(0, 0.05));

test('QAT forward ≈ the REFERENCE formula (1 f32 rounding); at initialisation it is PTQ RTN of the restricted grid (atol 0)', () => {
  for (const bits of [1, 1.58, 2, 3, 4] as QatBits[]) {
    const alpha = Float32Array.from(paretoQInitAlpha(w, N, K, bits), (a) => a * 0.9);
    const mine = qatWeights(w, [N, K], alpha, bits, false);
    // the REFERENCE formula in float64 (3/4 bits: the codec keeps 16 significant bits of α)
    const q = quantize(w, [N, K], qatScheme(bits, false), { scales: alpha }) as { scales: Float32Array };
    const a64 = bits >= 3 ? Float64Array.from(q.scales) : Float64Array.from(alpha);
    const ref = paretoQForward(w, a64, N, K, bits);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ref[i] - mine[i]) <= Math.abs(ref[i]) * ULP_REL * 2, `bits ${bits} [${i}]: ${mine[i]} vs ${ref[i]}`);
  }
  // PTQ/QAT parity (torchao asserts it with atol 0): ParetoQ's LSQ initialisation α = max|W_row|/(2^(b−1) − 1)
  // is the restricted symmetric grid's scale, so the QAT forward before any step equals what
  // `bitscale quantize --method rtn --scheme int<b>-channel-restricted` computes (the pipeline's grid)
  for (const bits of [3, 4] as const) {
    const init = Float32Array.from(paretoQInitAlpha(w, N, K, bits));
    const ptq = rtnOnGrid(w, N, K, gridFor(targetFor(parseScheme(`int${bits}-channel-restricted`), K), N, K)!);
    assert.deepEqual(qatWeights(w, [N, K], init, bits, false), Float32Array.from(ptq), `int${bits}`);
  }
  // BitNet: REFERENCE T3, W = [[0.2, −0.5], [0.05, 1.0]]: γ = mean|W| = 0.4375, W/γ → [0, −1, 0, 1]
  assert.deepEqual([...qatWeights(Float32Array.from([0.2, -0.5, 0.05, 1.0]), [2, 2], null, 1.58, true)], [0, -0.4375, 0, 0.4375]);
  // low-precision training weights `4:channel` are the scheme int4-channel-restricted
  assert.deepEqual(quantizeWeight(w, [N, K], { bits: 4, granularity: 'channel' }), fakeQuant(w, [N, K], parseScheme('int4-channel-restricted')));
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
    // the weights fed to the graph: ParetoQ's SEQ forward with the learned α, up to one f32 rounding
    const ref = paretoQForward(tr.params.get(name)!, Float64Array.from(a1), 24, 16, 2);
    for (let i = 0; i < ref.length; i++) assert.ok(Math.abs(ref[i] - eff[i]) <= Math.abs(ref[i]) * ULP_REL * 2, `[${i}]: ${eff[i]} vs ${ref[i]}`);
    for (let n = 0; n < 24; n++) {
      const levels = new Set(Array.from(eff.subarray(n * 16, n * 16 + 16)).map((x) => Math.round((x / (Math.fround(a1[n]) / 4)) * 1e6) / 1e6));
      for (const l of levels) assert.ok([-3, -1, 1, 3].includes(l), `row ${n} level ${l}`);
    }
  } finally {
    await tr.release();
  }
});
