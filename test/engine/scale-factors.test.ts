// Scales stored as factors (nbits.ts ScaleFactors, nbits-graph.ts): Q6_K's, Q4_K's and Q5_K's kernel scales
// are fround(d·sc), a float per super-block times a small integer per block, and are kept so (U8
// code per block + F32 unit per super-block) instead of one float32 per block, which is what keeps
// the 1B Q4_K_M evaluation under its memory bound (docs/engine.md, sixth round). Checked here:
//   - the constants a Q6_K / Q4_K / Q5_K linear stores: no float32 scales, codes and units of the
//     stated shapes, bytes per weight 1 + 1/16 + 4/256 (Q6_K), 1/2 + 1/32 + 4/256 (Q4_K main) and
//     1 + 1/32 + 4/256 (Q5_K main);
//   - the factors give every scale bit for bit, also in row parts, and a factoring that does not is
//     refused (the float32 scales are kept);
//   - onnxruntime's output with factored scales equals the output with the float32 scales bit for
//     bit (same kernel, same scales), an input whose first element is NaN included (the gate), and
//     at accuracy level 4 (int8 activations), where the scales must stay constants;
//   - the graph onnxruntime runs after its optimisations still holds the codes and no float32
//     scales: without the gate on the input, constant folding makes them an initializer again.
// Legend: N = rows, K = row length, G = kernel block, Kb = K / G, per = blocks per unit.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeModel } from '../../src/formats/onnx/proto.js';
import { Rng } from '../../src/core/rng.js';
import { ggmlToNBits } from '../../src/engine/ggml-nbits.js';
import { GraphBuilder, makeTensor } from '../../src/engine/ir.js';
import { factorsExact, nbitsConstants, nbitsLinearGraph, nbitsValues } from '../../src/engine/nbits-graph.js';
import { splitNBitsRows, type NBitsLinear } from '../../src/engine/nbits.js';
import { EngineSession } from '../../src/engine/session.js';
import { quantizeGgml } from '../../src/quant/ggml/index.js';
import type { GgmlType } from '../../src/core/dtype.js';

const N = 24;
const K = 512;

function linear(type: GgmlType, seed = 3): NBitsLinear {
  const rng = new Rng(seed);
  const x = Float32Array.from({ length: N * K }, (_, i) => (i % 89 === 0 ? 5 : 1) * rng.normal() * 0.04);
  return ggmlToNBits(type, quantizeGgml(type, x, N, K), N, K)!;
}

function withoutFactors(l: NBitsLinear): NBitsLinear {
  const { scaleFactors: _drop, ...main } = l.main;
  return { ...l, main };
}

