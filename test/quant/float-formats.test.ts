// Float schemes (casts and absmax-scaled FP8/FP4), OCP MX block formats and NVFP4: hand-computed
// blocks, error bounds, idempotence, bits per weight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { ShapeError } from '../../src/core/errors.js';
import { quantize, dequantize, fakeQuant, parseScheme, bitsPerWeight } from '../../src/quant/index.js';
import type { FloatQuantized, MxQuantized, NvFp4Quantized } from '../../src/quant/index.js';
import { f16ToF32, f32ToF16 } from '../../src/numerics/float16.js';

test('fp16/bf16 casts are the float16.ts conversions, saturating at the max', () => {
  const w = new Float32Array([0.1, -3.14159, 1e5, -1e5, 1e-8]);
  const d = fakeQuant(w, [5], parseScheme('fp16'));
  assert.deepEqual([...d], [f16ToF32(f32ToF16(0.1)), f16ToF32(f32ToF16(-3.14159)), 65504, -65504, f16ToF32(f32ToF16(1e-8))]);
  const b = fakeQuant(new Float32Array([1 / 3]), [1], parseScheme('bf16'));
  assert.equal(b[0], 0.333984375);
});

test('fp8-e4m3 cast: T8 values, saturating', () => {
  const q = quantize(new Float32Array([300, 440, 1000, -0.001]), [4], parseScheme('fp8-e4m3-cast')) as FloatQuantized; // 0.001 = 0.512 subnormal steps of 2^−9
  assert.deepEqual([...dequantize(q)], [288, 448, 448, -0.001953125]);
});

test('fp8-e4m3 per-channel: s = amax/448 (rounded up), amax maps to 448; error ≤ half an E4M3 step', () => {
  const rng = new Rng(3);
  const w = rng.fillNormal(new Float32Array(4 * 64), 0, 0.05);
  const q = quantize(w, [4, 64], parseScheme('fp8-e4m3')) as FloatQuantized;
  const d = dequantize(q);
  for (let r = 0; r < 4; r++) {
    let amax = 0;
    for (let k = 0; k < 64; k++) amax = Math.max(amax, Math.abs(w[r * 64 + k]));
    const s = q.scales![r];
    assert.ok(s >= amax / 448 && s <= (amax / 448) * (1 + 2 ** -15));
    for (let k = 0; k < 64; k++) {
      const x = w[r * 64 + k];
      // E4M3 relative step ≤ 2^−3 for normals; absolute step 2^−9·s in the subnormal range
      const bound = Math.max(Math.abs(x) * 2 ** -4, s * 2 ** -10);
      assert.ok(Math.abs(d[r * 64 + k] - x) <= bound * (1 + 1e-9));
    }
  }
  assert.deepEqual(fakeQuant(d, [4, 64], parseScheme('fp8-e4m3')), d);
  assert.deepEqual(fakeQuant(d, [4, 64], parseScheme('fp4-g32')), fakeQuant(fakeQuant(d, [4, 64], parseScheme('fp4-g32')), [4, 64], parseScheme('fp4-g32')));
});

test('MXFP4 hand-computed block: amax 5 → X = 2^(2 − 2) = 1 (E8M0 127); elements on the E2M1 grid', () => {
  const w = new Float32Array(32);
  w.set([5, -2.5, 0.3, 1.25, 7, -0.74]);
  w[6] = 0.0;
  // amax is 7 → floor(log2 7) = 2 → X = 1: 5 → 4 (tie 4/6 → 4), −2.5 → −2, 0.3 → 0.5, 1.25 → 1, 7 → 6 (saturate), −0.74 → −0.5
  const q = quantize(w, [1, 32], parseScheme('mxfp4')) as MxQuantized;
  assert.deepEqual([...q.scales], [127]);
  assert.deepEqual([...dequantize(q).slice(0, 6)], [4, -2, 0.5, 1, 6, -0.5]);
  // a block scaled by 2^−10 gets E8M0 117 and the same elements scaled
  const w2 = w.map((v) => v * 2 ** -10);
  const q2 = quantize(w2, [1, 32], parseScheme('mxfp4')) as MxQuantized;
  assert.deepEqual([...q2.scales], [117]);
  assert.deepEqual([...q2.codes], [...q.codes]);
});

