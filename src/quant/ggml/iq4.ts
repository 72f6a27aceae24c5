// IQ4_NL and IQ4_XS: 4-bit indices into a non-linear table, bit-exact with ggml.
//
//   IQ4_NL: 18 bytes/32  = d f16 | qs[16] (nibbles: j low, j+16 high)   y = d·kvalues[q]
//   IQ4_XS: 136 bytes/256 = d f16 | scales_h u16 | scales_l[4] | qs[128]
//           8 sub-blocks of 32, 6-bit signed sub-scale ls − 32 (low 4 bits in scales_l, high
//           2 in scales_h), y = d·(ls − 32)·kvalues[q]
// kvalues_iq4nl = {−127, −104, −83, −65, −49, −35, −22, −10, 1, 13, 25, 38, 53, 69, 89, 113}.
//
// Quantizer (one routine for both; ggml's quantize_iq4_nl/xs always search, ntry = 7):
//   per 32 values: weights qw·√(σ² + x²) (σ² = 2·Σx²/256 over the super-block, or over the
//   32-block for IQ4_NL) or x² without an imatrix; d0 = −max/kvalues[0]; nearest table entry per
//   value; least-squares d; then 15 more trial scales id = (itry + kvalues[0])/max, keeping the
//   best (Σwqx)²/Σwq². IQ4_XS quantizes the 8 scales to 6 bits around d = −max_scale/32 and
//   re-picks indices with the rounded sub-scale; IQ4_NL re-picks with 1/d (unrounded d).
//
// Legend: QK = 32 (block) or 256 (super-block), n = values in a row.

import { GgmlCodec, getF16, putF16, GROUP_MAX_EPS, nearestInt as nearestInt_ } from './common.js';

// Local bindings: calls through an imported binding can cost a getter per call under some loaders.
const fr = Math.fround;
const nearestInt = nearestInt_;

export const KVALUES_IQ4NL = new Int8Array([-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113]);

/** Index of the nearest table value (ggml's best_index_int8: binary search; an exact tie goes up). */
export function bestIndexInt8(val: Int8Array, x: number): number {
  const n = val.length;
  if (x <= val[0]) return 0;
  if (x >= val[n - 1]) return n - 1;
  let ml = 0;
  let mu = n - 1;
  while (mu - ml > 1) {
    const mav = (ml + mu) >> 1;
    if (x < val[mav]) mu = mav;
    else ml = mav;
  }
  return fr(x - val[mu - 1]) < fr(val[mu] - x) ? mu - 1 : mu;
}

const NTRY = 7;

/**
 * One IQ4_NL block or IQ4_XS super-block (`sbs` = 32 or 256 values at x[o..]) → scales and
 * indices. Writes indices to L ([sbs]) and returns {d, subScales} where subScales ([sbs/32],
 * 0..63) is used by IQ4_XS only.
 */
function quantizeIq4Super(
  x: Float32Array,
  o: number,
  sbs: number,
  qw: Float32Array | undefined,
  L: Uint8Array,
  scales: Float32Array,
  weight: Float32Array,
  subScales: Uint8Array,
): number {
  const values = KVALUES_IQ4NL;
  let sigma2 = 0;
  for (let j = 0; j < sbs; j++) sigma2 = fr(sigma2 + fr(x[o + j] * x[o + j]));
  sigma2 = fr(sigma2 * fr(2 / sbs));
  let maxScale = 0;
  let amaxScale = 0;
  const nb = sbs / 32;
  for (let ib = 0; ib < nb; ib++) {
    const xo = o + ib * 32;
    for (let j = 0; j < 32; j++) {
      const v = x[xo + j];
      weight[j] = qw ? fr(qw[xo + j] * fr(Math.sqrt(fr(sigma2 + fr(v * v))))) : fr(v * v);
    }
    let amax = 0;
    let max = 0;
    for (let j = 0; j < 32; j++) {
      const ax = Math.abs(x[xo + j]);
      if (ax > amax) {
        amax = ax;
        max = x[xo + j];
      }
    }
    if (amax < GROUP_MAX_EPS) {
      scales[ib] = 0;
      continue;
    }
    let d = fr(-max / values[0]);
    let id = fr(1 / d);
    let sumqx = 0;
    let sumq2 = 0;
    for (let j = 0; j < 32; j++) {
      const l = bestIndexInt8(values, fr(id * x[xo + j]));
      L[ib * 32 + j] = l;
      const q = values[l];
      const wq = fr(weight[j] * q);
      sumqx = fr(sumqx + fr(wq * x[xo + j]));
      sumq2 = fr(sumq2 + fr(wq * q));
    }
    d = sumq2 > 0 ? fr(sumqx / sumq2) : 0;
    let best = fr(d * sumqx);
    for (let itry = -NTRY; itry <= NTRY; itry++) {
      id = fr((itry + values[0]) / max);
      sumqx = 0;
      sumq2 = 0;
      for (let j = 0; j < 32; j++) {
        const q = values[bestIndexInt8(values, fr(id * x[xo + j]))];
        const wq = fr(weight[j] * q);
        sumqx = fr(sumqx + fr(wq * x[xo + j]));
        sumq2 = fr(sumq2 + fr(wq * q));
      }
      if (sumq2 > 0 && fr(sumqx * sumqx) > fr(best * sumq2)) {
        d = fr(sumqx / sumq2);
        best = fr(d * sumqx);
      }
    }
    scales[ib] = d;
    if (Math.abs(d) > amaxScale) {
      amaxScale = Math.abs(d);
      maxScale = d;
    }
  }
  if (nb > 1) {
    const d = fr(-maxScale / 32);
    const id = d !== 0 ? fr(1 / d) : 0;
    for (let ib = 0; ib < nb; ib++) {
      let l = nearestInt(fr(id * scales[ib]));
      l = Math.max(-32, Math.min(31, l));
      const dl = fr(d * l);
      const idl = dl !== 0 ? fr(1 / dl) : 0;
      for (let j = 0; j < 32; j++) L[ib * 32 + j] = bestIndexInt8(values, fr(idl * x[o + ib * 32 + j]));
      subScales[ib] = l + 32;
    }
    return d;
  }
  const id = scales[0] !== 0 ? fr(1 / scales[0]) : 0;
  for (let j = 0; j < sbs; j++) L[j] = bestIndexInt8(values, fr(id * x[o + j]));
  return scales[0];
}

