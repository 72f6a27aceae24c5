// Q2_K, Q3_K and Q6_K super-blocks (256 values in 16 groups of 16), bit-exact with ggml.
//
//   Q2_K: 84 bytes  = scales[16] (low nibble: scale, high: min) | qs[64] | d f16 | dmin f16
//         y = d·sc·q − dmin·m, q ∈ 0..3
//   Q3_K: 110 bytes = hmask[32] | qs[64] (low 2 bits) | scales[12] (16 × 6 bits) | d f16
//         y = d·(sc − 32)·(q − 4), q = low 2 bits + 4·hbit
//   Q6_K: 210 bytes = ql[128] (low 4 bits) | qh[64] (high 2 bits) | int8 scales[16] | d f16
//         y = d·sc·(q − 32)
// 2-bit packing (Q2_K/Q3_K qs, Q6_K qh): within each 128-value half, byte l holds elements
// l, l+32, l+64, l+96 at bit offsets 0, 2, 4, 6. Q3_K hmask bit b of byte m is element m + 32b.
//
// Each quantizer is split the way the GPTQ hook needs it: params (sub-scales from data, the
// scale search of REFERENCE §6.2–6.3) → codes given the fp16-rounded scales → encode.
// Legend: S = 16 groups per super-block, G = 16 values per group, x[o..o+256).

import { GgmlCodec, getF16, putF16, GROUP_MAX_EPS, nearestInt as nearestInt_ } from './common.js';
import { makeQ3Quants, makeQkxQuants, makeQpQuants, makeQxQuants } from './scale-search.js';

// Local bindings: calls through an imported binding can cost a getter per call under some loaders.
const fr = Math.fround;
const nearestInt = nearestInt_;

const QK_K = 256;
const F_M0_5 = fr(-0.5);
const F_0_1 = fr(0.1);
const F_M0_9 = fr(-0.9);
const F_0_05 = fr(0.05);

/** Scales of one super-block: d/dmin as stored (fp16-rounded) and 16 integer sub-scales/mins. */
export interface KGroupScales {
  d: number;
  dmin: number;
  /** [16] Q2_K: 0..15; Q3_K: 0..63 (offset 32); Q6_K: −128..127 */
  sc: Int16Array;
  /** [16] Q2_K mins 0..15 (unused otherwise) */
  mn: Int16Array;
}

const newScales = (): KGroupScales => ({ d: 0, dmin: 0, sc: new Int16Array(16), mn: new Int16Array(16) });

function pack2bit(L: Uint8Array, out: Uint8Array, o: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    for (let l = 0; l < 32; l++) {
      out[o + j / 4 + l] = L[j + l] | (L[j + l + 32] << 2) | (L[j + l + 64] << 4) | (L[j + l + 96] << 6);
    }
  }
}

function sumSquares(x: Float32Array, o: number, n: number): number {
  let s = 0;
  for (let j = 0; j < n; j++) s = fr(s + fr(x[o + j] * x[o + j]));
  return s;
}

// ---- Q2_K ----------------------------------------------------------------------------------

/**
 * Q2_K params for the super-block at x[o..]: per-group (scale, min) fits, then the 4-bit
 * sub-scales. L ([256]) receives the search's levels (kept where a group's scale rounds to 0).
 */
export function q2_KParams(x: Float32Array, o: number, qw: Float32Array | undefined, L: Uint8Array): KGroupScales {
  const r = newScales();
  const scales = new Float32Array(16);
  const mins = new Float32Array(16);
  const w = new Float32Array(16);
  const Laux = new Uint8Array(16);
  const Lg = new Uint8Array(16);
  if (qw) {
    const sigma2 = fr(sumSquares(x, o, QK_K) / QK_K);
    const sw = new Float32Array(16);
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) {
        const v = x[o + 16 * j + l];
        w[l] = fr(qw[o + 16 * j + l] * fr(Math.sqrt(fr(sigma2 + fr(v * v)))));
        sw[j] = fr(sw[j] + w[l]);
      }
      const f = makeQkxQuants(16, 3, x, w, Lg, Laux, F_M0_9, F_0_05, 36, false, o + 16 * j, 0);
      scales[j] = f.scale;
      mins[j] = f.min;
      L.set(Lg, 16 * j);
    }
    const Ls = new Uint8Array(16);
    const Lm = new Uint8Array(16);
    r.d = fr(makeQpQuants(16, 15, scales, Ls, sw));
    r.dmin = fr(makeQpQuants(16, 15, mins, Lm, sw));
    for (let j = 0; j < 16; j++) {
      r.sc[j] = Ls[j];
      r.mn[j] = Lm[j];
    }
  } else {
    let maxScale = 0;
    let maxMin = 0;
    for (let j = 0; j < 16; j++) {
      for (let l = 0; l < 16; l++) w[l] = Math.abs(x[o + 16 * j + l]);
      const f = makeQkxQuants(16, 3, x, w, Lg, Laux, F_M0_5, F_0_1, 15, true, o + 16 * j, 0);
      scales[j] = f.scale;
      mins[j] = f.min;
      L.set(Lg, 16 * j);
      if (f.scale > maxScale) maxScale = f.scale;
      if (f.min > maxMin) maxMin = f.min;
    }
    if (maxScale > 0) {
      const iscale = fr(15 / maxScale);
      for (let j = 0; j < 16; j++) r.sc[j] = nearestInt(fr(iscale * scales[j]));
      r.d = fr(maxScale / 15);
    }
    if (maxMin > 0) {
      const iscale = fr(15 / maxMin);
      for (let j = 0; j < 16; j++) r.mn[j] = nearestInt(fr(iscale * mins[j]));
      r.dmin = fr(maxMin / 15);
    }
  }
  return r;
}

