// Affine int quantization: hand-computed codes, the format error bound, idempotence, edge cases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { NumericError, ShapeError, ConfigError } from '../../src/core/errors.js';
import { quantize, dequantize, fakeQuant, bitsPerWeight, parseScheme, intParams, intRange, scaleLayout } from '../../src/quant/index.js';
import type { IntQuantized, IntScheme } from '../../src/quant/index.js';

/** s·(q − z) is exact in float32 by construction (scale.ts), so dequantized values compare exactly. */

test('int4 per-tensor restricted symmetric matches the hand-computed codes (REFERENCE T2, 4-bit LSQ grid)', () => {
  const w = new Float32Array([0.7, -0.33, 0.12, -0.04]);
  const q = quantize(w, [1, 4], parseScheme('int4-tensor-restricted')) as IntQuantized;
  assert.deepEqual([...q.codes], [7, -3, 1, 0]);
  // scale = 0.7/7 rounded up to 16 significant bits
  assert.ok(q.scales[0] >= 0.1 && q.scales[0] < 0.1 * (1 + 2 ** -15));
  const d = dequantize(q);
  for (let i = 0; i < 4; i++) assert.equal(d[i], Math.fround(q.scales[0] * q.codes[i]));
});

test('full-range symmetric grid = the GPTQ reference Quantizer (sym): scale 2·amax/(2^b − 1), codes by hand', () => {
  // GPTQ (REFERENCE §3.2): xmax = max(|xmin|, xmax), scale = 2·xmax/maxq, zero = (maxq + 1)/2,
  // u = clamp(round(x/scale) + zero, 0, maxq); our signed code is u − zero.
  // int4, amax 7.5: scale = 15/15 = 1, zero 8: u = [7.5→8+8→15, −7.5→−8+8→0, −3.2→5, 1.5→10, 2.5→10, 0.4→8]
  const w4 = new Float32Array([7.5, -7.5, -3.2, 1.5, 2.5, 0.4]);
  const q4 = quantize(w4, [6], parseScheme('int4-tensor')) as IntQuantized;
  assert.equal(q4.scales[0], 1);
  assert.deepEqual([...q4.codes], [15 - 8, 0 - 8, 5 - 8, 10 - 8, 10 - 8, 8 - 8]);
  assert.deepEqual([...dequantize(q4)], [7, -8, -3, 2, 2, 0]);
  // int2, amax 1.5: scale = 3/3 = 1, zero 2: u = [1.5→2+2→clamp 3, −1.5→−2+2→0, 0.6→3, −0.4→2]
  const w2 = new Float32Array([1.5, -1.5, 0.6, -0.4]);
  const q2 = quantize(w2, [4], parseScheme('int2-tensor')) as IntQuantized;
  assert.equal(q2.scales[0], 1);
  assert.deepEqual([...q2.codes], [3 - 2, 0 - 2, 3 - 2, 2 - 2]);
  // the restricted grid of the same int2 group wastes code −2: s = 1.5/1 → levels {−1.5, 0, 1.5} only
  const r2 = quantize(w2, [4], parseScheme('int2-tensor-restricted')) as IntQuantized;
  assert.equal(r2.scales[0], 1.5);
  assert.deepEqual([...r2.codes], [1, -1, 0, 0]);
});

test('int4 asymmetric group: codes, zero point and dequantized values by hand', () => {
  // group [−1, 2, 0.5, 1]: lo=−1, hi=2, s = 3/15 = 0.2 rounded DOWN to f16 = 0.199951171875,
  // z = round(1/s = 5.0012) = 5; codes round(x/s) + 5: −5.0012→0, 10.0024→15, 2.5006→8, 5.0012→10
  const w = new Float32Array([-1, 2, 0.5, 1]);
  const q = quantize(w, [1, 4], parseScheme('int4-g4-asym')) as IntQuantized;
  const s = q.scales[0];
  assert.equal(s, 0.199951171875);
  assert.deepEqual([...q.zeros!], [5]);
  assert.deepEqual([...q.codes], [0, 15, 8, 10]);
});

