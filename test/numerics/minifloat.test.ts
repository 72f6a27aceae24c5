// FP8/FP6/FP4/UE4M3/E8M0 codecs: exhaustive over every code (decode → encode round trip), every
// midpoint between neighbours (ties to even), the fast table encoder against the arithmetic
// reference, and the REFERENCE T8 / §7 fixtures.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NumericError } from '../../src/core/errors.js';
import {
  E4M3, E5M2, E2M1, E2M3, E3M2, UE4M3, codeBits, decodeMini, encodeMini, encodeMiniRef, maxFinite, minSubnormal,
  decodeE8M0, encodeE8M0Floor, type MiniFloatFormat,
} from '../../src/numerics/minifloat.js';

const ALL = [E4M3, E5M2, E2M1, E2M3, E3M2, UE4M3];

function both(f: MiniFloatFormat, x: number, saturate = false): number {
  const a = encodeMini(f, x, { saturate });
  const b = encodeMiniRef(f, x, { saturate });
  assert.equal(a, b, `${f.name} fast vs ref at ${x} (saturate ${saturate})`);
  return a;
}

test('format constants (REFERENCE §7)', () => {
  assert.equal(maxFinite(E4M3), 448);
  assert.equal(maxFinite(E5M2), 57344);
  assert.equal(maxFinite(E2M1), 6);
  assert.equal(maxFinite(E2M3), 7.5);
  assert.equal(maxFinite(E3M2), 28);
  assert.equal(minSubnormal(E4M3), 2 ** -9);
  assert.equal(minSubnormal(E5M2), 2 ** -16);
  assert.equal(decodeMini(E4M3, 0x08), 2 ** -6); // min normal
  assert.equal(decodeMini(E5M2, 0x04), 2 ** -14);
  const e2m1 = [0, 1, 2, 3, 4, 5, 6, 7].map((c) => decodeMini(E2M1, c));
  assert.deepEqual(e2m1, [0, 0.5, 1, 1.5, 2, 3, 4, 6]);
  assert.ok(Number.isNaN(decodeMini(E4M3, 0x7f)) && Number.isNaN(decodeMini(E4M3, 0xff)));
  assert.equal(decodeMini(E5M2, 0x7c), Infinity);
  assert.equal(decodeMini(E5M2, 0xfc), -Infinity);
  assert.ok(Number.isNaN(decodeMini(E5M2, 0x7e)));
});

test('every code decodes and re-encodes to itself (NaNs to the canonical NaN)', () => {
  for (const f of ALL) {
    for (let c = 0; c < 1 << codeBits(f); c++) {
      const v = decodeMini(f, c);
      if (Number.isNaN(v)) {
        assert.ok(Number.isNaN(decodeMini(f, both(f, v))));
        continue;
      }
      if (v === Infinity || v === -Infinity) {
        assert.equal(both(f, v), c);
        continue;
      }
      assert.equal(both(f, v), c, `${f.name} code 0x${c.toString(16)}`);
      assert.equal(both(f, v, true), c);
    }
  }
});

test('midpoints between neighbouring codes round to the even code; just off-midpoint goes to the nearer', () => {
  for (const f of ALL) {
    const P = f.signed ? (1 << (codeBits(f) - 1)) : 1 << codeBits(f);
    for (let c = 0; c + 1 < P; c++) {
      const a = decodeMini(f, c);
      const b = decodeMini(f, c + 1);
      if (!Number.isFinite(a) || !Number.isFinite(b)) continue;
      const mid = (a + b) / 2;
      const want = c % 2 === 0 ? c : c + 1;
      assert.equal(both(f, mid, true), want, `${f.name} mid of 0x${c.toString(16)}`);
      const eps = (b - a) * 1e-6;
      assert.equal(both(f, mid - eps, true), c);
      assert.equal(both(f, mid + eps, true), c + 1);
      if (f.signed) assert.equal(both(f, -mid, true), want | (1 << (codeBits(f) - 1)));
    }
  }
});

test('REFERENCE T8: E4M3 step 32 in [256, 448], E5M2 step 64 in [256, 512), E2M1 tie 2.5 → 2', () => {
  assert.equal(decodeMini(E4M3, both(E4M3, 300)), 288);
  assert.equal(decodeMini(E4M3, both(E4M3, 440)), 448);
  assert.equal(decodeMini(E5M2, both(E5M2, 300)), 320);
  assert.equal(decodeMini(E2M1, both(E2M1, 2.5)), 2);
  assert.equal(decodeMini(E2M1, both(E2M1, 5)), 4); // tie between 4 (even code 6) and 6 (code 7)
  assert.equal(decodeMini(E2M1, both(E2M1, 0.25)), 0); // tie between 0 and 0.5 → 0
  assert.equal(decodeMini(E2M1, both(E2M1, 0.75)), 1); // tie 0.5 (code 1) / 1 (code 2) → 1
});

test('overflow, saturation, Inf and NaN handling per format', () => {
  // E4M3: 464 is the midpoint 448/480 and ties to 448 (even); above it overflows
  assert.equal(both(E4M3, 464), 0x7e);
  assert.equal(both(E4M3, 465), 0x7f); // NaN (non-saturating)
  assert.equal(both(E4M3, 465, true), 0x7e);
  assert.equal(both(E4M3, -1e9, true), 0xfe);
  assert.equal(both(E4M3, Infinity), 0x7f);
  assert.equal(both(E4M3, -Infinity, true), 0xfe);
  assert.equal(both(E4M3, NaN), 0x7f);
  // E5M2: 61440 is the midpoint 57344/65536 and ties to Inf (even code 0x7c)
  assert.equal(both(E5M2, 61440), 0x7c);
  assert.equal(both(E5M2, 61439), 0x7b);
  assert.equal(both(E5M2, 61440, true), 0x7b);
  assert.equal(both(E5M2, -Infinity), 0xfc);
  assert.equal(both(E5M2, NaN), 0x7e);
  // FP4 / FP6 saturate always and reject NaN
  assert.equal(both(E2M1, 100), 0x7);
  assert.equal(both(E2M1, -Infinity), 0xf);
  assert.equal(both(E3M2, 1e6), 0x1f);
  assert.throws(() => encodeMini(E2M1, NaN), NumericError);
  // subnormal underflow: half the smallest subnormal ties to 0
  assert.equal(both(E4M3, 2 ** -10), 0);
  assert.equal(both(E4M3, 2 ** -10 * 1.0001), 1);
  assert.equal(both(E4M3, -0), 0x80);
  // UE4M3 has no sign: negatives clamp to 0
  assert.equal(both(UE4M3, -3), 0);
  assert.equal(both(UE4M3, 448), 0x7e);
});

test('E8M0: powers of two, floor selection, NaN', () => {
  assert.equal(decodeE8M0(127), 1);
  assert.equal(decodeE8M0(0), 2 ** -127);
  assert.equal(decodeE8M0(254), 2 ** 127);
  assert.ok(Number.isNaN(decodeE8M0(255)));
  assert.equal(encodeE8M0Floor(1), 127);
  assert.equal(encodeE8M0Floor(1.999), 127);
  assert.equal(encodeE8M0Floor(2), 128);
  assert.equal(encodeE8M0Floor(0.75), 126);
  assert.equal(encodeE8M0Floor(2 ** -149), 0); // clamps to the smallest scale
});
