import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ggmlBitsPerWeight, type GgmlType } from '../../src/core/dtype.js';
import { allocateBits, uniformPlan, type TensorSensitivity } from '../../src/algorithms/mixed.js';
import { measureSensitivity } from '../../src/algorithms/sensitivity.js';
import { rtn } from '../../src/algorithms/rtn.js';
import { gramOf } from '../../src/algorithms/stats.js';

const TYPES: GgmlType[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'Q8_0'];

/** Error ≈ c·numel·4^(−bpw) with sensitivities c spread over three orders of magnitude. */
function synthetic(seed: number, count: number): TensorSensitivity[] {
  const rng = new Rng(seed);
  return Array.from({ length: count }, (_, i) => {
    const numel = 4096 * (1 + rng.int(8));
    const c = Math.exp(rng.normal() * 2);
    return {
      name: `t${i}`,
      numel,
      candidates: TYPES.map((type) => ({ type, bits: ggmlBitsPerWeight(type) * numel, error: c * numel * Math.pow(4, -ggmlBitsPerWeight(type)) * (1 + 0.1 * rng.next()) })),
    };
  });
}

test('the allocator meets its bpw target and beats uniform Q4_K at the same size', () => {
  const ts = synthetic(1, 40);
  const uni = uniformPlan(ts, 'Q4_K');
  for (const method of ['dp', 'lagrangian', 'greedy'] as const) {
    const p = allocateBits(ts, { bitsPerWeight: 4.5 }, method);
    assert.ok(p.totalBits <= uni.totalBits, `${method}: ${p.totalBits} bits vs ${uni.totalBits}`);
    assert.ok(p.bitsPerWeight <= 4.5 + 1e-12);
    assert.ok(p.totalError < 0.9 * uni.totalError, `${method}: ${p.totalError} vs uniform ${uni.totalError}`);
    assert.ok(p.bitsPerWeight > 4.3, `budget is used: ${p.bitsPerWeight}`);
    // the plan is plain JSON
    assert.deepEqual(JSON.parse(JSON.stringify(p)), p);
  }
  const bytes = allocateBits(ts, { totalBytes: uni.totalBits / 8 });
  assert.ok(bytes.totalBits <= uni.totalBits);
});

test('the default (DP) plan is optimal on a small set (checked against exhaustive search)', () => {
  const ts = synthetic(7, 5).map((t) => ({ ...t, candidates: t.candidates.filter((c) => ['Q3_K', 'Q4_K', 'Q6_K'].includes(c.type)) }));
  const budget = { bitsPerWeight: 4.4 };
  const B = 4.4 * ts.reduce((a, t) => a + t.numel, 0);
  let best = Infinity;
  const rec = (i: number, bits: number, err: number): void => {
    if (bits > B) return;
    if (i === ts.length) {
      best = Math.min(best, err);
      return;
    }
    for (const c of ts[i].candidates) rec(i + 1, bits + c.bits, err + c.error);
  };
  rec(0, 0, 0);
  const p = allocateBits(ts, budget);
  assert.ok(p.method === 'dp' && p.totalError <= best * (1 + 1e-9), `plan ${p.totalError} vs optimum ${best}`);
});

test('an infeasible budget is a typed error', () => {
  assert.throws(() => allocateBits(synthetic(2, 3), { bitsPerWeight: 2 }), { code: 'bad_option' });
});

test('measured sensitivity: Hessian-weighted error falls with bits, and RTN goes through the quant codecs', () => {
  const rng = new Rng(4);
  const N = 8, K = 256, T = 64;
  const w = Float32Array.from({ length: N * K }, () => rng.normal() * 0.05);
  const x = new Float64Array(T * K).map(() => rng.normal());
  const s = measureSensitivity('fc', w, N, K, ['Q2_K', 'Q4_0', 'Q8_0', 'F16'], { hessian: gramOf(x, T, K) });
  const byType = Object.fromEntries(s.candidates.map((c) => [c.type, c]));
  // types the codecs cannot quantize yet (K-quants at the time of writing) are skipped
  assert.ok(byType.Q4_0.error > byType.Q8_0.error && byType.Q8_0.error > byType.F16.error);
  assert.equal(byType.Q4_0.bits, 4.5 * N * K);
  const r = rtn(w, [N, K], { kind: 'ggml', type: 'Q4_0' });
  assert.equal(r.ggmlBytes!.length, (N * K / 32) * 18);
  const ri = rtn(w, [N, K], { kind: 'int', bits: 4, symmetric: true, granularity: { kind: 'group', size: 32 }, scaleDtype: 'F16', rounding: 'half_even' });
  assert.equal(ri.weights.length, N * K);
});
