// IQ4_NL and IQ4_XS as a GPTQ column grid: the block scales are fitted by ggml's own IQ4 search
// (quant/ggml/iq4.ts, with the imatrix when given) from the weights as GPTQ reaches them, then each
// value takes the table entry (kvalues_iq4nl, 16 non-uniform levels) whose decoded value is nearest.
// The decoded value of code q is exactly what ggml's to_float returns (IQ4_NL: f16(d)·kvalues[q];
// IQ4_XS: (f16(d)·(ls − 32))·kvalues[q] in float), so the tensor encoded afterwards decodes to
// exactly the weights GPTQ reports: a GPTQ-optimised IQ4_XS tensor is an ordinary IQ4_XS tensor.
// Legend: N = rows, K = columns, QK = 32 (IQ4_NL block) or 256 (IQ4_XS super-block), nb = K/QK.

import { ConfigError } from '../core/errors.js';
import { f16ToF32, f32ToF16 } from '../numerics/float16.js';
import { KVALUES_IQ4NL, packQ4, quantizeIq4Super } from '../quant/ggml/index.js';
import type { ColumnGrid } from './grid.js';

export const IQ4_GRID_TYPES = ['IQ4_NL', 'IQ4_XS'] as const;
export type Iq4GridType = (typeof IQ4_GRID_TYPES)[number];

export function isIq4GridType(t: string): t is Iq4GridType {
  return (IQ4_GRID_TYPES as readonly string[]).includes(t);
}

const fr = Math.fround;

export class Iq4Grid implements ColumnGrid {
  readonly groupSize: number;
  readonly fixedGroups = true;
  /** [N, nb] the stored f16 d */
  readonly d: Uint16Array;
  /** [N, nb·QK/32] IQ4_XS sub-scales ls (0..63; the scale is ls − 32) */
  readonly sub: Uint8Array;
  /** [N, nb·QK/32] the float step of each 32-value sub-block, as to_float computes it */
  private readonly step: Float32Array;
  /** [N, K] codes */
  readonly codes: Uint8Array;
  private readonly nb: number;

  constructor(
    readonly type: Iq4GridType,
    readonly n: number,
    readonly k: number,
    /** [K] E[x_j²] (llama.cpp imatrix) */
    readonly imatrix?: Float32Array,
  ) {
    if (!isIq4GridType(type)) throw new ConfigError('unsupported', `no IQ4 grid for ${String(type)}`, { field: 'type', expected: IQ4_GRID_TYPES, found: type });
    this.groupSize = type === 'IQ4_NL' ? 32 : 256;
    if (k % this.groupSize !== 0) {
      throw new ConfigError('bad_option', `${type} rows must be a whole number of ${this.groupSize}-value blocks`, { field: 'K', expected: `a multiple of ${this.groupSize}`, found: k });
    }
    if (imatrix && imatrix.length !== k) throw new ConfigError('bad_option', 'imatrix must hold one value per column', { field: 'imatrix', expected: k, found: imatrix.length });
    this.nb = k / this.groupSize;
    this.d = new Uint16Array(n * this.nb);
    this.sub = new Uint8Array((n * k) / 32);
    this.step = new Float32Array((n * k) / 32);
    this.codes = new Uint8Array(n * k);
  }

  fitGroup(g: number, w: Float64Array, c0: number): void {
    const QK = this.groupSize;
    const ns = QK / 32;
    const x = new Float32Array(QK);
    const L = new Uint8Array(QK);
    const scales = new Float32Array(ns);
    const weight = new Float32Array(32);
    const sub = new Uint8Array(ns);
    const qw = this.imatrix ? this.imatrix.subarray(c0, c0 + QK) : undefined;
    for (let r = 0; r < this.n; r++) {
      for (let j = 0; j < QK; j++) x[j] = w[r * this.k + c0 + j];
      const h = f32ToF16(quantizeIq4Super(x, 0, QK, qw, L, scales, weight, sub));
      this.d[r * this.nb + g] = h;
      const d = f16ToF32(h);
      const s0 = (r * this.k + c0) / 32;
      for (let s = 0; s < ns; s++) {
        if (this.type === 'IQ4_XS') this.sub[s0 + s] = sub[s];
        this.step[s0 + s] = this.type === 'IQ4_XS' ? fr(d * (sub[s] - 32)) : d;
      }
    }
  }

  quantizeColumn(j: number, _g: number, col: Float64Array, out: Float64Array): void {
    for (let r = 0; r < this.n; r++) {
      const dl = this.step[(r * this.k + j) >> 5];
      const x = col[r];
      let best = 0;
      let bestErr = Infinity;
      for (let q = 0; q < 16; q++) {
        const e = Math.abs(fr(dl * KVALUES_IQ4NL[q]) - x);
        if (e < bestErr) {
          bestErr = e;
          best = q;
        }
      }
      this.codes[r * this.k + j] = best;
      out[r] = fr(dl * KVALUES_IQ4NL[best]);
    }
  }

  /** The ggml bytes: [N, nb] blocks, row-major. */
  encode(): Uint8Array {
    const { n, k, nb } = this;
    const QK = this.groupSize;
    const ts = this.type === 'IQ4_NL' ? 18 : 136;
    const out = new Uint8Array(n * nb * ts);
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < nb; b++) {
        const ob = (r * nb + b) * ts;
        const h = this.d[r * nb + b];
        out[ob] = h & 0xff;
        out[ob + 1] = h >> 8;
        const L = this.codes.subarray(r * k + b * QK, r * k + b * QK + QK);
        if (this.type === 'IQ4_NL') {
          packQ4(L, 32, out, ob + 2);
          continue;
        }
        const s0 = (r * k + b * QK) / 32;
        let sh = 0;
        for (let s = 0; s < 8; s++) sh |= (this.sub[s0 + s] >> 4) << (2 * s);
        out[ob + 2] = sh & 0xff;
        out[ob + 3] = sh >>> 8;
        for (let s = 0; s < 4; s++) out[ob + 4 + s] = (this.sub[s0 + 2 * s] & 15) | ((this.sub[s0 + 2 * s + 1] & 15) << 4);
        packQ4(L, 256, out, ob + 8);
      }
    }
    return out;
  }
}