function packQ4(L: Uint8Array, n: number, out: Uint8Array, o: number): void {
  for (let i = 0; i < n / 32; i++) {
    for (let j = 0; j < 16; j++) out[o + 16 * i + j] = L[32 * i + j] | (L[32 * i + 16 + j] << 4);
  }
}

function quantizeRowIq4(sbs: 32 | 256, x: Float32Array, out: Uint8Array, qw: Float32Array | undefined): void {
  const L = new Uint8Array(sbs);
  const scales = new Float32Array(sbs / 32);
  const weight = new Float32Array(32);
  const sub = new Uint8Array(sbs / 32);
  const W = sbs === 32 ? 18 : 136;
  for (let ib = 0; ib < x.length / sbs; ib++) {
    const ob = ib * W;
    const d = quantizeIq4Super(x, ib * sbs, sbs, qw, L, scales, weight, sub);
    putF16(out, ob, d);
    if (sbs === 32) {
      packQ4(L, 32, out, ob + 2);
      continue;
    }
    let sh = 0;
    for (let s = 0; s < 8; s++) sh |= (sub[s] >> 4) << (2 * s);
    out[ob + 2] = sh & 0xff;
    out[ob + 3] = sh >>> 8;
    for (let s = 0; s < 4; s++) out[ob + 4 + s] = (sub[2 * s] & 15) | ((sub[2 * s + 1] & 15) << 4);
    packQ4(L, 256, out, ob + 8);
  }
}

function dequantizeIq4Nl(b: Uint8Array, out: Float32Array): void {
  for (let ib = 0; ib < out.length / 32; ib++) {
    const ob = ib * 18;
    const d = getF16(b, ob);
    for (let j = 0; j < 16; j++) {
      out[ib * 32 + j] = d * KVALUES_IQ4NL[b[ob + 2 + j] & 15];
      out[ib * 32 + 16 + j] = d * KVALUES_IQ4NL[b[ob + 2 + j] >> 4];
    }
  }
}

function dequantizeIq4Xs(b: Uint8Array, out: Float32Array): void {
  for (let ibl = 0; ibl < out.length / 256; ibl++) {
    const ob = ibl * 136;
    const d = getF16(b, ob);
    const sh = b[ob + 2] | (b[ob + 3] << 8);
    for (let ib = 0; ib < 8; ib++) {
      const ls = ((b[ob + 4 + (ib >> 1)] >> (4 * (ib & 1))) & 15) | (((sh >> (2 * ib)) & 3) << 4);
      const dl = fr(d * (ls - 32));
      const y = ibl * 256 + ib * 32;
      const q = ob + 8 + ib * 16;
      for (let j = 0; j < 16; j++) {
        out[y + j] = dl * KVALUES_IQ4NL[b[q + j] & 15];
        out[y + 16 + j] = dl * KVALUES_IQ4NL[b[q + j] >> 4];
      }
    }
  }
}

export const IQ4_CODECS = {
  IQ4_NL: {
    blockSize: 32,
    typeSize: 18,
    needsImatrix: false,
    quantizeRow: (x, out, qw) => quantizeRowIq4(32, x, out, qw),
    dequantize: dequantizeIq4Nl,
  },
  IQ4_XS: {
    blockSize: 256,
    typeSize: 136,
    needsImatrix: false,
    quantizeRow: (x, out, qw) => quantizeRowIq4(256, x, out, qw),
    dequantize: dequantizeIq4Xs,
  },
} satisfies Record<string, GgmlCodec>;
