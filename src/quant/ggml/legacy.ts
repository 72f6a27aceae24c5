// The legacy 32-value block types, bit-exact with ggml's reference quantizers.
//
//   Q4_0: 18 bytes = d f16 | qs[16]    q ∈ 0..15, y = d·(q − 8)
//   Q4_1: 20 bytes = d f16, m f16 | qs[16]    y = d·q + m
//   Q5_0: 22 bytes = d f16 | qh u32 (5th bits) | qs[16]    y = d·(q − 16)
//   Q5_1: 24 bytes = d f16, m f16 | qh u32 | qs[16]    y = d·q + m
//   Q8_0: 34 bytes = d f16 | int8 qs[32]    y = d·q
// Nibble packing: byte j holds element j in the low nibble and element j+16 in the high nibble.
// qh bit j is the 5th bit of element j (j = 0..31).
//
// Rounding (per ggml): Q4_0/Q5_0 truncate x·id + 8.5 (+16.5); Q4_1/Q5_1 truncate (x−min)·id + 0.5;
// Q8_0 uses roundf (half away from zero). `id = 1/d` is computed from the float32 d before d is
// rounded to fp16. With an importance matrix (qw), Q4_0/Q5_0 use make_qx_quants and Q4_1/Q5_1
// make_qkx3_quants with weights qw·√(σ² + x²), σ² = mean x² over the row; Q8_0 ignores qw.
//
// Legend: QK = 32 values per block, n = values in the row, nb = n/QK blocks.

import { GgmlCodec, cInt8, getF16, putF16, roundAway as roundAway_ } from './common.js';
import { makeQkxQuants, makeQxQuants } from './scale-search.js';

// Local bindings: calls through an imported binding can cost a getter per call under some loaders.
const fr = Math.fround;
const roundAway = roundAway_;

const QK = 32;

/** Signed element of largest magnitude in x[o..o+n) (the first one on ties), as ggml picks it. */
export function signedAbsMax(x: Float32Array, o: number, n: number): number {
  let amax = 0;
  let max = 0;
  for (let j = 0; j < n; j++) {
    const v = x[o + j];
    const a = Math.abs(v);
    if (amax < a) {
      amax = a;
      max = v;
    }
  }
  return max;
}

function rowSigma2(x: Float32Array): number {
  let s = 0;
  for (let j = 0; j < x.length; j++) s = fr(s + fr(x[j] * x[j]));
  return fr(s / x.length);
}

/** weight[j] = qw[j]·√(σ² + x[j]²) for one block (ggml's imatrix weighting of the legacy types). */
function blockWeights(x: Float32Array, o: number, qw: Float32Array, sigma2: number, w: Float32Array): void {
  for (let j = 0; j < w.length; j++) {
    const v = x[o + j];
    w[j] = fr(qw[o + j] * fr(Math.sqrt(fr(sigma2 + fr(v * v)))));
  }
}

function packNibbles(L: Uint8Array | Int8Array, out: Uint8Array, o: number): void {
  for (let j = 0; j < 16; j++) out[o + j] = (L[j] & 15) | ((L[j + 16] & 15) << 4);
}

function packQh(L: Uint8Array | Int8Array, out: Uint8Array, o: number): void {
  let qh = 0;
  for (let j = 0; j < 32; j++) qh |= ((L[j] >> 4) & 1) << j;
  out[o] = qh & 0xff;
  out[o + 1] = (qh >>> 8) & 0xff;
  out[o + 2] = (qh >>> 16) & 0xff;
  out[o + 3] = (qh >>> 24) & 0xff;
}

// ---- Q8_0 ----------------------------------------------------------------------------------

/** Q8_0 block scale: d = amax/127 (float32, before fp16 rounding). */
export function q8_0Scale(x: Float32Array, o: number): number {
  let amax = 0;
  for (let j = 0; j < QK; j++) amax = Math.max(amax, Math.abs(x[o + j]));
  return fr(amax / 127);
}

function quantizeRowQ8_0(x: Float32Array, out: Uint8Array): void {
  const nb = x.length / QK;
  for (let ib = 0; ib < nb; ib++) {
    const o = ib * QK;
    const ob = ib * 34;
    const d = q8_0Scale(x, o);
    const id = d !== 0 ? fr(1 / d) : 0;
    putF16(out, ob, d);
    for (let j = 0; j < QK; j++) out[ob + 2 + j] = roundAway(fr(x[o + j] * id)) & 0xff;
  }
}

