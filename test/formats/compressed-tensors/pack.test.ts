// compressed-tensors pack-quantized int32 packing against hand-computed words (low bits first,
// padded; zero points packed along rows), and the inverse.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { packCtColumns, packCtRows, unpackCtColumns, unpackCtRows } from '../../../src/formats/compressed-tensors/pack.js';

test('packing: hand-computed int32 words (low bits first, padded, zero points along rows)', () => {
  // int4: signed q = [-8, -1, 0, 7, 1, 2, 3, 4, 5] → unsigned u = q + 8 = [0, 7, 8, 15, 9, 10, 11, 12, 13]
  const u = [0, 7, 8, 15, 9, 10, 11, 12, 13];
  const w = packCtRows(u, 1, 9, 4);
  // word 0 nibbles (low→high): 0,7,8,F,9,A,B,C = 0xCBA9F870; word 1: 13 then 7 zero nibbles (padding)
  assert.deepEqual(Array.from(w), [0xcba9f870 | 0, 13]);
  assert.deepEqual(Array.from(unpackCtRows(w, 1, 9, 4)), u);
  // int8: the docstring example of pack_to_int32: signed [1, 2] → [129, 130] → 33409
  assert.deepEqual(Array.from(packCtRows([129, 130], 1, 2, 8)), [33409]);
  // zero points [R=3, C=2] packed along R at 8 bits: column c holds rows 0..2 in bytes 0..2
  const z = [1, 2, 3, 4, 5, 6];
  const zw = packCtColumns(z, 3, 2, 8);
  assert.deepEqual(Array.from(zw), [1 | (3 << 8) | (5 << 16), 2 | (4 << 8) | (6 << 16)]);
  assert.deepEqual(Array.from(unpackCtColumns(zw, 3, 2, 8)), z);
});
