// Cross-scheme properties: the inlined int encoder against the per-value slow reference, idempotence of
// every scheme whose grid is a function of its own range, NaN/±Inf rejection for every kind, and edge
// cases (all-zero, constant, one huge outlier).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { NumericError, FormatError } from '../../src/core/errors.js';
import {
  quantize, dequantize, fakeQuant, parseScheme, intQuantizeValue, scaleLayout,
} from '../../src/quant/index.js';
import type { IntQuantized, IntScheme } from '../../src/quant/index.js';
import { E4M3, E5M2, E2M1, E2M3, E3M2, encodeMini, encodeMiniRef } from '../../src/numerics/minifloat.js';

test('int fast path equals the slow per-value reference (intQuantizeValue) on random data, every mode', () => {
  const rng = new Rng(31);
  const shape = [16, 128];
  const w = rng.fillNormal(new Float32Array(16 * 128), 0, 0.03);
  // exact ties: put values on half-steps of a known grid
  for (let i = 0; i < 64; i++) w[i] = (i - 32 + 0.5) * 0.01;
  for (const s of ['int4-g32', 'int4-g32-asym', 'int3-channel-away', 'int8-tensor-asym-away', 'int2-g128', 'int5-channel1-asym']) {
    const sc = parseScheme(s) as IntScheme;
    const q = quantize(w, shape, sc) as IntQuantized;
    const lay = scaleLayout(shape, sc.granularity);
    for (let i = 0; i < w.length; i++) {
      const si = Math.floor(i / lay.runLen) % lay.mod;
      const want = intQuantizeValue(w[i], q.scales[si], q.zeros ? q.zeros[si] : 0, sc);
      assert.equal(q.codes[i], want, `${s} i=${i}`);
    }
  }
});

test('fakeQuant is idempotent for int, scaled float, casts, MX, NF4 and log2 (one huge outlier included)', () => {
  const rng = new Rng(41);
  const shape = [8, 128];
  const w = rng.fillNormal(new Float32Array(8 * 128), 0, 0.05);
  w[100] = 3; // one huge outlier
  const schemes = [
    'int4-g128', 'int4-g32-asym', 'int8-channel', 'int2-g64-asym-bf16', 'int3-tensor-f32', 'fp8-e4m3', 'fp8-e5m2-g32',
    'fp4-g32', 'fp8-e4m3-cast', 'fp16', 'bf16', 'mxfp4', 'mxfp6-e3m2', 'mxfp8', 'mxint8', 'nf4-g64', 'log2-g128', 'nf4-channel-bf16',
  ];
  for (const s of schemes) {
    const d = fakeQuant(w, shape, parseScheme(s));
    assert.deepEqual(fakeQuant(d, shape, parseScheme(s)), d, s);
  }
});

test('all-zero and constant tensors round-trip exactly or within half a step for every scheme kind', () => {
  const shape = [2, 64];
  for (const s of ['int4-g32', 'int4-g32-asym', 'fp8-e4m3', 'mxfp4', 'nvfp4', 'nf4-g64', 'kmeans2-g64', 'ternary', 'binary', 'seq2', 'q4_0', 'q8_0']) {
    const z = fakeQuant(new Float32Array(128), shape, parseScheme(s));
    if (s === 'seq2') {
      // SEQ 2-bit has no zero level: ±α/4 with α clamped to 1e−5
      assert.ok(z.every((v) => Math.abs(v) <= 1e-5 / 4 + 1e-12), s);
    } else {
      assert.ok(z.every((v) => v === 0), s);
    }
    const c = fakeQuant(new Float32Array(128).fill(0.25), shape, parseScheme(s));
    assert.ok(c.every((v) => Math.abs(v - 0.25) <= 0.25 / 2), `${s} constant: ${c[0]}`);
  }
});

test('one huge outlier: the other values of its group collapse, other groups are untouched', () => {
  const w = new Float32Array(64).map((_, i) => Math.sin(i) * 0.01);
  w[3] = 1000;
  const d = fakeQuant(w, [1, 64], parseScheme('int4-g32'));
  // s = f16(1000/7 = 142.857…) = 142.875 (f16 step 0.125 in [128, 256)); 7·s = 1000.125
  assert.equal(d[3], 1000.125);
  for (let i = 0; i < 32; i++) if (i !== 3) assert.equal(d[i], 0);
  const clean = fakeQuant(w.subarray(32), [1, 32], parseScheme('int4-g32'));
  assert.deepEqual(d.subarray(32), clean);
});

test('NaN / ±Inf are rejected by every scheme kind with the tensor name and index', () => {
  for (const s of ['int4-g32', 'fp8-e4m3', 'fp16', 'mxfp4', 'nvfp4', 'nf4-g32', 'kmeans2-g32', 'ternary', 'seq2', 'q4_0', 'q4_k']) {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const w = new Float32Array(256);
      w[77] = bad;
      assert.throws(
        () => quantize(w, [1, 256], parseScheme(s), { name: 'layers.0.mlp' }),
        (e: unknown) => e instanceof NumericError && e.code === 'non_finite' && e.context.index === 77 && e.context.tensor === 'layers.0.mlp',
        `${s} ${bad}`,
      );
    }
  }
});

test('minifloat fast encoder equals the arithmetic reference on random values across the range', () => {
  const rng = new Rng(51);
  for (const f of [E4M3, E5M2, E2M1, E2M3, E3M2]) {
    for (let i = 0; i < 20000; i++) {
      const x = (rng.next() < 0.5 ? -1 : 1) * 2 ** (rng.next() * 40 - 20) * rng.next();
      for (const saturate of [true, false]) {
        assert.equal(encodeMini(f, x, { saturate }), encodeMiniRef(f, x, { saturate }), `${f.name} ${x}`);
      }
    }
  }
  // dequantize(quantize) of a decoded tensor is the identity for casts
  const q = quantize(Float32Array.from([0.5, -448, 3]), [3], parseScheme('fp8-e4m3-cast'));
  assert.deepEqual([...dequantize(q)], [0.5, -448, 3]);
});

test('dequantize rejects malformed tensors with a FormatError naming the field', () => {
  const q = quantize(new Float32Array(64).fill(0.1), [2, 32], parseScheme('int4-g32-asym')) as IntQuantized;
  assert.throws(() => dequantize({ ...q, scales: new Float32Array(1) }), (e: unknown) => e instanceof FormatError && e.context.field === 'scales');
  assert.throws(() => dequantize({ ...q, zeros: undefined }), (e: unknown) => e instanceof FormatError && e.context.field === 'zeros');
  const codes = q.codes.slice();
  codes[9] = 16;
  assert.throws(() => dequantize({ ...q, codes }), (e: unknown) => e instanceof FormatError && e.context.index === 9);
  assert.throws(() => dequantize({ ...q, codes: q.codes.subarray(1) }), FormatError);
});