function dequantizeQ8_0(b: Uint8Array, out: Float32Array): void {
  const nb = out.length / QK;
  for (let ib = 0; ib < nb; ib++) {
    const ob = ib * 34;
    const d = getF16(b, ob);
    for (let j = 0; j < QK; j++) out[ib * QK + j] = ((b[ob + 2 + j] << 24) >> 24) * d;
  }
}

// ---- Q4_0 / Q5_0 (symmetric, signed max) ---------------------------------------------------

/** Q4_0 (bits=4) / Q5_0 (bits=5) block scale from data: d = max/−2^(bits−1). */
export function qx_0Scale(bits: 4 | 5, x: Float32Array, o: number): number {
  return fr(signedAbsMax(x, o, QK) / -(1 << (bits - 1)));
}

/**
 * Codes of one Q4_0/Q5_0 block given the float32 scale d (what ggml does after choosing d):
 * q = min(2^bits − 1, (int8_t)(x·(1/d) + 2^(bits−1) + 0.5)). Writes L[0..32).
 */
export function qx_0Codes(bits: 4 | 5, x: Float32Array, o: number, d: number, L: Uint8Array): void {
  const id = d !== 0 ? fr(1 / d) : 0;
  const off = bits === 4 ? 8.5 : 16.5;
  const qmax = (1 << bits) - 1;
  for (let j = 0; j < QK; j++) {
    // a value in [0.5, 2^bits + 0.5] truncates; on a subnormal block 1/d is Inf and the cast gives 0
    const q = cInt8(fr(fr(x[o + j] * id) + off));
    L[j] = q < qmax ? q : qmax;
  }
}

/** Encode one Q4_0/Q5_0 block (codes 0..2^bits−1 and scale d) at out[ob..]. */
export function qx_0Encode(bits: 4 | 5, L: Uint8Array, d: number, out: Uint8Array, ob: number): void {
  putF16(out, ob, d);
  if (bits === 4) packNibbles(L, out, ob + 2);
  else {
    packQh(L, out, ob + 2);
    packNibbles(L, out, ob + 6);
  }
}

function quantizeRowQx_0(bits: 4 | 5, x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const nb = x.length / QK;
  const W = bits === 4 ? 18 : 22;
  const L = new Uint8Array(QK);
  const Ls = new Int8Array(QK);
  const w = new Float32Array(QK);
  const sigma2 = qw ? rowSigma2(x) : 0;
  for (let ib = 0; ib < nb; ib++) {
    const o = ib * QK;
    let d: number;
    if (qw) {
      blockWeights(x, o, qw, sigma2, w);
      d = makeQxQuants(QK, 1 << (bits - 1), x, Ls, 1, w, o, 0);
      for (let j = 0; j < QK; j++) L[j] = Ls[j];
    } else {
      d = qx_0Scale(bits, x, o);
      qx_0Codes(bits, x, o, d, L);
    }
    qx_0Encode(bits, L, d, out, ib * W);
  }
}

function dequantizeQx_0(bits: 4 | 5, b: Uint8Array, out: Float32Array): void {
  const nb = out.length / QK;
  const W = bits === 4 ? 18 : 22;
  const qsOff = bits === 4 ? 2 : 6;
  const bias = 1 << (bits - 1);
  for (let ib = 0; ib < nb; ib++) {
    const ob = ib * W;
    const d = getF16(b, ob);
    const qh = bits === 5 ? b[ob + 2] | (b[ob + 3] << 8) | (b[ob + 4] << 16) | (b[ob + 5] << 24) : 0;
    for (let j = 0; j < 16; j++) {
      const byte = b[ob + qsOff + j];
      const h0 = ((qh >>> j) & 1) << 4;
      const h1 = ((qh >>> (j + 16)) & 1) << 4;
      out[ib * QK + j] = fr(((byte & 15) + h0 - bias) * d);
      out[ib * QK + j + 16] = fr(((byte >> 4) + h1 - bias) * d);
    }
  }
}

// ---- Q4_1 / Q5_1 (scale + min) -------------------------------------------------------------

/** Q4_1/Q5_1 block parameters from data: d = (max − min)/(2^bits − 1), m = min (float32). */
export function qx_1Params(bits: 4 | 5, x: Float32Array, o: number): { d: number; m: number } {
  let min = Infinity;
  let max = -Infinity;
  for (let j = 0; j < QK; j++) {
    const v = x[o + j];
    if (v < min) min = v;
    if (v > max) max = v;
  }
  return { d: fr(fr(max - min) / ((1 << bits) - 1)), m: min };
}

