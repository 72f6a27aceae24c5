// The WebAssembly small-float encoder (quant/minifloat-kernel.ts) against its TypeScript reference
// (numerics/minifloat.ts encodeMini, saturating): the same code for every input, exactly. Inputs:
// every code's value and every midpoint between neighbours (the ties), both signs, ±0, values past
// the largest (saturation), ±Inf, NaN, float32 subnormals, random values over many binades; scaled
// by per-run scales (zero scales included) across the kernel's chunk boundaries. Then quantizeFloat
// end to end with the kernels on and off.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { E2M1, E2M3, E3M2, E4M3, E5M2, decodeTable, encodeMini, maxFinite, type MiniFloatFormat } from '../../src/numerics/minifloat.js';
import { encodeMiniWithKernel, hasMiniKernel } from '../../src/quant/minifloat-kernel.js';
import { quantize, parseScheme } from '../../src/quant/index.js';
import { setGgmlKernelsEnabled } from '../../src/quant/ggml/index.js';

const FORMATS: MiniFloatFormat[] = [E4M3, E5M2, E2M1, E2M3, E3M2];
const SAT = { saturate: true };

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** Every code's value, the midpoints, ±0, beyond max, specials, f32 subnormals, random binades. */
function edgeValues(f: MiniFloatFormat, nan: boolean): Float32Array {
  const d = Array.from(decodeTable(f)).filter((v) => Number.isFinite(v));
  const pos = [...new Set(d.filter((v) => v >= 0))].sort((a, b) => a - b);
  const v: number[] = [0, -0, Infinity, -Infinity, 1e-45, -1e-45, 1.17e-38, 2 ** -149 * 3];
  for (let i = 0; i < pos.length; i++) {
    v.push(pos[i], -pos[i]);
    if (i + 1 < pos.length) {
      const m = (pos[i] + pos[i + 1]) / 2;
      v.push(m, -m, Math.fround(m) * (1 + 2 ** -23), Math.fround(m) * (1 - 2 ** -23));
    }
  }
  const max = maxFinite(f);
  v.push(max * 1.03, -max * 1.06, max * 1.2, max * 1e6, -3.4e38);
  if (nan) v.push(NaN, -NaN);
  const r = rng(pos.length);
  for (let i = 0; i < 4000; i++) v.push((r() - 0.5) * 2 ** Math.floor(r() * 40 - 20));
  return Float32Array.from(v);
}

const reference = (f: MiniFloatFormat, w: Float32Array, scales: Float32Array | null, runLen: number, mod: number): Uint8Array => {
  const out = new Uint8Array(w.length);
  for (let i = 0; i < w.length; i++) {
    const s = scales ? scales[Math.floor(i / runLen) % mod] : 1;
    out[i] = scales && s === 0 ? 0 : encodeMini(f, scales ? w[i] / s : w[i], SAT);
  }
  return out;
};

test('small-float kernel: plain casts equal encodeMini on every code, tie, special and random value', () => {
  for (const f of FORMATS) {
    assert.ok(hasMiniKernel(f), `${f.name}: kernel available`);
    const nanCode = f.name === 'E4M3' || f.name === 'E5M2';
    const w = edgeValues(f, nanCode);
    const got = new Uint8Array(w.length);
    assert.ok(encodeMiniWithKernel(f, w, got, null), f.name);
    const want = reference(f, w, null, 1, 1);
    const bad = got.findIndex((c, i) => c !== want[i]);
    assert.equal(bad, -1, `${f.name}: x=${w[bad]} kernel ${got[bad]} reference ${want[bad]}`);
  }
  // a format without NaN: the kernel declines, the caller's TypeScript path throws
  assert.equal(encodeMiniWithKernel(E2M1, Float32Array.from([1, NaN]), new Uint8Array(2), null), false);
});

test('small-float kernel: scaled runs (zero scales, runs across chunk boundaries) equal the reference', () => {
  const r = rng(7);
  const n = 70_000 * 3 + 17; // beyond the kernel's 65,536-value chunks, not a multiple of them
  const w = Float32Array.from({ length: n }, () => (r() - 0.5) * 2 ** Math.floor(r() * 16 - 8));
  for (const [runLen, mod] of [[100, 7], [n, 1], [3, (n / 3) | 0], [65_537, 4]] as const) {
    const nRuns = Math.ceil(n / runLen);
    const scales = Float32Array.from({ length: Math.min(mod, nRuns) }, (_, i) => (i % 5 === 3 ? 0 : Math.fround(0.001 + r() * 0.05)));
    for (const f of FORMATS) {
      const got = new Uint8Array(n);
      assert.ok(encodeMiniWithKernel(f, w, got, scales, runLen, scales.length));
      const want = reference(f, w, scales, runLen, scales.length);
      const bad = got.findIndex((c, i) => c !== want[i]);
      assert.equal(bad, -1, `${f.name} runLen ${runLen}: index ${bad}`);
    }
  }
});

test('quantizeFloat: FP8/FP4 schemes give the same codes and scales with the kernel as without', () => {
  const r = rng(3);
  const N = 24, K = 256;
  const w = Float32Array.from({ length: N * K }, (_, i) => (i % 97 === 0 ? 40 : 1) * (r() - 0.5) * 0.1);
  w[5] = 0;
  w[6] = -0;
  for (const s of ['fp8-e4m3', 'fp8-e5m2', 'fp4', 'fp8-e4m3-g64', 'fp4-g32', 'fp8-e5m2-tensor', 'fp8-e4m3-cast', 'fp4-cast']) {
    const scheme = parseScheme(s);
    setGgmlKernelsEnabled(false);
    let ref;
    try {
      ref = quantize(w, [N, K], scheme);
    } finally {
      setGgmlKernelsEnabled(true);
    }
    const got = quantize(w, [N, K], scheme);
    assert.deepEqual(got, ref, s);
  }
});
