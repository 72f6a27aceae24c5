// The WebAssembly ggml kernels (wasm/ggml, behind quantizeGgml) against the TypeScript reference
// codecs: identical bytes for every kernel type, with and without an importance matrix, on
// seeded Gaussian rows of several widths, on the adversarial rows (zero, constant, subnormal,
// huge, ±FLT_MAX, one outlier, ties, …), across the loader's row chunks; the same NaN/Inf error
// and index; F16/BF16 input equal to the decoded floats; and the switch back to TypeScript.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { NumericError } from '../../src/core/errors.js';
import { GGML_TYPES } from '../../src/core/dtype.js';
import { encodeBf16Array, encodeF16Array, decodeBf16Array, decodeF16Array } from '../../src/numerics/float16.js';
import { ggmlKernelTypes, ggmlSupports, hasGgmlKernel, quantizeGgml, quantizeGgmlReference, quantizeWithKernel, setGgmlKernelsEnabled } from '../../src/quant/ggml/index.js';
import { ggmlKernelExports } from '../../src/quant/ggml/wasm/kernels.js';
import { KVALUES_IQ4NL, bestIndexInt8 } from '../../src/quant/ggml/iq4.js';
import { adversarialImatrix, adversarialRows } from './adversarial-rows.js';

const KERNELS = ggmlKernelTypes();

function firstDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i;
  return -1;
}

test('kernels cover the benchmark types, with importance matrices for the K-quants', () => {
  const names = KERNELS.map((k) => `${k.type}${k.imatrix ? '+im' : ''}`);
  for (const t of ['Q8_0+im', 'Q4_0+im', 'Q4_K+im', 'Q6_K+im', 'Q5_K+im', 'Q2_K+im', 'Q3_K+im', 'IQ4_XS+im']) assert.ok(names.includes(t), `${t} in ${names.join(' ')}`);
  for (const k of KERNELS) assert.ok(hasGgmlKernel(k.type, false), k.type);
});

for (const { type, imatrix: kernelIm } of KERNELS) {
  const qk = GGML_TYPES[type].blockSize;
  test(`${type}: WebAssembly equals TypeScript on Gaussian and adversarial rows${kernelIm ? ' (with and without imatrix)' : ''}`, () => {
    // types ggml refuses to quantize without an importance matrix (IQ2_XXS, IQ2_XS, IQ1_*) only with one
    for (const useIm of kernelIm ? (ggmlSupports(type).needsImatrix ? [true] : [false, true]) : [false]) {
      // the TypeScript IQ1/IQ2 references are slow (lattice neighbour searches): fewer rows, every row kind still
      const slow = type.startsWith('IQ1') || type.startsWith('IQ2');
      const shapes = slow ? ([[256, 15, 1], [512, 15, 2], [qk * 24, 2, 3]] as const) : ([[256, 30, 1], [512, 28, 2], [qk * 24, 9, 3]] as const);
      for (const [K, R, seed] of shapes) {
        const rng = new Rng(seed);
        const im = useIm ? adversarialImatrix(K, seed) : undefined;
        const gauss = rng.fillNormal(new Float32Array(R * K), 0, 0.02);
        for (const [what, x] of [['gauss', gauss], ['adversarial', adversarialRows(R, K, seed, seed)]] as const) {
          const want = quantizeGgmlReference(type, x, R, K, im);
          const got = quantizeGgml(type, x, R, K, im);
          const at = firstDiff(got, want);
          assert.equal(at, -1, `${what} K=${K}${useIm ? ' imatrix' : ''}: first differing byte ${at} (${got[at]} vs ${want[at]})`);
        }
      }
    }
  });
}

test('rows longer than a kernel chunk and many short rows chunk exactly; NaN/Inf errors name the same index', () => {
  const rng = new Rng(4);
  for (const [R, K] of [[3, 1 << 17], [700, 256]] as const) {
    const x = rng.fillNormal(new Float32Array(R * K), 0, 1);
    for (const type of ['Q8_0', 'Q4_K'] as const) assert.equal(firstDiff(quantizeGgml(type, x, R, K), quantizeGgmlReference(type, x, R, K)), -1, `${type} ${R}×${K}`);
    for (const at of [5, R * K - 3, Math.floor((R * K) / 2) + 17]) {
      for (const bad of [NaN, Infinity, -Infinity]) {
        const y = x.slice();
        y[at] = bad;
        y[y.length - 1] = NaN;
        for (const f of [quantizeGgml, quantizeGgmlReference]) {
          assert.throws(() => f('Q6_K', y, R, K), (e: unknown) => e instanceof NumericError && e.code === 'non_finite' && e.context.index === Math.min(at, y.length - 1));
        }
      }
    }
  }
});