/**
 * Codes of one Q4_1/Q5_1 block given d and m: Q4_1 q = min(15, (int8_t)((x − m)·(1/d) + 0.5)),
 * Q5_1 q = (uint8_t)(…) (both casts as cInt8: 0 where 1/d overflowed on a subnormal block).
 */
export function qx_1Codes(bits: 4 | 5, x: Float32Array, o: number, d: number, m: number, L: Uint8Array): void {
  const id = d !== 0 ? fr(1 / d) : 0;
  for (let j = 0; j < QK; j++) {
    const q = cInt8(fr(fr(fr(x[o + j] - m) * id) + 0.5));
    L[j] = bits === 4 ? Math.min(15, q) & 0xff : q & 0xff;
  }
}

/** Encode one Q4_1/Q5_1 block at out[ob..]. */
export function qx_1Encode(bits: 4 | 5, L: Uint8Array, d: number, m: number, out: Uint8Array, ob: number): void {
  putF16(out, ob, d);
  putF16(out, ob + 2, m);
  if (bits === 4) packNibbles(L, out, ob + 4);
  else {
    packQh(L, out, ob + 4);
    packNibbles(L, out, ob + 8);
  }
}

const F_M0_9 = fr(-0.9);
const F_0_05 = fr(0.05);

function quantizeRowQx_1(bits: 4 | 5, x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const nb = x.length / QK;
  const W = bits === 4 ? 20 : 24;
  const L = new Uint8Array(QK);
  const Laux = new Uint8Array(QK);
  const w = new Float32Array(QK);
  const sigma2 = qw ? rowSigma2(x) : 0;
  for (let ib = 0; ib < nb; ib++) {
    const o = ib * QK;
    if (qw) {
      blockWeights(x, o, qw, sigma2, w);
      const r = makeQkxQuants(QK, (1 << bits) - 1, x, w, L, Laux, F_M0_9, F_0_05, 36, false, o, 0);
      qx_1Encode(bits, L, r.scale, -r.min, out, ib * W);
    } else {
      const { d, m } = qx_1Params(bits, x, o);
      qx_1Codes(bits, x, o, d, m, L);
      qx_1Encode(bits, L, d, m, out, ib * W);
    }
  }
}

function dequantizeQx_1(bits: 4 | 5, b: Uint8Array, out: Float32Array): void {
  const nb = out.length / QK;
  const W = bits === 4 ? 20 : 24;
  const qsOff = bits === 4 ? 4 : 8;
  for (let ib = 0; ib < nb; ib++) {
    const ob = ib * W;
    const d = getF16(b, ob);
    const m = getF16(b, ob + 2);
    const qh = bits === 5 ? b[ob + 4] | (b[ob + 5] << 8) | (b[ob + 6] << 16) | (b[ob + 7] << 24) : 0;
    for (let j = 0; j < 16; j++) {
      const byte = b[ob + qsOff + j];
      const q0 = (byte & 15) | (((qh >>> j) & 1) << 4);
      const q1 = (byte >> 4) | (((qh >>> (j + 16)) & 1) << 4);
      out[ib * QK + j] = fr(fr(q0 * d) + m);
      out[ib * QK + j + 16] = fr(fr(q1 * d) + m);
    }
  }
}

export const LEGACY_CODECS = {
  Q4_0: {
    blockSize: 32,
    typeSize: 18,
    needsImatrix: false,
    quantizeRow: (x, out, qw) => quantizeRowQx_0(4, x, out, qw),
    dequantize: (b, out) => dequantizeQx_0(4, b, out),
  },
  Q5_0: {
    blockSize: 32,
    typeSize: 22,
    needsImatrix: false,
    quantizeRow: (x, out, qw) => quantizeRowQx_0(5, x, out, qw),
    dequantize: (b, out) => dequantizeQx_0(5, b, out),
  },
  Q4_1: {
    blockSize: 32,
    typeSize: 20,
    needsImatrix: false,
    quantizeRow: (x, out, qw) => quantizeRowQx_1(4, x, out, qw),
    dequantize: (b, out) => dequantizeQx_1(4, b, out),
  },
  Q5_1: {
    blockSize: 32,
    typeSize: 24,
    needsImatrix: false,
    quantizeRow: (x, out, qw) => quantizeRowQx_1(5, x, out, qw),
    dequantize: (b, out) => dequantizeQx_1(5, b, out),
  },
  Q8_0: {
    blockSize: 32,
    typeSize: 34,
    needsImatrix: false,
    quantizeRow: (x, out) => quantizeRowQ8_0(x, out),
    dequantize: dequantizeQ8_0,
  },
} satisfies Record<string, GgmlCodec>;
