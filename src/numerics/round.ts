// Rounding modes, named. JS's Math.round rounds half toward +∞, which matches no reference;
// never use it in a codec.

/** Round half to even (banker's rounding): torch.round, numpy.round, ggml's nearest_int. */
export function roundHalfEven(x: number): number {
  const r = Math.round(x);
  // Math.round sends +k.5 up; fix ties so the result is even.
  if (r - x === 0.5 && r % 2 !== 0) return r - 1;
  return r;
}

/** Round half away from zero: C roundf/lroundf (ggml's Q8_0 and TQ types use this). */
export function roundHalfAwayFromZero(x: number): number {
  const a = Math.abs(x);
  let r = Math.floor(a);
  if (a - r >= 0.5) r += 1; // a - floor(a) is exact in binary floating point
  return x < 0 ? -r : r;
}

/** Truncate toward zero, as a C cast (int)x does. */
export function truncToward0(x: number): number {
  return Math.trunc(x);
}

export type RoundingMode = 'half_even' | 'half_away' | 'trunc' | 'floor' | 'stochastic';
