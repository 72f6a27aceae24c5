// Small float formats: FP8 E4M3 (the OCP/NVIDIA "fn" variant) and E5M2, FP6 E2M3/E3M2 and FP4 E2M1
// (OCP MX elements), UE4M3 (E4M3 without sign, the NVFP4 block-scale encoding) and E8M0 (MX scales).
// Encoding rounds to nearest, ties to even (on the code, i.e. on the mantissa's last bit), with
// subnormals. Special values, per format:
//   'ieee' (E5M2): exponent all ones is Inf (mantissa 0) or NaN; overflow gives ±Inf, or ±max when saturating.
//   'fn'   (E4M3, UE4M3): no Inf; only S.1111.111 is NaN; overflow and ±Inf give NaN, or ±max when saturating.
//   'none' (E2M1, E2M3, E3M2): no Inf or NaN; encoding always saturates; NaN input throws.
// NaN encodes as the format's NaN with the sign kept (E4M3 0x7f/0xff, E5M2 0x7e/0xfe).
// A value overflows when it ROUNDS to something above max (E4M3: 464 → 448 by ties-to-even, 465 → NaN).
// The fast path is a table lookup (binary search over the positive values); encodeMiniRef is the
// arithmetic reference, and the tests compare both over every code and every midpoint.

import { NumericError } from '../core/errors.js';
import { roundHalfEven } from './round.js';

export interface MiniFloatFormat {
  name: 'E4M3' | 'E5M2' | 'E2M1' | 'E2M3' | 'E3M2' | 'UE4M3';
  ebits: number;
  mbits: number;
  bias: number;
  specials: 'ieee' | 'fn' | 'none';
  /** false: no sign bit (codes are 0 … 2^(ebits+mbits) − 1) */
  signed: boolean;
}

export const E4M3: MiniFloatFormat = { name: 'E4M3', ebits: 4, mbits: 3, bias: 7, specials: 'fn', signed: true };
export const E5M2: MiniFloatFormat = { name: 'E5M2', ebits: 5, mbits: 2, bias: 15, specials: 'ieee', signed: true };
export const E2M1: MiniFloatFormat = { name: 'E2M1', ebits: 2, mbits: 1, bias: 1, specials: 'none', signed: true };
export const E2M3: MiniFloatFormat = { name: 'E2M3', ebits: 2, mbits: 3, bias: 1, specials: 'none', signed: true };
export const E3M2: MiniFloatFormat = { name: 'E3M2', ebits: 3, mbits: 2, bias: 3, specials: 'none', signed: true };
export const UE4M3: MiniFloatFormat = { name: 'UE4M3', ebits: 4, mbits: 3, bias: 7, specials: 'fn', signed: false };

export interface EncodeOptions {
  /** clamp overflow (and ±Inf) to ±max instead of producing Inf/NaN; forced for formats without specials */
  saturate?: boolean;
}

/** Total bits of a code. */
export function codeBits(f: MiniFloatFormat): number {
  return f.ebits + f.mbits + (f.signed ? 1 : 0);
}

/** Largest positive finite code (= its index: positive codes are ordered like their values). */
function maxPosCode(f: MiniFloatFormat): number {
  const top = (1 << (f.ebits + f.mbits)) - 1;
  if (f.specials === 'ieee') return (((1 << f.ebits) - 1) << f.mbits) - 1;
  if (f.specials === 'fn') return top - 1;
  return top;
}

/** Value of a code (slow, exact); NaN for NaN codes. */
function decodeSlow(f: MiniFloatFormat, code: number): number {
  const mag = code & ((1 << (f.ebits + f.mbits)) - 1);
  const neg = f.signed && code >> (f.ebits + f.mbits) === 1;
  const e = mag >> f.mbits;
  const m = mag & ((1 << f.mbits) - 1);
  const eMax = (1 << f.ebits) - 1;
  let v: number;
  if (f.specials === 'ieee' && e === eMax) v = m ? NaN : Infinity;
  else if (f.specials === 'fn' && mag === (1 << (f.ebits + f.mbits)) - 1) v = NaN;
  else if (e === 0) v = m * 2 ** (1 - f.bias - f.mbits);
  else v = (1 + m / (1 << f.mbits)) * 2 ** (e - f.bias);
  return neg ? -v : v;
}

interface Tables {
  /** [2^bits] value of every code */
  decode: Float32Array;
  /** [P + 2] positive values by code 0 … P, then the virtual next value (the overflow boundary) */
  pos: Float64Array;
  maxCode: number;
  max: number;
  signBit: number;
  nanCode: number;
}

const TABLES = new Map<string, Tables>();

function tables(f: MiniFloatFormat): Tables {
  let t = TABLES.get(f.name);
  if (t) return t;
  const n = 1 << codeBits(f);
  const decode = new Float32Array(n);
  for (let c = 0; c < n; c++) decode[c] = decodeSlow(f, c);
  const P = maxPosCode(f);
  const pos = new Float64Array(P + 2);
  for (let c = 0; c <= P; c++) pos[c] = decode[c];
  pos[P + 1] = pos[P] + (pos[P] - pos[P - 1]); // same binade: one more ulp
  const signBit = f.signed ? 1 << (f.ebits + f.mbits) : 0;
  const nanCode = f.specials === 'ieee' ? (((1 << f.ebits) - 1) << f.mbits) | (1 << (f.mbits - 1)) : f.specials === 'fn' ? P + 1 : -1;
  t = { decode, pos, maxCode: P, max: pos[P], signBit, nanCode };
  TABLES.set(f.name, t);
  return t;
}

/**
 * What a table-driven encoder needs (the WebAssembly kernel of quant/minifloat-kernel.ts): the
 * positive values by code 0 … P then the overflow boundary [P + 2], P, the sign bit and the NaN
 * code (−1: none).
 */
