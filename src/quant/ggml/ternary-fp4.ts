// Ternary, binary and FP4 block types, bit-exact with ggml's reference quantizers.
//
//   TQ2_0: 66 bytes/256 = qs[64] (2 bits each) | d f16          y = d·(q − 1), q ∈ {0,1,2}
//   TQ1_0: 54 bytes/256 = qs[48] (5 trits/byte) | qh[4] (4 trits/byte) | d f16
//   Q1_0:  18 bytes/128 = d f16 | qs[16] (1 bit each)            y = bit ? d : −d
//   Q2_0:  18 bytes/64  = d f16 | qs[16] (2 bits each, LSB first) y = d·(q − 1)
//   MXFP4: 17 bytes/32  = e (E8M0) | qs[16] (E2M1 nibbles, j / j+16)   y = 2^(e−128)·kvalues[q]
//   NVFP4: 36 bytes/64  = d[4] (UE4M3 per 16) | qs[32] (nibbles j / j+8 within each 16)
// kvalues (E2M1 ×2) = {0,1,2,3,4,6,8,12, 0,−1,−2,−3,−4,−6,−8,−12}; the doubling is undone by
// decoding the scales at half value (E8M0 "half", UE4M3 × 0.5), as ggml does.
//
// Rounding: TQ and Q2_0 use lroundf (half away from zero) of x/amax (0 where 1/amax overflowed,
// as glibc's lroundf(±Inf) gives LONG_MIN); FP4 picks the table entry
// with the smallest |kvalue·d − x| (the first on ties); Q1_0 keeps the sign (x ≥ 0 → 1) with
// d = mean |x|. None of these quantizers uses the importance matrix (ggml ignores it).
//
// Legend: QK = block size, n = values in the row, W = bytes per block.

import { GgmlCodec, getF16, putF16, cLroundf as cLroundf_ } from './common.js';

// Local bindings: calls through an imported binding can cost a getter per call under some loaders.
const fr = Math.fround;
const lroundf = cLroundf_;

const QK_K = 256;

function amaxOf(x: Float32Array, o: number, n: number): number {
  let a = 0;
  for (let j = 0; j < n; j++) a = Math.max(a, Math.abs(x[o + j]));
  return a;
}

// ---- TQ2_0 ---------------------------------------------------------------------------------

function quantizeRowTq2_0(x: Float32Array, out: Uint8Array): void {
  for (let ib = 0; ib < x.length / QK_K; ib++) {
    const o = ib * QK_K;
    const ob = ib * 66;
    const d = amaxOf(x, o, QK_K);
    const id = d !== 0 ? fr(1 / d) : 0;
    // byte j+m holds elements m + 32n (n = 0..3) of each 128-value half, 2 bits each
    for (let j = 0; j < 64; j += 32) {
      const base = o + (j / 32) * 128;
      for (let m = 0; m < 32; m++) {
        let q = 0;
        for (let n = 0; n < 4; n++) q += ((lroundf(fr(x[base + m + n * 32] * id)) + 1) & 3) << (2 * n);
        out[ob + j + m] = q;
      }
    }
    putF16(out, ob + 64, d);
  }
}

function dequantizeTq2_0(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / QK_K; ib++) {
    const ob = ib * 66;
    const d = getF16(b, ob + 64);
    let y = ib * QK_K;
    for (let j = 0; j < 64; j += 32) {
      for (let l = 0; l < 4; l++) {
        for (let m = 0; m < 32; m++) out[y++] = (((b[ob + j + m] >> (l * 2)) & 3) - 1) * d;
      }
    }
  }
}

// ---- TQ1_0 ---------------------------------------------------------------------------------

/** Pack trits (base-3 digits, first = most significant) into a byte: ceil(q·256/243). */
function packTrits(q: number): number {
  return Math.floor((q * 256 + 242) / 243);
}

function quantizeRowTq1_0(x: Float32Array, out: Uint8Array): void {
  for (let ib = 0; ib < x.length / QK_K; ib++) {
    let o = ib * QK_K;
    const ob = ib * 54;
    const d = amaxOf(x, o, QK_K);
    const id = d !== 0 ? fr(1 / d) : 0;
    const trit = (i: number): number => lroundf(fr(x[i] * id)) + 1;
    // qs[0..32): 5 trits each, elements m + 32n of the first 160 values
    for (let m = 0; m < 32; m++) {
      let q = 0;
      for (let n = 0; n < 5; n++) q = q * 3 + trit(o + m + n * 32);
      out[ob + m] = packTrits(q);
    }
    o += 160;
    // qs[32..48): 5 trits each, elements m + 16n of the next 80 values
    for (let m = 0; m < 16; m++) {
      let q = 0;
      for (let n = 0; n < 5; n++) q = q * 3 + trit(o + m + n * 16);
      out[ob + 32 + m] = packTrits(q);
    }
    o += 80;
    // qh[4]: 4 trits each (elements j + 4m of the last 16), shifted up one trit
    for (let j = 0; j < 4; j++) {
      let q = 0;
      for (let m = 0; m < 4; m++) q = q * 3 + trit(o + j + m * 4);
      out[ob + 48 + j] = packTrits(q * 3);
    }
    putF16(out, ob + 52, d);
  }
}