test('F16 and BF16 inputs quantize like their decoded float32 values', () => {
  const rng = new Rng(9);
  const R = 6;
  const K = 512;
  const x = adversarialRows(R, K, 9).map((v, i) => (i % 5 ? v : rng.normal()));
  for (const [input, bits] of [
    ['F16', encodeF16Array(x)],
    ['BF16', encodeBf16Array(x)],
  ] as const) {
    // values past fp16's range became ±Inf: zero them (the kernels reject non-finite input)
    const f = input === 'F16' ? decodeF16Array(bits) : decodeBf16Array(bits);
    f.forEach((v, i) => (bits[i] = Number.isFinite(v) ? bits[i] : 0));
    const clean = input === 'F16' ? decodeF16Array(bits) : decodeBf16Array(bits);
    for (const type of ['Q8_0', 'Q4_K', 'Q6_K', 'Q4_0'] as const) {
      const out = new Uint8Array((R * K / GGML_TYPES[type].blockSize) * GGML_TYPES[type].typeSize);
      quantizeWithKernel(type, bits, input, R, K, undefined, out);
      assert.equal(firstDiff(out, quantizeGgmlReference(type, clean, R, K)), -1, `${type} from ${input}`);
    }
  }
});

test('setGgmlKernelsEnabled(false) routes quantizeGgml to TypeScript', () => {
  setGgmlKernelsEnabled(false);
  try {
    assert.equal(hasGgmlKernel('Q4_K', false), false);
    const x = new Rng(2).fillNormal(new Float32Array(4 * 256), 0, 1);
    assert.deepEqual(quantizeGgml('Q4_K', x, 4, 256), quantizeGgmlReference('Q4_K', x, 4, 256));
  } finally {
    setGgmlKernelsEnabled(true);
  }
  assert.equal(hasGgmlKernel('Q4_K', false), true);
});

test('MXFP4: block maxima just below and above powers of two pick the same exponent (log2f rounding)', () => {
  // floorf(log2f(amax)) rounds up to k when amax is within a few ulps below 2^k
  const K = 32;
  const rows: number[] = [];
  for (let k = -30; k <= 30; k++) {
    for (let j = -40; j <= 40; j++) {
      const a = Math.fround(2 ** k * (1 + j * 2 ** -24));
      for (let i = 0; i < K; i++) rows.push(i === 7 ? a : Math.fround(a * ((i % 13) / 17)));
    }
  }
  const x = Float32Array.from(rows);
  const R = x.length / K;
  const got = quantizeGgml('MXFP4', x, R, K);
  const want = quantizeGgmlReference('MXFP4', x, R, K);
  assert.equal(firstDiff(got, want), -1);
});

test('F16/BF16 encoding: every fp16 value, its neighbours and the midpoints between them round as the reference', () => {
  const f16ToF32 = (h: number): number => decodeF16Array(Uint16Array.of(h))[0];
  const vals: number[] = [];
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let h = 0; h < 0x7c00; h++) {
    const a = f16ToF32(h);
    const b = f16ToF32(h + 1);
    f[0] = a;
    const bits = u[0];
    for (const d of [-1, 0, 1]) {
      u[0] = bits + d;
      if (Number.isFinite(f[0])) vals.push(f[0], -f[0]);
    }
    if (Number.isFinite(b)) vals.push(Math.fround((a + b) / 2), -Math.fround((a + b) / 2));
  }
  vals.push(65519.99, 65520, 65535, 65536, 1e6, 3.4e38, 2 ** -25, 2 ** -26, 1e-45);
  const x = Float32Array.from(vals.slice(0, Math.floor(vals.length / 8) * 8));
  for (const type of ['F16', 'BF16'] as const) assert.equal(firstDiff(quantizeGgml(type, x, 1, x.length), quantizeGgmlReference(type, x, 1, x.length)), -1, type);
});

test('IQ4 nearest entry: the kernel\'s decision thresholds pick what ggml\'s best_index_int8 picks, ulp by ulp around every boundary', () => {
  const ex = ggmlKernelExports()!;
  const f = new Float32Array(1);
  const u = new Int32Array(f.buffer);
  const check = (v: number): void => {
    const want = bestIndexInt8(KVALUES_IQ4NL, v);
    assert.equal(ex.iq4BestIndex(v), want, `v = ${v}`);
  };
  for (let k = 0; k < 16; k++) {
    const a = KVALUES_IQ4NL[Math.max(0, k - 1)];
    const b = KVALUES_IQ4NL[k];
    for (const c of [b, (a + b) / 2]) {
      f[0] = c;
      const bits = u[0];
      for (let d = -300; d <= 300; d++) {
        u[0] = bits + d;
        if (Number.isFinite(f[0])) check(f[0]);
      }
    }
  }
  for (const v of [0, -0, 1e-30, -1e-30, -200, 200, 3.4e38, -3.4e38, NaN]) check(Math.fround(v));
});

