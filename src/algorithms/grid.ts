// Column quantizers ("grids"): the small interface GPTQ rounds onto, one column at a time.
// A grid holds per-group parameters (fitted from a slice of the weight matrix) and the integer
// codes it chose, so the same object can later be encoded (GPTQ-packed safetensors, ggml blocks).
// Legend: N = rows (output features), K = columns (input features), G = group width along K
// (columns sharing one set of parameters per row), n_g = ceil(K / G) groups.
//
// The int and code-book grids are not quantizers of their own: they fit each group with quant's
// qparams (intParams, codebookScale) and round each value as quant's codecs do, so RTN on a grid is
// bit for bit `fakeQuant` of the same scheme (test/pipeline/quantize/one-quantizer.test.ts). What they add is
// the column order GPTQ needs. Codes are kept as quant stores them (symmetric int: signed, zero
// point 0); packed formats map them (quant/pack.ts toUnsignedCodes).

import { ConfigError } from '../core/errors.js';
import { NF4_LEVELS, codebookScale, intParams, intRange, nearestLevel, rounder } from '../quant/index.js';
import type { CodebookScheme, IntScheme, Rounding, ScaleDType } from '../quant/scheme.js';
import type { IntQuantized } from '../quant/types.js';
import { rtnBookGridKernel, rtnIntGridKernel } from '../quant/rtn-kernel.js';

export interface ColumnGrid {
  readonly n: number;
  readonly k: number;
  /** G: columns per parameter group (K for one group per row). */
  readonly groupSize: number;
  /**
   * true when groups are fixed runs of original columns that the storage format cannot reorder
   * (ggml blocks: no g_idx); GPTQ then fits them statically under act-order.
   */
  readonly fixedGroups?: boolean;
  /**
   * Fit group `g`'s parameters from columns [c0, c1) of `w` (row-major [N, K], the matrix GPTQ
   * holds, possibly column-permuted: `cols` maps each position to its original column).
   */
  fitGroup(g: number, w: Float64Array, c0: number, c1: number, cols?: Int32Array): void;
  /**
   * Round one column (`col`: [N] current values) with group g's parameters; writes the
   * dequantized values into `out` and records the codes under original column `j`.
   */
  quantizeColumn(j: number, g: number, col: Float64Array, out: Float64Array): void;
}

function numGroups(k: number, g: number): number {
  return Math.ceil(k / g);
}

export interface IntGridOptions {
  bits: number;
  symmetric: boolean;
  /** G; 0 or ≥ K means one group per row (per-channel) */
  groupSize?: number;
  /**
   * scale storage dtype (the scheme's; GPTQ-packed checkpoints store F16). Absent or null: exact
   * float64 scales, for algorithm tests against float64 reference ports only.
   */
  scaleDtype?: ScaleDType | null;
  /** same as scaleDtype 'F16' (kept for existing callers) */
  scaleF16?: boolean;
  /** default half_even */
  rounding?: Rounding;
  /** symmetric only: scale amax/(2^(b−1) − 1) instead of 2·amax/(2^b − 1) (quant/scheme.ts) */
  restricted?: boolean;
}

/** The grid options of an int scheme whose granularity is per-group or per-output-channel along K. */
export function intGridOptions(scheme: IntScheme, k: number): IntGridOptions {
  const g = scheme.granularity;
  let groupSize: number;
  if (g.kind === 'group') groupSize = g.size;
  else if (g.kind === 'channel' && g.axis === 0) groupSize = k;
  else throw new ConfigError('unsupported', 'a column grid needs per-group or per-output-channel scales', { field: 'scheme', found: g });
  return { bits: scheme.bits, symmetric: scheme.symmetric, groupSize, scaleDtype: scheme.scaleDtype, rounding: scheme.rounding, restricted: scheme.restricted };
}

/**
 * Uniform integer grid of quant's int schemes (quant/affine.ts): per row and group, (scale, zero)
 * from intParams on the group's [min, max]; q = clamp(round(x/scale) + zero, qmin, qmax) with the
 * scheme's rounding; x̂ = scale·(q − zero). Symmetric: signed codes, zero 0; asymmetric: unsigned
 * codes and zero points. A group whose scale is 0 (all zeros) maps every value to its zero point.
 */