export function encodeTables(f: MiniFloatFormat): { pos: Float64Array; maxCode: number; signBit: number; nanCode: number } {
  const t = tables(f);
  return { pos: t.pos, maxCode: t.maxCode, signBit: t.signBit, nanCode: t.nanCode };
}

/** Largest finite value of the format. */
export function maxFinite(f: MiniFloatFormat): number {
  return tables(f).max;
}

/** Smallest positive (subnormal) value. */
export function minSubnormal(f: MiniFloatFormat): number {
  return 2 ** (1 - f.bias - f.mbits);
}

/** Decoded value of every code, indexed by code (Float32Array [2^bits]). */
export function decodeTable(f: MiniFloatFormat): Float32Array {
  return tables(f).decode;
}

export function decodeMini(f: MiniFloatFormat, code: number): number {
  return tables(f).decode[code];
}

function specialCode(f: MiniFloatFormat, t: Tables, x: number, neg: boolean, saturate: boolean): number {
  const sign = neg ? t.signBit : 0;
  if (Number.isNaN(x)) {
    if (t.nanCode < 0) {
      throw new NumericError('non_finite', `${f.name} has no NaN encoding`, { expected: 'a finite number', found: 'NaN' });
    }
    return sign | t.nanCode;
  }
  if (!f.signed && neg) return 0; // unsigned formats clamp negatives to 0
  if (saturate || f.specials === 'none') return sign | t.maxCode;
  if (f.specials === 'ieee') return sign | (((1 << f.ebits) - 1) << f.mbits); // ±Inf
  return sign | t.nanCode;
}

/** Encode to the nearest code, ties to even (fast path: binary search over the value table). */
export function encodeMini(f: MiniFloatFormat, x: number, opts: EncodeOptions = {}): number {
  const t = tables(f);
  const neg = x < 0 || Object.is(x, -0);
  const a = Math.abs(x);
  const pos = t.pos;
  const P = t.maxCode;
  if (!(a < pos[P + 1])) return specialCode(f, t, x, neg, opts.saturate ?? false); // NaN, Inf, ≥ overflow boundary
  if (!f.signed && neg) return 0;
  // largest k with pos[k] ≤ a
  let lo = 0;
  let hi = P + 1;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (pos[mid] <= a) lo = mid;
    else hi = mid;
  }
  let k = lo;
  const dl = a - pos[lo];
  const dh = pos[lo + 1] - a;
  if (dh < dl || (dh === dl && (lo & 1) === 1)) k = lo + 1;
  if (k > P) return specialCode(f, t, x, neg, opts.saturate ?? false);
  return (neg ? t.signBit : 0) | k;
}

/** Exact floor(log2(a)) for a > 0 finite. */
export function floorLog2(a: number): number {
  let e = Math.floor(Math.log2(a));
  if (2 ** e > a) e -= 1;
  else if (2 ** (e + 1) <= a) e += 1;
  return e;
}

/** Arithmetic reference encoder (slow): the same contract as encodeMini. */
export function encodeMiniRef(f: MiniFloatFormat, x: number, opts: EncodeOptions = {}): number {
  const t = tables(f);
  const neg = x < 0 || Object.is(x, -0);
  if (!Number.isFinite(x)) return specialCode(f, t, x, neg, opts.saturate ?? false);
  if (!f.signed && neg) return 0;
  const sign = neg ? t.signBit : 0;
  const a = Math.abs(x);
  if (a === 0) return sign;
  const emin = 1 - f.bias;
  let e = Math.max(floorLog2(a), emin);
  let m = roundHalfEven(a / 2 ** (e - f.mbits)); // exact division by a power of two
  if (m === 2 ** (f.mbits + 1)) {
    e += 1;
    m = 2 ** f.mbits;
  }
  const v = m * 2 ** (e - f.mbits);
  if (v > t.max) return specialCode(f, t, x, neg, opts.saturate ?? false);
  if (m < 2 ** f.mbits) return sign | m; // subnormal (e = emin)
  return sign | ((e + f.bias) << f.mbits) | (m - 2 ** f.mbits);
}

/** Round to the nearest representable value (saturating): fake-quant to the format. */
export function roundToMini(f: MiniFloatFormat, x: number): number {
  return tables(f).decode[encodeMini(f, x, { saturate: true })];
}

export function encodeMiniArray(f: MiniFloatFormat, src: Float32Array, opts: EncodeOptions = {}, out = new Uint8Array(src.length)): Uint8Array {
  for (let i = 0; i < src.length; i++) out[i] = encodeMini(f, src[i], opts);
  return out;
}

export function decodeMiniArray(f: MiniFloatFormat, codes: Uint8Array, out = new Float32Array(codes.length)): Float32Array {
  const d = tables(f).decode;
  for (let i = 0; i < codes.length; i++) out[i] = d[codes[i]];
  return out;
}

// ---- E8M0: unsigned power of two, 2^(code − 127); 0xFF is NaN; no zero, no sign (OCP MX scales).

export const E8M0_NAN = 0xff;

export function decodeE8M0(code: number): number {
  return code === E8M0_NAN ? NaN : 2 ** (code - 127);
}

/** E8M0 code for the power of two 2^e, clamping e to the representable [−127, 127]. */
export function encodeE8M0Exp(e: number): number {
  return Math.min(254, Math.max(0, e + 127));
}

/** E8M0 code for a positive value: the power of two at or below it (floor, as MX scale selection does). */
export function encodeE8M0Floor(x: number): number {
  if (Number.isNaN(x)) return E8M0_NAN;
  if (!(x > 0)) return 0;
  if (x === Infinity) return 254;
  return encodeE8M0Exp(floorLog2(x));
}
