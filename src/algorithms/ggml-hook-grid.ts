// The K-quants (Q2_K … Q6_K) as a GPTQ column grid, through the ggml layer's per-block hooks
// (params → codes → encode, and value(p, j, q) = exactly what ggml's to_float returns). A group
// is one 256-value super-block of one row; its scales/mins are fitted by ggml's own rule (with the
// imatrix when given) from the weights as GPTQ reaches them, and each value then takes the code
// whose decoded value is nearest (levels are affine in the code within a sub-block, so the nearest
// code is found from two decoded levels and checked against its neighbours). The tensor encoded
// afterwards decodes to exactly the weights GPTQ reports.
// Legend: N = rows, K = columns (a multiple of QK = 256), nb = K/QK super-blocks per row.

import { ConfigError } from '../core/errors.js';
import { GGML_BLOCK_HOOKS, type BlockHook } from '../quant/ggml/index.js';
import type { ColumnGrid } from './grid.js';

export const HOOK_GRID_TYPES = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as const;
export type HookGridType = (typeof HOOK_GRID_TYPES)[number];

const MAX_CODE: Record<HookGridType, number> = { Q2_K: 3, Q3_K: 7, Q4_K: 15, Q5_K: 31, Q6_K: 63 };

export function isHookGridType(t: string): t is HookGridType {
  return (HOOK_GRID_TYPES as readonly string[]).includes(t);
}

export class KQuantGrid implements ColumnGrid {
  readonly groupSize: number;
  readonly fixedGroups = true;
  /** [N, nb] fitted block parameters */
  readonly params: unknown[];
  /** [N, K] codes */
  readonly codes: Uint8Array;
  private readonly hook: BlockHook<unknown>;
  private readonly nb: number;
  private readonly maxCode: number;

  constructor(
    readonly type: HookGridType,
    readonly n: number,
    readonly k: number,
    /** [K] E[x_j²] (llama.cpp imatrix) */
    readonly imatrix?: Float32Array,
  ) {
    if (!isHookGridType(type)) throw new ConfigError('unsupported', `no K-quant grid for ${String(type)}`, { field: 'type', expected: HOOK_GRID_TYPES, found: type });
    this.hook = GGML_BLOCK_HOOKS[type] as unknown as BlockHook<unknown>;
    this.groupSize = this.hook.blockSize;
    if (k % this.groupSize !== 0) {
      throw new ConfigError('bad_option', `${type} rows must be a whole number of ${this.groupSize}-value super-blocks`, { field: 'K', expected: `a multiple of ${this.groupSize}`, found: k });
    }
    if (imatrix && imatrix.length !== k) throw new ConfigError('bad_option', 'imatrix must hold one value per column', { field: 'imatrix', expected: k, found: imatrix.length });
    this.nb = k / this.groupSize;
    this.params = new Array(n * this.nb);
    this.codes = new Uint8Array(n * k);
    this.maxCode = MAX_CODE[type];
  }

  fitGroup(g: number, w: Float64Array, c0: number): void {
    this.fitFrom(g, c0, (r, j) => w[r * this.k + j]);
  }

  /** fitGroup reading the matrix transposed (wT [K, N]), for gptq-fast.ts. */
  fitGroupT(g: number, wT: Float32Array, c0: number): void {
    this.fitFrom(g, c0, (r, j) => wT[j * this.n + r]);
  }

  private fitFrom(g: number, c0: number, at: (r: number, j: number) => number): void {
    const QK = this.groupSize;
    const x = new Float32Array(QK);
    const L = new Uint8Array(QK);
    const qw = this.imatrix ? this.imatrix.subarray(c0, c0 + QK) : undefined;
    for (let r = 0; r < this.n; r++) {
      for (let j = 0; j < QK; j++) x[j] = at(r, c0 + j);
      this.params[r * this.nb + g] = this.hook.params(x, 0, qw, L);
    }
  }

  quantizeColumn(j: number, g: number, col: Float64Array, out: Float64Array): void {
    const jb = j % this.groupSize;
    const h = this.hook;
    const mx = this.maxCode;
    for (let r = 0; r < this.n; r++) {
      const p = this.params[r * this.nb + g];
      const x = Math.fround(col[r]);
      const v0 = h.value(p, jb, 0);
      const step = h.value(p, jb, 1) - v0;
      let q = step === 0 ? 0 : Math.round((x - v0) / step);
      q = q < 0 ? 0 : q > mx ? mx : q;
      let best = h.value(p, jb, q);
      for (const c of [q - 1, q + 1]) {
        if (c < 0 || c > mx) continue;
        const v = h.value(p, jb, c);
        if (Math.abs(v - x) < Math.abs(best - x)) {
          best = v;
          q = c;
        }
      }
      this.codes[r * this.k + j] = q;
      out[r] = best;
    }
  }

  /** The ggml bytes: [N, nb] blocks, row-major. */
  encode(): Uint8Array {
    const { n, k, nb } = this;
    const QK = this.groupSize;
    const ts = this.hook.typeSize;
    const out = new Uint8Array(n * nb * ts);
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < nb; b++) {
        this.hook.encode(this.codes.subarray(r * k + b * QK, r * k + b * QK + QK), this.params[r * nb + b], out, (r * nb + b) * ts);
      }
    }
    return out;
  }
}
