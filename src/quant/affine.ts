// Affine integer quantization, 1–8 bits: the one definition of every `int…` scheme. RTN, GPTQ's
// grid (algorithms/grid.ts IntGrid calls intParams and rounds as intQuantizeValue does), QAT and
// low-precision training, the engine's fake-quant weights and every exporter use these functions
// (torchao's choose_qparams_affine → quantize_affine → dequantize_affine, in that order).
//   symmetric:  q = clamp(round(x/s), −2^(b−1), 2^(b−1) − 1),  x̂ = s·q, with
//               s = amax / (2^(b−1) − ½) = 2·amax/(2^b − 1)  (default: the 2^b codes span [−amax, amax];
//                   torchao MappingType.SYMMETRIC, torch.ao's symmetric observers, the GPTQ reference
//                   Quantizer and llm-compressor all choose this scale; +amax rounds to 2^(b−1) and
//                   clamps to 2^(b−1) − 1, half a step short)
//               s = amax / (2^(b−1) − 1)      (`restricted`: amax lands exactly on 2^(b−1) − 1, the code
//                   −2^(b−1) only takes clipped or supplied-scale values; ParetoQ's LSQ initialisation)
//   asymmetric: q = clamp(round(x/s) + z, 0, 2^b − 1),         s = (hi − lo) / (2^b − 1), x̂ = s·(q − z)
//               with lo = min(min x, 0), hi = max(max x, 0) so that 0 is exactly representable.
// Packed formats that store unsigned codes with a zero point (GPTQ, compressed-tensors, MatMulNBits)
// map symmetric codes through pack.ts toUnsignedCodes (u = q + 2^(b−1), zero point 2^(b−1)): a change
// of representation, not of the grid.
// The scale is rounded to its storage dtype before the codes are computed (scale.ts: nearest for
// symmetric, down for asymmetric), and x/s is
// computed in float64, then rounded with the scheme's mode (half_even: torch.round; half_away: C round).
// Rounding the asymmetric scale DOWN makes the codes of every group span exactly [0, 2^b − 1], which
// is what makes fakeQuant idempotent: a second pass sees the same range and recovers the same s and z.
// Restricted symmetric grids are idempotent too (amax stays on code 2^(b−1) − 1); full-range ones are
// not (the first pass moves +amax half a step in and −amax half a step out).
// Legend: N = rows, K = contiguous axis, S = number of scales (layout.ts).

import { ConfigError } from '../core/errors.js';
import { roundHalfAwayFromZero, roundHalfEven } from '../numerics/round.js';
import { groupMinMax, scaleLayout, type ScaleLayout } from './layout.js';
import { clipRatios } from './check.js';
import { roundScale, SCALE_SIG_BITS } from './scale.js';
import type { IntScheme, Rounding, ScaleDType } from './scheme.js';
import type { IntQuantized, QuantizeOptions } from './types.js';

export function rounder(mode: Rounding): (x: number) => number {
  return mode === 'half_away' ? roundHalfAwayFromZero : roundHalfEven;
}

/** Largest relative shortfall of a rounded-down scale (bf16's normal precision); beyond it, round up. */
const SCALE_DOWN_MAX_REL = 2 ** -7;

/** Code range of an int scheme: [qmin, qmax]. */
export function intRange(scheme: Pick<IntScheme, 'bits' | 'symmetric'>): { qmin: number; qmax: number } {
  const b = scheme.bits;
  if (!Number.isInteger(b) || b < 1 || b > 8) {
    throw new ConfigError('bad_option', 'int scheme bits must be 1–8', { field: 'bits', found: b });
  }
  if (scheme.symmetric) {
    if (b < 2) {
      throw new ConfigError('bad_option', 'a symmetric 1-bit int grid has no positive level', {
        field: 'bits',
        found: b,
        hint: "use 'binary' (sign·mean|w|) or an asymmetric 1-bit scheme",
      });
    }
    return { qmin: -(2 ** (b - 1)), qmax: 2 ** (b - 1) - 1 };
  }
  return { qmin: 0, qmax: 2 ** b - 1 };
}

/** Steps between 0 and a symmetric grid's amax: 2^(b−1) − ½ (full range) or 2^(b−1) − 1 (restricted). */
export function symmetricSteps(scheme: Pick<IntScheme, 'bits' | 'symmetric' | 'restricted'>): number {
  const { qmax } = intRange(scheme);
  return scheme.restricted ? qmax : qmax + 0.5;
}