for (const [type, G, per, bytesPerWeight] of [
  ['Q6_K', 16, 16, 1 + 1 / 16 + 4 / 256],
  ['Q4_K', 32, 8, 1 / 2 + 1 / 32 + 4 / 256],
  ['Q5_K', 32, 8, 1 + 1 / 32 + 4 / 256],
] as const) {
  test(`${type}: scales stored as U8 codes per ${G}-block and an F32 unit per super-block, not float32 per block`, () => {
    const l = linear(type);
    const c = nbitsConstants(l);
    const Kb = K / G;
    assert.equal(c.scales, null, 'no float32 scales constant');
    assert.ok(c.scaleFactors);
    assert.equal(c.scaleFactors.codes.dtype, 'U8');
    assert.deepEqual(c.scaleFactors.codes.shape, [(N * Kb) / per, per]);
    assert.equal(c.scaleFactors.units.dtype, 'F32');
    assert.deepEqual(c.scaleFactors.units.shape, [(N * Kb) / per, 1]);
    const bytes = [c.B, c.scaleFactors.codes, c.scaleFactors.units].reduce((a, t) => a + (t.data as ArrayBufferView).byteLength, 0);
    assert.equal(bytes / (N * K), bytesPerWeight);
  });

  test(`${type}: the factors give every float32 scale bit for bit, in row parts too; a wrong factoring is refused`, () => {
    const l = linear(type, 11);
    const f = l.main.scaleFactors!;
    for (let i = 0; i < l.main.scales.length; i++) {
      const s = Math.fround(f.units[Math.floor(i / f.per)] * (f.codes[i] - 128));
      assert.ok(Object.is(s, l.main.scales[i]), `scale ${i}: ${s} vs ${l.main.scales[i]}`);
    }
    const parts = splitNBitsRows(l, 7);
    assert.equal(parts.length, 4);
    for (const p of parts) {
      assert.ok(factorsExact(p.main), 'a row part keeps exact factors');
      assert.equal(nbitsConstants(p).scales, null);
    }
    const bad = { ...l.main, scaleFactors: { ...f, units: f.units.slice() } };
    bad.scaleFactors.units[2] = Math.fround(bad.scaleFactors.units[2] * 1.5);
    assert.equal(factorsExact(bad), false);
    const kept = nbitsConstants({ ...l, main: bad });
    assert.equal(kept.scaleFactors, null);
    assert.equal(kept.scales?.data, l.main.scales, 'the float32 scales are kept');
  });

  test(`${type}: onnxruntime with factored scales = with float32 scales, bit for bit (first input NaN included)`, async () => {
    const l = linear(type, 5);
    const M = 4;
    const rng = new Rng(9);
    const xv = Float32Array.from({ length: M * K }, () => rng.normal());
    const run = async (lin: NBitsLinear, x: Float32Array, level = 0): Promise<Float32Array> => {
      const b = new GraphBuilder('factors');
      const xin = b.input('x', 'F32', [M, K]);
      b.output('y', nbitsLinearGraph(b, xin, nbitsValues(b, 'w', nbitsConstants(lin)), level));
      const s = await EngineSession.fromGraph(b.build(), { threads: 1 });
      try {
        return (await s.run({ x: makeTensor('F32', [M, K], x) })).y.data as Float32Array;
      } finally {
        await s.release();
      }
    };
    assert.ok(nbitsConstants(l).scaleFactors && nbitsConstants(withoutFactors(l)).scales);
    for (const x of [xv, Float32Array.from(xv, (v, i) => (i === 0 ? NaN : v))]) {
      const got = new Uint32Array((await run(l, x)).buffer);
      const want = new Uint32Array((await run(withoutFactors(l), x)).buffer);
      // row 0 holds the NaN in the second input (NaN out, any payload): compare rows 1… there
      const from = Number.isNaN(x[0]) ? N : 0;
      assert.deepEqual(Array.from(got.subarray(from)), Array.from(want.subarray(from)));
    }
    // accuracy level 4 (int8 activations): its kernel packs constant scales at load and computes
    // wrong products from run-time ones, so there the product is left for onnxruntime to fold
    const got4 = new Uint32Array((await run(l, xv, 4)).buffer);
    const want4 = new Uint32Array((await run(withoutFactors(l), xv, 4)).buffer);
    assert.deepEqual(Array.from(got4), Array.from(want4), 'accuracy level 4');
  });
}

test('after onnxruntime\'s optimisations the factored scales are still U8 codes, not a folded float32 initializer', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-factors-'));
  try {
    for (const [type, G] of [['Q6_K', 16], ['Q4_K', 32], ['Q5_K', 32]] as const) {
      const l = linear(type, 13);
      const path = join(dir, `${type}.onnx`);
      const b = new GraphBuilder('factors');
      const xin = b.input('x', 'F32', [2, K]);
      b.output('y', nbitsLinearGraph(b, xin, nbitsValues(b, 'w', nbitsConstants(l)), 0));
      const s = await EngineSession.fromGraph(b.build(), { threads: 1, optimization: 'all', optimizedModelPath: path });
      await s.release();
      const inits = decodeModel(readFileSync(path)).graph.initializer;
      const numel = (dims: number[]) => dims.reduce((a, d) => a * Number(d), 1);
      const F32 = 1;
      const U8 = 2;
      const Kb = K / G;
      assert.ok(inits.some((t) => t.data_type === U8 && numel(t.dims) === N * Kb), `${type}: the U8 scale codes are an initializer`);
      const folded = inits.filter((t) => t.data_type === F32 && numel(t.dims) === N * Kb);
      assert.deepEqual(folded.map((t) => t.name), [], `${type}: no float32 initializer of N·Kb scales`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
