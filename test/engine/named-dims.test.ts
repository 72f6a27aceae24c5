// Named dims in the IR (ir.ts Dim, GraphBuilder<Dim>): shape inference carries names, refuses what
// it cannot check, and the lowering writes dim_param and reads run-time sizes, so one ONNX graph runs
// on inputs of several sizes in onnxruntime (results checked against plain loops here).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder, type Dim } from '../../src/engine/ir.js';
import { lowerToOnnx } from '../../src/engine/lower.js';
import { EngineSession } from '../../src/engine/session.js';
import { decodeModel } from '../../src/formats/onnx/proto.js';

test('shape inference: names broadcast with themselves and 1, reshape cancels names, concat along a name is told its result', () => {
  const b = new GraphBuilder<Dim>('named');
  const x = b.input('x', 'F32', ['n', 'm', 6]);
  const y = b.input('y', 'F32', ['n', 1, 6]);
  assert.deepEqual(b.add(x, y).shape, ['n', 'm', 6]);
  assert.deepEqual(b.reshape(x, ['n', 'm', 2, 3]).shape, ['n', 'm', 2, 3]);
  assert.deepEqual(b.reshape(x, ['n', 'm', 3, -1]).shape, ['n', 'm', 3, 2]);
  assert.deepEqual(b.reshape(x, [6, 'n', -1]).shape, [6, 'n', 'm']);
  assert.deepEqual(b.concat([x, x], 1, 'twice_m').shape, ['n', 'twice_m', 6]);
  assert.deepEqual(b.concat([x, x], 2).shape, ['n', 'm', 12]);
  assert.deepEqual(b.matmul(x, b.constant({ dtype: 'F32', shape: [6, 4], data: new Float32Array(24) })).shape, ['n', 'm', 4]);
  // what cannot be checked is refused
  assert.throws(() => b.add(x, b.input('z', 'F32', ['k', 'm', 6])), { code: 'shape_mismatch' });
  assert.throws(() => b.add(x, b.constant({ dtype: 'F32', shape: [2, 1, 6], data: new Float32Array(12) })), { code: 'shape_mismatch' });
  assert.throws(() => b.reshape(x, ['m', -1, 'k']), { code: 'shape_mismatch' });
  assert.throws(() => b.reshape(x, ['n', 'm', 5]), { code: 'shape_mismatch' });
  assert.throws(() => b.reshape(x, ['n', -1, 3]), { code: 'shape_mismatch' }); // -1 would be 2·m
  assert.throws(() => b.concat([x, x], 1), { code: 'shape_mismatch' });
  assert.throws(() => b.slice(x, [0], [1], [1]), { code: 'shape_mismatch' });
  assert.throws(() => b.input('w', 'F32', ['not a name']), { code: 'shape_mismatch' });
  assert.throws(() => b.dimSize('q'), { code: 'bad_config' }); // no input has it
  assert.deepEqual(new GraphBuilder().iota(3).shape, [3]);
});

test('lowering: dim_param on inputs/outputs; one graph runs on several sizes (Reshape targets, DimSize, Range, Concat along a name)', async () => {
  const b = new GraphBuilder<Dim>('named');
  const x = b.input('x', 'F32', ['n', 'm', 6]);
  const past = b.input('past', 'F32', ['n', 'p', 6]);
  // [n, m, 6] → [n, m, 2, 3] → [m, n, 2, 3] → [m, n·… ] exercises 0 / -1 / read sizes in targets
  const t = b.transpose(b.reshape(x, ['n', 'm', 2, 3]), [1, 0, 2, 3]); // [m, n, 2, 3]
  b.output('t', b.reshape(t, ['m', 'n', 6]));
  b.output('cat', b.concat([past, x], 1, 'total'));
  // slot of new token i: p + i; the count of past rows as a value
  b.output('slots', b.add(b.iota('m'), b.dimSize('p')));
  b.output('hidden', b.or(b.less(b.reshape(b.iota('m'), ['m', 1]), b.reshape(b.iota('n'), [1, 'n'])), b.equal(b.reshape(b.iota('n'), [1, 'n']), 0)));
  const g = b.build();
  const lowered = lowerToOnnx(g);
  const m = decodeModel(lowered.model);
  const dims = (v: { type?: { tensor_type?: { shape?: { dim?: { dim_value?: number; dim_param?: string }[] } } } }) => v.type!.tensor_type!.shape!.dim!.map((d) => d.dim_param ?? d.dim_value);
  assert.deepEqual(dims(m.graph!.input![0]), ['n', 'm', 6]);
  assert.deepEqual(dims(m.graph!.output!.find((o) => o.name === 'cat')!), ['n', 'total', 6]);
  const s = await EngineSession.fromOnnx(lowered.model, { threads: 1 });
  try {
    for (const [n, mm, p] of [[1, 1, 0], [2, 3, 4], [3, 5, 1]]) {
      const xs = Float32Array.from({ length: n * mm * 6 }, (_, i) => i * 0.5 - 3);
      const ps = Float32Array.from({ length: n * p * 6 }, (_, i) => -i);
      const out = await s.run({ x: { dtype: 'F32', shape: [n, mm, 6], data: xs }, past: { dtype: 'F32', shape: [n, p, 6], data: ps } });
      assert.deepEqual(out.t.shape, [mm, n, 6]);
      for (let a = 0; a < mm; a++) for (let r = 0; r < n; r++) for (let k = 0; k < 6; k++) assert.equal(out.t.data[(a * n + r) * 6 + k], xs[(r * mm + a) * 6 + k]);
      assert.deepEqual(out.cat.shape, [n, p + mm, 6]);
      for (let r = 0; r < n; r++) for (let j = 0; j < p + mm; j++) for (let k = 0; k < 6; k++) {
        assert.equal(out.cat.data[(r * (p + mm) + j) * 6 + k], j < p ? ps[(r * p + j) * 6 + k] : xs[(r * mm + j - p) * 6 + k]);
      }
      assert.deepEqual(Array.from(out.slots.data as BigInt64Array, Number), Array.from({ length: mm }, (_, i) => p + i));
      assert.deepEqual(out.hidden.shape, [mm, n]);
      assert.deepEqual(Array.from(out.hidden.data as Uint8Array), Array.from({ length: mm * n }, (_, i) => (Math.floor(i / n) < i % n || i % n === 0 ? 1 : 0)));
    }
  } finally {
    await s.release();
  }
});
