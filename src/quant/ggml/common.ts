// Shared pieces of the ggml block codecs: the codec interface, float32 rounding helpers and
// little-endian byte writers.
//
// Bit-exactness with ggml: ggml computes in float32, JS in float64. Every codec applies `fr`
// (Math.fround) at each step where the C code stores or rounds to `float`. A product of two
// float32 values is exact in float64, so `fr(a*b)` equals the C float product; a sum of three
// terms is rounded after each addition, as C does (no FMA contraction; the golden files agree).
//
// Legend: n = values in a row or block, QK = block size, W = bytes per block.

import { f32Bits, f32ToF16, f16ToF32 } from '../../numerics/float16.js';

export const fr = Math.fround;

/**
 * One row of a block type. `quantizeRow` fills `out` ([n/QK * W] bytes) from `x` ([n] values);
 * `qw` ([n]) is the importance-matrix slice for this row's columns, or undefined.
 * `dequantize` decodes `bytes` ([n/QK * W]) into `out` ([n]).
 */
export interface GgmlCodec {
  blockSize: number;
  typeSize: number;
  /** ggml refuses to quantize without an importance matrix (the IQ1/IQ2 types). */
  needsImatrix: boolean;
  quantizeRow?: (x: Float32Array, out: Uint8Array, qw: Float32Array | undefined) => void;
  dequantize: (bytes: Uint8Array, out: Float32Array) => void;
}

/**
 * ggml's `nearest_int`: adds 1.5·2^23 in float32 so the FPU rounds half to even, then reads the
 * integer from the low 23 mantissa bits minus 2^22. `v` must already be a float32 value (apply
 * `fr` first). For |v| < 2^22 that is round-half-to-even; beyond, and for ±Inf/NaN (a scale that
 * overflowed on a subnormal block), ggml's value is what the bit trick gives, reproduced here
 * (NaN → 0, ±Inf → −2^22).
 */
export function nearestInt(v: number): number {
  if (Math.abs(v) < 4194303) {
    const r = Math.round(v);
    return r - v === 0.5 && (r & 1) !== 0 ? r - 1 : r;
  }
  return (f32Bits(Math.fround(v + 12582912)) & 0x7fffff) - 0x400000;
}

/**
 * C's `(int8_t)(float)` as x86-64 compilers emit it (cvttss2si to 32 bits, keep the low byte): the
 * truncated value for |v| < 2^31 wrapped to −128..127, and 0 for ±Inf/NaN/out of range (the
 * "integer indefinite" 0x80000000). ggml's legacy quantizers cast this way; llama.cpp's bytes on a
 * subnormal block (scale 1/d = Inf) follow it.
 */
export function cInt8(v: number): number {
  return Math.abs(v) < 2147483648 ? (Math.trunc(v) << 24) >> 24 : 0;
}

/** C `roundf`: half away from zero. */
export function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/**
 * C's `(int)lroundf(v)` as glibc computes it on x86-64: half away from zero for finite values, and
 * for ±Inf/NaN (x/d on a subnormal block, where 1/d overflowed) LONG_MIN, whose low 32 bits are 0.
 * |v| stays far below 2^31 otherwise in ggml's callers.
 */
export function cLroundf(v: number): number {
  return Number.isFinite(v) ? roundAway(v) : 0;
}

/** Store `x` (rounded to fp16, nearest-even) little-endian at `o`; returns the fp16 value as float. */
export function putF16(out: Uint8Array, o: number, x: number): number {
  const h = f32ToF16(x);
  out[o] = h & 0xff;
  out[o + 1] = h >>> 8;
  return f16ToF32(h);
}

export function getF16(b: Uint8Array, o: number): number {
  return f16ToF32(b[o] | (b[o + 1] << 8));
}

export function clamp(v: number, lo: number, hi: number): number {
  return v < lo ? lo : v > hi ? hi : v;
}

/**
 * ggml's GROUP_MAX_EPS (and the IQ variants): a group whose max |x| is below this is treated as
 * all zero. They are float literals in C (1e-15f, …), so they are compared as float32 values.
 */
export const GROUP_MAX_EPS = Math.fround(1e-15);
export const GROUP_MAX_EPS_IQ3_XXS = Math.fround(1e-8);
export const GROUP_MAX_EPS_IQ2_S = Math.fround(1e-8);
export const GROUP_MAX_EPS_IQ1_M = Math.fround(1e-7);
export const GROUP_MAX_EPS_IQ1_S = Math.fround(1e-12);