test('F16 → F32 in the kernel (one pass, check folded in): every fp16 bit pattern as the reference decodes it; the first Inf/NaN index, SIMD body or tail', () => {
  const e = ggmlKernelExports()!;
  const n = 65536 + 5; // every pattern, plus a tail shorter than one SIMD step
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) bits[i] = i & 0xffff;
  const finite = bits.map((h) => ((h & 0x7c00) === 0x7c00 ? h & 0x83ff : h)); // exponent 31 → 30
  const src = (e.heapBase() + 15) & ~15;
  const dst = (src + n * 2 + 16) & ~15;
  const need = dst + n * 4;
  if (e.memory.buffer.byteLength < need) e.memory.grow(Math.ceil((need - e.memory.buffer.byteLength) / 65536));
  const run = (h: Uint16Array): { at: number; f: Uint32Array } => {
    new Uint16Array(e.memory.buffer, src, n).set(h);
    const at = e.convertF16Checked(src, dst, n);
    return { at, f: new Uint32Array(e.memory.buffer, dst, n).slice() };
  };
  const ok = run(finite);
  assert.equal(ok.at, -1);
  const want = new Uint32Array(decodeF16Array(finite).buffer);
  assert.equal(ok.f.findIndex((v, i) => v !== want[i]), -1, 'every finite pattern, both signs, subnormals');
  for (const at of [0, 7, 8, 4097, n - 6, n - 1]) {
    const h = finite.slice();
    h[at] = at % 2 ? 0xfc00 : 0x7e01; // −Inf or a NaN
    if (at + 3 < n) h[at + 3] = 0x7c00; // a later +Inf does not hide the first
    assert.equal(run(h).at, at, `first non-finite at ${at}`);
  }
  assert.equal(run(bits).at, 0x7c00, 'the whole table: the first pattern with exponent 31');
});

test('Q8_0 rounding (trunc of v ± 0.49999997): every half-integer and integer up to 127 and their neighbouring ulps, both signs, as roundf', () => {
  const vals: number[] = [];
  const f = new Float32Array(1);
  const u = new Uint32Array(f.buffer);
  for (let k = 0; k <= 254; k++) {
    f[0] = k / 2;
    const b = u[0];
    for (let d = -3; d <= 3; d++) {
      u[0] = b + d;
      if (f[0] >= 0 && f[0] <= 127) vals.push(f[0], -f[0]);
    }
  }
  vals.push(1e-45, 1e-38, 0.25, 0.49999997, 0.5, 0.50000006);
  // blocks of 32 led by 127, so d = 127/127 = 1 and x·(1/d) is the value itself
  const rows: number[] = [];
  for (let i = 0; i < vals.length; i += 31) rows.push(127, ...vals.slice(i, i + 31), ...Array(Math.max(0, i + 31 - vals.length)).fill(0));
  const x = Float32Array.from(rows);
  const R = x.length / 32;
  assert.equal(firstDiff(quantizeGgml('Q8_0', x, R, 32), quantizeGgmlReference('Q8_0', x, R, 32)), -1);
});

test('Q4_0/Q5_0 block maximum: the first of +a and −a on a tie, either order, any lanes; all-zero and signed-zero blocks', () => {
  const rows: number[] = [];
  const block = (set: [number, number][]) => {
    const b = Array.from({ length: 32 }, (_, i) => ((i * 7) % 11) / 16 - 0.3);
    for (const [i, v] of set) b[i] = v;
    rows.push(...b);
  };
  for (const [i, j] of [[0, 31], [3, 4], [17, 2], [30, 5], [8, 24]]) {
    block([[i, -1.5], [j, 1.5]]);
    block([[i, 1.5], [j, -1.5]]);
    block([[i, -2], [j, 1.5]]);
  }
  rows.push(...Array(32).fill(0), ...Array.from({ length: 32 }, (_, i) => (i % 3 ? -0 : 0)));
  const x = Float32Array.from(rows);
  const R = x.length / 32;
  for (const type of ['Q4_0', 'Q5_0'] as const) assert.equal(firstDiff(quantizeGgml(type, x, R, 32), quantizeGgmlReference(type, x, R, 32)), -1, type);
});