test('MX element types: error bounds and idempotence; INT8 element is q/64', () => {
  const rng = new Rng(9);
  const w = rng.fillNormal(new Float32Array(8 * 64), 0, 1);
  for (const s of ['mxfp4', 'mxfp6-e2m3', 'mxfp6-e3m2', 'mxfp8', 'mxfp8-e5m2', 'mxint8']) {
    const d = fakeQuant(w, [8, 64], parseScheme(s));
    assert.deepEqual(fakeQuant(d, [8, 64], parseScheme(s)), d, s);
    let err = 0;
    let ref = 0;
    for (let i = 0; i < w.length; i++) {
      err += (w[i] - d[i]) ** 2;
      ref += w[i] ** 2;
    }
    const sqnr = 10 * Math.log10(ref / err);
    // MXFP4 ~ 15–18 dB on Gaussian data; 8-bit elements well above 25 dB
    assert.ok(sqnr > (s === 'mxfp4' ? 12 : s.startsWith('mxfp6') ? 20 : 25), `${s} SQNR ${sqnr}`);
  }
  const q = quantize(new Float32Array(32).fill(0.5).map((v, i) => (i === 0 ? 1.5 : v)), [1, 32], parseScheme('mxint8')) as MxQuantized;
  assert.equal(q.scales[0], 127); // amax 1.5 → floor(log2) 0 → X = 1
  assert.equal(q.codes[0], 96); // 1.5·64
  assert.equal(q.codes[1], 32);
  assert.throws(() => quantize(new Float32Array(48), [1, 48], parseScheme('mxfp4')), ShapeError);
});

test('NVFP4 hand-computed: tensor scale amax/2688, E4M3 block scale, E2M1 elements', () => {
  const w = new Float32Array(32);
  w[0] = 26.88; // tensor amax → ts = 0.01
  w[1] = -13.44;
  w[16] = 0.6; // block 2 amax 0.6 → bs = 0.1/0.01 = 10 → E4M3 10; total 0.1; 0.6/0.1 = 6
  w[17] = 0.24; // 2.4 → 2 → 0.2 (0.25 would not tie: ts·bs is 0.0999999978 in f32)
  const q = quantize(w, [1, 32], parseScheme('nvfp4')) as NvFp4Quantized;
  assert.equal(q.tensorScale, Math.fround(0.01));
  const d = dequantize(q);
  // block 1: bs = 26.88/6/0.01 = 448 → total 4.48; 26.88/4.48 = 6; −13.44/4.48 = −3
  assert.ok(Math.abs(d[0] - 26.88) < 1e-4 && Math.abs(d[1] + 13.44) < 1e-4);
  assert.ok(Math.abs(d[16] - 0.6) < 1e-6 && Math.abs(d[17] - 0.2) < 1e-6);
  assert.deepEqual([...fakeQuant(new Float32Array(16), [1, 16], parseScheme('nvfp4'))], new Array(16).fill(0));
});

test('bits per weight of float formats', () => {
  assert.equal(bitsPerWeight(parseScheme('mxfp4'), [64, 64]), 4.25);
  assert.equal(bitsPerWeight(parseScheme('mxfp8'), [64, 64]), 8.25);
  assert.equal(bitsPerWeight(parseScheme('mxfp6-e2m3'), [64, 64]), 6.25);
  assert.equal(bitsPerWeight(parseScheme('nvfp4'), [64, 64]), 4.5 + 32 / 4096);
  assert.equal(bitsPerWeight(parseScheme('fp8-e4m3'), [64, 64]), 8 + 32 / 64);
  assert.equal(bitsPerWeight(parseScheme('fp16'), [64, 64]), 16);
});

test('MXFP4 equals ggml MXFP4 (golden-checked in quant/ggml) on random data: same E8M0 floor scale, nearest E2M1', () => {
  const w = new Rng(3).fillNormal(new Float32Array(64 * 256), 0, 0.05);
  const ours = fakeQuant(w, [64, 256], parseScheme('mxfp4'));
  const ggml = fakeQuant(w, [64, 256], { kind: 'ggml', type: 'MXFP4' });
  // equal as numbers; the sign of zero may differ (our E2M1 keeps −0 for small negatives)
  for (let i = 0; i < w.length; i++) assert.ok(ours[i] === ggml[i], `i=${i}: ${ours[i]} vs ${ggml[i]}`);
});
