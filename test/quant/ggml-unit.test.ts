// ggml codecs: block geometry against the core registry, hand-computed blocks (REFERENCE T7),
// edge cases and typed errors. Golden bit-exactness is in ggml-golden.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GGML_TYPES, type GgmlType } from '../../src/core/dtype.js';
import { ConfigError, NumericError } from '../../src/core/errors.js';
import {
  dequantizeGgml,
  GGML_CODECS,
  ggmlCodecGeometryMismatches,
  ggmlSupports,
  quantizeGgml,
} from '../../src/quant/ggml/index.js';
import { f16ToF32 } from '../../src/numerics/float16.js';

test('every codec has the block size and bytes per block of the core registry', () => {
  assert.deepEqual(ggmlCodecGeometryMismatches(), []);
  // like ggml's static_asserts on sizeof(block_*)
  const expect: Partial<Record<GgmlType, [number, number]>> = {
    Q4_0: [32, 18], Q4_1: [32, 20], Q5_0: [32, 22], Q5_1: [32, 24], Q8_0: [32, 34],
    Q2_K: [256, 84], Q3_K: [256, 110], Q4_K: [256, 144], Q5_K: [256, 176], Q6_K: [256, 210],
    IQ4_NL: [32, 18], IQ4_XS: [256, 136], TQ1_0: [256, 54], TQ2_0: [256, 66], MXFP4: [32, 17],
    NVFP4: [64, 36], Q1_0: [128, 18], Q2_0: [64, 18], IQ2_XXS: [256, 66], IQ2_XS: [256, 74],
    IQ2_S: [256, 82], IQ3_XXS: [256, 98], IQ3_S: [256, 110], IQ1_S: [256, 50], IQ1_M: [256, 56],
  };
  for (const [t, [bs, ts]] of Object.entries(expect) as [GgmlType, [number, number]][]) {
    assert.equal(GGML_TYPES[t].blockSize, bs, t);
    assert.equal(GGML_TYPES[t].typeSize, ts, t);
    assert.ok(ggmlSupports(t).dequantize, `${t} decodes`);
  }
  // what is registered but has no codec here
  const missing = (Object.keys(GGML_TYPES) as GgmlType[]).filter((t) => !(t in GGML_CODECS));
  assert.deepEqual(missing.sort(), ['F64', 'I16', 'I32', 'I64', 'I8', 'Q8_1', 'Q8_K'].sort());
});

test('ggmlSupports: every codec quantizes and decodes; ggml needs an imatrix for IQ2_XXS/IQ2_XS/IQ1_S', () => {
  assert.deepEqual(ggmlSupports('Q4_K'), { quantize: true, dequantize: true, needsImatrix: false });
  assert.deepEqual(ggmlSupports('IQ2_XXS'), { quantize: true, dequantize: true, needsImatrix: true });
  assert.deepEqual(ggmlSupports('IQ1_S'), { quantize: true, dequantize: true, needsImatrix: true });
  assert.deepEqual(ggmlSupports('IQ3_S'), { quantize: true, dequantize: true, needsImatrix: false });
  assert.deepEqual(ggmlSupports('IQ2_S'), { quantize: true, dequantize: true, needsImatrix: false });
  assert.deepEqual(ggmlSupports('IQ1_M'), { quantize: true, dequantize: true, needsImatrix: false });
  assert.deepEqual(ggmlSupports('Q8_K'), { quantize: false, dequantize: false, needsImatrix: false });
});

test('Q4_0 hand-computed block (T7): signed max −2 gives d = 0.25, codes truncate x·4 + 8.5', () => {
  const x = new Float32Array(32);
  x[0] = -2.0; // largest magnitude: d = max/−8 = 0.25 (exact in fp16: 0x3400)
  x[1] = 0.3; //  0.3·4 + 8.5 = 9.7 → 9
  x[2] = 1.0; //  4 + 8.5 = 12.5 → 12
  //             zeros: 8.5 → 8
  const b = quantizeGgml('Q4_0', x, 1, 32);
  const want = new Uint8Array(18).fill(0x88); // codes 8 in both nibbles
  want[0] = 0x00;
  want[1] = 0x34; // d = 0.25
  want[2] = 0x80; // element 0 → 0, element 16 → 8
  want[3] = 0x89; // element 1 → 9
  want[4] = 0x8c; // element 2 → 12
  assert.deepEqual(b, want);
  const y = dequantizeGgml('Q4_0', b, 32);
  assert.deepEqual(Array.from(y.subarray(0, 4)), [-2.0, 0.25, 1.0, 0]);
});

test('Q4_0 mirrored (T7): max +2 gives d = −0.25; −2 clips to code 15 → −1.75', () => {
  const x = new Float32Array(32);
  x[0] = 2.0; // first of the two largest magnitudes → max = +2, d = −0.25, id = −4
  x[1] = -2.0; // 8 + 8.5 = 16.5 → 16 → min(15, 16) = 15 → (15 − 8)·(−0.25)
  const b = quantizeGgml('Q4_0', x, 1, 32);
  assert.equal(f16ToF32(b[0] | (b[1] << 8)), -0.25);
  assert.equal(b[2] & 15, 0); // +2 → −8·8.5 → 0.5 → 0
  assert.equal(b[3] & 15, 15);
  const y = dequantizeGgml('Q4_0', b, 32);
  assert.equal(y[0], 2.0);
  assert.equal(y[1], -1.75);
});

