// The in-graph activation/KV fake quantizer equals quant's int codec on the same values, exactly
// (integer grid, same scale rounding, same half-to-even ties), run through onnxruntime.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { GraphBuilder } from '../../src/engine/ir.js';
import { fakeQuantActivation, type ActQuantSpec } from '../../src/engine/actquant.js';
import { EngineSession } from '../../src/engine/session.js';
import { interpret } from '../../src/engine/interp.js';
import { fakeQuant } from '../../src/quant/index.js';
import type { FloatScheme, IntScheme } from '../../src/quant/scheme.js';

const T = 9;
const K = 48;

function activations(seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(T * K);
  for (let i = 0; i < x.length; i++) x[i] = rng.normal() * (1 + 3 * (i % 7 === 0 ? 1 : 0));
  x.fill(0, 2 * K, 3 * K); // an all-zero token: scale 0
  for (let i = 3 * K; i < 4 * K; i++) x[i] = Math.abs(x[i]) + 0.5; // all positive: asym lo = 0
  x[5 * K + 3] = 40; // an outlier
  for (let i = 6 * K; i < 7 * K; i++) x[i] = (i % 5) * 0.25; // exact grid values (ties)
  return x;
}

async function runGraph(spec: ActQuantSpec, x: Float32Array): Promise<{ ort: Float32Array; ref: Float32Array }> {
  const b = new GraphBuilder('aq');
  const xi = b.input('x', 'F32', [T, K]);
  b.output('y', fakeQuantActivation(b, xi, spec));
  const g = b.build();
  const s = await EngineSession.fromGraph(g, { threads: 1 });
  const feeds = { x: { dtype: 'F32' as const, shape: [T, K], data: x } };
  const ort = (await s.run(feeds)).y.data as Float32Array;
  await s.release();
  return { ort, ref: interpret(g, feeds).y.data as Float32Array };
}

for (const bits of [2, 4, 8]) {
  for (const symmetric of [true, false]) {
    for (const granularity of ['token', 'tensor'] as const) {
      test(`int${bits} ${symmetric ? 'sym' : 'asym'} per-${granularity} equals quant.fakeQuant`, async () => {
        const x = activations(bits * 10 + (symmetric ? 1 : 2));
        // symmetric activations are absmax grids: quant's restricted symmetric scheme
        const scheme: IntScheme = {
          kind: 'int', bits, symmetric, scaleDtype: 'F32', rounding: 'half_even', ...(symmetric ? { restricted: true } : {}),
          granularity: granularity === 'token' ? { kind: 'channel', axis: 0 } : { kind: 'tensor' },
        };
        const want = fakeQuant(x, [T, K], scheme);
        const { ort, ref } = await runGraph({ kind: 'int', bits, symmetric, granularity }, x);
        assert.deepEqual(Array.from(ort), Array.from(want));
        assert.deepEqual(Array.from(ref), Array.from(want));
      });
    }
  }
}

test('static per-tensor scale: codes clip at the grid edge', async () => {
  const x = activations(5);
  const { ort } = await runGraph({ kind: 'int', bits: 8, symmetric: true, granularity: 'static', scale: 0.02 }, x);
  for (let i = 0; i < x.length; i++) {
    const q = Math.min(127, Math.max(-128, Math.round(x[i] / 0.02)));
    assert.ok(Math.abs(ort[i] - Math.fround(q * 0.02)) < 1e-6 || Math.abs(x[i] / 0.02 - Math.trunc(x[i] / 0.02)) === 0.5, `index ${i}`);
  }
  assert.equal(ort[5 * K + 3], Math.fround(127 * 0.02));
});

test('float16 activations round like a cast', async () => {
  const x = activations(6);
  const { ort } = await runGraph({ kind: 'float', format: 'F16' }, x);
  for (let i = 0; i < x.length; i++) {
    assert.ok(Math.abs(ort[i] - x[i]) <= Math.abs(x[i]) * 2 ** -11, `index ${i}`);
  }
});

for (const format of ['F8_E4M3', 'F8_E5M2'] as const) {
  for (const granularity of [null, 'token', 'tensor'] as const) {
    test(`${format} ${granularity ?? 'plain cast'} activations equal quant's float codec`, async () => {
      const x = activations(format.length + (granularity?.length ?? 0));
      x[4] = 1e6; // saturates in a plain cast
      const scheme: FloatScheme = {
        kind: 'float', format,
        granularity: granularity === null ? null : granularity === 'token' ? { kind: 'channel', axis: 0 } : { kind: 'tensor' },
      };
      const want = fakeQuant(x, [T, K], scheme);
      const { ort, ref } = await runGraph({ kind: 'float', format, granularity }, x);
      assert.deepEqual(Array.from(ort), Array.from(want));
      assert.deepEqual(Array.from(ref), Array.from(want));
    });
  }
}
