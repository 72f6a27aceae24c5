// Q4_K and Q5_K super-blocks (256 values in 8 groups of 32), bit-exact with ggml.
//
//   Q4_K: 144 bytes = d f16 | dmin f16 | scales[12] | qs[128]
//   Q5_K: 176 bytes = d f16 | dmin f16 | scales[12] | qh[32] | qs[128]
//   y = d·sc·q − dmin·m, q ∈ 0..15 (Q4_K) or 0..31 (Q5_K); sc, m ∈ 0..63.
// scales[12] holds 8 six-bit scales and 8 six-bit mins: groups 0..3 in the low 6 bits of bytes
// 0..3 (scales) and 4..7 (mins); groups 4..7 in the nibbles of bytes 8..11 with their top 2 bits
// in the high 2 bits of bytes 0..3 (scales) and 4..7 (mins).
// qs: for each 64 values, byte l holds element l (low nibble) and l+32 (high nibble).
// Q5_K qh: bit 2k of byte l is the 5th bit of element 64k + l, bit 2k+1 of element 64k + 32 + l.
//
// Scale search (REFERENCE §6.2–6.3): without imatrix, make_qkx2_quants with weights av_x + |x|
// (av_x = RMS of the group) and the sub-scales rounded at 63/max; with imatrix,
// make_qkx3_quants with weights qw·√(σ² + x²), σ² = 2·Σx²/256, and make_qp_quants on the
// sub-scales and mins weighted by the group weight sums.
// Legend: G = 32 values per group, 8 groups per super-block at x[o..o+256).

import { GgmlCodec, getF16, putF16, nearestInt as nearestInt_ } from './common.js';
import { makeQkxQuants, makeQpQuants } from './scale-search.js';
import { getF16Value } from './kquants-q2-q3-q6.js';

// Local bindings: calls through an imported binding can cost a getter per call under some loaders.
const fr = Math.fround;
const nearestInt = nearestInt_;

const QK_K = 256;
const F_M1 = -1;
const F_M0_5 = fr(-0.5);
const F_0_1 = fr(0.1);
const F_M0_9 = fr(-0.9);
const F_0_05 = fr(0.05);

/** Super-block scales: d/dmin (float32, rounded to fp16 when stored) and 6-bit sub-scales/mins. */
export interface K45Scales {
  d: number;
  dmin: number;
  /** [8] 0..63 */
  sc: Uint8Array;
  /** [8] 0..63 */
  mn: Uint8Array;
}

/**
 * Q4_K (nmax = 15) / Q5_K (nmax = 31) params for the super-block at x[o..]. L ([256]) receives
 * the search levels, which ggml keeps for a group whose rounded scale is 0.
 */
export function k45Params(nmax: 15 | 31, x: Float32Array, o: number, qw: Float32Array | undefined, L: Uint8Array): K45Scales {
  const r: K45Scales = { d: 0, dmin: 0, sc: new Uint8Array(8), mn: new Uint8Array(8) };
  const scales = new Float32Array(8);
  const mins = new Float32Array(8);
  const w = new Float32Array(32);
  const Lg = new Uint8Array(32);
  const Laux = new Uint8Array(32);
  if (qw) {
    let sumX2 = 0;
    for (let l = 0; l < QK_K; l++) sumX2 = fr(sumX2 + fr(x[o + l] * x[o + l]));
    const sigma2 = fr(fr(2 * sumX2) / QK_K);
    const sw = new Float32Array(8);
    for (let j = 0; j < 8; j++) {
      let sumw = 0;
      for (let l = 0; l < 32; l++) {
        const v = x[o + 32 * j + l];
        w[l] = fr(qw[o + 32 * j + l] * fr(Math.sqrt(fr(sigma2 + fr(v * v)))));
        sumw = fr(sumw + w[l]);
      }
      sw[j] = sumw;
      const f = makeQkxQuants(32, nmax, x, w, Lg, Laux, F_M0_9, F_0_05, 36, false, o + 32 * j, 0);
      scales[j] = f.scale;
      mins[j] = f.min;
      L.set(Lg, 32 * j);
    }
    r.d = makeQpQuants(8, 63, scales, r.sc, sw);
    r.dmin = makeQpQuants(8, 63, mins, r.mn, sw);
    for (let j = 0; j < 8; j++) {
      r.sc[j] = Math.min(63, r.sc[j]);
      r.mn[j] = Math.min(63, r.mn[j]);
    }
    return r;
  }
  let maxScale = 0;
  let maxMin = 0;
  for (let j = 0; j < 8; j++) {
    let sumX2 = 0;
    for (let l = 0; l < 32; l++) sumX2 = fr(sumX2 + fr(x[o + 32 * j + l] * x[o + 32 * j + l]));
    const avX = fr(Math.sqrt(fr(sumX2 / 32)));
    for (let l = 0; l < 32; l++) w[l] = fr(avX + Math.abs(x[o + 32 * j + l]));
    const f =
      nmax === 15
        ? makeQkxQuants(32, 15, x, w, Lg, Laux, F_M1, F_0_1, 20, false, o + 32 * j, 0)
        : makeQkxQuants(32, 31, x, w, Lg, Laux, F_M0_5, F_0_1, 15, false, o + 32 * j, 0);
    scales[j] = f.scale;
    mins[j] = f.min;
    L.set(Lg, 32 * j);
    if (f.scale > maxScale) maxScale = f.scale;
    if (f.min > maxMin) maxMin = f.min;
  }
  const invScale = maxScale > 0 ? fr(63 / maxScale) : 0;
  const invMin = maxMin > 0 ? fr(63 / maxMin) : 0;
  for (let j = 0; j < 8; j++) {
    r.sc[j] = Math.min(63, nearestInt(fr(invScale * scales[j])) & 0xff);
    r.mn[j] = Math.min(63, nearestInt(fr(invMin * mins[j])) & 0xff);
  }
  r.d = fr(maxScale / 63);
  r.dmin = fr(maxMin / 63);
  return r;
}

