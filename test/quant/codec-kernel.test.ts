// The WebAssembly row codecs of the streamed int and fixed-book schemes (quant/codec-kernel.ts)
// against their TypeScript reference, quant's quantize() then toUnsignedCodes / dequantize: the
// same unsigned codes, scales, zero points and ŵ bit for bit, on random rows and on the
// adversarial rows of the ggml comparisons (all zero, all equal, one outlier per block, subnormal,
// ±FLT_MAX, exact ties, …), from F32, F16 and BF16 inputs, across the kernel's blocks of rows.
// Where the reference throws (a NaN, a scale or ŵ that overflows), the kernel declines (false)
// so that the caller runs the reference, which reports it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { decodeBf16Array, decodeF16Array, encodeBf16Array, encodeF16Array } from '../../src/numerics/float16.js';
import { codecKernelGroup, runCodecKernel, type CodecKernelBlock } from '../../src/quant/codec-kernel.js';
import { setGgmlKernelsEnabled } from '../../src/quant/ggml/index.js';
import { dequantize, parseScheme, quantize, toUnsignedCodes, type QuantScheme } from '../../src/quant/index.js';
import { adversarialRows, ROW_KINDS } from './adversarial-rows.js';

type Input = 'F32' | 'F16' | 'BF16';

/** The reference's outputs for rows x [R, K], or null where it throws. */
function reference(x: Float32Array, R: number, K: number, scheme: QuantScheme): { codes: Uint8Array; scales: Float32Array; zeros: Uint8Array; values: Float32Array } | null {
  try {
    const q = quantize(x, [R, K], scheme);
    const values = dequantize(q);
    if (values.some((v) => !Number.isFinite(v))) return null;
    if (q.kind === 'int') {
      if (q.scales.some((v) => !Number.isFinite(v))) return null;
      const u = toUnsignedCodes(q);
      return { codes: u.codes, scales: q.scales, zeros: u.zeros, values };
    }
    if (q.kind !== 'codebook') throw new Error('not a kernel scheme');
    return { codes: q.codes, scales: q.scales, zeros: new Uint8Array(q.scales.length), values };
  } catch {
    return null;
  }
}

/** The kernel's outputs, the blocks stitched together, or null where it declined. */
function kernel(bytes: Uint8Array, input: Input, R: number, K: number, scheme: QuantScheme): { codes: Uint8Array; scales: Float32Array; zeros: Uint8Array; values: Float32Array; blocks: number } | null {
  const G = codecKernelGroup(scheme, K)!;
  const el = input === 'F32' ? 4 : 2;
  const S = K / G;
  const r = { codes: new Uint8Array(R * K), scales: new Float32Array(R * S), zeros: new Uint8Array(R * S), values: new Float32Array(R * K), blocks: 0 };
  const ok = runCodecKernel({
    scheme, input, R, K, values: true,
    fill: (into, p0, n) => into.set(bytes.subarray(p0 * K * el, (p0 + n) * K * el)),
    emit: (p0, n, b: CodecKernelBlock) => {
      r.codes.set(b.codes, p0 * K);
      r.scales.set(b.scales, p0 * S);
      r.zeros.set(b.zeros, p0 * S);
      r.values.set(b.values!, p0 * K);
      r.blocks++;
    },
  });
  return ok ? r : null;
}

/** The input's bytes and the f32 values the reference sees (decoded as the worker decodes). */
function asInput(x: Float32Array, input: Input): { bytes: Uint8Array; f32: Float32Array } {
  if (input === 'F32') return { bytes: new Uint8Array(x.buffer, x.byteOffset, x.byteLength), f32: x };
  const h = input === 'F16' ? encodeF16Array(x) : encodeBf16Array(x);
  return { bytes: new Uint8Array(h.buffer), f32: input === 'F16' ? decodeF16Array(h) : decodeBf16Array(h) };
}

