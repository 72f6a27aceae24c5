// FP8 codecs against onnxruntime's Cast (the independent reference): every code, every midpoint
// between neighbours and values just beside each midpoint, cast F32 → FLOAT8 (saturate = 1, the ONNX
// default) → F32, must equal our saturating encoder followed by the decoder.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GraphBuilder, makeTensor } from '../../src/engine/ir.js';
import { EngineSession } from '../../src/engine/session.js';
import { E4M3, E5M2, decodeMini, encodeMini, maxFinite, type MiniFloatFormat } from '../../src/numerics/minifloat.js';

function probes(f: MiniFloatFormat): Float32Array {
  const xs: number[] = [];
  for (let c = 0; c < 0x80; c++) {
    const a = decodeMini(f, c);
    const b = decodeMini(f, c + 1);
    if (!Number.isFinite(a)) continue;
    xs.push(a, -a);
    if (!Number.isFinite(b)) continue;
    const mid = (a + b) / 2;
    const eps = (b - a) * 1e-3;
    for (const v of [mid, mid - eps, mid + eps]) xs.push(v, -v);
  }
  const m = maxFinite(f);
  xs.push(m * 1.01, -m * 1.01, m * 4, 1e30, -1e30, 2 ** -30);
  return Float32Array.from(xs);
}

for (const [f, dt] of [[E4M3, 'F8_E4M3'], [E5M2, 'F8_E5M2']] as const) {
  test(`onnxruntime Cast to ${dt} and back equals the ${f.name} codec (saturating)`, async () => {
    const x = probes(f);
    const b = new GraphBuilder('fp8');
    const xi = b.input('x', 'F32', [x.length]);
    b.output('y', b.cast(b.cast(xi, dt), 'F32'));
    const s = await EngineSession.fromGraph(b.build(), { threads: 1 });
    const y = (await s.run({ x: makeTensor('F32', [x.length], x) })).y.data as Float32Array;
    await s.release();
    for (let i = 0; i < x.length; i++) {
      const want = decodeMini(f, encodeMini(f, x[i], { saturate: true }));
      assert.ok(Object.is(y[i], want) || y[i] === want, `${f.name} x=${x[i]}: ort ${y[i]} vs ours ${want}`);
    }
  });
}
