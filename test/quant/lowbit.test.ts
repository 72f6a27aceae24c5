// Ternary/binary/SEQ against REFERENCE T2 (ParetoQ, one row) and T3 (BitNet b1.58).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { quantize, dequantize, fakeQuant, parseScheme, bitsPerWeight } from '../../src/quant/index.js';
import type { LowBitQuantized } from '../../src/quant/index.js';

/** T2/T3 list values to 5 significant digits; outputs are f32 products. */
const FIXTURE_TOL = 5e-6;

function close(a: ArrayLike<number>, b: number[], tol = FIXTURE_TOL): void {
  assert.equal(a.length, b.length);
  for (let i = 0; i < b.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `[${i}] ${a[i]} vs ${b[i]}`);
}

const W = new Float32Array([0.7, -0.33, 0.12, -0.04]);

test('T2 binary (1-bit): α = mean|w| = 0.2975, output ±α', () => {
  const q = quantize(W, [1, 4], parseScheme('binary')) as LowBitQuantized;
  close(q.scales, [0.2975]);
  assert.deepEqual([...q.codes], [1, -1, 1, -1]);
  close(dequantize(q), [0.2975, -0.2975, 0.2975, -0.2975]);
});

test('T2 SEQ ternary: α = 0.7, 1.5·clip(w/α) = [1.485, −0.707, 0.257, −0.086] → [1, −1, 0, 0]', () => {
  const q = quantize(W, [1, 4], parseScheme('seq-ternary')) as LowBitQuantized;
  assert.deepEqual([...q.codes], [1, -1, 0, 0]);
  close(dequantize(q), [0.46667, -0.46667, 0, 0]);
});

test('T2 SEQ 2-bit: 2t − 0.5 = [1.48, −1.443, −0.157, −0.614] → [1, −1, 0, −1] → (q + 0.5)/2·α', () => {
  const q = quantize(W, [1, 4], parseScheme('seq2')) as LowBitQuantized;
  assert.deepEqual([...q.codes], [3, -1, 1, -1]);
  close(dequantize(q), [0.525, -0.175, 0.175, -0.175]);
});

test('SEQ levels: 2-bit grid has no zero, ternary thresholds at |w/α| = 1/3; clip at 0.99', () => {
  const w = new Float32Array([1, -1, 0, 0.3333, 0.3334, -0.3334, 0.2, 0.99]);
  const t = dequantize(quantize(w, [1, 8], parseScheme('seq-ternary')));
  close(t, [2 / 3, -2 / 3, 0, 0, 2 / 3, -2 / 3, 0, 2 / 3]);
  const s2 = quantize(w, [1, 8], parseScheme('seq2')) as LowBitQuantized;
  assert.ok([...s2.codes].every((c) => [-3, -1, 1, 3].includes(c)));
});

test('T3 BitNet absmean ternary: γ = 0.4375, codes [0, −1, 0, 1]', () => {
  const w = new Float32Array([0.2, -0.5, 0.05, 1.0]);
  const q = quantize(w, [2, 2], parseScheme('ternary')) as LowBitQuantized;
  close(q.scales, [0.4375], 0);
  assert.deepEqual([...q.codes], [0, -1, 0, 1]);
  assert.deepEqual([...dequantize(q)], [0, -0.4375, 0, 0.4375]);
});

test('per-row scales, supplied (learned) scales, all-zero rows, bits per weight', () => {
  const w = new Float32Array([0.7, -0.33, 0.12, -0.04, 0, 0, 0, 0]);
  const q = quantize(w, [2, 4], parseScheme('seq2')) as LowBitQuantized;
  close(q.scales, [0.175, 1e-5 / 4]);
  const a = quantize(W, [1, 4], parseScheme('binary'), { scales: new Float32Array([0.5]) }) as LowBitQuantized;
  close(dequantize(a), [0.5, -0.5, 0.5, -0.5]);
  const z = fakeQuant(new Float32Array(8), [2, 4], parseScheme('ternary'));
  assert.deepEqual([...z], new Array(8).fill(0));
  assert.equal(bitsPerWeight(parseScheme('ternary'), [256, 256]), 1.6 + 32 / 65536);
  assert.equal(bitsPerWeight(parseScheme('seq2'), [256, 256]), 2 + 32 / 256);
});
