// Rotary layout permutation: matches the definition, inverts exactly, and turns an interleaved
// rotation into a rotate-half rotation (the property the layouts are about).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { permuteRotaryRows, rotaryRowOrder } from '../../src/model/permute.js';
import { Rng } from '../../src/core/rng.js';

test('interleaved → half follows half[h, j·D/2 + i] = inter[h, 2i + j]', () => {
  // 2 heads, D = 4: interleaved rows (h0: 0 1 2 3) become (0 2 1 3)
  assert.deepEqual(Array.from(rotaryRowOrder(2, 4, 'interleaved', 'half')), [0, 2, 1, 3, 4, 6, 5, 7]);
  assert.deepEqual(Array.from(rotaryRowOrder(1, 8, 'interleaved', 'half')), [0, 2, 4, 6, 1, 3, 5, 7]);
  assert.deepEqual(Array.from(rotaryRowOrder(1, 8, 'half', 'interleaved')), [0, 4, 1, 5, 2, 6, 3, 7]);
  assert.deepEqual(Array.from(rotaryRowOrder(1, 4, 'half', 'half')), [0, 1, 2, 3]);
});

test('half → interleaved inverts interleaved → half for every dtype width', () => {
  const rng = new Rng(3);
  const w = rng.fillNormal(new Float32Array(6 * 8 * 5));
  const h = permuteRotaryRows(w, 6, 8, 'interleaved', 'half');
  assert.notDeepEqual(h, w);
  assert.deepEqual(permuteRotaryRows(h, 6, 8, 'half', 'interleaved'), w);
  const u = Uint16Array.from({ length: 4 * 6 * 3 }, (_, i) => i);
  assert.deepEqual(permuteRotaryRows(permuteRotaryRows(u, 4, 6, 'half', 'interleaved'), 4, 6, 'interleaved', 'half'), u);
});

test('q·k after RoPE is the same in both layouts once the weights are permuted', () => {
  const D = 8;
  const H = 2;
  const K = 5;
  const rng = new Rng(9);
  const wq = rng.fillNormal(new Float32Array(H * D * K));
  const x = rng.fillNormal(new Float32Array(K));
  const pos = 7;
  const proj = (w: Float32Array) => Array.from({ length: H * D }, (_, r) => x.reduce((a, xv, c) => a + w[r * K + c] * xv, 0));
  const theta = (i: number) => pos * Math.pow(10000, (-2 * i) / D);
  const ropeInter = (v: number[]) => {
    const o = [...v];
    for (let h = 0; h < H; h++)
      for (let i = 0; i < D / 2; i++) {
        const a = v[h * D + 2 * i];
        const b = v[h * D + 2 * i + 1];
        o[h * D + 2 * i] = a * Math.cos(theta(i)) - b * Math.sin(theta(i));
        o[h * D + 2 * i + 1] = a * Math.sin(theta(i)) + b * Math.cos(theta(i));
      }
    return o;
  };
  const ropeHalf = (v: number[]) => {
    const o = [...v];
    for (let h = 0; h < H; h++)
      for (let i = 0; i < D / 2; i++) {
        const a = v[h * D + i];
        const b = v[h * D + i + D / 2];
        o[h * D + i] = a * Math.cos(theta(i)) - b * Math.sin(theta(i));
        o[h * D + i + D / 2] = a * Math.sin(theta(i)) + b * Math.cos(theta(i));
      }
    return o;
  };
  const qi = ropeInter(proj(wq));
  const qh = ropeHalf(proj(permuteRotaryRows(wq, H, D, 'interleaved', 'half')));
  const order = rotaryRowOrder(H, D, 'interleaved', 'half');
  // same rotated values, rows reordered the same way as the weights
  qh.forEach((v, r) => assert.ok(Math.abs(v - qi[order[r]]) < 1e-9));
});

test('an F32 weight [H·D, K] moves whole rows: half row h·D + j·D/2 + i is interleaved row h·D + 2i + j', () => {
  // the row order pipeline/qat uses to turn interleaved rotary rows into rotate-half rows
  const H = 3;
  const D = 6;
  const K = 4;
  const w = Float32Array.from({ length: H * D * K }, (_, e) => e); // element value = its flat index
  const h = permuteRotaryRows(w, H, D, 'interleaved', 'half');
  for (let hd = 0; hd < H; hd++)
    for (let i = 0; i < D / 2; i++)
      for (let j = 0; j < 2; j++)
        for (let k = 0; k < K; k++) assert.equal(h[(hd * D + j * (D / 2) + i) * K + k], (hd * D + 2 * i + j) * K + k);
});
