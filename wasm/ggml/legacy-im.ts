// The legacy 32-value types with an importance matrix, bit-exact with src/quant/ggml/legacy.ts:
// weights qw·√(σ² + x²) (σ² = mean x² over the row), then make_qx_quants (Q4_0/Q5_0) or
// make_qkx3_quants (Q4_1/Q5_1) on each block; four blocks of a row at a time, one per lane.
// Legend: K = values per row, nb = K/32 blocks per row, o = output block.

import { putF16 } from './common';
import { makeQkx4, makeQx4, qkxMin, qkxScale, transpose4 } from './fit';
import { LB, Laux, Lt, SCALES, MINS, WROW, Wt, X, f32At } from './scratch';

/** Code bytes of lane k (block k of the quad) from transposed f32 levels L → LB[32k..). */
function laneCodes(L: usize, k: i32): void {
  for (let j = 0; j < 32; j++) store<u8>(LB + <usize>(32 * k + j), <u8><i32>load<f32>(L + (<usize>j << 4) + (<usize>k << 2)));
}

/** Q5 qh and nibbles (or Q4 nibbles) of the 32 codes at LB[at..] into o. */
function pack(bits: i32, at: usize, o: usize): void {
  const nib = v128.splat<u8>(15);
  const lo = v128.load(LB + at);
  const hi = v128.load(LB + at + 16);
  if (bits == 5) {
    store<u32>(o, <u32>i8x16.bitmask(i8x16.shl(lo, 3)) | (<u32>i8x16.bitmask(i8x16.shl(hi, 3)) << 16));
    o += 4;
  }
  v128.store(o, v128.or(v128.and(lo, nib), i16x8.shl(v128.and(hi, nib), 4)));
}

/** Q4_0/Q5_0 (kind 0) or Q4_1/Q5_1 (kind 1) of `bits` with importance weights qw ([K]). */
export function quantizeLegacyIm(kind: i32, bits: i32, x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const nb = nPerRow >> 5;
  const W: usize = kind == 0 ? (bits == 4 ? 18 : 22) : bits == 4 ? 20 : 24;
  for (let r = 0; r < nRows; r++) {
    const xr = x + <usize>r * <usize>nPerRow * 4;
    let s: f32 = 0;
    for (let j = 0; j < nPerRow; j++) {
      const v = f32At(xr, j);
      s += v * v;
    }
    const sigma2: f32 = s / <f32>nPerRow;
    for (let b0 = 0; b0 < nb; b0 += 4) {
      const n = min(4, nb - b0);
      // weights of the (up to) four blocks; missing lanes repeat the last block and are ignored
      for (let k = 0; k < 4; k++) {
        const b = b0 + min(k, n - 1);
        for (let j = 0; j < 32; j++) {
          const v = f32At(xr, 32 * b + j);
          store<f32>(WROW + <usize>(128 * k + 4 * j), f32At(qw, 32 * b + j) * Mathf.sqrt(sigma2 + v * v));
        }
      }
      const p0 = xr + <usize>(b0 + min(0, n - 1)) * 128;
      const p1 = xr + <usize>(b0 + min(1, n - 1)) * 128;
      const p2 = xr + <usize>(b0 + min(2, n - 1)) * 128;
      const p3 = xr + <usize>(b0 + min(3, n - 1)) * 128;
      transpose4(p0, p1, p2, p3, 32, X);
      transpose4(WROW, WROW + 128, WROW + 256, WROW + 384, 32, Wt);
      if (kind == 0) v128.store(SCALES, makeQx4(32, 1 << (bits - 1), X, Wt, Lt, Laux));
      else {
        makeQkx4(32, (1 << bits) - 1, X, Wt, Lt, Laux, -0.9, 0.05, 36, false);
        v128.store(SCALES, qkxScale);
        v128.store(MINS, qkxMin);
      }
      for (let k = 0; k < n; k++) {
        const o = out + <usize>(r * nb + b0 + k) * W;
        laneCodes(Lt, k);
        putF16(o, f32At(SCALES, k));
        if (kind == 0) pack(bits, <usize>(32 * k), o + 2);
        else {
          putF16(o + 2, -f32At(MINS, k));
          pack(bits, <usize>(32 * k), o + 4);
        }
      }
    }
  }
}
