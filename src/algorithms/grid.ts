// Column quantizers ("grids"): the small interface GPTQ rounds onto, one column at a time.
// A grid holds per-group parameters (fitted from a slice of the weight matrix) and the integer
// codes it chose, so the same object can later be encoded (GPTQ-packed safetensors, ggml blocks).
// Legend: N = rows (output features), K = columns (input features), G = group width along K
// (columns sharing one set of parameters per row), n_g = ceil(K / G) groups.
//
// Rounding: the int grid follows the GPTQ reference `Quantizer` (torch.round, half to even);
// the codebook grid picks the nearest level, ties to the lower index.

import { ConfigError } from '../core/errors.js';
import { roundHalfEven } from '../numerics/round.js';
import { f16ToF32, f32ToF16 } from '../numerics/float16.js';

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
  /** round each scale to fp16 when fitted (what GPTQ-packed checkpoints store) */
  scaleF16?: boolean;
}

/**
 * Uniform integer grid as in the GPTQ reference quantizer: maxq = 2^b − 1; the range is widened to
 * contain 0; asymmetric scale = (max − min)/maxq and zero = round(−min/scale); symmetric
 * max = max(|min|, max), zero = (maxq + 1)/2. q = clamp(round(x/scale) + zero, 0, maxq),
 * x̂ = scale·(q − zero). An all-zero row gets the range [−1, 1].
 */
export class IntGrid implements ColumnGrid {
  readonly groupSize: number;
  readonly maxq: number;
  /** [N, n_g] per-row, per-group step */
  readonly scales: Float64Array;
  /** [N, n_g] integer zero points */
  readonly zeros: Int32Array;
  /** [N, K] codes in 0..maxq, original column order */
  readonly codes: Uint8Array;

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
    this.maxq = 2 ** opts.bits - 1;
    const ng = numGroups(k, this.groupSize);
    this.scales = new Float64Array(n * ng);
    this.zeros = new Int32Array(n * ng);
    this.codes = new Uint8Array(n * k);
  }

  get numGroups(): number {
    return numGroups(this.k, this.groupSize);
  }

  fitGroup(g: number, w: Float64Array, c0: number, c1: number): void {
    const { n, k, maxq } = this;
    const ng = this.numGroups;
    for (let r = 0; r < n; r++) {
      let lo = 0;
      let hi = 0;
      const base = r * k;
      for (let c = c0; c < c1; c++) {
        const v = w[base + c];
        if (v < lo) lo = v;
        if (v > hi) hi = v;
      }
      if (this.opts.symmetric) {
        hi = Math.max(-lo, hi);
        if (lo < 0) lo = -hi;
      }
      if (lo === 0 && hi === 0) {
        lo = -1;
        hi = 1;
      }
      let scale = (hi - lo) / maxq;
      if (this.opts.scaleF16) scale = f16ToF32(f32ToF16(scale));
      const zero = this.opts.symmetric ? (maxq + 1) / 2 : roundHalfEven(-lo / scale);
      this.scales[r * ng + g] = scale;
      this.zeros[r * ng + g] = zero;
    }
  }

  quantizeColumn(j: number, g: number, col: Float64Array, out: Float64Array): void {
    const { n, k, maxq } = this;
    const ng = this.numGroups;
    for (let r = 0; r < n; r++) {
      const s = this.scales[r * ng + g];
      const z = this.zeros[r * ng + g];
      let q = roundHalfEven(col[r] / s) + z;
      if (q < 0) q = 0;
      else if (q > maxq) q = maxq;
      this.codes[r * k + j] = q;
      out[r] = s * (q - z);
    }
  }
}

/** NF4 levels (QLoRA, bitsandbytes create_normal_map), REFERENCE §7. */
export const NF4_LEVELS: readonly number[] = [
  -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
  -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
  0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
];

/**
 * Non-uniform grid: per-row, per-group absmax scale times a sorted level table (NF4 by default).
 * x̂ = absmax·level[q], q the nearest level to x/absmax (ties to the lower index).
 */
export class CodebookGrid implements ColumnGrid {
  readonly groupSize: number;
  /** [N, n_g] absmax scales */
  readonly scales: Float64Array;
  /** [N, K] level indices */
  readonly codes: Uint8Array;
  private readonly mids: Float64Array;

  constructor(
    readonly n: number,
    readonly k: number,
    groupSize: number,
    readonly levels: readonly number[] = NF4_LEVELS,
    readonly scaleF16 = false,
  ) {
    this.groupSize = groupSize <= 0 || groupSize >= k ? k : groupSize;
    for (let i = 1; i < levels.length; i++) {
      if (!(levels[i] > levels[i - 1])) {
        throw new ConfigError('bad_option', 'codebook levels must be strictly increasing', { field: 'levels', index: i });
      }
    }
    this.mids = new Float64Array(levels.length - 1);
    for (let i = 0; i + 1 < levels.length; i++) this.mids[i] = (levels[i] + levels[i + 1]) / 2;
    this.scales = new Float64Array(n * numGroups(k, this.groupSize));
    this.codes = new Uint8Array(n * k);
  }

  fitGroup(g: number, w: Float64Array, c0: number, c1: number): void {
    const ng = numGroups(this.k, this.groupSize);
    for (let r = 0; r < this.n; r++) {
      let amax = 0;
      for (let c = c0; c < c1; c++) amax = Math.max(amax, Math.abs(w[r * this.k + c]));
      let s = amax === 0 ? 1 : amax;
      if (this.scaleF16) s = f16ToF32(f32ToF16(s));
      this.scales[r * ng + g] = s;
    }
  }

  quantizeColumn(j: number, g: number, col: Float64Array, out: Float64Array): void {
    const ng = numGroups(this.k, this.groupSize);
    const mids = this.mids;
    for (let r = 0; r < this.n; r++) {
      const s = this.scales[r * ng + g];
      const x = col[r] / s;
      // binary search over the midpoints: q = number of midpoints strictly below x
      let lo = 0;
      let hi = mids.length;
      while (lo < hi) {
        const m = (lo + hi) >> 1;
        if (mids[m] < x) lo = m + 1;
        else hi = m;
      }
      this.codes[r * this.k + j] = lo;
      out[r] = s * this.levels[lo];
    }
  }
}
