// Per-block hooks for algorithms that choose codes themselves (GPTQ, AWQ search, …) but must
// still emit a valid ggml tensor: a GPTQ-optimised Q4_K tensor is an ordinary Q4_K tensor.
//
// Every hook splits ggml's block quantizer into its three stages:
//   (a) params(x, o, qw, L): the block's scales/mins from data, exactly as ggml chooses them
//       (with qw = importance weights, the imatrix fit of REFERENCE §6.3). x is the whole row
//       ([K]) and o the block's first column, because the legacy types' imatrix weighting uses
//       the row's mean square; qw is indexed like x. K-quants also leave the search levels in L
//       (ggml keeps them for a group whose rounded scale is 0).
//   (b) codes(x, o, p, L): codes of the block's values given the params *as stored* (fp16 d,
//       integer sub-scales): ggml's requantization rule (nearest level; *_0 legacy types
//       truncate x/d + offset + 0.5, Q8_0 rounds half away from zero).
//   (c) encode(L, p, out, ob): the block's bytes.
// and (d) value(p, j, q): the float ggml's to_float returns for code q at value j of the block,
// so an algorithm can do error feedback with the exact dequantized weight.
//
// Bit-exactness: params → codes → encode reproduces quantizeGgml byte for byte for every type
// here without an imatrix, and for the K-quants with one too (ggml requantizes from the stored
// scales). With an imatrix the legacy types' ggml output keeps the search's levels instead of
// (b)'s rule; the bytes are still a valid block of that type.
// Legend: QK = values per block, K = values per row, L = codes ([QK]).

import { f16ToF32, f32ToF16 } from '../../numerics/float16.js';
import { putF16 } from './common.js';
import { makeQkxQuants, makeQxQuants } from './scale-search.js';
import { type KGroupScales, q2_KCodes, q2_KEncode, q2_KParams, q3_KCodes, q3_KEncode, q3_KParams, q6_KCodes, q6_KEncode, q6_KParams } from './kquants-q2-q3-q6.js';
import { type K45Scales, k45Codes, k45Encode, k45Params } from './kquants-q4-q5.js';
import { q8_0Scale, qx_0Codes, qx_0Scale, qx_1Codes, qx_1Params } from './legacy.js';

// Local bindings: calls through an imported binding can cost a getter per call under some loaders.
const fr = Math.fround;

const f16 = (x: number): number => f16ToF32(f32ToF16(x));

export interface BlockHook<P> {
  blockSize: number;
  typeSize: number;
  params(x: Float32Array, o: number, qw: Float32Array | undefined, L: Uint8Array): P;
  codes(x: Float32Array, o: number, p: P, L: Uint8Array): void;
  encode(L: Uint8Array, p: P, out: Uint8Array, ob: number): void;
  value(p: P, j: number, q: number): number;
}

/** Legacy block params: float32 d (and m for *_1), rounded to fp16 only when stored. */
export interface LegacyParams {
  d: number;
  m: number;
}

function rowSigma2(x: Float32Array): number {
  let s = 0;
  for (let j = 0; j < x.length; j++) s = fr(s + fr(x[j] * x[j]));
  return fr(s / x.length);
}

function legacyWeights(x: Float32Array, o: number, qw: Float32Array): Float32Array {
  const s2 = rowSigma2(x);
  const w = new Float32Array(32);
  for (let j = 0; j < 32; j++) w[j] = fr(qw[o + j] * fr(Math.sqrt(fr(s2 + fr(x[o + j] * x[o + j])))));
  return w;
}

function nibbles(bits: 4 | 5, L: Uint8Array, out: Uint8Array, o: number): void {
  if (bits === 5) {
    let qh = 0;
    for (let j = 0; j < 32; j++) qh |= ((L[j] >> 4) & 1) << j;
    for (let k = 0; k < 4; k++) out[o + k] = (qh >>> (8 * k)) & 0xff;
    o += 4;
  }
  for (let j = 0; j < 16; j++) out[o + j] = (L[j] & 15) | ((L[j + 16] & 15) << 4);
}

function qx0Hook(bits: 4 | 5): BlockHook<LegacyParams> {
  const bias = 1 << (bits - 1);
  return {
    blockSize: 32,
    typeSize: bits === 4 ? 18 : 22,
    params: (x, o, qw) => {
      if (!qw) return { d: qx_0Scale(bits, x, o), m: 0 };
      const Ls = new Int8Array(32);
      return { d: makeQxQuants(32, bias, x, Ls, 1, legacyWeights(x, o, qw), o, 0), m: 0 };
    },
    codes: (x, o, p, L) => qx_0Codes(bits, x, o, p.d, L),
    encode: (L, p, out, ob) => {
      putF16(out, ob, p.d);
      nibbles(bits, L, out, ob + 2);
    },
    value: (p, _j, q) => fr((q - bias) * f16(p.d)),
  };
}