test('error ≤ s/2 inside the range, and fakeQuant is idempotent (sym/asym, every dtype and bit width)', () => {
  const rng = new Rng(7);
  const shape = [8, 256];
  const w = rng.fillNormal(new Float32Array(8 * 256), 0, 0.02);
  w[5] = 0.9; // one outlier
  for (const bits of [2, 3, 4, 8]) {
    for (const tail of ['', '-asym', '-f32', '-bf16', '-asym-bf16', '-away', '-restricted', '-restricted-bf16']) {
      for (const g of ['g32', 'g128', 'channel', 'channel1', 'tensor']) {
        const sc = parseScheme(`int${bits}-${g}${tail}`);
        const q = quantize(w, shape, sc) as IntQuantized;
        const d = dequantize(q);
        const { qmin, qmax } = intRange(sc as IntScheme);
        const lay = scaleLayout(shape, (sc as IntScheme).granularity);
        const sigBits = (sc as IntScheme).scaleDtype === 'BF16' ? 8 : 11;
        const fullRange = (sc as IntScheme).symmetric && !(sc as IntScheme).restricted;
        for (let i = 0; i < w.length; i++) {
          const si = Math.floor(i / lay.runLen) % lay.mod;
          const s = q.scales[si];
          const z = q.zeros ? q.zeros[si] : 0;
          const err = Math.abs(w[i] - d[i]);
          const inside = w[i] >= s * (qmin - z - 0.5) && w[i] <= s * (qmax - z + 0.5);
          // inside the grid's range: half a step; outside only the asymmetric max and the full-range
          // symmetric +amax (which sits on the grid's edge qmax + ½), by the scale's rounding
          const bound = inside ? s / 2 : s / 2 + s * (qmax + 0.5) * 2 ** (1 - sigBits);
          assert.ok(err <= bound * (1 + 1e-12), `${bits}${tail}-${g} i=${i}`);
          if (!inside) assert.ok(q.zeros || fullRange, 'restricted symmetric grids cover their range');
        }
        // a full-range grid is not idempotent by design (+amax moves half a step in, −amax half a
        // step out); restricted and asymmetric grids are
        const d2 = fakeQuant(d, shape, sc);
        if (!fullRange) assert.deepEqual(d2, d, `idempotence int${bits}-${g}${tail}`);
      }
    }
  }
});

test('all-zero, constant and subnormal-scale groups', () => {
  const z = new Float32Array(64);
  for (const s of ['int4-g32', 'int4-g32-asym', 'int8-tensor']) {
    const d = fakeQuant(z, [2, 32], parseScheme(s));
    assert.deepEqual([...d], [...z]);
  }
  const c = new Float32Array(32).fill(0.3);
  const dc = fakeQuant(c, [1, 32], parseScheme('int4-g32-restricted'));
  for (const v of dc) assert.ok(Math.abs(v - 0.3) <= 0.3 / 7 / 2);
  // full range: s = f16(0.3/7.5 = 0.04) = 0.0400085449… (step 2^-15 in [2^-5, 2^-4): 1311·2^-15),
  // 0.3/s = 7.498 → code 7 → 7·1311·2^-15 = 0.280059814453125 (the constant lands half a step in)
  assert.deepEqual([...new Set(fakeQuant(c, [1, 32], parseScheme('int4-g32')))], [0.280059814453125]);
  // weights ~1e-7: f16 scale 1e-7/7 is an f16 subnormal; the used scale is the stored one
  const tiny = new Float32Array(32).map((_, i) => (i - 16) * 1e-8);
  const q = quantize(tiny, [1, 32], parseScheme('int4-g32')) as IntQuantized;
  assert.ok(q.scales[0] > 0 && q.scales[0] < 2 ** -14);
  const d = dequantize(q);
  for (let i = 0; i < 32; i++) assert.ok(Math.abs(d[i] - tiny[i]) <= q.scales[0] / 2 + 1e-20);
});

test('NaN/Inf → NumericError naming tensor and index; ragged groups and bad bits rejected', () => {
  const w = new Float32Array(8);
  w[6] = NaN;
  assert.throws(
    () => quantize(w, [2, 4], parseScheme('int4-g4'), { name: 'blk.0.w' }),
    (e: unknown) => e instanceof NumericError && e.code === 'non_finite' && e.context.index === 6 && e.context.tensor === 'blk.0.w',
  );
  w[6] = -Infinity;
  assert.throws(() => quantize(w, [2, 4], parseScheme('int4-g4')), (e: unknown) => e instanceof NumericError && e.context.index === 6);
  assert.throws(() => quantize(new Float32Array(10), [1, 10], parseScheme('int4-g4')), ShapeError);
  assert.throws(() => quantize(new Float32Array(10), [2, 4], parseScheme('int4-g4')), ShapeError);
  assert.throws(() => intParams(-1, 1, { bits: 1, symmetric: true, rounding: 'half_even', scaleDtype: 'F32' }), ConfigError);
});

