import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder, makeTensor, type Graph, type Value } from '../../src/engine/ir.js';
import { gradGraph } from '../../src/engine/autodiff.js';
import { interpret } from '../../src/engine/interp.js';
import { EngineSession } from '../../src/engine/session.js';
import { Rng } from '../../src/core/rng.js';
import { numel, type Tensor } from '../../src/core/tensor.js';

/** float64 rule vs float64 central differences (h = 1e-5): truncation error O(h²) on smooth ops */
const FD_F64_TOL = 1e-6;
/** onnxruntime float32 gradients vs the float64 evaluation of the same gradient graph */
const ORT_F32_TOL = 2e-4;
const H = 1e-5;

type Init = (rng: Rng, n: number) => Float64Array;
const normal: Init = (rng, n) => Float64Array.from({ length: n }, () => rng.normal());
const positive: Init = (rng, n) => Float64Array.from({ length: n }, () => 0.5 + rng.next() * 2);
/** values well away from clip/ties so that finite differences do not straddle a kink */
const awayFromKinks: Init = (rng, n) => Float64Array.from({ length: n }, (_, i) => (i % 2 ? 1 : -1) * (0.1 + 0.05 * i + 0.01 * rng.next()));

interface Case {
  name: string;
  params: { shape: number[]; init?: Init }[];
  build: (b: GraphBuilder, p: Value[]) => Value;
}

function withF64(g: Graph, vals: Map<string, Float64Array>): Graph {
  const constants = new Map(g.constants);
  for (const [id, name] of g.params) {
    const v = vals.get(name);
    if (v) constants.set(id, { dtype: 'F32', shape: [...g.constants.get(id)!.shape], data: v as never });
  }
  return { ...g, constants };
}

async function checkCase(c: Case, seed: number): Promise<void> {
  const rng = new Rng(seed);
  const b = new GraphBuilder(c.name);
  const vals = new Map<string, Float64Array>();
  const ps = c.params.map((p, i) => {
    const name = `p${i}`;
    const d = (p.init ?? normal)(rng, numel(p.shape));
    vals.set(name, d);
    return b.param(name, { dtype: 'F32', shape: p.shape, data: Float32Array.from(d) });
  });
  const y = c.build(b, ps);
  const rd = normal(rng, numel(y.shape));
  const r = b.constant(y.dtype === 'F64' ? { dtype: 'F64', shape: [...y.shape], data: rd } : { dtype: 'F32', shape: [...y.shape], data: Float32Array.from(rd) });
  b.output('loss', b.sum(b.mul(y, r), y.shape.map((_, i) => i), false));
  const fwd = b.build();
  // the f32 parameters as float64, so that FD perturbations are not rounded away
  for (const [name, d] of vals) vals.set(name, Float64Array.from(Float32Array.from(d)));
  const gg = gradGraph(fwd);
  const g64 = interpret(withF64(gg, vals), {}, { roundF32: false });
  // F32 outputs are returned as Float32Array by interp; compute FD through a F64 copy of the loss
  const lossF64 = (name: string, i: number, delta: number) => {
    const v = new Map(vals);
    const d = Float64Array.from(vals.get(name)!);
    d[i] += delta;
    v.set(name, d);
    return interpretF64(withF64(fwd, v));
  };
  const sess = await EngineSession.fromGraph(gg, { threads: 1 }, { paramsAsInputs: true });
  const feeds: Record<string, Tensor> = {};
  for (const [name, d] of vals) feeds[name] = { dtype: 'F32', shape: [...c.params[Number(name.slice(1))].shape], data: Float32Array.from(d) };
  const gOrt = await sess.run(feeds);
  await sess.release();
  for (const name of vals.keys()) {
    const ga = g64[`grad.${name}`].data as Float32Array;
    const go = gOrt[`grad.${name}`].data as Float32Array;
    const n = vals.get(name)!.length;
    for (let i = 0; i < n; i++) {
      const fd = (lossF64(name, i, H) - lossF64(name, i, -H)) / (2 * H);
      assert.ok(Math.abs(fd - ga[i]) <= FD_F64_TOL * (1 + Math.abs(fd)), `${c.name} ${name}[${i}]: rule ${ga[i]} vs FD ${fd}`);
      assert.ok(Math.abs(go[i] - ga[i]) <= ORT_F32_TOL * (1 + Math.abs(ga[i])), `${c.name} ${name}[${i}]: ORT ${go[i]} vs f64 ${ga[i]}`);
    }
  }
}

/** interp returns F32 outputs rounded; re-read the loss in float64 by making the output F64. */
function interpretF64(g: Graph): number {
  const b = g.outputs.map((o) => ({ ...o, value: { ...o.value, dtype: 'F64' as const } }));
  const out = interpret({ ...g, outputs: b }, {}, { roundF32: false });
  return (out.loss.data as Float64Array)[0];
}

