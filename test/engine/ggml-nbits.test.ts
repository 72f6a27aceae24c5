// ggml block types re-coded as MatMulNBits operands (engine/ggml-nbits.ts): the operands'
// dequantization, fround((u − z)·s) then fround(· − min), equals ggml's own floats bit for bit on
// every golden row (../shared/golden/ggml-quants, written by ggml's to_float), and equals our ggml
// codec on seeded data for every type that has a kernel form. Compared as Uint32 patterns.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { sharedPath, sharedSkip } from '../helpers.js';
import { isGgmlType, type GgmlType } from '../../src/core/dtype.js';
import { Rng } from '../../src/core/rng.js';
import { ggmlHasNBits, ggmlToNBits } from '../../src/engine/ggml-nbits.js';
import { dequantizeNBitsLinear, splitNBitsRows } from '../../src/engine/nbits.js';
import { dequantizeGgml, ggmlSupports, quantizeGgml } from '../../src/quant/ggml/index.js';

const DIR = sharedPath('golden', 'ggml-quants');
const NO_GOLDEN = sharedSkip('golden/ggml-quants/manifest.tsv');

export const NBITS_TYPES: GgmlType[] = ['Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'TQ1_0', 'TQ2_0', 'Q1_0', 'Q2_0'];

function bitsOf(x: Float32Array): Uint32Array {
  return new Uint32Array(x.buffer, x.byteOffset, x.length);
}

function firstDiff(a: Float32Array, b: Float32Array): number {
  const ua = bitsOf(a);
  const ub = bitsOf(b);
  if (ua.length !== ub.length) return Math.min(ua.length, ub.length);
  for (let i = 0; i < ua.length; i++) if (ua[i] !== ub[i]) return i;
  return -1;
}

test('every type with a kernel form is listed, and the rest report none', () => {
  for (const t of NBITS_TYPES) assert.ok(ggmlHasNBits(t), t);
  for (const t of ['IQ4_NL', 'IQ4_XS', 'IQ2_XXS', 'MXFP4', 'NVFP4', 'F16', 'BF16', 'F32'] as GgmlType[]) assert.equal(ggmlHasNBits(t), false, t);
  assert.equal(ggmlToNBits('IQ4_NL', new Uint8Array(18), 1, 32), null);
});

test('re-coded operands dequantize to our ggml codec bit for bit (seeded rows, every kernel type)', () => {
  const rng = new Rng(7);
  const [N, K] = [3, 512];
  for (const t of NBITS_TYPES) {
    if (!ggmlSupports(t).quantize) continue;
    const x = Float32Array.from({ length: N * K }, (_, i) => (i % 97 === 0 ? 4 : 1) * rng.normal() * 0.05);
    const bytes = quantizeGgml(t, x, N, K);
    const ref = dequantizeGgml(t, bytes, N * K);
    const got = dequantizeNBitsLinear(ggmlToNBits(t, bytes, N, K)!);
    assert.equal(firstDiff(got, ref), -1, `${t}: first differing element`);
    // the K-quants' mins as float32 instead of their 8-bit kernel: the same floats
    const floatMins = dequantizeNBitsLinear(ggmlToNBits(t, bytes, N, K, undefined, true)!);
    assert.equal(firstDiff(floatMins, ref), -1, `${t} (float mins): first differing element`);
  }
});

test('re-coded operands dequantize to ggml\'s golden floats bit for bit', { skip: NO_GOLDEN }, () => {
  const lines = readFileSync(resolve(DIR, 'manifest.tsv'), 'utf8').trim().split('\n').slice(1);
  let checked = 0;
  const seen = new Set<string>();
  for (const l of lines) {
    const f = l.split('\t');
    const type = f[1].toUpperCase();
    if (!isGgmlType(type) || !ggmlHasNBits(type)) continue;
    const [rows, perRow] = [Number(f[6]), Number(f[7])];
    const b = readFileSync(resolve(DIR, f[8]));
    const bytes = new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
    const d = readFileSync(resolve(DIR, f[9]));
    const golden = new Float32Array(d.buffer.slice(d.byteOffset, d.byteOffset + d.byteLength));
    const got = dequantizeNBitsLinear(ggmlToNBits(type, bytes, rows, perRow)!);
    assert.equal(firstDiff(got, golden), -1, `${f[0]} ${type}${f[3] === '1' ? ' imatrix' : ''}: first differing element`);
    seen.add(type);
    checked++;
  }
  assert.ok(checked >= 40, `golden rows checked: ${checked}`);
  // every kernel type ggml's golden set covers was checked
  assert.ok(seen.size >= 12, `types: ${[...seen].join(' ')}`);
});

test('a hand-computed Q4_0 block: codes packed low nibble first, default zero point 8', () => {
  // d = 1.0 (f16 0x3C00); qs byte j holds element j (low) and j + 16 (high)
  const blk = new Uint8Array(18);
  blk[0] = 0x00;
  blk[1] = 0x3c;
  for (let j = 0; j < 16; j++) blk[2 + j] = j | ((15 - j) << 4);
  const l = ggmlToNBits('Q4_0', blk, 1, 32)!;
  assert.equal(l.main.bits, 4);
  assert.equal(l.main.zeroPoints, null);
  assert.deepEqual(Array.from(l.main.scales), [1]);
  // kernel element e (e < 16) = j = e; e ≥ 16 = 15 − (e − 16); two per byte, element 2i low
  assert.equal(l.main.B[0], 0 | (1 << 4));
  assert.equal(l.main.B[8], 15 | (14 << 4));
  assert.deepEqual(Array.from(dequantizeNBitsLinear(l)).slice(0, 4), [-8, -7, -6, -5]);
});

test('a byte length that does not match the shape is a typed error naming the tensor', () => {
  assert.throws(() => ggmlToNBits('Q4_K', new Uint8Array(100), 1, 256, 'blk.0.ffn_up.weight'), (e: Error & { code?: string }) => e.code === 'shape_mismatch' && /ffn_up/.test(e.message));
  assert.throws(() => ggmlToNBits('Q4_0', new Uint8Array(18), 1, 48, 'w'), (e: Error & { code?: string }) => e.code === 'shape_mismatch');
});

test('row parts of a linear (unpacked kernels) dequantize to the whole, mins and all', () => {
  const rng = new Rng(9);
  const [N, K] = [7, 256];
  for (const t of ['Q4_K', 'Q6_K', 'Q2_K'] as GgmlType[]) {
    const bytes = quantizeGgml(t, Float32Array.from({ length: N * K }, () => rng.normal()), N, K);
    const l = ggmlToNBits(t, bytes, N, K)!;
    const whole = dequantizeNBitsLinear(l);
    const parts = splitNBitsRows(l, 3);
    assert.deepEqual(parts.map((p) => p.N), [3, 3, 1]);
    const joined = new Float32Array(N * K);
    let o = 0;
    for (const p of parts) {
      joined.set(dequantizeNBitsLinear(p), o);
      o += p.N * K;
    }
    assert.equal(firstDiff(joined, whole), -1, t);
  }
});