test('clip range and clipRatio shrink the grid', () => {
  const w = new Float32Array([-1, -0.1, 0.1, 10]);
  // full range: s = amax/127.5; restricted: amax/127
  const q = quantize(w, [1, 4], parseScheme('int8-tensor'), { clip: { min: -1, max: 1 } }) as IntQuantized;
  assert.ok(Math.abs(q.scales[0] - 1 / 127.5) < 1e-6);
  assert.equal(q.codes[3], 127);
  const qr = quantize(w, [1, 4], parseScheme('int8-tensor-restricted'), { clip: { min: -1, max: 1 } }) as IntQuantized;
  assert.ok(Math.abs(qr.scales[0] - 1 / 127) < 1e-6);
  assert.equal(qr.codes[3], 127);
  const r = quantize(w, [1, 4], parseScheme('int8-tensor'), { clipRatio: 0.5 }) as IntQuantized;
  assert.ok(Math.abs(r.scales[0] - 5 / 127.5) < 1e-5);
});

test('bitsPerWeight counts scales and zero points', () => {
  assert.equal(bitsPerWeight(parseScheme('int4-g128'), [4096, 4096]), 4 + 16 / 128);
  assert.equal(bitsPerWeight(parseScheme('int4-g128-asym'), [4096, 4096]), 4 + 20 / 128);
  assert.equal(bitsPerWeight(parseScheme('int8-channel'), [64, 128]), 8 + 32 / 128);
  assert.equal(bitsPerWeight(parseScheme('int8-tensor'), [64, 128]), 8 + 32 / (64 * 128));
});

test('exact ties: half_even vs half_away (s = 7.5/7.5 = 1), asymmetric ties add z after rounding', () => {
  const w = new Float32Array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 7.5, -7]);
  const even = quantize(w, [8], parseScheme('int4-tensor')) as IntQuantized;
  assert.equal(even.scales[0], 1);
  assert.deepEqual([...even.codes], [-2, -2, 0, 0, 2, 2, 7, -7]);
  const away = quantize(w, [8], parseScheme('int4-tensor-away')) as IntQuantized;
  assert.deepEqual([...away.codes], [-3, -2, -1, 1, 2, 3, 7, -7]);
  // asym: lo = −7, hi = 8 → s = 1, z = 7; round(x/s) then + z (GPTQ order): −2.5 → −2 → 5
  const w2 = new Float32Array([-7, 8, -2.5, 0.5]);
  const a = quantize(w2, [4], parseScheme('int4-tensor-asym')) as IntQuantized;
  assert.equal(a.scales[0], 1);
  assert.deepEqual([...a.zeros!], [7]);
  assert.deepEqual([...a.codes], [0, 15, 5, 7]);
});

test('subnormal f16 scales never clip by more than half a step (sym and asym)', () => {
  const rng = new Rng(77);
  for (const amp of [3e-6, 1e-6, 3e-7]) {
    const w = rng.fillNormal(new Float32Array(4 * 32), 0, amp);
    for (const s of ['int4-g32', 'int8-g32', 'int4-g32-restricted', 'int8-g32-restricted', 'int4-g32-asym', 'int8-g32-asym']) {
      const sc0 = parseScheme(s) as IntScheme;
      const q = quantize(w, [4, 32], sc0) as IntQuantized;
      const d = dequantize(q);
      // full range: +amax sits on the edge qmax + ½ and may move out by the f16 rounding of a normal scale
      const edge = sc0.symmetric && !sc0.restricted ? (intRange(sc0).qmax + 0.5) * 2 ** -10 : 0;
      for (let i = 0; i < w.length; i++) {
        const sc = q.scales[i >> 5];
        assert.ok(Math.abs(w[i] - d[i]) <= sc * (0.5 + edge) * (1 + 1e-9), `${s} amp ${amp} i=${i}: |err| ${Math.abs(w[i] - d[i])} vs s/2 ${sc / 2}`);
      }
    }
  }
});
