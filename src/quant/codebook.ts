// Non-uniform grids: x̂ = s·book[q], s = absmax of the scale group (rounded to scaleDtype, nearest),
// q = index of the nearest level to x/s (ties to the even index).
//   nf4:    the 16 QLoRA NormalFloat levels (REFERENCE §7, bitsandbytes create_normal_map), one book.
//   log2:   0 and signed powers of two: −2^0 … −2^−(2^(b−1)−2), 0, 2^−(2^(b−1)−1) … 2^0, one book.
//   kmeans: a book per scale group, learned by 1-D Lloyd iterations on x/s (optionally weighted by the
//           per-column importance), k-means++ seeded from opts.seed; levels rounded to scaleDtype.
// Legend: N = rows, K = contiguous axis, S = number of scale groups, L = 2^bits levels.

import { ConfigError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { numel } from '../core/tensor.js';
import { clipRatios } from './check.js';
import { groupMinMax, scaleLayout } from './layout.js';
import { roundScale } from './scale.js';
import type { CodebookScheme, ScaleDType } from './scheme.js';
import type { CodebookQuantized, QuantizeOptions } from './types.js';

/** NF4 levels exactly as REFERENCE §7 lists them (float32 values). */
export const NF4_LEVELS = Float32Array.from([
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635, -0.18477343022823334,
  -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
  0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
]);

export function log2Levels(bits: number): Float32Array {
  if (!Number.isInteger(bits) || bits < 2 || bits > 8) {
    throw new ConfigError('bad_option', 'log2 code book needs 2–8 bits', { field: 'bits', found: bits });
  }
  const h = 2 ** (bits - 1);
  const out: number[] = [];
  for (let k = 0; k <= h - 2; k++) out.push(-(2 ** -k));
  out.push(0);
  for (let k = h - 1; k >= 0; k--) out.push(2 ** -k);
  return Float32Array.from(out.sort((a, b) => a - b));
}

/** Index of the level nearest to v in an ascending book (slice [off, off + L)); ties to the even index. */
export function nearestLevel(book: Float32Array, off: number, L: number, v: number): number {
  let lo = 0;
  let hi = L - 1;
  if (v <= book[off]) return 0;
  if (v >= book[off + hi]) return hi;
  while (hi - lo > 1) {
    const mid = (lo + hi) >> 1;
    if (book[off + mid] <= v) lo = mid;
    else hi = mid;
  }
  const dl = v - book[off + lo];
  const dh = book[off + hi] - v;
  return dh < dl || (dh === dl && (hi & 1) === 0) ? hi : lo;
}

/**
 * The scale of one code-book group with absmax `amax`: amax rounded to the storage dtype (nearest),
 * or up where a subnormal value would fall far below amax and clip the extremes. `null` keeps the
 * exact float64 amax (algorithm tests against float64 references only). Shared with GPTQ's
 * CodebookGrid (algorithms/grid.ts), so both land on the same grid.
 */
export function codebookScale(amax: number, dtype: ScaleDType | null): number {
  if (dtype === null) return amax;
  let sc = roundScale(amax, dtype, 'nearest');
  if (amax / sc > 1 + 2 ** -7) sc = roundScale(amax, dtype, 'up');
  return sc;
}

function roundLevel(v: number, dt: ScaleDType): number {
  const r = roundScale(Math.abs(v), dt, 'nearest');
  return v < 0 ? -r : v === 0 ? 0 : r;
}

/** Weighted 1-D k-means (Lloyd) of `xs` into L ascending levels. Deterministic for a given rng. */
export function kmeans1d(xs: Float64Array, ws: Float64Array, L: number, rng: Rng, iters = 25): Float64Array {
  const n = xs.length;
  const c = new Float64Array(L);
  if (n === 0) return c;
  // k-means++ seeding (weighted)
  c[0] = xs[rng.int(n)];
  const d2 = new Float64Array(n);
  for (let k = 1; k < L; k++) {
    let tot = 0;
    for (let i = 0; i < n; i++) {
      let best = Infinity;
      for (let j = 0; j < k; j++) best = Math.min(best, (xs[i] - c[j]) ** 2);
      d2[i] = best * ws[i];
      tot += d2[i];
    }
    if (tot === 0) {
      c[k] = c[k - 1];
      continue;
    }
    let r = rng.next() * tot;
    let pick = n - 1;
    for (let i = 0; i < n; i++) {
      r -= d2[i];
      if (r < 0) {
        pick = i;
        break;
      }
    }
    c[k] = xs[pick];
  }
  c.sort();
  const sum = new Float64Array(L);
  const wsum = new Float64Array(L);
  for (let it = 0; it < iters; it++) {
    sum.fill(0);
    wsum.fill(0);
    for (let i = 0; i < n; i++) {
      let lo = 0;
      let hi = L - 1;
      while (hi - lo > 1) {
        const mid = (lo + hi) >> 1;
        if (c[mid] <= xs[i]) lo = mid;
        else hi = mid;
      }
      const j = Math.abs(xs[i] - c[lo]) <= Math.abs(c[hi] - xs[i]) ? lo : hi;
      sum[j] += ws[i] * xs[i];
      wsum[j] += ws[i];
    }
    let moved = false;
    for (let j = 0; j < L; j++) {
      if (wsum[j] > 0) {
        const v = sum[j] / wsum[j];
        if (v !== c[j]) moved = true;
        c[j] = v;
      }
    }
    c.sort();
    if (!moved) break;
  }
  return c;
}

export function quantizeCodebook(w: Float32Array, shape: number[], scheme: CodebookScheme, opts: QuantizeOptions = {}): CodebookQuantized {
  const lay = scaleLayout(shape, scheme.granularity, opts.name);
  const L = 2 ** scheme.bits;
  if (scheme.book === 'nf4' && scheme.bits !== 4) {
    throw new ConfigError('bad_option', 'NF4 is a 4-bit code book', { tensor: opts.name, field: 'bits', found: scheme.bits });
  }
  const { mins, maxs } = groupMinMax(w, lay);
  const scales = new Float32Array(lay.nScales);
  const ratios = clipRatios(opts, lay.nScales);
  for (let s = 0; s < lay.nScales; s++) {
    let amax = Math.max(-mins[s], maxs[s]);
    if (opts.clip) amax = Math.min(amax, Math.max(-opts.clip.min, opts.clip.max));
    if (ratios) amax *= ratios[s];
    scales[s] = codebookScale(amax, scheme.scaleDtype);
  }
  let book: Float32Array;
  if (scheme.book === 'nf4') book = NF4_LEVELS.slice();
  else if (scheme.book === 'log2') book = log2Levels(scheme.bits);
  else book = learnBooks(w, shape, scheme, lay, scales, opts);
  const perGroup = scheme.book === 'kmeans';
  const codes = new Uint8Array(w.length);
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const si = r % lay.mod;
    const s = scales[si];
    const bo = perGroup ? si * L : 0;
    for (let i = off, end = off + lay.runLen; i < end; i++) codes[i] = nearestLevel(book, bo, L, s === 0 ? 0 : w[i] / s);
  }
  return { kind: 'codebook', scheme, shape: [...shape], codes, scales, scaleShape: lay.scaleShape, codebook: book };
}