export class IntGrid implements ColumnGrid {
  readonly groupSize: number;
  readonly qmin: number;
  readonly qmax: number;
  /** [N, n_g] per-row, per-group step (exactly representable in the scale dtype) */
  readonly scales: Float64Array;
  /** [N, n_g] integer zero points in the codes' domain (0 for symmetric grids) */
  readonly zeros: Int32Array;
  /** [N, K] codes in qmin..qmax, original column order (Int8Array when symmetric) */
  readonly codes: Int8Array | Uint8Array;
  private readonly params: Parameters<typeof intParams>[2];
  private readonly round: (x: number) => number;

  constructor(
    readonly n: number,
    readonly k: number,
    readonly opts: IntGridOptions,
  ) {
    if (!Number.isInteger(opts.bits) || opts.bits < 1 || opts.bits > 8) {
      throw new ConfigError('bad_option', 'int grid bits must be 1..8', { field: 'bits', expected: '1..8', found: opts.bits });
    }
    const g = opts.groupSize ?? 0;
    this.groupSize = g <= 0 || g >= k ? k : g;
    const rounding = opts.rounding ?? 'half_even';
    this.params = { bits: opts.bits, symmetric: opts.symmetric, rounding, restricted: opts.restricted, scaleDtype: opts.scaleDtype ?? (opts.scaleF16 ? 'F16' : null) };
    ({ qmin: this.qmin, qmax: this.qmax } = intRange(opts));
    this.round = rounder(rounding);
    const ng = numGroups(k, this.groupSize);
    this.scales = new Float64Array(n * ng);
    this.zeros = new Int32Array(n * ng);
    this.codes = opts.symmetric ? new Int8Array(n * k) : new Uint8Array(n * k);
  }

  get numGroups(): number {
    return numGroups(this.k, this.groupSize);
  }

  fitGroup(g: number, w: Float64Array, c0: number, c1: number): void {
    const { n, k } = this;
    const ng = this.numGroups;
    for (let r = 0; r < n; r++) {
      let lo = Infinity;
      let hi = -Infinity;
      const base = r * k;
      for (let c = c0; c < c1; c++) {
        const v = w[base + c];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      const p = intParams(lo, hi, this.params);
      this.scales[r * ng + g] = p.scale;
      this.zeros[r * ng + g] = p.zero;
    }
  }

  quantizeColumn(j: number, g: number, col: Float64Array, out: Float64Array): void {
    const { n, k, qmin, qmax } = this;
    const ng = this.numGroups;
    for (let r = 0; r < n; r++) {
      const s = this.scales[r * ng + g];
      const z = this.zeros[r * ng + g];
      let q = z;
      if (s !== 0) {
        q = this.round(col[r] / s) + z;
        if (q < qmin) q = qmin;
        else if (q > qmax) q = qmax;
      }
      this.codes[r * k + j] = q;
      out[r] = s * (q - z);
    }
  }

  /**
   * quantizeColumn of every column at once, in row order, by the WebAssembly kernel
   * (quant/rtn-kernel.ts; the same codes and values): W and `out` [N, K]. False when the kernel
   * cannot run here; the caller then goes column by column.
   */
  rtnRows(w: Float64Array, out: Float64Array): boolean {
    const { n, k, groupSize, scales, zeros, codes, qmin, qmax } = this;
    return rtnIntGridKernel({ w, n, k, groupSize, scales, zeros, codes, out, qmin, qmax, away: this.params.rounding === 'half_away' });
  }

  /**
   * The grid as quant's IntQuantized [N, K] (scales [N, n_g]) under `scheme` (whose bits, symmetry
   * and scale dtype must be the grid's). Needs K to be a whole number of groups.
   */
  toQuantized(scheme: IntScheme): IntQuantized {
    const { n, k, groupSize } = this;
    if (scheme.bits !== this.opts.bits || scheme.symmetric !== this.opts.symmetric) {
      throw new ConfigError('internal', 'scheme does not describe this grid', { field: 'scheme', expected: `int${this.opts.bits}${this.opts.symmetric ? '' : '-asym'}`, found: `int${scheme.bits}${scheme.symmetric ? '' : '-asym'}` });
    }
    if (k % groupSize !== 0) throw new ConfigError('unsupported', 'a ragged last group has no IntQuantized layout', { field: 'K', expected: `a multiple of ${groupSize}`, found: k });
    const granularity = groupSize >= k ? { kind: 'channel' as const, axis: 0 } : { kind: 'group' as const, size: groupSize };
    const q: IntQuantized = { kind: 'int', scheme: { ...scheme, granularity }, shape: [n, k], codes: this.codes, scales: Float32Array.from(this.scales), scaleShape: [n, this.numGroups] };
    if (!scheme.symmetric) q.zeros = Uint8Array.from(this.zeros);
    return q;
  }
}

/**
 * Non-uniform grid of quant's code-book schemes (quant/codebook.ts): per-row, per-group scale
 * codebookScale(absmax) times a sorted level table (quant's NF4_LEVELS by default); q = the nearest
 * level to x/scale (quant's nearestLevel: ties to the even index), x̂ = scale·level[q]. A zero scale
 * (an all-zero group) maps every value to the level nearest 0.
 */
export class CodebookGrid implements ColumnGrid {
  readonly groupSize: number;
  /** [N, n_g] absmax scales */
  readonly scales: Float64Array;
  /** [N, K] level indices */
  readonly codes: Uint8Array;
  private readonly book: Float32Array;
  private readonly scaleDtype: ScaleDType | null;