/** Codes given the stored (fp16) d/dmin: q = clamp(round((x + dmin·m)/(d·sc)), 0, nmax). */
export function k45Codes(nmax: 15 | 31, x: Float32Array, o: number, s: K45Scales, L: Uint8Array): void {
  for (let j = 0; j < 8; j++) {
    const d = fr(s.d * s.sc[j]);
    if (d === 0) continue; // C: !d is false for NaN (Inf·0), which then codes as 0
    const dm = fr(s.dmin * s.mn[j]);
    for (let i = 0; i < 32; i++) {
      L[32 * j + i] = Math.max(0, Math.min(nmax, nearestInt(fr(fr(x[o + 32 * j + i] + dm) / d))));
    }
  }
}

function packScales(s: K45Scales, out: Uint8Array, o: number): void {
  for (let j = 0; j < 8; j++) {
    const ls = s.sc[j];
    const lm = s.mn[j];
    if (j < 4) {
      out[o + j] = ls;
      out[o + j + 4] = lm;
    } else {
      out[o + j + 4] = (ls & 15) | ((lm & 15) << 4);
      out[o + j - 4] |= (ls >> 4) << 6;
      out[o + j] |= (lm >> 4) << 6;
    }
  }
}

/** ggml's get_scale_min_k4: sub-scale and min of group j from the 12 packed bytes at o. */
function scaleMinK4(b: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [b[o + j] & 63, b[o + j + 4] & 63];
  return [(b[o + j + 4] & 15) | ((b[o + j - 4] >> 6) << 4), (b[o + j + 4] >> 4) | ((b[o + j] >> 6) << 4)];
}

/** Write one Q4_K (nmax 15) or Q5_K (nmax 31) block; d/dmin are rounded to fp16 here. */
export function k45Encode(nmax: 15 | 31, L: Uint8Array, s: K45Scales, out: Uint8Array, ob: number): void {
  putF16(out, ob, s.d);
  putF16(out, ob + 2, s.dmin);
  packScales(s, out, ob + 4);
  if (nmax === 15) {
    for (let j = 0; j < QK_K; j += 64) {
      for (let l = 0; l < 32; l++) out[ob + 16 + j / 2 + l] = L[j + l] | (L[j + l + 32] << 4);
    }
    return;
  }
  const qh = ob + 16;
  const ql = ob + 48;
  out.fill(0, qh, qh + 32);
  let m1 = 1;
  let m2 = 2;
  for (let n = 0; n < QK_K; n += 64) {
    for (let j = 0; j < 32; j++) {
      let l1 = L[n + j];
      if (l1 > 15) {
        l1 -= 16;
        out[qh + j] |= m1;
      }
      let l2 = L[n + j + 32];
      if (l2 > 15) {
        l2 -= 16;
        out[qh + j] |= m2;
      }
      out[ql + n / 2 + j] = l1 | (l2 << 4);
    }
    m1 <<= 2;
    m2 <<= 2;
  }
}

function quantizeRowK45(nmax: 15 | 31, x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const L = new Uint8Array(QK_K);
  const W = nmax === 15 ? 144 : 176;
  for (let ib = 0; ib < x.length / QK_K; ib++) {
    const o = ib * QK_K;
    const s = k45Params(nmax, x, o, qw, L);
    k45Codes(nmax, x, o, { ...s, d: getF16Value(s.d), dmin: getF16Value(s.dmin) }, L);
    k45Encode(nmax, L, s, out, ib * W);
  }
}

function dequantizeK45(nmax: 15 | 31, b: Uint8Array, out: Float32Array): void {
  const W = nmax === 15 ? 144 : 176;
  for (let ib = 0; ib < out.length / QK_K; ib++) {
    const ob = ib * W;
    const d = getF16(b, ob);
    const min = getF16(b, ob + 2);
    const qs = ob + (nmax === 15 ? 16 : 48);
    const qh = ob + 16;
    let y = ib * QK_K;
    for (let g = 0; g < 4; g++) {
      const [sc1, m1] = scaleMinK4(b, ob + 4, 2 * g);
      const [sc2, m2] = scaleMinK4(b, ob + 4, 2 * g + 1);
      const d1 = fr(d * sc1);
      const mm1 = fr(min * m1);
      const d2 = fr(d * sc2);
      const mm2 = fr(min * m2);
      const q = qs + 32 * g;
      for (let l = 0; l < 32; l++) {
        const h = nmax === 31 && b[qh + l] & (1 << (2 * g)) ? 16 : 0;
        out[y++] = fr(d1 * ((b[q + l] & 15) + h)) - mm1;
      }
      for (let l = 0; l < 32; l++) {
        const h = nmax === 31 && b[qh + l] & (2 << (2 * g)) ? 16 : 0;
        out[y++] = fr(d2 * ((b[q + l] >> 4) + h)) - mm2;
      }
    }
  }
}

export const KQUANT_45_CODECS = {
  Q4_K: {
    blockSize: 256,
    typeSize: 144,
    needsImatrix: false,
    quantizeRow: (x, out, qw) => quantizeRowK45(15, x, out, qw),
    dequantize: (b, out) => dequantizeK45(15, b, out),
  },
  Q5_K: {
    blockSize: 256,
    typeSize: 176,
    needsImatrix: false,
    quantizeRow: (x, out, qw) => quantizeRowK45(31, x, out, qw),
    dequantize: (b, out) => dequantizeK45(31, b, out),
  },
} satisfies Record<string, GgmlCodec>;
