// MatMulNBits zero-point forms against the plain-code reference: no zero point (default 2^(bits−1)),
// packed uint8 zero points, and float zero points. onnxruntime's node equals the reference evaluator
// (interp.ts, unpacking the same operands) and x @ dequantizeNBits(W)ᵀ; the SEQ 2-bit grid stored as
// u ∈ 0..3 with scale α/2 and float zero point 1.5 dequantizes to exactly quant's (α/4)·{−3, −1, 1, 3}.
// Legend: M = tokens, N = out features, K = in features, G = block, Kb = K / G.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { GraphBuilder } from '../../src/engine/ir.js';
import { interpret } from '../../src/engine/interp.js';
import { dequantizeNBits, lowBitLinear, packMatMulNBits } from '../../src/engine/lowbit-linear.js';
import { lowerToOnnx } from '../../src/engine/lower.js';
import { EngineSession } from '../../src/engine/session.js';
import { decodeModel } from '../../src/formats/onnx/proto.js';
import { dequantize, quantize } from '../../src/quant/index.js';
import type { IntScheme, LowBitScheme } from '../../src/quant/scheme.js';
import type { IntQuantized, LowBitQuantized } from '../../src/quant/types.js';

/** same dequantized weights, fp32 accumulation in onnxruntime vs float64 in the references */
const NBITS_REF_RTOL = 1e-5;

const [M, N, K, G] = [5, 12, 96, 32];
const Kb = K / G;

function scheme(bits: number, symmetric: boolean): IntScheme {
  return { kind: 'int', bits, symmetric, granularity: { kind: 'group', size: G }, scaleDtype: 'F32', rounding: 'half_even' } as IntScheme;
}

/** SEQ 2-bit through quant's codec with per-row α, re-coded as MatMulNBits operands with float zero points 1.5. */
function seq2(seed: number): { lq: LowBitQuantized; q: IntQuantized; zp: Float32Array; alpha: Float32Array } {
  const rng = new Rng(seed);
  const w = Float32Array.from({ length: N * K }, () => rng.normal() * 0.05);
  const alpha = Float32Array.from({ length: N }, () => 0.03 + 0.1 * rng.next());
  const ls: LowBitScheme = { kind: 'lowbit', method: 'seq_2bit', granularity: { kind: 'channel', axis: 0 } };
  const lq = quantize(w, [N, K], ls, { scales: alpha }) as LowBitQuantized;
  // level (α/4)·c with c = 2u − 3, i.e. (α/2)·(u − 1.5)
  const codes = Uint8Array.from(lq.codes, (c) => (c + 3) / 2);
  const scales = new Float32Array(N * Kb);
  for (let n = 0; n < N; n++) scales.fill(2 * lq.scales[n], n * Kb, (n + 1) * Kb);
  const q: IntQuantized = { kind: 'int', scheme: scheme(2, false), shape: [N, K], codes, scales, scaleShape: [N, Kb] };
  return { lq, q, zp: new Float32Array(N * Kb).fill(1.5), alpha };
}

test('SEQ 2-bit as u·(α/2) − 1.5·(α/2): dequantizes to exactly (α/4)·{−3, −1, 1, 3}, the codec\'s values', () => {
  const { lq, q, zp, alpha } = seq2(1);
  const got = dequantizeNBits(q, zp);
  const codec = dequantize(lq) as Float32Array;
  const levels = new Set<number>();
  for (let i = 0; i < got.length; i++) {
    assert.equal(got[i], codec[i], `element ${i}`);
    const n = Math.floor(i / K);
    const c = got[i] / (Math.fround(alpha[n]) / 4);
    assert.ok([-3, -1, 1, 3].some((l) => Math.abs(c - l) < 1e-6), `level ${c}`);
    levels.add(Math.round(c));
  }
  assert.deepEqual([...levels].sort((a, b) => a - b), [-3, -1, 1, 3]);
  // float zero points require unsigned codes and one value per block
  assert.throws(() => packMatMulNBits(q, new Float32Array(N)), (e: Error & { code?: string }) => e.code === 'bad_config');
  assert.throws(() => packMatMulNBits({ ...q, scheme: scheme(2, true) }, zp), (e: Error & { code?: string }) => e.code === 'bad_config');
});

function cases(): [string, IntQuantized, Float32Array | undefined][] {
  const rng = new Rng(7);
  const scales = Float32Array.from({ length: N * Kb }, () => 0.01 + 0.05 * rng.next());
  const ternary = Int8Array.from({ length: N * K }, () => rng.int(3) - 1);
  const int4 = Uint8Array.from({ length: N * K }, () => rng.int(16));
  const zeros = Uint8Array.from({ length: N * Kb }, () => rng.int(16));
  const { q, zp } = seq2(2);
  return [
    ['2-bit ternary codes, default zero point 2', { kind: 'int', scheme: scheme(2, true), shape: [N, K], codes: ternary, scales, scaleShape: [N, Kb] }, undefined],
    ['2-bit, float zero points 1.5 (SEQ)', q, zp],
    ['4-bit, packed uint8 zero points', { kind: 'int', scheme: scheme(4, false), shape: [N, K], codes: int4, scales, scaleShape: [N, Kb], zeros }, undefined],
    ['4-bit, float zero points', { kind: 'int', scheme: scheme(4, false), shape: [N, K], codes: int4, scales, scaleShape: [N, Kb] }, Float32Array.from(zeros, (z) => z + 0.25)],
  ];
}

for (const [label, q, zp] of cases()) {
  test(`MatMulNBits ${label}: onnxruntime = reference evaluator = x @ dequantizeNBits(W)ᵀ`, async () => {
    const rng = new Rng(11);
    const x = Float32Array.from({ length: M * K }, () => rng.normal());
    const b = new GraphBuilder('nbits');
    b.output('y', lowBitLinear(b, 'w', b.input('x', 'F32', [M, K]), q, 'nbits', 0, zp));
    const g = b.build();
    const node = decodeModel(lowerToOnnx(g).model).graph.node.find((nd) => nd.op_type === 'MatMulNBits')!;
    assert.equal(node.input.length, zp || q.zeros ? 4 : 3);
    const feeds = { x: { dtype: 'F32' as const, shape: [M, K], data: x } };
    const s = await EngineSession.fromGraph(g, { threads: 1 });
    const ort = (await s.run(feeds)).y.data as Float32Array;
    await s.release();
    const ref = interpret(g, feeds).y.data as Float32Array;
    const w = dequantizeNBits(q, zp);
    let scale = 1;
    let dRef = 0;
    let dW = 0;
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += x[m * K + k] * w[n * K + k];
        const i = m * N + n;
        scale = Math.max(scale, Math.abs(acc));
        dRef = Math.max(dRef, Math.abs(ort[i] - ref[i]));
        dW = Math.max(dW, Math.abs(ort[i] - acc));
      }
    }
    assert.ok(dRef <= NBITS_REF_RTOL * scale, `onnxruntime vs reference evaluator: ${dRef}`);
    assert.ok(dW <= NBITS_REF_RTOL * scale, `onnxruntime vs x @ dequantizeNBits(W)ᵀ: ${dW}`);
    // a wrong zero point (the default 2^(bits−1) in place of the given one) would be caught
    if (zp) {
      const wrong = dequantizeNBits({ ...q, zeros: undefined }, undefined);
      assert.ok(wrong.some((v, i) => Math.abs(v - w[i]) > 1e-3), 'the zero point matters');
    }
  });
}
