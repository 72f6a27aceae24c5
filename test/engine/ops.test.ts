// Every IR op lowered to ONNX and run in onnxruntime, against the float64 reference evaluator
// (src/engine/interp.ts) on seeded random inputs; plus shape errors raised at build time.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import type { Tensor } from '../../src/core/tensor.js';
import { GraphBuilder, makeTensor, type Value } from '../../src/engine/ir.js';
import { interpret } from '../../src/engine/interp.js';
import { lowerToOnnx } from '../../src/engine/lower.js';
import { EngineSession } from '../../src/engine/session.js';
import { decodeModel } from '../../src/formats/onnx/proto.js';

/** float32 ops vs float64-with-per-node-rounding: only accumulation order and libm differ */
const OP_ATOL = 1e-5;
const OP_RTOL = 1e-5;

function randF32(rng: Rng, shape: number[], scale = 1): Tensor<'F32'> {
  const n = shape.reduce((a, b) => a * b, 1);
  const d = new Float32Array(n);
  for (let i = 0; i < n; i++) d[i] = rng.normal() * scale;
  return { dtype: 'F32', shape, data: d };
}

async function check(name: string, build: (b: GraphBuilder, x: Value, y: Value) => Value, xs = [3, 4], ys = [3, 4], opts: { positive?: boolean } = {}) {
  const rng = new Rng(name.length * 7919);
  const b = new GraphBuilder(name);
  const x = b.input('x', 'F32', xs);
  const y = b.input('y', 'F32', ys);
  const out = build(b, x, y);
  b.output('out', out);
  const g = b.build();
  const fx = randF32(rng, xs);
  const fy = randF32(rng, ys);
  if (opts.positive) {
    fx.data.forEach((v, i) => (fx.data[i] = Math.abs(v) + 0.1));
    fy.data.forEach((v, i) => (fy.data[i] = Math.abs(v) + 0.1));
  }
  const s = await EngineSession.fromGraph(g, { threads: 1 });
  const got = (await s.run({ x: fx, y: fy })).out;
  await s.release();
  const want = interpret(g, { x: fx, y: fy }).out;
  assert.deepEqual(got.shape, want.shape, `${name}: shape`);
  assert.equal(got.dtype, want.dtype, `${name}: dtype`);
  for (let i = 0; i < want.data.length; i++) {
    const w = Number(want.data[i]);
    const gv = Number(got.data[i]);
    assert.ok(Math.abs(w - gv) <= OP_ATOL + OP_RTOL * Math.abs(w), `${name}[${i}]: ort ${gv} vs reference ${w}`);
  }
}

test('element-wise ops with broadcasting match the reference', async () => {
  await check('add', (b, x, y) => b.add(x, y), [2, 3, 4], [4]);
  await check('sub', (b, x, y) => b.sub(x, y), [3, 1], [1, 4]);
  await check('mul', (b, x, y) => b.mul(x, b.mul(y, 0.5)));
  await check('div', (b, x, y) => b.div(x, y), [3, 4], [3, 4], { positive: true });
  await check('pow', (b, x, y) => b.pow(x, y), [3, 4], [3, 4], { positive: true });
  await check('max-min', (b, x, y) => b.sub(b.maximum(x, y), b.minimum(x, y)));
  await check('unary', (b, x) => b.add(b.add(b.exp(x), b.neg(b.abs(x))), b.add(b.sigmoid(x), b.floor(x))));
  await check('sqrt-log', (b, x) => b.add(b.sqrt(x), b.log(x)), [5, 2], [5, 2], { positive: true });
  await check('round-clip', (b, x) => b.clip(b.round(b.mul(x, 3)), -2, 1.5));
  await check('silu', (b, x) => b.silu(x));
  await check('where-less', (b, x, y) => b.where(b.less(x, y), x, b.mul(y, 2)));
  await check('equal-cast', (b, x) => b.cast(b.equal(b.round(x), 0), 'F32'));
});

test('linear algebra, reductions, softmax and rmsnorm match the reference', async () => {
  await check('matmul', (b, x, y) => b.matmul(x, y), [5, 7], [7, 3]);
  await check('matmul-batched', (b, x, y) => b.matmul(x, y), [2, 1, 5, 7], [3, 7, 4]);
  // Gemm: a [N, K] weight taken with transB, Aᵀ with transA, and C added with β
  await check('gemm-transB', (b, x, y) => b.gemm(x, y, null, { transB: true }), [5, 7], [3, 7]);
  await check('gemm-transA-C', (b, x, y) => b.gemm(x, b.slice(x, [0], [4], [1]), y, { transA: true, alpha: 0.5, beta: 2 }), [5, 6], [6, 4]);
  await check('reduce', (b, x) => b.add(b.sum(x, [0, 2], true), b.add(b.mean(x, -1, true), b.max(x, 1, true))), [2, 3, 4], [1, 1]);
  await check('reduce-nokeep', (b, x) => b.mean(x, 0, false), [3, 5], [1, 1]);
  await check('softmax', (b, x) => b.softmax(b.mul(x, 4), 1), [2, 6, 3]);
  await check('rmsnorm', (b, x, y) => b.rmsnorm(x, y, 1e-5), [4, 8], [8]);
});

