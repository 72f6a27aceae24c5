// IEEE 754 binary16 (FP16) and bfloat16 conversions, bit-exact.
// Rounding: round-to-nearest-even everywhere (what ggml's GGML_FP32_TO_FP16 and torch do).
// f32 → f16 handles subnormals, overflow to ±Inf, and NaN (quiet NaN 0x7e00, sign kept).
// f32 → bf16 rounds to nearest even; NaN becomes a quiet NaN with the sign kept (as ggml does).

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** Bits of a float32 value (the argument is first rounded to float32). */
export function f32Bits(x: number): number {
  f32[0] = x;
  return u32[0];
}

export function f32FromBits(bits: number): number {
  u32[0] = bits >>> 0;
  return f32[0];
}

/** float32 → binary16 bits, round-to-nearest-even. */
export function f32ToF16(x: number): number {
  const b = f32Bits(x);
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  let mant = b & 0x7fffff;
  if (exp === 0xff) {
    // Inf or NaN
    return mant ? sign | 0x7e00 : sign | 0x7c00;
  }
  // unbiased exponent
  const e = exp - 127;
  if (e > 15) return sign | 0x7c00; // overflow → Inf
  if (e >= -14) {
    // normal f16: keep 10 mantissa bits, round the 13 dropped bits to nearest even
    let h = ((e + 15) << 10) | (mant >>> 13);
    const rest = mant & 0x1fff;
    if (rest > 0x1000 || (rest === 0x1000 && (h & 1))) h += 1; // may carry into exponent (ok: → Inf at top)
    return sign | h;
  }
  if (e < -25) return sign; // underflow to ±0 (values below half the smallest subnormal)
  // subnormal f16: value = mant24 * 2^(e-23); f16 subnormal unit = 2^-24
  mant |= 0x800000; // implicit bit
  const shift = -e - 14 + 13; // number of bits to drop: (e-23) - (-24) = e+1 → drop (13 + (-14 - e))
  let h = mant >>> shift;
  const rem = mant & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  if (rem > half || (rem === half && (h & 1))) h += 1;
  return sign | h;
}

const F16_TABLE = buildF16Table();

function buildF16Table(): Float32Array {
  const t = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) t[h] = f16ToF32Slow(h);
  return t;
}

function f16ToF32Slow(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >>> 10) & 0x1f;
  const mant = h & 0x3ff;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant ? NaN : sign * Infinity;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

/** binary16 bits → float32 value (exact; table lookup). NaN payloads collapse to NaN. */
export function f16ToF32(h: number): number {
  return F16_TABLE[h & 0xffff];
}

/** float32 → bfloat16 bits, round-to-nearest-even; NaN → quiet NaN keeping the sign. */
export function f32ToBf16(x: number): number {
  const b = f32Bits(x);
  if ((b & 0x7fffffff) > 0x7f800000) return ((b >>> 16) | 0x40) & 0xffff;
  return ((b + (0x7fff + ((b >>> 16) & 1))) >>> 16) & 0xffff;
}

/** bfloat16 bits → float32 value (exact). */
export function bf16ToF32(h: number): number {
  return f32FromBits((h & 0xffff) << 16);
}

/** Round a value to the nearest float16-representable float32 (fake-quant to F16). */
export function roundToF16(x: number): number {
  return f16ToF32(f32ToF16(x));
}

export function roundToBf16(x: number): number {
  return bf16ToF32(f32ToBf16(x));
}

export function encodeF16Array(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16(src[i]);
  return out;
}

export function decodeF16Array(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = F16_TABLE[src[i]];
  return out;
}

export function encodeBf16Array(src: Float32Array, out = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16(src[i]);
  return out;
}

export function decodeBf16Array(src: Uint16Array, out = new Float32Array(src.length)): Float32Array {
  const o32 = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) o32[i] = src[i] << 16;
  return out;
}