/** Q2_K codes given the (fp16-rounded) scales: q = clamp(round((x + dmin·m)/(d·sc)), 0, 3). */
export function q2_KCodes(x: Float32Array, o: number, s: KGroupScales, L: Uint8Array): void {
  for (let j = 0; j < 16; j++) {
    const d = fr(s.d * (s.sc[j] & 15));
    if (d === 0) continue; // C: !d is false for NaN (Inf·0), which then codes as 0
    const dm = fr(s.dmin * (s.mn[j] & 15));
    for (let i = 0; i < 16; i++) {
      L[16 * j + i] = Math.max(0, Math.min(3, nearestInt(fr(fr(x[o + 16 * j + i] + dm) / d))));
    }
  }
}

/** Round d/dmin to fp16 in place (what the block stores) and write the 84-byte block. */
export function q2_KEncode(L: Uint8Array, s: KGroupScales, out: Uint8Array, ob: number): void {
  for (let j = 0; j < 16; j++) out[ob + j] = ((s.sc[j] & 0xff) | (s.mn[j] << 4)) & 0xff;
  pack2bit(L, out, ob + 16);
  putF16(out, ob + 80, s.d);
  putF16(out, ob + 82, s.dmin);
}

function quantizeRowQ2_K(x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const L = new Uint8Array(QK_K);
  for (let ib = 0; ib < x.length / QK_K; ib++) {
    const o = ib * QK_K;
    const s = q2_KParams(x, o, qw, L);
    // codes use the stored (fp16) d and dmin
    const stored = { ...s, d: getF16Value(s.d), dmin: getF16Value(s.dmin) };
    q2_KCodes(x, o, stored, L);
    q2_KEncode(L, s, out, ib * 84);
  }
}

function dequantizeQ2_K(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / QK_K; ib++) {
    const ob = ib * 84;
    const d = getF16(b, ob + 80);
    const min = getF16(b, ob + 82);
    let y = ib * QK_K;
    let is = 0;
    for (let n = 0; n < 2; n++) {
      const q = ob + 16 + 32 * n;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const sc = b[ob + is++];
          const dl = fr(d * (sc & 15));
          const ml = fr(min * (sc >> 4));
          for (let l = 0; l < 16; l++) out[y++] = fr(dl * ((b[q + 16 * half + l] >> shift) & 3)) - ml;
        }
      }
    }
  }
}

// ---- Q3_K ----------------------------------------------------------------------------------

/** Q3_K params: group scales by make_q3_quants (or weighted make_qx_quants), 6-bit sub-scales. */
export function q3_KParams(x: Float32Array, o: number, qw: Float32Array | undefined, L: Uint8Array): KGroupScales {
  const r = newScales();
  const scales = new Float32Array(16);
  const Lg = new Int8Array(16);
  if (qw) {
    const sigma2 = fr(fr(2 * sumSquares(x, o, QK_K)) / QK_K);
    const w = new Float32Array(16);
    const sw = new Float32Array(16);
    for (let j = 0; j < 16; j++) {
      let sumw = 0;
      for (let l = 0; l < 16; l++) {
        const v = x[o + 16 * j + l];
        w[l] = fr(qw[o + 16 * j + l] * fr(Math.sqrt(fr(sigma2 + fr(v * v)))));
        sumw = fr(sumw + w[l]);
      }
      sw[j] = sumw;
      scales[j] = makeQxQuants(16, 4, x, Lg, 1, w, o + 16 * j, 0);
      for (let l = 0; l < 16; l++) L[16 * j + l] = Lg[l];
    }
    const Ls = new Int8Array(16);
    r.d = fr(makeQxQuants(16, 32, scales, Ls, 1, sw));
    for (let j = 0; j < 16; j++) r.sc[j] = Ls[j];
    return r;
  }
  let maxScale = 0;
  let amax = 0;
  for (let j = 0; j < 16; j++) {
    scales[j] = makeQ3Quants(16, 4, x, o + 16 * j, Lg);
    for (let l = 0; l < 16; l++) L[16 * j + l] = Lg[l];
    if (Math.abs(scales[j]) > amax) {
      amax = Math.abs(scales[j]);
      maxScale = scales[j];
    }
  }
  if (maxScale) {
    const iscale = fr(-32 / maxScale);
    // (int8_t) of nearest_int, then clamp to −32..31 and offset by 32
    for (let j = 0; j < 16; j++) r.sc[j] = Math.max(-32, Math.min(31, (nearestInt(fr(iscale * scales[j])) << 24) >> 24)) + 32;
    r.d = fr(1 / iscale);
  }
  return r;
}