test('Q8_0 hand-computed block (T7): amax 2.54 → d 0.02 (fp16 0.0200042725), 1.0 → 50', () => {
  const x = new Float32Array(32);
  x[0] = 2.54; // d = 2.54/127 = 0.02; id = 1/0.02 (from the float32 d, not the fp16 one)
  x[1] = 1.0; //  1.0·50 = 50 → roundf → 50
  x[2] = -0.01; // −0.5 → roundf rounds half away from zero → −1 (nearest-even would give 0)
  const b = quantizeGgml('Q8_0', x, 1, 32);
  const d = f16ToF32(b[0] | (b[1] << 8));
  assert.equal(d, 0.0200042724609375);
  assert.equal((b[2] << 24) >> 24, 127);
  assert.equal((b[3] << 24) >> 24, 50);
  assert.equal((b[4] << 24) >> 24, -1);
  const y = dequantizeGgml('Q8_0', b, 32);
  assert.equal(y[1], Math.fround(50 * 0.0200042724609375)); // 1.000213623046875
});

test('TQ2_0 (T7): block amax 0.9; 0.5 → trit 2 → +d, 0.4 → trit 1 → 0', () => {
  const x = new Float32Array(256);
  x[0] = 0.9;
  x[1] = 0.5; // lround(0.556) + 1 = 2
  x[2] = 0.4; // lround(0.444) + 1 = 1
  const y = dequantizeGgml('TQ2_0', quantizeGgml('TQ2_0', x, 1, 256), 256);
  const d = f16ToF32(0x3b33); // 0.9 in fp16 = 0.89990234375
  assert.equal(y[1], d);
  assert.equal(y[2], 0);
  assert.equal(y[0], d);
});

test('MXFP4 (T7): amax 5 → e = 127; 5 → 4 (tie to the first index), 1.2 → 1, −0.7 → −0.5', () => {
  const x = new Float32Array(32);
  x[0] = 5.0;
  x[1] = 1.2;
  x[2] = -0.7;
  const b = quantizeGgml('MXFP4', x, 1, 32);
  assert.equal(b[0], 127);
  const y = dequantizeGgml('MXFP4', b, 32);
  assert.deepEqual(Array.from(y.subarray(0, 3)), [4.0, 1.0, -0.5]);
});

test('all-zero rows: every quantizer emits zero scales and decodes to exact zeros', () => {
  for (const t of Object.keys(GGML_CODECS) as GgmlType[]) {
    if (!ggmlSupports(t).quantize) continue;
    const bs = GGML_TYPES[t].blockSize;
    const n = Math.max(256, bs);
    const qw = ggmlSupports(t).needsImatrix ? new Float32Array(n).fill(1) : undefined;
    const y = dequantizeGgml(t, quantizeGgml(t, new Float32Array(n), 1, n, qw), n);
    assert.ok(y.every((v) => v === 0), `${t} decodes zeros`);
  }
});

test('NaN and ±Inf are rejected with NumericError non_finite naming the index', () => {
  const x = new Float32Array(64);
  x[37] = NaN;
  assert.throws(
    () => quantizeGgml('Q4_0', x, 2, 32),
    (e: unknown) => e instanceof NumericError && e.code === 'non_finite' && e.context.index === 37,
  );
  x[37] = 0;
  x[5] = -Infinity;
  assert.throws(() => quantizeGgml('Q4_K', new Float32Array(256).fill(Infinity), 1, 256), NumericError);
  assert.throws(
    () => quantizeGgml('Q8_0', x, 1, 64),
    (e: unknown) => e instanceof NumericError && e.context.index === 5,
  );
});

test('row length not a multiple of the block size → ConfigError with expected/found', () => {
  assert.throws(
    () => quantizeGgml('Q4_K', new Float32Array(300), 1, 300),
    (e: unknown) => e instanceof ConfigError && e.context.found === 300 && String(e.context.expected).includes('256'),
  );
  assert.throws(() => quantizeGgml('Q8_0', new Float32Array(64), 3, 32), ConfigError); // 3·32 ≠ 64
  assert.throws(() => quantizeGgml('Q4_0', new Float32Array(64), 1, 64, new Float32Array(32)), ConfigError);
  assert.throws(() => dequantizeGgml('Q4_0', new Uint8Array(17), 32), ConfigError); // too few bytes
  assert.throws(() => dequantizeGgml('Q4_0', new Uint8Array(18), 33), ConfigError);
  assert.throws(
    () => quantizeGgml('Q8_K', new Float32Array(256), 1, 256),
    (e: unknown) => e instanceof ConfigError && e.code === 'unsupported',
  );
  assert.throws(
    () => quantizeGgml('IQ2_XXS', new Float32Array(256), 1, 256),
    (e: unknown) => e instanceof ConfigError && e.context.field === 'imatrix',
  );
});

test('F32 round-trips bit for bit (little-endian), −0 and subnormals included', () => {
  const x = new Float32Array([1.5, -0, 1e-45, -3.4028234663852886e38, 0.1]);
  const b = quantizeGgml('F32', x, 1, 5);
  assert.deepEqual(Array.from(b.subarray(0, 4)), [0x00, 0x00, 0xc0, 0x3f]); // 1.5 = 0x3fc00000
  assert.deepEqual(new Uint32Array(dequantizeGgml('F32', b, 5).buffer), new Uint32Array(x.buffer));
});

test('same input → same bytes (deterministic, no hidden state between calls)', () => {
  const x = new Float32Array(512).map((_, i) => Math.sin(i * 1.7) * 0.1);
  for (const t of ['Q4_K', 'IQ4_XS', 'Q3_K'] as const) {
    assert.deepEqual(quantizeGgml(t, x, 2, 256), quantizeGgml(t, x, 2, 256));
  }
});