test('layout ops match the reference', async () => {
  await check('reshape-transpose', (b, x) => b.transpose(b.reshape(x, [2, -1, 3]), [2, 0, 1]), [4, 3], [1, 1]);
  await check('concat', (b, x, y) => b.concat([x, y, x], 1), [2, 3], [2, 1]);
  await check('slice', (b, x) => b.slice(x, [1, -3], [100, 5], [0, 1], [2, 1]), [5, 6], [1, 1]);
  await check('gather', (b, x) => b.gather(x, b.constant(makeTensor('I64', [2, 2], [3, 0, 1, 3])), 0), [4, 5], [1, 1]);
  await check('gather-axis1', (b, x) => b.gather(x, b.constant(makeTensor('I64', [3], [2, 2, 0])), 1), [4, 5], [1, 1]);
});

test('blocked int4 DequantizeLinear matches the reference', async () => {
  // W [K=8, N=3] int4, block 4 along axis 0: scale [2, 3]
  const codes = [-8, -1, 0, 7, 3, -4, 2, 5, -2, 1, 6, -7, 0, 0, 4, -3, 5, 1, -6, 2, 7, -8, 3, 1];
  const packed = new Uint8Array(12);
  codes.forEach((c, i) => (packed[i >> 1] |= (c & 15) << ((i & 1) * 4)));
  const b = new GraphBuilder('dq');
  const x = b.input('x', 'F32', [2, 8]);
  const w = b.dequantizeLinear(b.constant({ dtype: 'I4', shape: [8, 3], data: packed }), b.constant(makeTensor('F32', [2, 3], [0.5, 0.25, 1, 2, 0.125, 0.75])), null, 0, 4);
  b.output('w', w);
  b.output('out', b.matmul(x, w));
  const g = b.build();
  const fx = randF32(new Rng(3), [2, 8]);
  const s = await EngineSession.fromGraph(g, { threads: 1 });
  const got = await s.run({ x: fx });
  const want = interpret(g, { x: fx });
  assert.deepEqual(Array.from(got.w.data as Float32Array), Array.from(want.w.data as Float32Array));
  for (let i = 0; i < 6; i++) assert.ok(Math.abs(Number(got.out.data[i]) - Number(want.out.data[i])) < 1e-5);
  // the first element: code −8 in block 0, column 0, scale 0.5
  assert.equal(got.w.data[0], -4);
});

test('shape errors are raised when the graph is built, naming both shapes', () => {
  const b = new GraphBuilder();
  const x = b.input('x', 'F32', [2, 3]);
  const y = b.input('y', 'F32', [4, 5]);
  assert.throws(() => b.matmul(x, y), (e: Error & { code?: string }) => e.code === 'shape_mismatch' && /\[2, 3\] @ \[4, 5\]/.test(e.message));
  assert.throws(() => b.add(x, y), (e: Error & { code?: string }) => e.code === 'shape_mismatch');
  assert.throws(() => b.reshape(x, [4, 2]), (e: Error & { code?: string }) => e.code === 'shape_mismatch');
  assert.throws(() => b.transpose(x, [0, 0]), (e: Error & { code?: string }) => e.code === 'shape_mismatch');
  assert.throws(() => b.sum(x, 2), (e: Error & { code?: string }) => e.code === 'shape_mismatch');
  assert.throws(() => b.where(x, x, x), (e: Error & { code?: string }) => e.code === 'shape_mismatch');
});

test('4-bit graph outputs are refused before onnxruntime sees them', () => {
  const b = new GraphBuilder();
  b.output('w', b.constant({ dtype: 'U4', shape: [4], data: new Uint8Array(2) }));
  assert.throws(() => lowerToOnnx(b.build()), (e: Error & { code?: string }) => e.code === 'unsupported');
});