/**
 * Scale and zero point for one group with range [lo, hi] (already clipped). Exposed for PTQ algorithms
 * (GPTQ computes qparams per group as it sweeps columns) so they land on exactly this grid.
 * `scaleDtype: null` keeps the exact float64 scale: for algorithm tests against float64 reference
 * ports only (no file stores such a scale).
 */
export function intParams(
  lo: number,
  hi: number,
  scheme: Pick<IntScheme, 'bits' | 'symmetric' | 'rounding' | 'restricted'> & { scaleDtype: ScaleDType | null },
): { scale: number; zero: number } {
  const { qmax } = intRange(scheme);
  const dt = scheme.scaleDtype;
  const store = (x: number, dir: 'nearest' | 'down' | 'up'): number => (dt === null ? x : roundScale(x, dt, dir));
  if (scheme.symmetric) {
    const amax = Math.max(Math.abs(lo), Math.abs(hi));
    const steps = symmetricSteps(scheme);
    const exact = amax / steps;
    let s = store(exact, 'nearest');
    // a subnormal scale dtype value can sit far below the exact scale and clip amax: round up where
    // the clip exceeds what nearest rounding of a normal value can cause (restricted: half a step;
    // full range: its own half step plus the dtype's relative rounding)
    const limit = scheme.restricted ? steps + 0.5 : steps * (1 + (dt === null ? 0 : 2 ** (1 - SCALE_SIG_BITS[dt])));
    if (amax / s > limit) s = store(exact, 'up');
    return { scale: s, zero: 0 };
  }
  lo = Math.min(lo, 0);
  hi = Math.max(hi, 0);
  const exact = (hi - lo) / qmax;
  let s = store(exact, 'down');
  if (s === 0) return { scale: 0, zero: 0 };
  // subnormal scale dtype values lose relative precision: rounding down would clip hi by many steps,
  // so round up there (idempotence then holds only up to that group's last code)
  if ((exact - s) / exact > SCALE_DOWN_MAX_REL) s = store(exact, 'up');
  // s ≤ (hi − lo)/qmax (rounded down), so with z = round(−lo/s) lo lands on code 0 unclamped and hi on
  // a code ≥ qmax: the codes span exactly [0, qmax] and a second pass recovers s and z (idempotence).
  // The price: hi may be clipped by at most qmax·(1 − s/s_exact) steps (0 for exact scales).
  const z = rounder(scheme.rounding)(-lo / s);
  return { scale: s, zero: Math.min(qmax, Math.max(0, z)) };
}

/** Code for one value on the grid (scale, zero). Scale 0 maps everything to the zero point. */
export function intQuantizeValue(
  x: number,
  scale: number,
  zero: number,
  scheme: Pick<IntScheme, 'bits' | 'symmetric' | 'rounding'>,
): number {
  const { qmin, qmax } = intRange(scheme);
  if (scale === 0) return zero;
  const q = rounder(scheme.rounding)(x / scale) + zero;
  return q < qmin ? qmin : q > qmax ? qmax : q;
}

function groupRanges(w: Float32Array, lay: ScaleLayout, opts: QuantizeOptions): { mins: Float64Array; maxs: Float64Array } {
  const { mins, maxs } = groupMinMax(w, lay);
  const ratios = clipRatios(opts, lay.nScales);
  for (let s = 0; s < lay.nScales; s++) {
    let lo = mins[s];
    let hi = maxs[s];
    if (opts.clip) {
      lo = Math.max(lo, opts.clip.min);
      hi = Math.min(hi, opts.clip.max);
      if (lo > hi) lo = hi = 0;
    }
    if (ratios) {
      lo *= ratios[s];
      hi *= ratios[s];
    }
    mins[s] = lo;
    maxs[s] = hi;
  }
  return { mins, maxs };
}

// Hot loops: q = round(x/s) + z clamped to [qmin, qmax]. x/s is clamped to [qmin − z, qmax − z] (integers)
// BEFORE rounding, which gives the same result (rounding is monotone and fixes integers). Rounding uses
// the FPU: for |t| < 2^51, (t + 1.5·2^52) − 1.5·2^52 is t rounded half-to-even (the sum lands where
// the float64 ulp is 1), the same trick as ggml's nearest_int, ~7× faster than Math.round plus a tie fix.
// The slow reference is intQuantizeValue (numerics/round.ts), compared by test/quant/properties.

/** 1.5·2^52: adding and subtracting it rounds a float64 of magnitude < 2^51 half-to-even. */
const RNE_MAGIC = 6755399441055744;

