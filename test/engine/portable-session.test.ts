// Sessions on the portable runtime (onnxruntime-web's WebAssembly kernels in Node, engine/
// ort-portable.ts): the same results as the native runtime within float32 rounding, external data
// handed over as bytes giving the inline session's exact result, and preallocated outputs filled
// (onnxruntime-web does not write into them itself; the session copies).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import type { Tensor } from '../../src/core/tensor.js';
import { GraphBuilder } from '../../src/engine/ir.js';
import { EngineSession } from '../../src/engine/session.js';
import { OrtGemm } from '../../src/engine/gemm.js';

/** float32 sums of K products in other orders (K ≤ 256), relative to the output's largest magnitude */
const CROSS_RUNTIME_REL_TOL = 1e-5;

function randF32(rng: Rng, shape: number[]): Tensor<'F32'> {
  const d = new Float32Array(shape.reduce((a, b) => a * b, 1));
  for (let i = 0; i < d.length; i++) d[i] = rng.normal();
  return { dtype: 'F32', shape, data: d };
}

function matmulGraph() {
  const b = new GraphBuilder('portable');
  const x = b.input('x', 'F32', [4, 256]);
  b.output('y', b.matmul(x, b.param('w', randF32(new Rng(9), [256, 256]))));
  return b.build();
}

test('portable session: native results within float32 rounding; external data as bytes gives the inline result exactly', async () => {
  const g = matmulGraph();
  const fx = randF32(new Rng(10), [4, 256]);
  const native = (await (await EngineSession.fromGraph(g)).run({ x: fx })).y.data as Float32Array;
  const inline = await EngineSession.fromGraph(g, { runtime: 'portable' });
  const ext = await EngineSession.fromGraph(g, { runtime: 'portable', externalDataThreshold: 1000 });
  const a = (await inline.run({ x: fx })).y.data as Float32Array;
  const b = (await ext.run({ x: fx })).y.data as Float32Array;
  assert.deepEqual(b, a, 'external data and inline constants: the same bytes');
  const scale = native.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
  native.forEach((v, i) => assert.ok(Math.abs(a[i] - v) <= CROSS_RUNTIME_REL_TOL * scale, `y[${i}]: portable ${a[i]} vs native ${v}`));
  await Promise.all([inline.release(), ext.release()]);
});

test('portable GEMM writes into the caller’s buffer, as the native one does', async () => {
  const m = 8, n = 16, k = 32;
  const A = randF32(new Rng(1), [m, k]).data, B = randF32(new Rng(2), [k, n]).data;
  const out: Record<string, Float32Array> = {};
  for (const runtime of ['native', 'portable'] as const) {
    const og = new OrtGemm({ runtime });
    const c = new Float32Array(m * n);
    await og.gemm({ m, n, k, a: A, b: B, c });
    await og.close();
    out[runtime] = c;
  }
  assert.ok(out.portable.some((v) => v !== 0), 'the portable result reached the buffer');
  const scale = out.native.reduce((mx, v) => Math.max(mx, Math.abs(v)), 0);
  out.native.forEach((v, i) => assert.ok(Math.abs(out.portable[i] - v) <= CROSS_RUNTIME_REL_TOL * scale, `c[${i}]: portable ${out.portable[i]} vs native ${v}`));
});
