// Little-endian bit streams against an independent BigInt reference (code i at bit i·b), and round trips.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { packBits32, packBits8, unpackBits32, unpackBits8 } from '../../src/numerics/bitstream.js';

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
