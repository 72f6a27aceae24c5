// hostWithRowGridCodes: QAT's per-row grids become MatMulNBits codes only when the node's arithmetic
// (dequantizeNBits) gives back every weight bit for bit; anything else stays a float initializer.
// Legend: N = rows, K = columns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../../src/core/rng.js';
import type { HostModel } from '../../../src/engine/host.js';
import { dequantizeNBits } from '../../../src/engine/lowbit-linear.js';
import { hostWithRowGridCodes, hostWithRowScaleCodes, type RowGrid } from '../../../src/pipeline/export/onnx.js';
import { fakeQuant } from '../../../src/quant/index.js';
import type { QuantScheme } from '../../../src/quant/scheme.js';
import { tinyConfig } from '../../engine/fixtures.js';

const channel = { kind: 'channel' as const, axis: 0 };

function latent(N: number, K: number, seed: number): { w: Float32Array; alpha: Float32Array } {
  const rng = new Rng(seed);
  const w = Float32Array.from({ length: N * K }, () => rng.normal() * 0.05);
  const alpha = Float32Array.from({ length: N }, () => 0.02 + 0.08 * rng.next());
  return { w, alpha };
}

function hostOf(tensors: [string, Float32Array][]): HostModel {
  return { config: tinyConfig(), tensors: new Map(tensors), lowBit: new Map() };
}

// QAT grid → (scheme of quant's codec with the learned α, MatMulNBits grid, step from α)
const GRIDS: [string, QuantScheme, RowGrid, number][] = [
  ['1-bit LSQ (binary)', { kind: 'lowbit', method: 'binary', granularity: channel }, { bits: 2 }, 1],
  ['1.58-bit SEQ (ternary)', { kind: 'lowbit', method: 'seq_ternary', granularity: channel }, { bits: 2 }, 1.5],
  ['2-bit SEQ', { kind: 'lowbit', method: 'seq_2bit', granularity: channel }, { bits: 2, zeroPoint: 1.5 }, 2],
  ['3-bit LSQ', { kind: 'int', bits: 3, symmetric: true, granularity: channel, scaleDtype: 'F32', rounding: 'half_even' }, { bits: 4 }, 1],
  ['4-bit LSQ', { kind: 'int', bits: 4, symmetric: true, granularity: channel, scaleDtype: 'F32', rounding: 'half_even' }, { bits: 4 }, 1],
];

for (const [label, scheme, grid, div] of GRIDS) {
  test(`${label}: codes reproduce the codec's weights bit for bit as ${grid.bits}-bit MatMulNBits`, () => {
    const [N, K] = [6, 96];
    const { w, alpha } = latent(N, K, 3);
    const eff = fakeQuant(w, [N, K], scheme, { name: 'w', scales: alpha });
    const host = hostWithRowGridCodes(hostOf([['w', eff]]), new Map([['w', alpha.map((a) => a / div)]]), grid);
    const lb = host.lowBit.get('w');
    assert.ok(lb, 'converted');
    assert.equal(lb.q.scheme.bits, grid.bits);
    assert.deepEqual(lb.q.scheme.granularity, { kind: 'group', size: 32 }, 'largest power of two ≤ 128 dividing 96');
    assert.equal(!!lb.floatZeros, grid.zeroPoint === 1.5);
    if (lb.floatZeros) assert.ok(lb.floatZeros.every((z) => z === 1.5));
    else assert.ok(lb.q.scheme.symmetric && !lb.q.zeros, 'default zero point: no zero-point input');
    const back = dequantizeNBits(lb.q, lb.floatZeros);
    for (let i = 0; i < eff.length; i++) assert.equal(back[i], eff[i], `element ${i}`);
    // the float weights are untouched (what the engine and the export check compare against)
    assert.equal(host.tensors.get('w'), eff);
  });
}

test('a step a few ulps off is refitted; a weight off the grid, a grid too wide, or K without a block stay float', () => {
  const [N, K] = [4, 64];
  const { w, alpha } = latent(N, K, 5);
  const seq = fakeQuant(w, [N, K], { kind: 'lowbit', method: 'seq_ternary', granularity: channel }, { name: 'a', scales: alpha });
  const lsq3 = fakeQuant(w, [N, K], { kind: 'int', bits: 3, symmetric: true, granularity: channel, scaleDtype: 'F32', rounding: 'half_even' }, { name: 'b', scales: alpha });
  const off = seq.map((v, i) => (i === 5 && v !== 0 ? v * 1.001 : i === 5 ? 1e-3 : v));
  const { w: w172, alpha: a172 } = latent(N, 172, 6);
  const k172 = fakeQuant(w172, [N, 172], { kind: 'lowbit', method: 'seq_ternary', granularity: channel }, { name: 'c', scales: a172 });
  const host = hostWithRowGridCodes(
    hostOf([['near', seq], ['off', off], ['k172', k172], ['wide', lsq3]]),
    new Map([
      ['near', alpha.map((a) => Math.fround(a / 1.5) * (1 + 2 ** -22))],
      ['off', alpha.map((a) => a / 1.5)],
      ['k172', a172.map((a) => a / 1.5)],
      ['wide', alpha],
    ]),
    { bits: 2 },
  );
  assert.deepEqual([...host.lowBit.keys()], ['near']);
  const lb = host.lowBit.get('near')!;
  assert.deepEqual(Array.from(dequantizeNBits(lb.q)), Array.from(seq));
  // 3-bit levels fit 4 bits; hostWithRowScaleCodes is the 4-bit case
  assert.ok(hostWithRowScaleCodes(hostOf([['wide', lsq3]]), new Map([['wide', alpha]])).lowBit.has('wide'));
});

test('an integer zero point other than 2^(bits−1) becomes packed uint8 zero points', () => {
  const [N, K] = [3, 32];
  const rng = new Rng(9);
  const step = Float32Array.of(0.25, 0.5, 0.125);
  // levels u − 1 for u ∈ 0..3: {−1, 0, 1, 2}·step
  const w = Float32Array.from({ length: N * K }, (_, i) => (rng.int(4) - 1) * step[Math.floor(i / K)]);
  const lb = hostWithRowGridCodes(hostOf([['w', w]]), new Map([['w', step]]), { bits: 2, zeroPoint: 1 }).lowBit.get('w')!;
  assert.ok(!lb.q.scheme.symmetric && lb.q.zeros!.every((z) => z === 1) && !lb.floatZeros);
  assert.deepEqual(Array.from(dequantizeNBits(lb.q)), Array.from(w));
});
