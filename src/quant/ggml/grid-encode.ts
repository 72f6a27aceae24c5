// Exact ggml blocks for weights that already lie on a symmetric integer grid: value = step_row ·
// level with an fp16-exact step per row and small integer levels (what QAT produces). ggml's own
// quantizers search a scale from the data and would move such weights; these encoders write the
// scale and codes directly, so ggml's to_float returns step·level bit for bit:
//   Q4_0  (32/block):   d = step, q = level + 8                         levels [−8, 7]
//   Q4_K  (256/block):  d = dmin = step, sc = 1, m = 8, q = level + 8   levels [−8, 7]
//   Q3_K  (256/block):  d = step, 6-bit sub-scale 33 (i.e. +1), q = level + 4      levels [−4, 3]
//   Q2_K  (256/block):  d = dmin = step, sc = 2, m = 3, q = (level + 3)/2           levels {−3, −1, 1, 3}
//   TQ2_0 (256/block):  d = step, q = level + 1 (2 bits)                 levels [−1, 1]
//   TQ1_0 (256/block):  d = step, trits level + 1, base-3 packed         levels [−1, 1]
// Why exact in float32: every product the dequantizers form is step times an integer of at most
// 4 bits (Q2_K: 2·step·q − 3·step, each term and the difference a multiple of step below 2^4·step),
// and an fp16 step has 11 significant bits, so every intermediate fits in float32's 24.
// Legend: N = rows, K = values per row (a multiple of the block size), QK = block size.

import { GGML_TYPES } from '../../core/dtype.js';
import { ConfigError, NumericError, ShapeError } from '../../core/errors.js';
import { f16ToF32, f32ToF16 } from '../../numerics/float16.js';
import { putF16 } from './common.js';
import { q2_KEncode, q3_KEncode, type KGroupScales } from './kquants-q2-q3-q6.js';
import { k45Encode, type K45Scales } from './kquants-q4-q5.js';
import { qx_0Encode } from './legacy.js';

export type GridGgmlType = 'Q4_0' | 'Q4_K' | 'Q3_K' | 'Q2_K' | 'TQ2_0' | 'TQ1_0';
export const GRID_GGML_TYPES: readonly GridGgmlType[] = ['Q4_0', 'Q4_K', 'Q3_K', 'Q2_K', 'TQ2_0', 'TQ1_0'];

/** The levels a container holds: lo..hi, every integer, or only odd ones (Q2_K's shifted grid). */
export const GRID_LEVELS: Record<GridGgmlType, { lo: number; hi: number; odd: boolean }> = {
  Q4_0: { lo: -8, hi: 7, odd: false },
  Q4_K: { lo: -8, hi: 7, odd: false },
  Q3_K: { lo: -4, hi: 3, odd: false },
  Q2_K: { lo: -3, hi: 3, odd: true },
  TQ2_0: { lo: -1, hi: 1, odd: false },
  TQ1_0: { lo: -1, hi: 1, odd: false },
};

/** Whether `type` holds every level in [lo, hi] (odd-only when `odd`), given K values per row. */
export function gridTypeFits(type: GridGgmlType, lo: number, hi: number, odd: boolean, K: number): boolean {
  const g = GRID_LEVELS[type];
  return K % GGML_TYPES[type].blockSize === 0 && lo >= g.lo && hi <= g.hi && (odd || !g.odd);
}

export const isF16Exact = (x: number): boolean => f16ToF32(f32ToF16(x)) === x;

/**
 * Levels of grid values: level = x / step of its row, checked to be an integer with
 * fround(step·level) === x (throws NumericError 'mismatch' otherwise). x: [N, K], steps: [N].
 */
export function gridLevels(x: Float32Array, steps: ArrayLike<number>, N: number, K: number, name?: string): Int8Array {
  const out = new Int8Array(N * K);
  for (let n = 0; n < N; n++) {
    const s = steps[n];
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      const l = s === 0 ? 0 : Math.round(x[i] / s);
      if (Math.fround(s * l) !== x[i] || l < -128 || l > 127) {
        throw new NumericError('mismatch', 'value is not on its row grid step·integer', { tensor: name, index: i, expected: `a multiple of ${s}`, found: x[i] });
      }
      out[i] = l;
    }
  }
  return out;
}

const KQ = 256;

function pack2bitHalves(q: (j: number) => number, out: Uint8Array, ob: number): void {
  // byte j/4 + m of each 128-value half holds elements m + 32n at bits 2n
  for (let j = 0; j < KQ; j += 128) {
    for (let m = 0; m < 32; m++) out[ob + j / 4 + m] = q(j + m) | (q(j + m + 32) << 2) | (q(j + m + 64) << 4) | (q(j + m + 96) << 6);
  }
}