const CASES: Case[] = [
  { name: 'MatMul 2D', params: [{ shape: [3, 4] }, { shape: [4, 5] }], build: (b, [x, w]) => b.matmul(x, w) },
  { name: 'MatMul [B,S,K]@[K,N]', params: [{ shape: [2, 3, 4] }, { shape: [4, 2] }], build: (b, [x, w]) => b.matmul(x, w) },
  { name: 'MatMul batched 4D', params: [{ shape: [2, 2, 3, 4] }, { shape: [2, 2, 4, 3] }], build: (b, [x, w]) => b.matmul(x, w) },
  { name: 'Add broadcast', params: [{ shape: [3, 4] }, { shape: [4] }], build: (b, [x, y]) => b.add(x, y) },
  { name: 'Sub broadcast', params: [{ shape: [3, 1] }, { shape: [3, 4] }], build: (b, [x, y]) => b.sub(x, y) },
  { name: 'Mul broadcast', params: [{ shape: [2, 3, 4] }, { shape: [3, 1] }], build: (b, [x, y]) => b.mul(x, y) },
  { name: 'Div', params: [{ shape: [3, 4] }, { shape: [3, 4], init: positive }], build: (b, [x, y]) => b.div(x, y) },
  { name: 'Pow', params: [{ shape: [3, 4], init: positive }, { shape: [1], init: positive }], build: (b, [x, p]) => b.pow(x, p) },
  { name: 'Max', params: [{ shape: [3, 4] }, { shape: [3, 4] }], build: (b, [x, y]) => b.maximum(x, y) },
  { name: 'Min', params: [{ shape: [3, 4] }, { shape: [4] }], build: (b, [x, y]) => b.minimum(x, y) },
  { name: 'Sqrt', params: [{ shape: [3, 4], init: positive }], build: (b, [x]) => b.sqrt(x) },
  { name: 'Exp', params: [{ shape: [3, 4] }], build: (b, [x]) => b.exp(x) },
  { name: 'Log', params: [{ shape: [3, 4], init: positive }], build: (b, [x]) => b.log(x) },
  { name: 'Neg', params: [{ shape: [5] }], build: (b, [x]) => b.neg(x) },
  { name: 'Abs', params: [{ shape: [6], init: awayFromKinks }], build: (b, [x]) => b.abs(x) },
  { name: 'Sigmoid', params: [{ shape: [3, 4] }], build: (b, [x]) => b.sigmoid(x) },
  { name: 'Identity', params: [{ shape: [4] }], build: (b, [x]) => b.identity(x) },
  { name: 'Clip', params: [{ shape: [8], init: awayFromKinks }], build: (b, [x]) => b.clip(x, -0.3, 0.2) },
  { name: 'Round/Floor (zero gradient) + x', params: [{ shape: [4], init: awayFromKinks }], build: (b, [x]) => b.add(b.round(b.mul(x, 3)), b.add(b.floor(x), x)) },
  { name: 'ReduceSum keepdims', params: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.sum(x, [0, 2], true) },
  { name: 'ReduceSum last axis', params: [{ shape: [3, 4] }], build: (b, [x]) => b.sum(x, -1, false) },
  { name: 'ReduceMean last axis', params: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.mean(x, -1, true) },
  { name: 'ReduceMax', params: [{ shape: [3, 4] }], build: (b, [x]) => b.max(x, 1, false) },
  { name: 'Softmax', params: [{ shape: [2, 3, 5] }], build: (b, [x]) => b.softmax(x, -1) },
  { name: 'Softmax axis 1', params: [{ shape: [2, 3, 2] }], build: (b, [x]) => b.softmax(x, 1) },
  {
    name: 'Gather (embedding)',
    params: [{ shape: [5, 3] }],
    build: (b, [e]) => b.gather(e, b.constant(makeTensor('I64', [2, 3], [0, 4, 4, 1, 0, 2]))),
  },
  { name: 'Reshape', params: [{ shape: [2, 6] }], build: (b, [x]) => b.reshape(x, [3, 4]) },
  { name: 'Transpose', params: [{ shape: [2, 3, 4] }], build: (b, [x]) => b.transpose(x, [2, 0, 1]) },
  { name: 'Concat', params: [{ shape: [2, 3] }, { shape: [2, 2] }], build: (b, [x, y]) => b.concat([x, y], 1) },
  { name: 'Slice', params: [{ shape: [3, 6] }], build: (b, [x]) => b.slice(x, [1, 2], [3, 5]) },
  {
    name: 'Where',
    params: [{ shape: [3, 4] }, { shape: [4] }],
    build: (b, [x, y]) => b.where(b.constant(makeTensor('BOOL', [3, 4], [1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1])), x, y),
  },
  // (F64→F32 is not checked by FD: the reference rounds in the cast, which FD would see as steps)
  { name: 'Cast F32→F64', params: [{ shape: [4] }], build: (b, [x]) => b.mul(b.cast(x, 'F64'), b.scalar(2, 'F64')) },
  { name: 'RMSNorm composition', params: [{ shape: [3, 8] }, { shape: [8] }], build: (b, [x, w]) => b.rmsnorm(x, w, 1e-5) },
  { name: 'SiLU composition', params: [{ shape: [3, 4] }], build: (b, [x]) => b.silu(x) },
];

for (const [i, c] of CASES.entries()) {
  test(`gradient of ${c.name} matches finite differences (f64) and onnxruntime (f32)`, async () => {
    await checkCase(c, 100 + i);
  });
}

test('stop-gradient: a value in `stop` passes nothing to its producer (identity STE)', async () => {
  const b = new GraphBuilder('ste');
  const x = b.param('x', { dtype: 'F32', shape: [4], data: Float32Array.from([0.26, -1.4, 0.74, 2.1]) });
  const q = b.round(b.mul(x, 2));
  const d = b.sub(b.div(q, 2), x);
  const sg = b.identity(d);
  const y = b.add(x, sg); // value = round(2x)/2, gradient 1
  b.output('loss', b.sum(b.mul(y, y), 0, false));
  const g = b.build();
  const gg = gradGraph(g, { stop: new Set([sg.id]) });
  const out = interpret(gg, {});
  assert.deepEqual(Array.from(out['grad.x'].data as Float32Array), [0.5 * 2, -1.5 * 2, 0.5 * 2, 2 * 2]);
});
