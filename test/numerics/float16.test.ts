// FP16/BF16 conversions checked against exhaustive enumeration of every code, and against
// Float32Array rounding where JS gives an independent reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { f16ToF32, f32ToF16, f32ToBf16, bf16ToF32, f32Bits } from '../../src/numerics/float16.js';
import { roundHalfEven, roundHalfAwayFromZero } from '../../src/numerics/round.js';

test('every f16 code decodes and re-encodes to itself (NaNs to a NaN)', () => {
  for (let h = 0; h < 65536; h++) {
    const x = f16ToF32(h);
    if (Number.isNaN(x)) {
      const back = f32ToF16(x);
      assert.equal(back & 0x7c00, 0x7c00);
      assert.notEqual(back & 0x3ff, 0);
      continue;
    }
    assert.equal(f32ToF16(x), h, `code 0x${h.toString(16)}`);
  }
});

test('f16 rounding: ties to even, midpoints between every pair of adjacent codes', () => {
  // For each adjacent pair of positive finite codes (h, h+1), the exact midpoint must round to the even code.
  for (let h = 0; h < 0x7bff; h++) {
    const a = f16ToF32(h);
    const b = f16ToF32(h + 1);
    const mid = (a + b) / 2; // exact in f64 and representable in f32 for f16 neighbours
    assert.equal(Math.fround(mid), mid);
    const want = h % 2 === 0 ? h : h + 1;
    assert.equal(f32ToF16(mid), want, `midpoint of 0x${h.toString(16)}`);
    assert.equal(f32ToF16(-mid), want | 0x8000);
  }
});

test('f16 overflow, underflow and specials', () => {
  assert.equal(f32ToF16(65504), 0x7bff);
  assert.equal(f32ToF16(65520), 0x7c00); // halfway to the next binade rounds to Inf
  assert.equal(f32ToF16(65519.99), 0x7bff);
  assert.equal(f32ToF16(Infinity), 0x7c00);
  assert.equal(f32ToF16(-Infinity), 0xfc00);
  assert.equal(f32ToF16(2 ** -25), 0); // exactly half the smallest subnormal: ties to even (0)
  assert.equal(f32ToF16(2 ** -25 * 1.0001), 1);
  assert.equal(f32ToF16(-0), 0x8000);
});

test('bf16 matches truncation of f32 bits with round-to-nearest-even, for every bf16 code', () => {
  for (let h = 0; h < 65536; h++) {
    const x = bf16ToF32(h);
    if (Number.isNaN(x)) continue;
    assert.equal(f32ToBf16(x), h);
  }
  // ties: 1 + 2^-8 is halfway between bf16(1) and the next code; rounds to even (1.0)
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80);
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82);
  assert.equal(f32Bits(bf16ToF32(f32ToBf16(NaN))) & 0x7fc00000, 0x7fc00000);
});

test('rounding modes on ties', () => {
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5].map(roundHalfEven), [0, 2, 2, -0, -2, -2]);
  assert.deepEqual([0.5, 1.5, 2.5, -0.5, -1.5, -2.5].map(roundHalfAwayFromZero), [1, 2, 3, -1, -2, -3]);
  assert.equal(roundHalfAwayFromZero(0.49999999999999994), 0);
});