  constructor(
    readonly n: number,
    readonly k: number,
    groupSize: number,
    readonly levels: ArrayLike<number> = NF4_LEVELS,
    /** the scheme's scale dtype; null, false or absent: exact float64 (tests), true: F16 */
    scaleDtype: ScaleDType | boolean | null = null,
  ) {
    this.groupSize = groupSize <= 0 || groupSize >= k ? k : groupSize;
    for (let i = 1; i < levels.length; i++) {
      if (!(levels[i] > levels[i - 1])) {
        throw new ConfigError('bad_option', 'codebook levels must be strictly increasing', { field: 'levels', index: i });
      }
    }
    this.book = Float32Array.from(levels);
    for (let i = 0; i < levels.length; i++) {
      if (this.book[i] !== levels[i]) throw new ConfigError('bad_option', 'codebook levels must be float32 values', { field: 'levels', index: i, found: levels[i] });
    }
    this.scaleDtype = scaleDtype === true ? 'F16' : scaleDtype === false ? null : scaleDtype;
    this.scales = new Float64Array(n * numGroups(k, this.groupSize));
    this.codes = new Uint8Array(n * k);
  }

  /** The grid of a code-book scheme with a shared book (NF4, log2) for [N, K] weights. */
  static forScheme(n: number, k: number, scheme: CodebookScheme, levels: ArrayLike<number>): CodebookGrid {
    const g = scheme.granularity;
    if (g.kind !== 'group' && !(g.kind === 'channel' && g.axis === 0)) {
      throw new ConfigError('unsupported', 'a column grid needs per-group or per-output-channel scales', { field: 'scheme', found: g });
    }
    return new CodebookGrid(n, k, g.kind === 'group' ? g.size : k, levels, scheme.scaleDtype);
  }

  fitGroup(g: number, w: Float64Array, c0: number, c1: number): void {
    const ng = numGroups(this.k, this.groupSize);
    for (let r = 0; r < this.n; r++) {
      let amax = 0;
      for (let c = c0; c < c1; c++) amax = Math.max(amax, Math.abs(w[r * this.k + c]));
      this.scales[r * ng + g] = codebookScale(amax, this.scaleDtype);
    }
  }

  /** As IntGrid.rtnRows: every column at once by the WebAssembly kernel, or false. */
  rtnRows(w: Float64Array, out: Float64Array): boolean {
    return rtnBookGridKernel({ w, n: this.n, k: this.k, groupSize: this.groupSize, scales: this.scales, codes: this.codes, out, book: this.book });
  }

  quantizeColumn(j: number, g: number, col: Float64Array, out: Float64Array): void {
    const ng = numGroups(this.k, this.groupSize);
    const L = this.book.length;
    for (let r = 0; r < this.n; r++) {
      const s = this.scales[r * ng + g];
      const q = nearestLevel(this.book, 0, L, s === 0 ? 0 : col[r] / s);
      this.codes[r * this.k + j] = q;
      out[r] = s * this.book[q];
    }
  }
}
