// GPTQ int32 packing by hand: qweight words along K per output column, qzeros storing zero − 1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../../src/core/rng.js';
import { packGptqWeight, packGptqZeros, unpackGptqWeight, unpackGptqZeros } from '../../../src/formats/gptq/pack.js';

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