/** A byte of base-3 digits (first = most significant) as ggml stores them: ceil(v·256/243). */
const tritByte = (v: number): number => Math.floor((v * 256 + 242) / 243);

function encodeTq1Block(L: Uint8Array, out: Uint8Array, ob: number): void {
  // qs[0..32): elements m + 32n of the first 160; qs[32..48): m + 16n of the next 80;
  // qh[4]: elements 240 + j + 4m, four trits shifted up one place
  for (let m = 0; m < 32; m++) {
    let v = 0;
    for (let n = 0; n < 5; n++) v = v * 3 + L[m + 32 * n];
    out[ob + m] = tritByte(v);
  }
  for (let m = 0; m < 16; m++) {
    let v = 0;
    for (let n = 0; n < 5; n++) v = v * 3 + L[160 + m + 16 * n];
    out[ob + 32 + m] = tritByte(v);
  }
  for (let j = 0; j < 4; j++) {
    let v = 0;
    for (let m = 0; m < 4; m++) v = v * 3 + L[240 + j + 4 * m];
    out[ob + 48 + j] = tritByte(v * 3);
  }
}

/**
 * ggml blocks of `type` whose dequantization is exactly fround(steps[n]·levels[n, k]).
 * steps: [N], each fp16-exact; levels: [N, K] within GRID_LEVELS[type]. Returns N·K/QK blocks.
 */
export function encodeGridRows(type: GridGgmlType, steps: ArrayLike<number>, levels: Int8Array, N: number, K: number, name?: string): Uint8Array {
  const { blockSize: QK, typeSize: W } = GGML_TYPES[type];
  if (K % QK !== 0) throw new ShapeError('shape_mismatch', `${type} rows must be whole blocks`, { tensor: name, field: 'K', expected: `a multiple of ${QK}`, found: K });
  if (levels.length !== N * K || steps.length !== N) {
    throw new ShapeError('shape_mismatch', 'levels/steps do not match [N, K]', { tensor: name, expected: `${N * K} levels, ${N} steps`, found: `${levels.length} levels, ${steps.length} steps` });
  }
  const g = GRID_LEVELS[type];
  for (let n = 0; n < N; n++) {
    if (!Number.isFinite(steps[n]) || !isF16Exact(steps[n])) {
      throw new NumericError('mismatch', 'grid step is not exactly representable in fp16', { tensor: name, index: n, expected: 'an fp16 value', found: steps[n] });
    }
  }
  for (let i = 0; i < levels.length; i++) {
    const l = levels[i];
    if (l < g.lo || l > g.hi || (g.odd && (l & 1) === 0)) {
      throw new ConfigError('unsupported', `${type} cannot hold this level`, { tensor: name, index: i, expected: `${g.odd ? 'odd ' : ''}levels in [${g.lo}, ${g.hi}]`, found: l });
    }
  }
  const nb = K / QK;
  const out = new Uint8Array(N * nb * W);
  const L = new Uint8Array(QK);
  for (let n = 0; n < N; n++) {
    const s = steps[n];
    for (let b = 0; b < nb; b++) {
      const o = n * K + b * QK;
      const ob = (n * nb + b) * W;
      switch (type) {
        case 'Q4_0':
          for (let j = 0; j < QK; j++) L[j] = levels[o + j] + 8;
          qx_0Encode(4, L, s, out, ob);
          break;
        case 'Q4_K': {
          for (let j = 0; j < QK; j++) L[j] = levels[o + j] + 8;
          const p: K45Scales = { d: s, dmin: s, sc: new Uint8Array(8).fill(1), mn: new Uint8Array(8).fill(8) };
          k45Encode(15, L, p, out, ob);
          break;
        }
        case 'Q3_K': {
          for (let j = 0; j < QK; j++) L[j] = levels[o + j] + 4;
          const p: KGroupScales = { d: s, dmin: 0, sc: new Int16Array(16).fill(33), mn: new Int16Array(16) };
          q3_KEncode(L, p, out, ob);
          break;
        }
        case 'Q2_K': {
          for (let j = 0; j < QK; j++) L[j] = (levels[o + j] + 3) >> 1;
          const p: KGroupScales = { d: s, dmin: s, sc: new Int16Array(16).fill(2), mn: new Int16Array(16).fill(3) };
          q2_KEncode(L, p, out, ob);
          break;
        }
        case 'TQ2_0':
          pack2bitHalves((j) => levels[o + j] + 1, out, ob);
          putF16(out, ob + 64, s);
          break;
        case 'TQ1_0':
          for (let j = 0; j < QK; j++) L[j] = levels[o + j] + 1;
          encodeTq1Block(L, out, ob);
          putF16(out, ob + 52, s);
          break;
      }
    }
  }
  return out;
}