test('lowering is deterministic, opset 21 / IR 10, params can become inputs', async () => {
  const mk = () => {
    const b = new GraphBuilder('p');
    const x = b.input('x', 'F32', [1, 2]);
    b.output('y', b.matmul(x, b.param('w', makeTensor('F32', [2, 2], [1, 2, 3, 4]))));
    return b.build();
  };
  const a = lowerToOnnx(mk()).model;
  assert.deepEqual(a, lowerToOnnx(mk()).model);
  const m = decodeModel(a);
  assert.equal(m.ir_version, 10);
  assert.deepEqual(m.opset_import.map((o) => [o.domain, o.version]), [['', 21]]);
  assert.equal(m.graph.initializer[0].name, 'w');
  const asIn = lowerToOnnx(mk(), { paramsAsInputs: true });
  assert.deepEqual(asIn.inputNames, ['x', 'w']);
  const s = await EngineSession.fromGraph(mk(), {}, { paramsAsInputs: true });
  const r = await s.run({ x: makeTensor('F32', [1, 2], [1, 1]), w: makeTensor('F32', [2, 2], [1, 0, 0, 2]) });
  assert.deepEqual(Array.from(r.y.data as Float32Array), [1, 2]);
  await assert.rejects(s.run({ x: makeTensor('F32', [1, 2], [1, 1]) }), (e: Error & { code?: string }) => e.code === 'bad_option');
});

test('external data: a large constant goes through a file and gives the same result', async () => {
  const b = new GraphBuilder('ext');
  const x = b.input('x', 'F32', [1, 256]);
  const w = randF32(new Rng(9), [256, 256]);
  b.output('y', b.matmul(x, b.param('w', w)));
  const g = b.build();
  const fx = randF32(new Rng(10), [1, 256]);
  const inline = await EngineSession.fromGraph(g);
  const ext = await EngineSession.fromGraph(g, { externalDataThreshold: 1000 });
  const lowered = lowerToOnnx(g, { external: { location: 'w.bin' } });
  assert.ok(lowered.externalData && lowered.externalData.byteLength >= 256 * 256 * 4);
  assert.deepEqual((await ext.run({ x: fx })).y.data, (await inline.run({ x: fx })).y.data);
});

test('RoPE: the 4-node rotation equals the textbook pairwise form, both layouts', async () => {
  const { applyRope, applyRopeRotate, expandedRopeTables, ropeTables, rotationMatrix } = await import('../../src/engine/rope.js');
  for (const layout of ['interleaved', 'half'] as const) {
    const cfg = { headDim: 8, ropeTheta: 10000, ropeScaling: null, ropeLayout: layout } as never;
    const b = new GraphBuilder('rope');
    const x = b.input('x', 'F32', [2, 5, 3, 8]);
    const t1 = ropeTables(cfg, 5);
    const t2 = expandedRopeTables(cfg, 5);
    const c1 = b.constant({ dtype: 'F32', shape: [5, 4], data: t1.cos });
    const s1 = b.constant({ dtype: 'F32', shape: [5, 4], data: t1.sin });
    const c2 = b.constant({ dtype: 'F32', shape: [5, 8], data: t2.cos });
    const s2 = b.constant({ dtype: 'F32', shape: [5, 8], data: t2.sin });
    const R = b.constant({ dtype: 'F32', shape: [8, 8], data: rotationMatrix(8, layout) });
    b.output('a', applyRope(b, x, c1, s1, layout));
    b.output('b', applyRopeRotate(b, x, c2, s2, R));
    const g = b.build();
    const fx = randF32(new Rng(5), [2, 5, 3, 8]);
    const r = interpret(g, { x: fx }, { roundF32: false });
    const a = r.a.data as Float32Array;
    const bb = r.b.data as Float32Array;
    for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - bb[i]) < 1e-6, `${layout}[${i}]`);
    // position 0 is the identity
    for (let i = 0; i < 24; i++) assert.ok(Math.abs(a[i] - fx.data[i]) < 1e-6);
  }
});

test('intermediates returned as outputs keep their other consumers under full optimisation', async () => {
  const b = new GraphBuilder('outs');
  const x = b.input('x', 'F32', [2, 4]);
  const h = b.rmsnorm(x, b.constant(makeTensor('F32', [4], [1, 2, 3, 4])), 1e-5);
  b.output('h', h);
  const q = b.matmul(h, b.constant(makeTensor('F32', [4, 4], Array.from({ length: 16 }, (_, i) => i / 8))));
  b.output('q', q);
  b.output('q_again', q);
  b.output('x_copy', x);
  b.output('y', b.add(q, h));
  const g = b.build();
  const fx = randF32(new Rng(2), [2, 4]);
  for (const optimization of ['all', 'disabled'] as const) {
    const s = await EngineSession.fromGraph(g, { optimization });
    const r = await s.run({ x: fx });
    const want = interpret(g, { x: fx });
    for (const k of ['h', 'q', 'q_again', 'x_copy', 'y']) {
      const a = r[k].data as Float32Array;
      const w = want[k].data as Float32Array;
      for (let i = 0; i < w.length; i++) assert.ok(Math.abs(a[i] - w[i]) < 1e-5, `${optimization} ${k}[${i}]`);
    }
    await s.release();
  }
});