const POW3 = [1, 3, 9, 27, 81];

/** Trit n of a packed byte: ((uint8)(q·3^n)·3) >> 8. */
function tritOf(byte: number, n: number): number {
  return (((byte * POW3[n]) & 0xff) * 3) >> 8;
}

function dequantizeTq1_0(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / QK_K; ib++) {
    const ob = ib * 54;
    const d = getF16(b, ob + 52);
    let y = ib * QK_K;
    for (let n = 0; n < 5; n++) for (let m = 0; m < 32; m++) out[y++] = (tritOf(b[ob + m], n) - 1) * d;
    for (let n = 0; n < 5; n++) for (let m = 0; m < 16; m++) out[y++] = (tritOf(b[ob + 32 + m], n) - 1) * d;
    for (let n = 0; n < 4; n++) for (let j = 0; j < 4; j++) out[y++] = (tritOf(b[ob + 48 + j], n) - 1) * d;
  }
}

// ---- Q1_0 / Q2_0 ---------------------------------------------------------------------------

function quantizeRowQ1_0(x: Float32Array, out: Uint8Array): void {
  for (let ib = 0; ib < x.length / 128; ib++) {
    const o = ib * 128;
    const ob = ib * 18;
    let sumAbs = 0;
    for (let j = 0; j < 128; j++) sumAbs = fr(sumAbs + Math.abs(x[o + j]));
    putF16(out, ob, fr(sumAbs / 128));
    for (let j = 0; j < 16; j++) out[ob + 2 + j] = 0;
    for (let j = 0; j < 128; j++) if (x[o + j] >= 0) out[ob + 2 + (j >> 3)] |= 1 << (j & 7);
  }
}

function dequantizeQ1_0(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / 128; ib++) {
    const ob = ib * 18;
    const d = getF16(b, ob);
    for (let j = 0; j < 128; j++) out[ib * 128 + j] = (b[ob + 2 + (j >> 3)] >> (j & 7)) & 1 ? d : -d;
  }
}

function quantizeRowQ2_0(x: Float32Array, out: Uint8Array): void {
  for (let ib = 0; ib < x.length / 64; ib++) {
    const o = ib * 64;
    const ob = ib * 18;
    const d = amaxOf(x, o, 64);
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(out, ob, d);
    for (let j = 0; j < 16; j++) out[ob + 2 + j] = 0;
    for (let j = 0; j < 64; j++) {
      const q = (lroundf(fr(x[o + j] * id)) + 1) & 3;
      out[ob + 2 + (j >> 2)] |= q << ((j & 3) * 2);
    }
  }
}

function dequantizeQ2_0(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / 64; ib++) {
    const ob = ib * 18;
    const d = getF16(b, ob);
    for (let j = 0; j < 64; j++) out[ib * 64 + j] = (((b[ob + 2 + (j >> 2)] >> ((j & 3) * 2)) & 3) - 1) * d;
  }
}

// ---- MXFP4 / NVFP4 -------------------------------------------------------------------------

export const KVALUES_FP4 = new Int8Array([0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12]);

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** E8M0 exponent byte → 2^(e−128) (half the E8M0 value; denormal for e < 2), as ggml decodes it. */
export function e8m0Half(e: number): number {
  u32[0] = e < 2 ? 0x00200000 << e : (e - 1) << 23;
  return f32[0];
}

/** UE4M3 byte → value × 0.5 (ggml's ggml_ue4m3_to_fp32). 0 and 0x7F decode to 0. */
export function ue4m3Half(x: number): number {
  if (x === 0 || x === 0x7f) return 0;
  const exp = (x >> 3) & 0xf;
  const man = x & 7;
  const raw = exp === 0 ? man * 2 ** -9 : (1 + man / 8) * 2 ** (exp - 7);
  return fr(raw * 0.5);
}

