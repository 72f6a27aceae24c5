// ggml block types as MatMulNBits operands (nbits.ts), read straight from the stored bytes.
// Each type's dequantization is an integer code times a per-block float scale, sometimes minus a
// per-block float min; the kernel computes fround((u − z)·s) with an integer zero point z, so each
// type is re-coded as (u, z, s) with u − z equal to ggml's integer and s equal to ggml's float
// sub-block scale, both bit for bit (block layouts and formulas: src/quant/ggml/*):
//
//   type   ggml value                         kernel          u            z      min
//   Q4_0   (q − 8)·d                          4-bit g32       q            8      –
//   Q4_1   fround(q·d) + m                    4-bit g32       q            0      −m
//   Q5_0   (q − 16)·d                         8-bit g32       q + 112      128    –
//   Q5_1   fround(q·d) + m                    8-bit g32       q + 128      128    −m
//   Q8_0   q·d  (q signed)                    8-bit g32       q + 128      128    –
//   Q2_K   fround(dl·q) − ml   (16-blocks)    2-bit g16       q            0      ml = fround(dmin·m)
//   Q3_K   dl·(q − 4·[h = 0])  (16-blocks)    4-bit g16       q − 4h' + 8  8      –
//   Q4_K   fround(d1·q) − m1   (32-blocks)    4-bit g32       q            0      m1 = fround(dmin·m)
//   Q5_K   fround(d1·q) − m1   (32-blocks)    8-bit g32       q + 128      128    m1
//   Q6_K   fround(d·sc)·(q − 32) (16-blocks)  8-bit g16       q + 96       128    –
//   TQ1_0  (t − 1)·d, trits t                 2-bit g256      t + 1        2      –
//   TQ2_0  (q − 1)·d                          2-bit g256      q            1      –
//   Q1_0   ±d                                 2-bit g128      2b + 1       2      –
//   Q2_0   (q − 1)·d                          2-bit g64       q            1      –
//
// Where ggml subtracts a min, the graph computes x·mainᵀ − blocksum(x)·minsᵀ; dequantizeNBitsLinear
// (fround(main − min)) reproduces ggml's floats bit for bit. IQ types, MXFP4/NVFP4 (non-uniform grids)
// and the float types have no such form and return null (the engine dequantizes them).
// Rows are converted one at a time, so a conversion holds the packed result plus one row of codes.
// Legend: N = rows, K = row length, QK = ggml block, G = kernel block, Kb = K / G.

import { GGML_TYPES, type GgmlType } from '../core/dtype.js';
import { ShapeError } from '../core/errors.js';
import { getF16 } from '../quant/ggml/common.js';
import type { NBitsLinear, NBitsMins, NBitsWidth } from './nbits.js';

const fr = Math.fround;

interface Spec {
  bits: NBitsWidth;
  G: number;
  /** one integer zero point for every block, or null for the kernel's default 2^(bits−1) */
  zp: number | null;
  mins: boolean;
  /** K-quants: the mins are integer codes (written to `mc`) times one dmin per super-block (written
   * to `md`), `perSuper` per super-block — they run as an 8-bit kernel of their own */
  codedMins?: { perSuper: number; decode(b: Uint8Array, ob: number, mc: Uint8Array, mo: number): number };
  /**
   * Decodes the ggml block at `ob` into codes u[uo … uo+QK), scales s[so … so+QK/G) and (with mins)
   * m[mo …] — the value subtracted from each kernel block.
   */
  decode(b: Uint8Array, ob: number, u: Uint8Array, uo: number, s: Float32Array, so: number, m: Float32Array, mo: number): void;
  /** the block's scales as a product (nbits.ts ScaleFactors): `per` scales share one unit; writes
   * the codes (integer + 128) of the ggml block at `ob` from `co` and its unit at `uo` */
  factors?: { per: number; decode(b: Uint8Array, ob: number, c: Uint8Array, co: number, units: Float32Array, uo: number): void };
}