function compare(x: Float32Array, input: Input, R: number, K: number, schemeName: string, what: string): 'same' | 'declined' {
  const scheme = parseScheme(schemeName);
  const { bytes, f32 } = asInput(x, input);
  const want = reference(f32, R, K, scheme);
  const got = kernel(bytes, input, R, K, scheme);
  const tag = `${schemeName} ${input} ${what}`;
  if (!want) {
    assert.equal(got, null, `${tag}: the reference throws, the kernel must decline`);
    return 'declined';
  }
  assert.ok(got, `${tag}: the kernel declined rows the reference takes`);
  assert.deepEqual(got.codes, want.codes, `${tag}: codes`);
  assert.deepEqual(got.scales, want.scales, `${tag}: scales`);
  assert.deepEqual(got.zeros, want.zeros, `${tag}: zero points`);
  // bit patterns, so that −0 and +0 differ
  assert.deepEqual(new Uint32Array(got.values.buffer), new Uint32Array(want.values.buffer), `${tag}: ŵ`);
  return 'same';
}

const SCHEMES = [
  'int4-g128', 'int4-g128-asym', 'int8-channel', 'int2-g64', 'int3-g128-asym', 'int4-g32-restricted', 'int4-g64-bf16-away',
  'int8-g128-asym-f32-away', 'int1-g64-asym', 'nf4-g64', 'nf4-channel', 'log2-g64', 'nf4-g128-bf16',
];

test('codec kernels: adversarial rows give the reference bytes (or decline where it throws), F32/F16/BF16', () => {
  const K = 256;
  let same = 0;
  let declined = 0;
  for (const kind of ROW_KINDS) {
    const x = adversarialRows(3, K, 7, 0, [kind]);
    for (const s of SCHEMES) {
      for (const input of ['F32', 'F16', 'BF16'] as const) {
        if (compare(x, input, 3, K, s, kind) === 'same') same++;
        else declined++;
      }
    }
  }
  // the F16-scale schemes cannot hold ±FLT_MAX rows: some declines, most the same
  assert.ok(declined > 0 && same > declined * 10, `same ${same}, declined ${declined}`);
});

test('codec kernels: random rows across blocks of rows equal the reference', () => {
  const rng = new Rng(3);
  const R = 70;
  const K = 4096; // 64 rows per kernel block: two blocks
  const x = Float32Array.from({ length: R * K }, () => rng.normal() * (rng.next() < 0.01 ? 1 : 0.02));
  for (const s of ['int4-g128', 'int8-channel', 'int3-g128-asym', 'nf4-g64']) {
    for (const input of ['F32', 'F16'] as const) assert.equal(compare(x, input, R, K, s, 'random'), 'same');
  }
  const scheme = parseScheme('int4-g128');
  assert.equal(kernel(new Uint8Array(x.buffer), 'F32', R, K, scheme)!.blocks, 2, 'the rows went through two blocks');
});

test('codec kernels: a NaN or ±Inf input makes the kernel decline; off, and for other schemes, it does not run', () => {
  const scheme = parseScheme('int4-g128');
  for (const input of ['F32', 'F16', 'BF16'] as const) {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const x = new Float32Array(2 * 128).fill(0.5);
      x[200] = bad;
      assert.equal(kernel(asInput(x, input).bytes, input, 2, 128, scheme), null, `${input} ${bad}`);
    }
  }
  assert.equal(codecKernelGroup(parseScheme('int4-g128'), 256), 128);
  assert.equal(codecKernelGroup(parseScheme('int8-channel'), 96), 96);
  assert.equal(codecKernelGroup(parseScheme('int4-g128'), 200), null, 'ragged groups');
  assert.equal(codecKernelGroup(parseScheme('int8-tensor'), 256), null);
  assert.equal(codecKernelGroup(parseScheme('kmeans4-g64'), 256), null);
  assert.equal(codecKernelGroup(parseScheme('fp8-e4m3'), 256), null);
  setGgmlKernelsEnabled(false);
  try {
    assert.equal(codecKernelGroup(parseScheme('int4-g128'), 256), null);
  } finally {
    setGgmlKernelsEnabled(true);
  }
});
