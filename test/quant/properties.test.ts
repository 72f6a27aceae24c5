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
  // full-range symmetric int grids are not idempotent by design (affine.ts); their restricted forms are
  const schemes = [
    'int4-g128-restricted', 'int4-g32-asym', 'int8-channel-restricted', 'int2-g64-asym-bf16', 'int3-tensor-restricted-f32', 'fp8-e4m3', 'fp8-e5m2-g32',
    'fp4-g32', 'fp8-e4m3-cast', 'fp16', 'bf16', 'mxfp4', 'mxfp6-e3m2', 'mxfp8', 'mxint8', 'nf4-g64', 'log2-g128', 'nf4-channel-bf16',
  ];
  for (const s of schemes) {
    const d = fakeQuant(w, shape, parseScheme(s));
    assert.deepEqual(fakeQuant(d, shape, parseScheme(s)), d, s);
  }
});

/**
 * What each scheme makes of a tensor of 0.25s, worked by hand from the format definitions
 * (f16 steps: 2^-15 in [2^-5, 2^-4), 2^-16 in [2^-6, 2^-5), 2^-19 in [2^-9, 2^-8)).
 */
const CONSTANT_QUARTER: Record<string, number> = {
  // full-range int4: s = f16(0.25/7.5 = 0.0333…) = 1092·2^-15; 0.25/s = 7.5018 → 8, clamped to 7 → 7644·2^-15
  'int4-g32': 0.2332763671875,
  // restricted int4: s = f16(0.25/7 = 0.035714…) = 1170·2^-15; 0.25/s = 7.0017 → 7 → 8190·2^-15
  'int4-g32-restricted': 0.24993896484375,
  // asymmetric: lo = 0, hi = 0.25, s = 0.25/15 rounded DOWN in f16 = 1092·2^-16, z = 0; 0.25/s = 15.004 → 15
  'int4-g32-asym': 0.24993896484375,
  // FP8 E4M3 per channel: s = 0.25/448 rounded UP to 16 significant bits = 37450·2^-26;
  // 0.25/s = 447.99 → nearest E4M3 448 → 448·37450·2^-26 = 16777600·2^-26
  'fp8-e4m3': 0.25000572204589844,
  // MXFP4: e = floor(log2 0.25) − 2 = −4, X = 2^-4, 0.25/X = 4 is an E2M1 value
  mxfp4: 0.25,
  // NVFP4: block scale E4M3(0.25/6/(0.25/2688)) = 448 exactly, element 6 → 6·448·(0.25/2688)
  nvfp4: 0.25,
  // NF4: s = absmax = 0.25 (exact in f16), x/s = 1 = level 15
  'nf4-g64': 0.25,
  // k-means: every x/s is 1, so every learned level is 1
  'kmeans2-g64': 0.25,
  // BitNet absmean: γ = mean|W| = 0.25, W/γ = 1 → 1·γ
  ternary: 0.25,
  // sign·mean|W|
  binary: 0.25,
  // SEQ 2-bit: α = max|W| = 0.25; round(clamp(1, ±0.99)·2 − 0.5) = round(1.48) = 1 → (1 + 0.5)/2·α = 0.75·0.25
  seq2: 0.1875,
  // ggml Q4_0: d = max/−8 = −2^-5, id = −32: (int8)(0.25·−32 + 8.5) = 0 → (0 − 8)·d
  q4_0: 0.25,
  // ggml Q8_0: d = 0.25/127 stored as f16 1032·2^-19, q = round(0.25·508) = 127 → 127·1032·2^-19
  q8_0: 0.2499847412109375,
};

test('all-zero tensors round-trip exactly and constant tensors give the hand-worked value, for every scheme kind', () => {
  const shape = [2, 64];
  for (const [s, want] of Object.entries(CONSTANT_QUARTER)) {
    const z = fakeQuant(new Float32Array(128), shape, parseScheme(s));
    if (s === 'seq2') {
      // SEQ 2-bit has no zero level: ±α/4 with α clamped to 1e−5
      assert.ok(z.every((v) => Math.abs(v) <= 1e-5 / 4 + 1e-12), s);
    } else {
      assert.ok(z.every((v) => v === 0), s);
    }
    const c = fakeQuant(new Float32Array(128).fill(0.25), shape, parseScheme(s));
    assert.deepEqual([...new Set(c)], [want], `${s} constant 0.25`);
  }
});

test('one huge outlier: the other values of its group collapse, other groups are untouched', () => {
  const w = new Float32Array(64).map((_, i) => Math.sin(i) * 0.01);
  w[3] = 1000;
  const d = fakeQuant(w, [1, 64], parseScheme('int4-g32'));
  // s = f16(1000/7.5 = 133.33…) = 133.375 (f16 step 0.125 in [128, 256)); 1000/s = 7.498 → 7; 7·s = 933.625
  assert.equal(d[3], 933.625);
  // restricted: s = f16(1000/7 = 142.857…) = 142.875; 7·s = 1000.125
  assert.equal(fakeQuant(w, [1, 64], parseScheme('int4-g32-restricted'))[3], 1000.125);
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