function learnBooks(
  w: Float32Array,
  shape: number[],
  scheme: CodebookScheme,
  lay: ReturnType<typeof scaleLayout>,
  scales: Float32Array,
  opts: QuantizeOptions,
): Float32Array {
  const L = 2 ** scheme.bits;
  const K = shape.length ? shape[shape.length - 1] : 1;
  const imp = opts.importance;
  if (imp && imp.length !== K) {
    throw new ConfigError('bad_option', 'importance must have one entry per input column', {
      tensor: opts.name,
      field: 'importance',
      expected: K,
      found: imp.length,
    });
  }
  // gather each group's normalised values (groups may be strided for channel granularity)
  const counts = new Int32Array(lay.nScales);
  for (let r = 0; r < lay.nRuns; r++) counts[r % lay.mod] += lay.runLen;
  const xs = Array.from(counts, (c) => new Float64Array(c));
  const wsArr = Array.from(counts, (c) => new Float64Array(c));
  const fill = new Int32Array(lay.nScales);
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const si = r % lay.mod;
    const s = scales[si];
    for (let i = off; i < off + lay.runLen; i++) {
      const j = fill[si]++;
      xs[si][j] = s === 0 ? 0 : w[i] / s;
      wsArr[si][j] = imp ? Math.max(imp[i % K], 0) + 1e-12 : 1;
    }
  }
  const rng = new Rng(opts.seed ?? 0);
  const book = new Float32Array(lay.nScales * L);
  for (let si = 0; si < lay.nScales; si++) {
    const c = kmeans1d(xs[si], wsArr[si], L, rng.fork());
    for (let j = 0; j < L; j++) book[si * L + j] = roundLevel(c[j], scheme.scaleDtype);
    book.subarray(si * L, si * L + L).sort();
  }
  return book;
}

export function dequantizeCodebook(q: CodebookQuantized): Float32Array {
  const lay = scaleLayout(q.shape, q.scheme.granularity);
  const L = 2 ** q.scheme.bits;
  const perGroup = q.codebook.length > L;
  const out = new Float32Array(q.codes.length);
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const si = r % lay.mod;
    const s = q.scales[si];
    const bo = perGroup ? si * L : 0;
    for (let i = off, end = off + lay.runLen; i < end; i++) out[i] = s * q.codebook[bo + q.codes[i]];
  }
  return out;
}

export function codebookBitsPerWeight(scheme: CodebookScheme, shape: number[]): number {
  const lay = scaleLayout(shape, scheme.granularity);
  const n = numel(shape);
  if (!n) return scheme.bits;
  const sb = scheme.scaleDtype === 'F32' ? 32 : 16;
  const bookBits = scheme.book === 'kmeans' ? lay.nScales * 2 ** scheme.bits * sb : 0;
  return scheme.bits + (lay.nScales * sb + bookBits) / n;
}
