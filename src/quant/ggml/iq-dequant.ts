// Decoders for ggml's grid-based i-quants (IQ2_XXS, IQ2_XS, IQ2_S, IQ3_XXS, IQ3_S, IQ1_S, IQ1_M),
// bit-exact with ggml's to_float. Quantizers: iq3-quant.ts (IQ3_XXS/S), iq2-quant.ts (IQ2_XXS/XS/S)
// and iq1-quant.ts (IQ1_S/M).
//
// Each 256-value super-block is 8 groups of 32; each group is 4 (or 8) grid entries of 8 (or 4)
// magnitudes, a sign pattern and a small integer sub-scale:
//   IQ2_XXS 66 B: d f16 | qs u16[32]: per group 8 bytes = 4 grid indices (iq2xxs_grid, 256)
//                 + u32 with 4×7-bit sign indices (ksigns_iq2xs) and a 4-bit scale in bits 28..31
//                 db = d·(0.5 + s)·0.25
//   IQ2_XS  74 B: d | qs u16[32] (9-bit grid index into iq2xs_grid, 7-bit sign index) | scales[8]
//                 (two 4-bit scales per group, one per 16 values)
//   IQ2_S   82 B: d | qs[32] grid low bytes | signs[32] | qh[8] (2 high index bits per entry) |
//                 scales[8]; grid iq2s_grid (1024)
//   IQ3_XXS 98 B: d | qs[64] (iq3xxs_grid indices, 4 values each) | u32[8] signs + 4-bit scale
//                 db = d·(0.5 + s)·0.5
//   IQ3_S  110 B: d | qs[64] | qh[8] (9th index bit) | signs[32] | scales[4] (4 bits per 64
//                 values); db = d·(1 + 2s); grid iq3s_grid (512)
//   IQ1_S   50 B: d | qs[32] | qh u16[8]: 3 high index bits per entry, 3-bit scale, delta sign;
//                 y = d·(2s + 1)·(grid + ±0.125); grid iq1s_grid (2048, values −1/0/+1)
//   IQ1_M   56 B: qs[32] | qh[16] | scales[8]: 3-bit scales per 16 values, the fp16 d spread over
//                 the top nibbles of the four u16 scale words
// Legend: ib = group of 32 values, l = grid entry in the group, j = value in the entry.

import { GgmlCodec, getF16 } from './common.js';
import { f16ToF32 } from '../../numerics/float16.js';
import {
  IQ1S_GRID,
  IQ2S_GRID,
  IQ2XS_GRID,
  IQ2XXS_GRID,
  IQ3S_GRID,
  IQ3XXS_GRID,
  KSIGNS_IQ2XS,
} from './iq-grids.table.js';

// Local bindings: calls through an imported binding can cost a getter per call under some loaders.
const fr = Math.fround;

const QK_K = 256;
const IQ1S_DELTA = 0.125;

const u32At = (b: Uint8Array, o: number): number => (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
const u16At = (b: Uint8Array, o: number): number => b[o] | (b[o + 1] << 8);

/** y[0..8) = db · grid8[idx] with signs (bit j set → negative). */
function put8(out: Float32Array, y: number, db: number, grid: Uint8Array, idx: number, signs: number): void {
  for (let j = 0; j < 8; j++) {
    const v = fr(db * grid[8 * idx + j]);
    out[y + j] = signs & (1 << j) ? -v : v;
  }
}

/** Two 4-value grid entries (iq3 grids) into y[0..8) with one 8-bit sign pattern. */
function put4x2(out: Float32Array, y: number, db: number, grid: Uint8Array, i1: number, i2: number, signs: number): void {
  for (let j = 0; j < 4; j++) {
    const a = fr(db * grid[4 * i1 + j]);
    const c = fr(db * grid[4 * i2 + j]);
    out[y + j] = signs & (1 << j) ? -a : a;
    out[y + j + 4] = signs & (1 << (j + 4)) ? -c : c;
  }
}

function dequantizeIq2Xxs(b: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < out.length / QK_K; i++) {
    const ob = i * 66;
    const d = getF16(b, ob);
    let y = i * QK_K;
    for (let ib = 0; ib < 8; ib++) {
      const q = ob + 2 + 8 * ib;
      const aux1 = u32At(b, q + 4);
      const db = fr(fr(d * (0.5 + (aux1 >>> 28))) * 0.25);
      for (let l = 0; l < 4; l++, y += 8) put8(out, y, db, IQ2XXS_GRID, b[q + l], KSIGNS_IQ2XS[(aux1 >>> (7 * l)) & 127]);
    }
  }
}

function dequantizeIq2Xs(b: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < out.length / QK_K; i++) {
    const ob = i * 74;
    const d = getF16(b, ob);
    let y = i * QK_K;
    for (let ib = 0; ib < 8; ib++) {
      const sc = b[ob + 66 + ib];
      const db = [fr(fr(d * (0.5 + (sc & 15))) * 0.25), fr(fr(d * (0.5 + (sc >> 4))) * 0.25)];
      for (let l = 0; l < 4; l++, y += 8) {
        const q = u16At(b, ob + 2 + 2 * (4 * ib + l));
        put8(out, y, db[l >> 1], IQ2XS_GRID, q & 511, KSIGNS_IQ2XS[q >> 9]);
      }
    }
  }
}