/** float → UE4M3 byte as ggml_fp32_to_ue4m3: clamp to 448, round half up on the 4th mantissa bit. */
export function toUe4m3(x: number): number {
  if (!(x > 0)) return 0;
  if (x > 448) x = 448;
  f32[0] = x;
  const bits = u32[0];
  let exp = ((bits >>> 23) & 0xff) - 127 + 7;
  if (exp <= 0) {
    const man = Math.trunc(fr(fr(x * 512) + 0.5));
    if (man > 7) return 7;
    return man < 1 ? 0 : man;
  }
  if (exp >= 15) return 0x7e;
  let man = ((bits >>> 20) & 7) + ((bits >>> 19) & 1);
  if (man > 7) {
    man = 0;
    exp++;
    if (exp >= 15) return 0x7e;
  }
  return (exp << 3) | man;
}

/** Index of the kvalue closest to x at scale d (first index on ties), float32 errors. */
function bestIndexFp4(x: number, d: number): number {
  let best = 0;
  let bestErr = Math.abs(fr(fr(KVALUES_FP4[0] * d) - x));
  for (let i = 1; i < 16; i++) {
    const err = Math.abs(fr(fr(KVALUES_FP4[i] * d) - x));
    if (err < bestErr) {
      best = i;
      bestErr = err;
    }
  }
  return best;
}

function quantizeRowMxfp4(x: Float32Array, out: Uint8Array): void {
  for (let ib = 0; ib < x.length / 32; ib++) {
    const o = ib * 32;
    const ob = ib * 17;
    const amax = amaxOf(x, o, 32);
    // floorf(log2f(amax)): log2 is rounded to float32 first, as log2f returns a float
    const e = amax > 0 ? (Math.floor(fr(Math.log2(amax))) - 2 + 127) & 0xff : 0;
    const d = e8m0Half(e);
    out[ob] = e;
    for (let j = 0; j < 16; j++) {
      out[ob + 1 + j] = bestIndexFp4(x[o + j], d) | (bestIndexFp4(x[o + 16 + j], d) << 4);
    }
  }
}

function dequantizeMxfp4(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / 32; ib++) {
    const ob = ib * 17;
    const d = e8m0Half(b[ob]);
    for (let j = 0; j < 16; j++) {
      out[ib * 32 + j] = KVALUES_FP4[b[ob + 1 + j] & 15] * d;
      out[ib * 32 + 16 + j] = KVALUES_FP4[b[ob + 1 + j] >> 4] * d;
    }
  }
}

function quantizeRowNvfp4(x: Float32Array, out: Uint8Array): void {
  for (let ib = 0; ib < x.length / 64; ib++) {
    const ob = ib * 36;
    for (let s = 0; s < 4; s++) {
      const o = ib * 64 + s * 16;
      const ue = toUe4m3(fr(amaxOf(x, o, 16) / 6));
      out[ob + s] = ue;
      const d = ue4m3Half(ue);
      for (let j = 0; j < 8; j++) {
        out[ob + 4 + s * 8 + j] = bestIndexFp4(x[o + j], d) | (bestIndexFp4(x[o + 8 + j], d) << 4);
      }
    }
  }
}

function dequantizeNvfp4(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / 64; ib++) {
    const ob = ib * 36;
    for (let s = 0; s < 4; s++) {
      const d = ue4m3Half(b[ob + s]);
      const y = ib * 64 + s * 16;
      for (let j = 0; j < 8; j++) {
        const byte = b[ob + 4 + s * 8 + j];
        out[y + j] = KVALUES_FP4[byte & 15] * d;
        out[y + 8 + j] = KVALUES_FP4[byte >> 4] * d;
      }
    }
  }
}

const codec = (
  blockSize: number,
  typeSize: number,
  quantizeRow: (x: Float32Array, out: Uint8Array) => void,
  dequantize: (b: Uint8Array, out: Float32Array) => void,
): GgmlCodec => ({ blockSize, typeSize, needsImatrix: false, quantizeRow, dequantize });

export const TERNARY_FP4_CODECS = {
  TQ1_0: codec(256, 54, quantizeRowTq1_0, dequantizeTq1_0),
  TQ2_0: codec(256, 66, quantizeRowTq2_0, dequantizeTq2_0),
  Q1_0: codec(128, 18, quantizeRowQ1_0, dequantizeQ1_0),
  Q2_0: codec(64, 18, quantizeRowQ2_0, dequantizeQ2_0),
  MXFP4: codec(32, 17, quantizeRowMxfp4, dequantizeMxfp4),
  NVFP4: codec(64, 36, quantizeRowNvfp4, dequantizeNvfp4),
} satisfies Record<string, GgmlCodec>;