function encodeRunEven(
  w: Float32Array, codes: Int8Array | Uint8Array, off: number, end: number, s: number, z: number, qmin: number, qmax: number,
): void {
  const lo = qmin - z;
  const hi = qmax - z;
  for (let i = off; i < end; i++) {
    let t = w[i] / s;
    t = t < lo ? lo : t > hi ? hi : t;
    codes[i] = t + RNE_MAGIC - RNE_MAGIC + z;
  }
}

function encodeRunAway(
  w: Float32Array, codes: Int8Array | Uint8Array, off: number, end: number, s: number, z: number, qmin: number, qmax: number,
): void {
  const lo = qmin - z;
  const hi = qmax - z;
  for (let i = off; i < end; i++) {
    let t = w[i] / s;
    t = t < lo ? lo : t > hi ? hi : t;
    const a = t < 0 ? -t : t;
    let r = a + RNE_MAGIC - RNE_MAGIC;
    if (r - a === -0.5) r += 1; // a tie went down to even: away from zero is up
    codes[i] = (t < 0 ? -r : r) + z;
  }
}

function checkSupplied(found: number, expected: number, field: string, name?: string): void {
  if (found !== expected) {
    throw new ConfigError('bad_option', `wrong number of supplied ${field}`, { tensor: name, field, expected, found });
  }
}

/** Quantize onto an int grid. Inputs are already validated (finite, shape). */
export function quantizeInt(w: Float32Array, shape: number[], scheme: IntScheme, opts: QuantizeOptions = {}): IntQuantized {
  const lay = scaleLayout(shape, scheme.granularity, opts.name);
  const { qmin, qmax } = intRange(scheme);
  const { mins, maxs } = opts.scales ? { mins: new Float64Array(0), maxs: new Float64Array(0) } : groupRanges(w, lay, opts);
  const scales = new Float32Array(lay.nScales);
  const zerosF = new Float64Array(lay.nScales);
  if (opts.scales) {
    checkSupplied(opts.scales.length, lay.nScales, 'scales', opts.name);
    if (!scheme.symmetric) {
      if (!opts.zeros) throw new ConfigError('bad_option', 'asymmetric scheme with supplied scales needs zeros', { tensor: opts.name, field: 'zeros' });
      checkSupplied(opts.zeros.length, lay.nScales, 'zeros', opts.name);
    }
    for (let s = 0; s < lay.nScales; s++) {
      scales[s] = roundScale(opts.scales[s], scheme.scaleDtype, 'nearest');
      zerosF[s] = scheme.symmetric ? 0 : Math.min(qmax, opts.zeros![s]);
    }
  } else {
    for (let s = 0; s < lay.nScales; s++) {
      const p = intParams(mins[s], maxs[s], scheme);
      scales[s] = p.scale; // exact: roundScale returns a value representable in f32
      zerosF[s] = p.zero;
    }
  }
  const codes = scheme.symmetric ? new Int8Array(w.length) : new Uint8Array(w.length);
  const away = scheme.rounding === 'half_away';
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const si = r % lay.mod;
    const s = scales[si];
    const z = zerosF[si];
    const end = off + lay.runLen;
    if (s === 0) codes.fill(z, off, end);
    else if (away) encodeRunAway(w, codes, off, end, s, z, qmin, qmax);
    else encodeRunEven(w, codes, off, end, s, z, qmin, qmax);
  }
  const out: IntQuantized = { kind: 'int', scheme, shape: [...shape], codes, scales, scaleShape: lay.scaleShape };
  if (!scheme.symmetric) out.zeros = Uint8Array.from(zerosF);
  return out;
}

export function dequantizeInt(q: IntQuantized, out = new Float32Array(q.codes.length)): Float32Array {
  const lay = scaleLayout(q.shape, q.scheme.granularity);
  const { codes, scales, zeros } = q;
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const si = r % lay.mod;
    const s = scales[si];
    const z = zeros ? zeros[si] : 0;
    for (let i = off, end = off + lay.runLen; i < end; i++) out[i] = s * (codes[i] - z);
  }
  return out;
}

/** Bits per weight: code bits plus the scale (and zero-point) storage amortised over the tensor. */
export function intBitsPerWeight(scheme: IntScheme, shape: number[]): number {
  const lay = scaleLayout(shape, scheme.granularity);
  const n = lay.nRuns * lay.runLen;
  if (n === 0) return scheme.bits;
  const scaleBits = scheme.scaleDtype === 'F32' ? 32 : 16;
  const perScale = scaleBits + (scheme.symmetric ? 0 : scheme.bits);
  return scheme.bits + (lay.nScales * perScale) / n;
}