function qx1Hook(bits: 4 | 5): BlockHook<LegacyParams> {
  return {
    blockSize: 32,
    typeSize: bits === 4 ? 20 : 24,
    params: (x, o, qw) => {
      if (!qw) return qx_1Params(bits, x, o);
      const L = new Uint8Array(32);
      const r = makeQkxQuants(32, (1 << bits) - 1, x, legacyWeights(x, o, qw), L, new Uint8Array(32), fr(-0.9), fr(0.05), 36, false, o, 0);
      return { d: r.scale, m: -r.min };
    },
    codes: (x, o, p, L) => qx_1Codes(bits, x, o, p.d, p.m, L),
    encode: (L, p, out, ob) => {
      putF16(out, ob, p.d);
      putF16(out, ob + 2, p.m);
      nibbles(bits, L, out, ob + 4);
    },
    value: (p, _j, q) => fr(fr(q * f16(p.d)) + f16(p.m)),
  };
}

const Q8_0_HOOK: BlockHook<LegacyParams> = {
  blockSize: 32,
  typeSize: 34,
  params: (x, o) => ({ d: q8_0Scale(x, o), m: 0 }),
  codes: (x, o, p, L) => {
    const id = p.d !== 0 ? fr(1 / p.d) : 0;
    for (let j = 0; j < 32; j++) {
      const v = fr(x[o + j] * id);
      L[j] = (v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5)) & 0xff;
    }
  },
  encode: (L, p, out, ob) => {
    putF16(out, ob, p.d);
    out.set(L.subarray(0, 32), ob + 2);
  },
  value: (p, _j, q) => fr(((q << 24) >> 24) * f16(p.d)),
};

/** K-quant params keep d/dmin in float32; codes and values use their fp16-stored values. */
const stored236 = (p: KGroupScales): KGroupScales => ({ ...p, d: f16(p.d), dmin: f16(p.dmin) });
const stored45 = (p: K45Scales): K45Scales => ({ ...p, d: f16(p.d), dmin: f16(p.dmin) });

const Q2_K_HOOK: BlockHook<KGroupScales> = {
  blockSize: 256,
  typeSize: 84,
  params: q2_KParams,
  codes: (x, o, p, L) => q2_KCodes(x, o, stored236(p), L),
  encode: q2_KEncode,
  value: (p, j, q) => {
    const g = j >> 4;
    return fr(fr(fr(f16(p.d) * (p.sc[g] & 15)) * q) - fr(f16(p.dmin) * (p.mn[g] & 15)));
  },
};

const Q3_K_HOOK: BlockHook<KGroupScales> = {
  blockSize: 256,
  typeSize: 110,
  params: q3_KParams,
  codes: (x, o, p, L) => q3_KCodes(x, o, stored236(p), L),
  encode: q3_KEncode,
  value: (p, j, q) => fr(fr(f16(p.d) * (p.sc[j >> 4] - 32)) * (q - 4)),
};

const Q6_K_HOOK: BlockHook<KGroupScales> = {
  blockSize: 256,
  typeSize: 210,
  params: q6_KParams,
  codes: (x, o, p, L) => q6_KCodes(x, o, stored236(p), L),
  encode: q6_KEncode,
  value: (p, j, q) => fr(fr(f16(p.d) * p.sc[j >> 4]) * (q - 32)),
};

function k45Hook(nmax: 15 | 31): BlockHook<K45Scales> {
  return {
    blockSize: 256,
    typeSize: nmax === 15 ? 144 : 176,
    params: (x, o, qw, L) => k45Params(nmax, x, o, qw, L),
    codes: (x, o, p, L) => k45Codes(nmax, x, o, stored45(p), L),
    encode: (L, p, out, ob) => k45Encode(nmax, L, p, out, ob),
    value: (p, j, q) => {
      const g = j >> 5;
      return fr(fr(fr(f16(p.d) * p.sc[g]) * q) - fr(f16(p.dmin) * p.mn[g]));
    },
  };
}

/** Block hooks for the legacy types and the K-quants, keyed like GGML_CODECS. */
export const GGML_BLOCK_HOOKS = {
  Q4_0: qx0Hook(4),
  Q5_0: qx0Hook(5),
  Q4_1: qx1Hook(4),
  Q5_1: qx1Hook(5),
  Q8_0: Q8_0_HOOK,
  Q2_K: Q2_K_HOOK,
  Q3_K: Q3_K_HOOK,
  Q4_K: k45Hook(15),
  Q5_K: k45Hook(31),
  Q6_K: Q6_K_HOOK,
};

export type GgmlHookType = keyof typeof GGML_BLOCK_HOOKS;
