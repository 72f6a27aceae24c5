// The batched calibration graph's shape (src/pipeline/calibrate/batch.ts), checked on the built IR:
// the things its onnxruntime profile showed as copies or slow broadcasts stay out of it. The graph
// is not optimised (engine/block-runner.ts says why), so every node here runs as written:
// - a weight input is never transposed (MatMul(x, Transpose(W)) copied every weight per run; a
//   Gemm with transB reads W as stored);
// - each Gram panel accumulator feeds exactly one node, a Gemm with β = 1 whose result is the
//   panel's output (no separate Add reading and writing the accumulator again);
// - no Where on the attention scores (the causal mask is added; Where's broadcast was slow);
// - attention runs in KV-head groups small enough to stay out of glibc's fresh mappings.
// Numerical equality with the per-window reference is test/pipeline/calibrate/batch.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { Graph } from '../../../src/engine/ir.js';
import { blockWeightShapes } from '../../../src/engine/decoder-block.js';
import { attentionHeadGroups, batchBlockGraph, MAX_SCORES_BYTES } from '../../../src/pipeline/calibrate/batch.js';
import { interpret } from '../../../src/engine/interp.js';
import { Rng } from '../../../src/core/rng.js';
import type { Tensor } from '../../../src/core/tensor.js';
import { tinyConfig } from '../../model/synthetic.js';

function consumers(g: Graph, id: number) {
  return g.nodes.filter((n) => n.inputs.some((v) => v.id === id));
}

for (const mode of ['stats', 'forward', 'both'] as const) {
  test(`batched block graph (${mode}): weights read untransposed, Gram panels accumulated by one Gemm, no Where`, () => {
    const c = tinyConfig({ attentionBias: true });
    const g = batchBlockGraph(c, 8, { batch: 2, mode, gram: mode !== 'forward', panelWidth: 16 });
    const weightNames = new Set(blockWeightShapes(c).map(([n]) => n));
    const weights = g.inputs.filter((i) => weightNames.has(i.name));
    assert.ok(weights.length >= (mode === 'stats' ? 6 : 7));
    for (const w of weights) {
      for (const n of consumers(g, w.value.id)) assert.notEqual(n.op, 'Transpose', `${w.name} is transposed in the graph`);
    }
    const linears = weights.filter((w) => w.value.shape.length === 2);
    for (const w of linears) assert.ok(consumers(g, w.value.id).some((n) => n.op === 'Gemm' && n.attrs.transB === 1), `${w.name}: a Gemm with transB`);
    assert.equal(g.nodes.filter((n) => n.op === 'Where').length, 0, 'Where in the graph');
    const accs = g.inputs.filter((i) => i.name.startsWith('gram.'));
    if (mode === 'forward') assert.equal(accs.length, 0);
    else assert.ok(accs.length > 4);
    for (const a of accs) {
      const cs = consumers(g, a.value.id);
      assert.equal(cs.length, 1, `${a.name}: read once`);
      const [n] = cs;
      assert.equal(n.op, 'Gemm', `${a.name}: accumulated by ${n.op}`);
      assert.equal(n.inputs[2]?.id, a.value.id, `${a.name}: the Gemm's C`);
      assert.equal(n.attrs.beta, 1);
      // no Slice that copies a whole tensor (the last panel reads all of Xᵀ as it is)
      for (const op of n.inputs.slice(0, 2)) {
        const src = g.nodes.find((m) => m.outputs.some((v) => v.id === op.id));
        if (src?.op === 'Slice') assert.notDeepEqual(src.outputs[0].shape, src.inputs[0].shape, `${a.name}: a Slice that copies all of its input`);
      }
      const out = g.outputs.find((o) => o.name === `${a.name}.out`);
      assert.equal(out?.value.id, n.outputs[0].id, `${a.name}.out is the Gemm's result`);
    }
  });
}

test('attention in KV-head groups keeps each group\'s scores within the limit and gives the same outputs bit for bit', () => {
  // Llama-3.2-1B: one 512-token window's scores are 8 × 4 × 512 × 512 floats = 32 MiB → two groups of 16 MiB
  const l1b = tinyConfig({ hiddenSize: 2048, nHeads: 32, nKvHeads: 8, headDim: 64 });
  assert.equal(attentionHeadGroups(l1b, 1, 512), 2);
  assert.equal(attentionHeadGroups(l1b, 2, 512), 4);
  assert.equal(attentionHeadGroups(l1b, 1, 256), 1);
  assert.equal(attentionHeadGroups(l1b, 8, 1024), 8); // never more groups than KV heads
  assert.equal(MAX_SCORES_BYTES, 16 << 20);

  const c = tinyConfig({ nHeads: 4, nKvHeads: 2 });
  const T = 8, B = 2;
  const scoresBytes = B * c.nHeads * T * T * 4; // all heads at once
  const rng = new Rng(3);
  const feeds: Record<string, Tensor> = { x: { dtype: 'F32', shape: [B * T, c.hiddenSize], data: rng.fillNormal(new Float32Array(B * T * c.hiddenSize), 0, 1) } };
  for (const [n, s] of blockWeightShapes(c)) feeds[n] = { dtype: 'F32', shape: s, data: rng.fillNormal(new Float32Array(s.reduce((a, v) => a * v, 1)), 0, 0.2) };
  for (const mode of ['forward', 'stats'] as const) {
    const whole = batchBlockGraph(c, T, { batch: B, mode, gram: false, panelWidth: 16 });
    const split = batchBlockGraph(c, T, { batch: B, mode, gram: false, panelWidth: 16, maxScoresBytes: scoresBytes / 2 });
    assert.equal(whole.nodes.filter((n) => n.op === 'Softmax').length, 1);
    assert.equal(split.nodes.filter((n) => n.op === 'Softmax').length, 2, 'two head groups');
    for (const n of split.nodes) if (n.op === 'Softmax') assert.ok(n.outputs[0].shape.reduce((a, v) => a * (v as number), 4) <= scoresBytes / 2);
    const a = interpret(whole, feeds, { roundF32: true }), b = interpret(split, feeds, { roundF32: true });
    assert.deepEqual(Object.keys(b).sort(), Object.keys(a).sort());
    for (const k of Object.keys(a)) assert.deepEqual(b[k].data, a[k].data, `${mode}: ${k}`);
  }
});