/** Q3_K codes given fp16 d and sub-scales: q = clamp(round(x/(d·(sc−32))), −4, 3) + 4. */
export function q3_KCodes(x: Float32Array, o: number, s: KGroupScales, L: Uint8Array): void {
  for (let j = 0; j < 16; j++) {
    const d = fr(s.d * (s.sc[j] - 32));
    if (d === 0) continue; // C: !d is false for NaN (Inf·0), which then codes as 0
    for (let i = 0; i < 16; i++) {
      L[16 * j + i] = Math.max(-4, Math.min(3, nearestInt(fr(x[o + 16 * j + i] / d)))) + 4;
    }
  }
}

export function q3_KEncode(L: Uint8Array, s: KGroupScales, out: Uint8Array, ob: number): void {
  out.fill(0, ob, ob + 110);
  const sc = ob + 96;
  for (let j = 0; j < 16; j++) {
    const l = s.sc[j];
    if (j < 8) out[sc + j] = l & 15;
    else out[sc + j - 8] |= (l & 15) << 4;
    out[sc + 8 + (j % 4)] |= (l >> 4) << (2 * (j >> 2));
  }
  putF16(out, ob + 108, s.d);
  const low = new Uint8Array(QK_K);
  for (let j = 0; j < QK_K; j++) {
    let l = L[j];
    if (l > 3) {
      out[ob + (j % 32)] |= 1 << (j >> 5);
      l -= 4;
    }
    low[j] = l;
  }
  pack2bit(low, out, ob + 32);
}

function quantizeRowQ3_K(x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const L = new Uint8Array(QK_K);
  for (let ib = 0; ib < x.length / QK_K; ib++) {
    const o = ib * QK_K;
    const s = q3_KParams(x, o, qw, L);
    q3_KCodes(x, o, { ...s, d: getF16Value(s.d) }, L);
    q3_KEncode(L, s, out, ib * 110);
  }
}

