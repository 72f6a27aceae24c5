// Packing layouts: hand-computed words/bytes, a BigInt bit-stream reference, round trips, and the
// GPTQ / MatMulNBits tensors of a quantized weight decoding back to exactly dequantize(q).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { quantize, dequantize, parseScheme } from '../../src/quant/index.js';
import type { IntQuantized } from '../../src/quant/index.js';
import {
  packBits32, unpackBits32, packBits8, unpackBits8, packGptqWeight, unpackGptqWeight, packGptqZeros, unpackGptqZeros,
  packMatMulNBits, unpackMatMulNBits, packMatMulNBitsZeros, unpackMatMulNBitsZeros, packGgmlNibbles, unpackGgmlNibbles,
  ggmlNibblesToSequential, sequentialToGgmlNibbles, toGptq, toMatMulNBits,
} from '../../src/quant/pack.js';

/** Independent reference: the whole stream as one BigInt, code i at bit i·b. */
function refWords(values: number[], bits: number, wordBits: number): number[] {
  let acc = 0n;
  values.forEach((v, i) => (acc |= BigInt(v) << BigInt(i * bits)));
  const n = Math.ceil((values.length * bits) / wordBits);
  const mask = (1n << BigInt(wordBits)) - 1n;
  return Array.from({ length: n }, (_, i) => Number((acc >> BigInt(i * wordBits)) & mask));
}

test('bit streams match the BigInt reference for 1–8 bits, and round-trip', () => {
  const rng = new Rng(4);
  for (let bits = 1; bits <= 8; bits++) {
    const vals = Array.from({ length: 96 }, () => rng.int(2 ** bits));
    assert.deepEqual([...packBits32(vals, bits)], refWords(vals, bits, 32), `32-bit words, ${bits} bits`);
    assert.deepEqual([...packBits8(vals, bits)], refWords(vals, bits, 8), `bytes, ${bits} bits`);
    assert.deepEqual([...unpackBits32(packBits32(vals, bits), bits, vals.length)], vals);
    assert.deepEqual([...unpackBits8(packBits8(vals, bits), bits, vals.length)], vals);
  }
});

test('GPTQ qweight by hand: 4-bit codes 0..7 → 0x76543210; 3-bit code 10 straddles words 0 and 1', () => {
  // N = 2, K = 8: column 0 codes 0..7, column 1 codes 15..8; qweight [1, 2]
  const codes = Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7, 15, 14, 13, 12, 11, 10, 9, 8]);
  const qw = packGptqWeight(codes, 2, 8, 4);
  assert.deepEqual([...qw].map((v) => v >>> 0), [0x76543210, 0x89abcdef]);
  assert.deepEqual(unpackGptqWeight(qw, 2, 8, 4), codes);
  // 3-bit, N = 1, K = 32: only code 10 = 7 → bits 30, 31 of word 0 and bit 0 of word 1
  const c3 = new Uint8Array(32);
  c3[10] = 7;
  assert.deepEqual([...packGptqWeight(c3, 1, 32, 3)].map((v) => v >>> 0), [0xc0000000, 1, 0]);
  c3[21] = 5; // bits 63 (low bit 1) → word 1 bit 31; bits 64, 65 (10) → word 2 = 0b10
  assert.deepEqual([...packGptqWeight(c3, 1, 32, 3)].map((v) => v >>> 0), [0xc0000000, 0x80000001, 2]);
});

test('GPTQ qzeros store zero − 1: symmetric 4-bit zero 8 → 0x77777777; round trip', () => {
  const N = 8;
  const zeros = new Uint8Array(N * 2).fill(8);
  const qz = packGptqZeros(zeros, N, 2, 4);
  assert.deepEqual([...qz].map((v) => v >>> 0), [0x77777777, 0x77777777]);
  const rng = new Rng(8);
  const z2 = Uint8Array.from({ length: 32 * 3 }, () => rng.int(8));
  assert.deepEqual(unpackGptqZeros(packGptqZeros(z2, 32, 3, 3), 32, 3, 3), z2);
});

test('MatMulNBits by hand: 4-bit low nibble first along K; zero points two per byte', () => {
  const codes = Uint8Array.from({ length: 32 }, (_, k) => k & 15); // N = 1, K = 32, block 16
  const B = packMatMulNBits(codes, 1, 32, 4, 16);
  assert.equal(B.length, 16);
  assert.equal(B[0], 0x10);
  assert.equal(B[1], 0x32);
  assert.equal(B[7], 0xfe);
  assert.deepEqual(unpackMatMulNBits(B, 1, 32, 4, 16), codes);
  const zp = packMatMulNBitsZeros(Uint8Array.from([5, 9, 3]), 1, 3, 4);
  assert.deepEqual([...zp], [0x95, 0x03]);
  assert.deepEqual([...unpackMatMulNBitsZeros(zp, 1, 3, 4)], [5, 9, 3]);
  const b2 = packMatMulNBits(Uint8Array.from([1, 2, 3, 0, 3, 3, 3, 3]), 1, 8, 2, 8);
  assert.deepEqual([...b2], [0b00111001, 0xff]);
});

test('ggml nibble order: byte j = code j | code (j+16) << 4; conversion to sequential order', () => {
  const codes = Uint8Array.from({ length: 32 }, (_, j) => (j * 7) & 15);
  const g = packGgmlNibbles(codes);
  for (let j = 0; j < 16; j++) assert.equal(g[j], codes[j] | (codes[j + 16] << 4));
  assert.deepEqual(unpackGgmlNibbles(g), codes);
  const seq = ggmlNibblesToSequential(g);
  assert.deepEqual(seq, packBits8(codes, 4));
  assert.deepEqual(sequentialToGgmlNibbles(seq), g);
});

test('toGptq / toMatMulNBits decode to exactly dequantize(q) (sym and asym, 2/3/4/8 bits)', () => {
  const rng = new Rng(12);
  const N = 32;
  const K = 128;
  const w = rng.fillNormal(new Float32Array(N * K), 0, 0.05);
  for (const s of ['int4-g32', 'int4-g32-asym', 'int3-g64-asym', 'int2-g32', 'int8-g128-asym', 'int4-channel']) {
    const q = quantize(w, [N, K], parseScheme(s)) as IntQuantized;
    const want = dequantize(q);
    const t = toGptq(q);
    const codes = unpackGptqWeight(t.qweight, N, K, t.bits);
    const nG = K / t.groupSize;
    const zeros = unpackGptqZeros(t.qzeros, N, nG, t.bits);
    const got = new Float32Array(N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const g = t.gIdx[k];
        got[n * K + k] = t.scales[g * N + n] * (codes[n * K + k] - zeros[n * nG + g]);
      }
    }
    assert.deepEqual(got, want, `gptq ${s}`);
    if (t.bits === 3) continue;
    const m = toMatMulNBits(q);
    const mc = unpackMatMulNBits(m.B, N, K, m.bits, m.blockSize);
    const mz = m.zeroPoints ? unpackMatMulNBitsZeros(m.zeroPoints, N, nG, m.bits) : new Uint8Array(N * nG).fill(2 ** (m.bits - 1));
    const got2 = new Float32Array(N * K);
    for (let i = 0; i < N * K; i++) {
      const n = Math.floor(i / K);
      const g = Math.floor((i % K) / m.blockSize);
      got2[i] = m.scales[n * nG + g] * (mc[i] - mz[n * nG + g]);
    }
    assert.deepEqual(got2, want, `matmulnbits ${s}`);
  }
});