function scaleMinK4(b: Uint8Array, o: number, j: number): [number, number] {
  if (j < 4) return [b[o + j] & 63, b[o + j + 4] & 63];
  return [(b[o + j + 4] & 15) | ((b[o + j - 4] >> 6) << 4), (b[o + j + 4] >> 4) | ((b[o + j] >> 6) << 4)];
}

function q3SubScale(b: Uint8Array, sc: number, j: number): number {
  const low = j < 8 ? b[sc + j] & 15 : b[sc + j - 8] >> 4;
  return (low | (((b[sc + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4)) - 32;
}

/** Q4_K/Q5_K: the 8 six-bit min codes of a super-block; returns its dmin. */
function k45MinCodes(b: Uint8Array, ob: number, mc: Uint8Array, mo: number): number {
  for (let g = 0; g < 8; g++) mc[mo + g] = scaleMinK4(b, ob + 4, g)[1];
  return getF16(b, ob + 2);
}

/** Q4_K/Q5_K: the 8 sub-block scales fround(d·sc) and mins fround(dmin·m) of the super-block at `ob`. */
function k45Scales(b: Uint8Array, ob: number, s: Float32Array, so: number, m: Float32Array, mo: number): void {
  const d = getF16(b, ob);
  const dmin = getF16(b, ob + 2);
  for (let g = 0; g < 8; g++) {
    const [sc, mn] = scaleMinK4(b, ob + 4, g);
    s[so + g] = fr(d * sc);
    m[mo + g] = fr(dmin * mn);
  }
}

/** Q4_K / Q5_K scales as factors: d per super-block times the 6-bit sc of each 32-block */
const K45_FACTORS = {
  per: 8,
  decode(b: Uint8Array, ob: number, c: Uint8Array, co: number, units: Float32Array, uo: number): void {
    units[uo] = getF16(b, ob);
    for (let g = 0; g < 8; g++) c[co + g] = scaleMinK4(b, ob + 4, g)[0] + 128;
  },
};

const POW3 = [1, 3, 9, 27, 81];
function tritOf(byte: number, n: number): number {
  return (((byte * POW3[n]) & 0xff) * 3) >> 8;
}

/** Q4_0/Q4_1/Q5_0/Q5_1 nibble (and fifth) bits of element j < 32 of a 32-block with qs at `qs`, qh (u32) at `qh`. */
function legacyCode(b: Uint8Array, qs: number, qh: number | null, j: number): number {
  const lo = j < 16 ? b[qs + j] & 15 : b[qs + j - 16] >> 4;
  if (qh === null) return lo;
  const h = (b[qh] | (b[qh + 1] << 8) | (b[qh + 2] << 16) | (b[qh + 3] << 24)) >>> j;
  return lo | ((h & 1) << 4);
}

const SPECS: Partial<Record<GgmlType, Spec>> = {
  Q4_0: {
    bits: 4, G: 32, zp: null, mins: false,
    decode(b, ob, u, uo, s, so) {
      s[so] = getF16(b, ob);
      for (let j = 0; j < 32; j++) u[uo + j] = legacyCode(b, ob + 2, null, j);
    },
  },
  Q4_1: {
    bits: 4, G: 32, zp: 0, mins: true,
    decode(b, ob, u, uo, s, so, m, mo) {
      s[so] = getF16(b, ob);
      m[mo] = -getF16(b, ob + 2);
      for (let j = 0; j < 32; j++) u[uo + j] = legacyCode(b, ob + 4, null, j);
    },
  },
  Q5_0: {
    bits: 8, G: 32, zp: null, mins: false,
    decode(b, ob, u, uo, s, so) {
      s[so] = getF16(b, ob);
      for (let j = 0; j < 32; j++) u[uo + j] = legacyCode(b, ob + 6, ob + 2, j) + 112;
    },
  },
  Q5_1: {
    bits: 8, G: 32, zp: null, mins: true,
    decode(b, ob, u, uo, s, so, m, mo) {
      s[so] = getF16(b, ob);
      m[mo] = -getF16(b, ob + 2);
      for (let j = 0; j < 32; j++) u[uo + j] = legacyCode(b, ob + 8, ob + 4, j) + 128;
    },
  },
  Q8_0: {
    bits: 8, G: 32, zp: null, mins: false,
    decode(b, ob, u, uo, s, so) {
      s[so] = getF16(b, ob);
      for (let j = 0; j < 32; j++) u[uo + j] = b[ob + 2 + j] ^ 0x80; // int8 q + 128
    },
  },
  Q2_K: {
    bits: 2, G: 16, zp: 0, mins: true,
    codedMins: {
      perSuper: 16,
      decode(b, ob, mc, mo) {
        for (let j = 0; j < 16; j++) mc[mo + j] = b[ob + j] >> 4;
        return getF16(b, ob + 82);
      },
    },
    decode(b, ob, u, uo, s, so, m, mo) {
      const d = getF16(b, ob + 80);
      const dmin = getF16(b, ob + 82);
      let y = uo;
      let is = 0;
      for (let n = 0; n < 2; n++) {
        const q = ob + 16 + 32 * n;
        for (let shift = 0; shift < 8; shift += 2) {
          for (let half = 0; half < 2; half++) {
            const sc = b[ob + is];
            s[so + is] = fr(d * (sc & 15));
            m[mo + is] = fr(dmin * (sc >> 4));
            is++;
            for (let l = 0; l < 16; l++) u[y++] = (b[q + 16 * half + l] >> shift) & 3;
          }
        }
      }
    },
  },
  Q3_K: {
    bits: 4, G: 16, zp: null, mins: false,
    decode(b, ob, u, uo, s, so) {
      const dAll = getF16(b, ob + 108);
      let y = uo;
      let is = 0;
      let hm = 1;
      for (let n = 0; n < 2; n++) {
        const q = ob + 32 + 32 * n;
        for (let shift = 0; shift < 8; shift += 2) {
          for (let half = 0; half < 2; half++) {
            s[so + is] = fr(dAll * q3SubScale(b, ob + 96, is));
            is++;
            for (let l = 0; l < 16; l++) {
              const k = 16 * half + l;
              u[y++] = ((b[q + k] >> shift) & 3) - (b[ob + k] & hm ? 0 : 4) + 8;
            }
          }
          hm <<= 1;
        }
      }
    },
  },
  Q4_K: {
    bits: 4, G: 32, zp: 0, mins: true,
    factors: K45_FACTORS,
    codedMins: { perSuper: 8, decode: k45MinCodes },
    decode(b, ob, u, uo, s, so, m, mo) {
      k45Scales(b, ob, s, so, m, mo);
      for (let g = 0; g < 8; g++) {
        const q = ob + 16 + 32 * (g >> 1);
        for (let l = 0; l < 32; l++) u[uo + 32 * g + l] = g & 1 ? b[q + l] >> 4 : b[q + l] & 15;
      }
    },
  },
  Q5_K: {
    bits: 8, G: 32, zp: null, mins: true,
    factors: K45_FACTORS,
    codedMins: { perSuper: 8, decode: k45MinCodes },
    decode(b, ob, u, uo, s, so, m, mo) {
      k45Scales(b, ob, s, so, m, mo);
      for (let g = 0; g < 8; g++) {
        const q = ob + 48 + 32 * (g >> 1);
        for (let l = 0; l < 32; l++) {
          const lo = g & 1 ? b[q + l] >> 4 : b[q + l] & 15;
          const hi = b[ob + 16 + l] & (1 << g) ? 16 : 0;
          u[uo + 32 * g + l] = lo + hi + 128;
        }
      }
    },
  },
  Q6_K: {
    bits: 8, G: 16, zp: null, mins: false,
    // s = fround(d·sc): d F16 per super-block, sc int8 per 16-block
    factors: {
      per: 16,
      decode(b, ob, c, co, units, uo) {
        units[uo] = getF16(b, ob + 208);
        for (let r = 0; r < 16; r++) c[co + r] = b[ob + 192 + r] ^ 128;
      },
    },
    decode(b, ob, u, uo, s, so) {
      const d = getF16(b, ob + 208);
      for (let r = 0; r < 16; r++) s[so + r] = fr(d * ((b[ob + 192 + r] << 24) >> 24));
      for (let n = 0; n < 2; n++) {
        const ql = ob + 64 * n;
        const qh = ob + 128 + 32 * n;
        const y = uo + 128 * n;
        for (let l = 0; l < 32; l++) {
          const h = b[qh + l];
          u[y + l] = ((b[ql + l] & 15) | ((h & 3) << 4)) + 96;
          u[y + l + 32] = ((b[ql + l + 32] & 15) | (((h >> 2) & 3) << 4)) + 96;
          u[y + l + 64] = ((b[ql + l] >> 4) | (((h >> 4) & 3) << 4)) + 96;
          u[y + l + 96] = ((b[ql + l + 32] >> 4) | (((h >> 6) & 3) << 4)) + 96;
        }
      }
    },
  },
  TQ1_0: {
    bits: 2, G: 256, zp: null, mins: false,
    decode(b, ob, u, uo, s, so) {
      s[so] = getF16(b, ob + 52);
      let y = uo;
      for (let n = 0; n < 5; n++) for (let m = 0; m < 32; m++) u[y++] = tritOf(b[ob + m], n) + 1;
      for (let n = 0; n < 5; n++) for (let m = 0; m < 16; m++) u[y++] = tritOf(b[ob + 32 + m], n) + 1;
      for (let n = 0; n < 4; n++) for (let j = 0; j < 4; j++) u[y++] = tritOf(b[ob + 48 + j], n) + 1;
    },
  },
  TQ2_0: {
    bits: 2, G: 256, zp: 1, mins: false,
    decode(b, ob, u, uo, s, so) {
      s[so] = getF16(b, ob + 64);
      let y = uo;
      for (let j = 0; j < 64; j += 32) for (let l = 0; l < 4; l++) for (let m = 0; m < 32; m++) u[y++] = (b[ob + j + m] >> (l * 2)) & 3;
    },
  },
  Q1_0: {
    bits: 2, G: 128, zp: null, mins: false,
    decode(b, ob, u, uo, s, so) {
      s[so] = getF16(b, ob);
      for (let j = 0; j < 128; j++) u[uo + j] = (b[ob + 2 + (j >> 3)] >> (j & 7)) & 1 ? 3 : 1;
    },
  },
  Q2_0: {
    bits: 2, G: 64, zp: 1, mins: false,
    decode(b, ob, u, uo, s, so) {
      s[so] = getF16(b, ob);
      for (let j = 0; j < 64; j++) u[uo + j] = (b[ob + 2 + (j >> 2)] >> ((j & 3) * 2)) & 3;
    },
  },
};

/** Whether `type` runs on MatMulNBits (the others are dequantized). */
export function ggmlHasNBits(type: GgmlType): boolean {
  return SPECS[type] !== undefined;
}

/** The kernel width a ggml type maps to, or null. */
export function ggmlNBitsWidth(type: GgmlType): NBitsWidth | null {
  return SPECS[type]?.bits ?? null;
}

/** The kernel a ggml type maps to, e.g. "4-bit g32 + 8-bit mins", or null. */
export function ggmlNBitsKernel(type: GgmlType, floatMins = false): string | null {
  const s = SPECS[type];
  if (!s) return null;
  const mins = !s.mins ? '' : s.codedMins && !floatMins ? ' + 8-bit mins' : ' + float mins';
  return `${s.bits}-bit g${s.G}${mins}`;
}

/**
 * The K-quants' coded mins: an 8-bit g16 kernel over the block sums, each super-block's `perSuper`
 * sums repeated to 16 columns; codes m + 128 in the first perSuper columns, 128 after; scale dmin.
 * fround((u − 128)·dmin) = fround(dmin·m), ggml's min, bit for bit.
 */
function codedMins(spec: Spec, bytes: Uint8Array, N: number, K: number, rowBytes: number, typeSize: number): NBitsMins {
  const cm = spec.codedMins!;
  const nSuper = K / 256;
  const Kc = nSuper * 16;
  const codes = new Uint8Array(N * Kc).fill(128);
  const scales = new Float32Array(N * nSuper);
  const mc = new Uint8Array(16);
  for (let n = 0; n < N; n++) {
    for (let ib = 0; ib < nSuper; ib++) {
      scales[n * nSuper + ib] = cm.decode(bytes, n * rowBytes + ib * typeSize, mc, 0);
      for (let j = 0; j < cm.perSuper; j++) codes[n * Kc + ib * 16 + j] = mc[j] + 128;
    }
  }
  return { kind: 'coded', blockSize: spec.G, perSuper: cm.perSuper, parts: [{ N, K: Kc, bits: 8, blockSize: 16, B: codes, scales, zeroPoints: null }] };
}

/**
 * The NBitsLinear of a ggml tensor [N, K] stored as `bytes` (N rows of K/QK blocks), or null when
 * the type has no MatMulNBits form. Throws a ShapeError when the bytes do not match the shape.
 * With `floatMins` the K-quants' mins stay float32 [K/G, N] instead of an 8-bit kernel.
 */
export function ggmlToNBits(type: GgmlType, bytes: Uint8Array, N: number, K: number, name?: string, floatMins = false): NBitsLinear | null {
  const spec = SPECS[type];
  if (!spec) return null;
  const { blockSize: QK, typeSize } = GGML_TYPES[type];
  if (K % QK !== 0) throw new ShapeError('shape_mismatch', 'row length is not a whole number of ggml blocks', { tensor: name, expected: `a multiple of ${QK}`, found: K });
  const rowBytes = (K / QK) * typeSize;
  if (bytes.length !== N * rowBytes) throw new ShapeError('shape_mismatch', 'ggml tensor byte length does not match its shape', { tensor: name, expected: N * rowBytes, found: bytes.length });
  const { bits, G } = spec;
  const Kb = K / G;
  const perBlock = QK / G; // kernel blocks per ggml block
  const blob = (G * bits) / 8;
  const B = new Uint8Array(N * Kb * blob);
  const scales = new Float32Array(N * Kb);
  const coded = spec.codedMins !== undefined && !floatMins;
  const minsRow = new Float32Array(spec.mins ? Kb : 0);
  const mins = spec.mins && !coded ? new Float32Array(Kb * N) : null;
  const u = new Uint8Array(K);
  const fs = spec.factors;
  // one unit per ggml block (the super-block): per = kernel blocks per ggml block
  const factors = fs && fs.per === perBlock ? { per: fs.per, codes: new Uint8Array(N * Kb), units: new Float32Array((N * Kb) / fs.per) } : undefined;
  for (let n = 0; n < N; n++) {
    for (let ib = 0; ib < K / QK; ib++) spec.decode(bytes, n * rowBytes + ib * typeSize, u, ib * QK, scales, n * Kb + ib * perBlock, minsRow, ib * perBlock);
    if (factors) for (let ib = 0; ib < K / QK; ib++) fs!.decode(bytes, n * rowBytes + ib * typeSize, factors.codes, n * Kb + ib * perBlock, factors.units, n * (K / QK) + ib);
    // pack the row's codes low-bits-first per kernel block
    const rowOff = n * Kb * blob;
    for (let k = 0; k < K; k++) {
      const bit = (k % G) * bits;
      B[rowOff + Math.floor(k / G) * blob + (bit >> 3)] |= u[k] << (bit & 7);
    }
    if (mins) for (let j = 0; j < Kb; j++) mins[j * N + n] = minsRow[j];
  }
  let zeroPoints: Uint8Array | null = null;
  if (spec.zp !== null) {
    const row = Math.ceil((Kb * bits) / 8);
    zeroPoints = new Uint8Array(N * row);
    if (spec.zp !== 0) for (let n = 0; n < N; n++) for (let j = 0; j < Kb; j++) zeroPoints[n * row + ((j * bits) >> 3)] |= spec.zp << ((j * bits) & 7);
  }
  return {
    N,
    K,
    main: { N, K, bits, blockSize: G, B, scales, zeroPoints, ...(factors ? { scaleFactors: factors } : {}) },
    mins: coded ? codedMins(spec, bytes, N, K, rowBytes, typeSize) : mins ? { kind: 'float', blockSize: G, values: mins } : null,
    perm: null,
    kernel: ggmlNBitsKernel(type, floatMins)!,
  };
}