function dequantizeIq2S(b: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < out.length / QK_K; i++) {
    const ob = i * 82;
    const d = getF16(b, ob);
    let y = i * QK_K;
    for (let ib = 0; ib < 8; ib++) {
      const sc = b[ob + 74 + ib];
      const db = [fr(fr(d * (0.5 + (sc & 15))) * 0.25), fr(fr(d * (0.5 + (sc >> 4))) * 0.25)];
      const qh = b[ob + 66 + ib];
      for (let l = 0; l < 4; l++, y += 8) {
        const idx = b[ob + 2 + 4 * ib + l] | ((qh << (8 - 2 * l)) & 0x300);
        put8(out, y, db[l >> 1], IQ2S_GRID, idx, b[ob + 34 + 4 * ib + l]);
      }
    }
  }
}

function dequantizeIq3Xxs(b: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < out.length / QK_K; i++) {
    const ob = i * 98;
    const d = getF16(b, ob);
    let y = i * QK_K;
    for (let ib = 0; ib < 8; ib++) {
      const aux = u32At(b, ob + 2 + 64 + 4 * ib);
      const db = fr(fr(d * (0.5 + (aux >>> 28))) * 0.5);
      const q = ob + 2 + 8 * ib;
      for (let l = 0; l < 4; l++, y += 8) {
        put4x2(out, y, db, IQ3XXS_GRID, b[q + 2 * l], b[q + 2 * l + 1], KSIGNS_IQ2XS[(aux >>> (7 * l)) & 127]);
      }
    }
  }
}

function dequantizeIq3S(b: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < out.length / QK_K; i++) {
    const ob = i * 110;
    const d = getF16(b, ob);
    let y = i * QK_K;
    for (let ib = 0; ib < 8; ib++) {
      const sc = b[ob + 106 + (ib >> 1)];
      const db = fr(d * (1 + 2 * (ib & 1 ? sc >> 4 : sc & 15)));
      const qh = b[ob + 66 + ib];
      const q = ob + 2 + 8 * ib;
      for (let l = 0; l < 4; l++, y += 8) {
        const i1 = b[q + 2 * l] | ((qh << (8 - 2 * l)) & 256);
        const i2 = b[q + 2 * l + 1] | ((qh << (7 - 2 * l)) & 256);
        put4x2(out, y, db, IQ3S_GRID, i1, i2, b[ob + 74 + 4 * ib + l]);
      }
    }
  }
}

/** y[0..8) = dl·(grid + delta) for one iq1s grid entry (int8 values). */
function put1(out: Float32Array, y: number, dl: number, idx: number, delta: number): void {
  for (let j = 0; j < 8; j++) out[y + j] = dl * (((IQ1S_GRID[8 * idx + j] << 24) >> 24) + delta);
}

function dequantizeIq1S(b: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < out.length / QK_K; i++) {
    const ob = i * 50;
    const d = getF16(b, ob);
    let y = i * QK_K;
    for (let ib = 0; ib < 8; ib++) {
      const qh = u16At(b, ob + 34 + 2 * ib);
      const dl = fr(d * (2 * ((qh >> 12) & 7) + 1));
      const delta = qh & 0x8000 ? -IQ1S_DELTA : IQ1S_DELTA;
      for (let l = 0; l < 4; l++, y += 8) put1(out, y, dl, b[ob + 2 + 4 * ib + l] | (((qh >> (3 * l)) & 7) << 8), delta);
    }
  }
}

function dequantizeIq1M(b: Uint8Array, out: Float32Array): void {
  for (let i = 0; i < out.length / QK_K; i++) {
    const ob = i * 56;
    const sc = [0, 1, 2, 3].map((k) => u16At(b, ob + 48 + 2 * k));
    const dBits = (sc[0] >> 12) | ((sc[1] >> 8) & 0x00f0) | ((sc[2] >> 4) & 0x0f00) | (sc[3] & 0xf000);
    const d = f16ToF32(dBits);
    let y = i * QK_K;
    for (let ib = 0; ib < 8; ib++) {
      const s = sc[ib >> 1] >> (6 * (ib & 1));
      const dl1 = fr(d * (2 * (s & 7) + 1));
      const dl2 = fr(d * (2 * ((s >> 3) & 7) + 1));
      const qs = ob + 4 * ib;
      const h0 = b[ob + 32 + 2 * ib];
      const h1 = b[ob + 32 + 2 * ib + 1];
      const idx = [b[qs] | ((h0 << 8) & 0x700), b[qs + 1] | ((h0 << 4) & 0x700), b[qs + 2] | ((h1 << 8) & 0x700), b[qs + 3] | ((h1 << 4) & 0x700)];
      const delta = [h0 & 0x08, h0 & 0x80, h1 & 0x08, h1 & 0x80].map((m) => (m ? -IQ1S_DELTA : IQ1S_DELTA));
      for (let l = 0; l < 4; l++, y += 8) put1(out, y, l < 2 ? dl1 : dl2, idx[l], delta[l]);
    }
  }
}

// needsImatrix mirrors ggml_quantize_requires_imatrix (IQ2_XXS, IQ2_XS, IQ1_S).
const decodeOnly = (
  typeSize: number,
  dequantize: (b: Uint8Array, out: Float32Array) => void,
  needsImatrix = false,
): GgmlCodec => ({ blockSize: QK_K, typeSize, needsImatrix, dequantize });

export const IQ_GRID_CODECS = {
  IQ2_XXS: decodeOnly(66, dequantizeIq2Xxs, true),
  IQ2_XS: decodeOnly(74, dequantizeIq2Xs, true),
  IQ2_S: decodeOnly(82, dequantizeIq2S),
  IQ3_XXS: decodeOnly(98, dequantizeIq3Xxs),
  IQ3_S: decodeOnly(110, dequantizeIq3S),
  IQ1_S: decodeOnly(50, dequantizeIq1S, true),
  IQ1_M: decodeOnly(56, dequantizeIq1M),
} satisfies Record<string, GgmlCodec>;
