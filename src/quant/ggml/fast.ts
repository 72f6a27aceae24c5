// Fast paths for the two memory-bound hot types, Q8_0 and Q4_0 without an importance matrix.
// Same arithmetic as the reference quantizers in legacy.ts (a property test compares the bytes),
// but one pass over the input: the NaN/±Inf check is folded into each block's amax scan (a
// non-finite value makes amax NaN or +Inf), and rounding is inlined.
//
//   Q8_0: 34 bytes/32 = d f16 | int8 qs[32]; d = amax/127, q = roundf(x·(1/d))
//   Q4_0: 18 bytes/32 = d f16 | qs[16];      d = max/−8,   q = min(15, trunc(x·(1/d) + 8.5))
// Legend: x = [R·K] values, QK = 32, nb = R·K/32 blocks (rows are whole blocks, so the blocks
// of consecutive rows are contiguous and row boundaries need no special handling).

import { NumericError } from '../../core/errors.js';
import { f32ToF16 } from '../../numerics/float16.js';
import { cInt8 } from './common.js';

const fr = Math.fround;
const FLT_MAX = 3.4028234663852886e38;

function nonFinite(x: Float32Array, o: number): never {
  let i = o;
  while (Number.isFinite(x[i])) i++;
  throw new NumericError('non_finite', 'x holds a non-finite value', { field: 'x', index: i, found: x[i] });
}

/** Q8_0 over whole blocks of `x` into `out` ([x.length/32·34] bytes). */
export function quantizeQ8_0Fast(x: Float32Array, out: Uint8Array): void {
  const nb = x.length >> 5;
  for (let ib = 0, o = 0, ob = 0; ib < nb; ib++, o += 32, ob += 34) {
    let amax = 0;
    for (let j = 0; j < 32; j++) {
      const a = Math.abs(x[o + j]);
      if (a > amax) amax = a;
      else if (a !== a) {
        amax = a; // NaN: caught below
        break;
      }
    }
    if (!(amax <= FLT_MAX)) nonFinite(x, o);
    const d = fr(amax / 127);
    const id = d !== 0 ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    out[ob] = h & 0xff;
    out[ob + 1] = h >>> 8;
    for (let j = 0; j < 32; j++) {
      const v = fr(x[o + j] * id);
      // roundf: v ± 0.5 is exact in float64 for |v| ≤ 127, so trunc gives half-away-from-zero
      out[ob + 2 + j] = Math.trunc(v < 0 ? v - 0.5 : v + 0.5) & 0xff;
    }
  }
}

/** Q4_0 (reference rule, no imatrix) over whole blocks of `x` into `out` ([x.length/32·18]). */
export function quantizeQ4_0Fast(x: Float32Array, out: Uint8Array): void {
  const nb = x.length >> 5;
  for (let ib = 0, o = 0, ob = 0; ib < nb; ib++, o += 32, ob += 18) {
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const v = x[o + j];
      const a = Math.abs(v);
      if (amax < a) {
        amax = a;
        max = v;
      } else if (a !== a) {
        amax = a; // NaN: caught below
        break;
      }
    }
    if (!(amax <= FLT_MAX)) nonFinite(x, o);
    const d = fr(max / -8);
    const id = d !== 0 ? fr(1 / d) : 0;
    const h = f32ToF16(d);
    out[ob] = h & 0xff;
    out[ob + 1] = h >>> 8;
    for (let j = 0; j < 16; j++) {
      // x·id + 8.5 ∈ [0.5, 16.5]: truncation is the (int8_t) cast (0 where 1/d overflowed)
      const q0 = cInt8(fr(fr(x[o + j] * id) + 8.5));
      const q1 = cInt8(fr(fr(x[o + 16 + j] * id) + 8.5));
      out[ob + 2 + j] = ((q0 < 15 ? q0 : 15) & 15) | (((q1 < 15 ? q1 : 15) & 15) << 4);
    }
  }
}
