// Codes into int32 words (numerics/pack-words.ts), the one packing behind formats/gptq,
// formats/compressed-tensors and the streamed codecs' workers: word values worked out by hand,
// each row's words read back as the little-endian bit stream they are (numerics/bitstream.ts
// unpackBits32), and blocks of rows packed one at a time into a buffer full of old bytes equal to
// the whole tensor packed at once (workers each pack their rows into reused shared buffers).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { unpackBits32 } from '../../src/numerics/bitstream.js';
import { packCtRowsInto, packGptqColumnsInto } from '../../src/numerics/pack-words.js';

function codes(N: number, K: number, bits: number, seed: number): Uint8Array {
  const rng = new Rng(seed);
  return Uint8Array.from({ length: N * K }, () => rng.int(2 ** bits));
}

test('pack-words: GPTQ words by hand, and every column reads back as its bit stream (b = 2, 3, 4, 5, 8)', () => {
  const w = new Int32Array(1);
  packGptqColumnsInto(Uint8Array.from([0, 1, 2, 3, 4, 5, 6, 7]), 1, 8, 4, w, 1, 0);
  assert.equal(w[0] >>> 0, 0x76543210);
  packGptqColumnsInto(Uint8Array.from([0x80, 0x81, 0xff, 0x01]), 1, 4, 8, w, 1, 0);
  assert.equal(w[0] >>> 0, 0x01ff8180);
  for (const bits of [2, 3, 4, 5, 8]) {
    const N = 5;
    const K = 96; // K·b a multiple of 32 for each
    const c = codes(N, K, bits, bits);
    const rows = (K * bits) / 32;
    const out = new Int32Array(rows * N);
    packGptqColumnsInto(c, N, K, bits, out, N, 0);
    for (let n = 0; n < N; n++) {
      const col = Uint32Array.from({ length: rows }, (_, r) => out[r * N + n] >>> 0);
      assert.deepEqual(unpackBits32(col, bits, K), c.subarray(n * K, (n + 1) * K), `b=${bits} column ${n}`);
    }
  }
});

test('pack-words: compressed-tensors words by hand, the last word zero-padded over old bytes', () => {
  const out = new Int32Array(2).fill(-1);
  packCtRowsInto([1, 2, 3, 4, 5, 6, 7, 8, 9], 1, 9, 4, out, 0);
  assert.deepEqual([out[0] >>> 0, out[1]], [0x87654321, 9]);
});

test('pack-words: rows packed block by block into a reused buffer equal the whole tensor packed at once', () => {
  const N = 37;
  const K = 128;
  for (const bits of [2, 3, 4, 8]) {
    const c = codes(N, K, bits, 11 + bits);
    const gw = (K * bits) / 32;
    const whole = new Int32Array(gw * N);
    packGptqColumnsInto(c, N, K, bits, whole, N, 0);
    const blocks = new Int32Array(gw * N).fill(0x5a5a5a5a);
    for (const [r0, r1] of [[0, 10], [10, 11], [11, 37]]) packGptqColumnsInto(c.subarray(r0 * K, r1 * K), r1 - r0, K, bits, blocks, N, r0);
    assert.deepEqual(blocks, whole, `GPTQ b=${bits}`);
    if (32 % bits !== 0) continue;
    const cw = Math.ceil((K * bits) / 32);
    const ctWhole = new Int32Array(cw * N);
    packCtRowsInto(c, N, K, bits, ctWhole, 0);
    const ctBlocks = new Int32Array(cw * N).fill(-1);
    for (const [r0, r1] of [[0, 20], [20, 37]]) packCtRowsInto(c.subarray(r0 * K, r1 * K), r1 - r0, K, bits, ctBlocks, r0);
    assert.deepEqual(ctBlocks, ctWhole, `compressed-tensors b=${bits}`);
  }
});
