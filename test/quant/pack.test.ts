// Packing layouts of quant's own containers: MatMulNBits and ggml nibbles by hand, and the
// MatMulNBits tensors of a quantized weight decoding back to exactly dequantize(q). (Bit streams:
// test/numerics/bitstream.test.ts; GPTQ: test/formats/gptq/.)
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { quantize, dequantize, parseScheme } from '../../src/quant/index.js';
import type { IntQuantized } from '../../src/quant/index.js';
import { packBits8 } from '../../src/numerics/bitstream.js';
import {
  packMatMulNBits, unpackMatMulNBits, packMatMulNBitsZeros, unpackMatMulNBitsZeros, packGgmlNibbles, unpackGgmlNibbles,
  ggmlNibblesToSequential, sequentialToGgmlNibbles, toMatMulNBits,
} from '../../src/quant/pack.js';

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

test('toMatMulNBits decodes to exactly dequantize(q) (sym and asym, 2/4/8 bits)', () => {
  const rng = new Rng(12);
  const N = 32;
  const K = 128;
  const w = rng.fillNormal(new Float32Array(N * K), 0, 0.05);
  for (const s of ['int4-g32', 'int4-g32-asym', 'int2-g32', 'int8-g128-asym', 'int4-channel']) {
    const q = quantize(w, [N, K], parseScheme(s)) as IntQuantized;
    const want = dequantize(q);
    const nG = q.scales.length / N;
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