function q3_KSubScale(b: Uint8Array, sc: number, j: number): number {
  const low = j < 8 ? b[sc + j] & 15 : b[sc + j - 8] >> 4;
  return (low | (((b[sc + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

function dequantizeQ3_K(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / QK_K; ib++) {
    const ob = ib * 110;
    const dAll = getF16(b, ob + 108);
    let y = ib * QK_K;
    let is = 0;
    let m = 1;
    for (let n = 0; n < 2; n++) {
      const q = ob + 32 + 32 * n;
      for (let shift = 0; shift < 8; shift += 2) {
        for (let half = 0; half < 2; half++) {
          const dl = fr(dAll * q3_KSubScale(b, ob + 96, is++));
          for (let l = 0; l < 16; l++) {
            const k = 16 * half + l;
            out[y++] = dl * (((b[q + k] >> shift) & 3) - (b[ob + k] & m ? 0 : 4));
          }
        }
        m <<= 1;
      }
    }
  }
}

// ---- Q6_K ----------------------------------------------------------------------------------

/** Q6_K params: per-group make_qx_quants(16, 32) (qw used directly), int8 sub-scales. */
export function q6_KParams(x: Float32Array, o: number, qw: Float32Array | undefined, L: Uint8Array): KGroupScales {
  const r = newScales();
  const scales = new Float32Array(16);
  const Lg = new Int8Array(16);
  let maxScale = 0;
  let maxAbs = 0;
  for (let ib = 0; ib < 16; ib++) {
    const w = qw ? qw.subarray(o + 16 * ib, o + 16 * ib + 16) : undefined;
    scales[ib] = makeQxQuants(16, 32, x, Lg, 1, w, o + 16 * ib, 0);
    for (let l = 0; l < 16; l++) L[16 * ib + l] = Lg[l];
    if (Math.abs(scales[ib]) > maxAbs) {
      maxAbs = Math.abs(scales[ib]);
      maxScale = scales[ib];
    }
  }
  if (maxAbs < GROUP_MAX_EPS) return r; // ggml zeroes the whole block
  const iscale = fr(-128 / maxScale);
  r.d = fr(1 / iscale);
  for (let ib = 0; ib < 16; ib++) r.sc[ib] = (Math.min(127, nearestInt(fr(iscale * scales[ib]))) << 24) >> 24;
  return r;
}

/** Q6_K codes given fp16 d and int8 sub-scales: q = clamp(round(x/(d·sc)), −32, 31) + 32. */
export function q6_KCodes(x: Float32Array, o: number, s: KGroupScales, L: Uint8Array): void {
  if (s.d === 0 && s.sc.every((v) => v === 0)) {
    L.fill(0);
    return;
  }
  for (let j = 0; j < 16; j++) {
    const d = fr(s.d * s.sc[j]);
    if (d === 0) continue; // C: !d is false for NaN (Inf·0), which then codes as 0
    for (let i = 0; i < 16; i++) {
      L[16 * j + i] = Math.max(-32, Math.min(31, nearestInt(fr(x[o + 16 * j + i] / d)))) + 32;
    }
  }
}

export function q6_KEncode(L: Uint8Array, s: KGroupScales, out: Uint8Array, ob: number): void {
  for (let j = 0; j < QK_K; j += 128) {
    const ql = ob + j / 2;
    const qh = ob + 128 + j / 4;
    for (let l = 0; l < 32; l++) {
      const a = L[j + l];
      const b = L[j + l + 32];
      const c = L[j + l + 64];
      const e = L[j + l + 96];
      out[ql + l] = (a & 15) | ((c & 15) << 4);
      out[ql + l + 32] = (b & 15) | ((e & 15) << 4);
      out[qh + l] = (a >> 4) | ((b >> 4) << 2) | ((c >> 4) << 4) | ((e >> 4) << 6);
    }
  }
  for (let j = 0; j < 16; j++) out[ob + 192 + j] = s.sc[j] & 0xff;
  putF16(out, ob + 208, s.d);
}

function quantizeRowQ6_K(x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const L = new Uint8Array(QK_K);
  for (let ib = 0; ib < x.length / QK_K; ib++) {
    const o = ib * QK_K;
    const s = q6_KParams(x, o, qw, L);
    q6_KCodes(x, o, { ...s, d: getF16Value(s.d) }, L);
    q6_KEncode(L, s, out, ib * 210);
  }
}

function dequantizeQ6_K(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / QK_K; ib++) {
    const ob = ib * 210;
    const d = getF16(b, ob + 208);
    for (let n = 0; n < 2; n++) {
      const ql = ob + 64 * n;
      const qh = ob + 128 + 32 * n;
      const sc = ob + 192 + 8 * n;
      const y = ib * QK_K + 128 * n;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = b[qh + l];
        const q1 = ((b[ql + l] & 15) | ((h & 3) << 4)) - 32;
        const q2 = ((b[ql + l + 32] & 15) | (((h >> 2) & 3) << 4)) - 32;
        const q3 = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) - 32;
        const q4 = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) - 32;
        // (d·sc)·q, as ggml evaluates d * sc[is] * q left to right
        out[y + l] = fr(d * ((b[sc + is] << 24) >> 24)) * q1;
        out[y + l + 32] = fr(d * ((b[sc + is + 2] << 24) >> 24)) * q2;
        out[y + l + 64] = fr(d * ((b[sc + is + 4] << 24) >> 24)) * q3;
        out[y + l + 96] = fr(d * ((b[sc + is + 6] << 24) >> 24)) * q4;
      }
    }
  }
}

const f16buf = new Uint8Array(2);
/** The value an fp16 field holds after storing x (round-to-nearest-even). */
export function getF16Value(x: number): number {
  return putF16(f16buf, 0, x);
}

export const KQUANT_236_CODECS = {
  Q2_K: { blockSize: 256, typeSize: 84, needsImatrix: false, quantizeRow: quantizeRowQ2_K, dequantize: dequantizeQ2_K },
  Q3_K: { blockSize: 256, typeSize: 110, needsImatrix: false, quantizeRow: quantizeRowQ3_K, dequantize: dequantizeQ3_K },
  Q6_K: { blockSize: 256, typeSize: 210, needsImatrix: false, quantizeRow: quantizeRowQ6_K, dequantize: dequantizeQ6_K },
} satisfies Record<string, GgmlCodec>;
