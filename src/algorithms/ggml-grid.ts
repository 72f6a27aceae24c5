// ggml block types as a GPTQ column grid: each 32-column block of each row is one parameter
// group (a "block scale" fitted from the current weights), columns are then rounded with the
// block's fixed scale, and the result is encoded by the ggml encoder. A GPTQ-optimised Q4_0
// tensor is therefore an ordinary Q4_0 tensor: its bytes decode to exactly the weights GPTQ
// reports (a test checks this through dequantizeGgml).
// Legend: N = rows, K = columns (a multiple of QK = 32), nb = K/QK blocks per row.
//
// Rounding: without an importance matrix the block scale and the codes follow ggml's reference
// (Q4_0/Q5_0 truncate x·id + 8.5/16.5; Q4_1/Q5_1 truncate (x − m)·id + 0.5; Q8_0 rounds half
// away), so RTN on this grid reproduces quantizeGgml byte for byte. GPTQ's error feedback can push
// a value outside the block's range, so codes are also clamped at the low end (ggml never needs
// to). With an imatrix, *_0 scales come from ggml's weighted make_qx_quants fit.

import { ConfigError } from '../core/errors.js';
import { fr, putF16 } from '../quant/ggml/common.js';
import { makeQxQuants } from '../quant/ggml/scale-search.js';
import { qx_0Encode, qx_0Scale, qx_1Encode, qx_1Params, q8_0Scale } from '../quant/ggml/legacy.js';
import { f16ToF32, f32ToF16 } from '../numerics/float16.js';
import type { ColumnGrid } from './grid.js';

const QK = 32;

/** The legacy ggml types GPTQ targets here (the K-quants: ggml-hook-grid.ts). */
export const GPTQ_GGML_TYPES = ['Q4_0', 'Q5_0', 'Q8_0', 'Q4_1', 'Q5_1'] as const;
export type GptqGgmlType = (typeof GPTQ_GGML_TYPES)[number];

export function isGptqGgmlType(t: string): t is GptqGgmlType {
  return (GPTQ_GGML_TYPES as readonly string[]).includes(t);
}

const f16 = (x: number): number => f16ToF32(f32ToF16(x));

export class GgmlGrid implements ColumnGrid {
  readonly groupSize = QK;
  /** ggml blocks are fixed runs of columns: with act-order, GPTQ must use static groups */
  readonly fixedGroups = true;
  /** [N, nb] float32 scale used for rounding (before fp16 storage) */
  readonly d: Float64Array;
  /** [N, nb] Q4_1/Q5_1 block minimum (float32 before fp16 storage) */
  readonly m: Float64Array;
  /** [N, K] codes (Q8_0: signed) */
  readonly codes: Int16Array;
  private readonly nb: number;
  private readonly sigma2: Float64Array | null;

  constructor(
    readonly type: GptqGgmlType,
    readonly n: number,
    readonly k: number,
    /** [K] E[x_j²] importance (llama.cpp imatrix), used when fitting *_0 block scales */
    readonly imatrix?: Float32Array,
  ) {
    if (!isGptqGgmlType(type)) {
      throw new ConfigError('unsupported', `GPTQ cannot target ggml type ${String(type)} yet`, { field: 'type', expected: GPTQ_GGML_TYPES, found: type });
    }
    if (k % QK !== 0) {
      throw new ConfigError('bad_option', `${type} rows must be a whole number of 32-value blocks`, { field: 'K', expected: 'a multiple of 32', found: k });
    }
    if (imatrix && imatrix.length !== k) {
      throw new ConfigError('bad_option', 'imatrix must hold one value per column', { field: 'imatrix', expected: k, found: imatrix.length });
    }
    this.nb = k / QK;
    this.d = new Float64Array(n * this.nb);
    this.m = new Float64Array(n * this.nb);
    this.codes = new Int16Array(n * k);
    this.sigma2 = imatrix ? new Float64Array(n).fill(-1) : null;
  }

  fitGroup(g: number, w: Float64Array, c0: number): void {
    this.fitFrom(g, c0, (r, j) => w[r * this.k + j]);
  }

  /** fitGroup reading the matrix transposed (wT [K, N]), for gptq-fast.ts. */
  fitGroupT(g: number, wT: Float32Array, c0: number): void {
    this.fitFrom(g, c0, (r, j) => wT[j * this.n + r]);
  }

  /** Block scales of group g (columns c0 … c0 + 32) of every row; at(r, j) reads the current W[r, j]. */
  private fitFrom(g: number, c0: number, at: (r: number, j: number) => number): void {
    const { n, nb, type } = this;
    const blk = new Float32Array(QK);
    for (let r = 0; r < n; r++) {
      for (let j = 0; j < QK; j++) blk[j] = at(r, c0 + j);
      const i = r * nb + g;
      if (type === 'Q8_0') {
        this.d[i] = q8_0Scale(blk, 0);
      } else if (type === 'Q4_1' || type === 'Q5_1') {
        const p = qx_1Params(type === 'Q4_1' ? 4 : 5, blk, 0);
        this.d[i] = p.d;
        this.m[i] = p.m;
      } else {
        const bits = type === 'Q4_0' ? 4 : 5;
        this.d[i] = this.imatrix ? this.weightedScale(bits, r, at, c0, blk) : qx_0Scale(bits, blk, 0);
      }
    }
  }

  /** ggml's imatrix path for Q4_0/Q5_0: make_qx_quants with weights qw·√(σ² + x²). */
  private weightedScale(bits: 4 | 5, r: number, at: (r: number, j: number) => number, c0: number, blk: Float32Array): number {
    const { k } = this;
    const s2 = this.sigma2!;
    if (s2[r] < 0) {
      // σ² = mean x² over the row, taken once from the weights as first seen
      let s = 0;
      for (let j = 0; j < k; j++) s = fr(s + fr(fr(at(r, j)) ** 2));
      s2[r] = fr(s / k);
    }
    const wt = new Float32Array(QK);
    for (let j = 0; j < QK; j++) wt[j] = fr(this.imatrix![c0 + j] * fr(Math.sqrt(fr(s2[r] + fr(blk[j] * blk[j])))));
    const L = new Int8Array(QK);
    return makeQxQuants(QK, 1 << (bits - 1), blk, L, 1, wt, 0, 0);
  }

  quantizeColumn(j: number, g: number, col: Float64Array, out: Float64Array): void {
    const { n, k, nb, type } = this;
    for (let r = 0; r < n; r++) {
      const at = r * nb + g;
      const d = this.d[at];
      const id = d ? fr(1 / d) : 0;
      const x = fr(col[r]);
      let q: number;
      let v: number;
      if (type === 'Q8_0') {
        const t = fr(x * id);
        q = t < 0 ? -Math.floor(-t + 0.5) : Math.floor(t + 0.5);
        q = Math.max(-128, Math.min(127, q)) | 0; // | 0 turns −0 into 0, as the int8 code is
        v = q * f16(d);
      } else if (type === 'Q4_1' || type === 'Q5_1') {
        const qmax = type === 'Q4_1' ? 15 : 31;
        const m = this.m[at];
        q = Math.max(0, Math.min(qmax, Math.trunc(fr(fr(fr(x - m) * id) + 0.5))));
        v = fr(fr(q * f16(d)) + f16(m));
      } else {
        const bits = type === 'Q4_0' ? 4 : 5;
        const qmax = (1 << bits) - 1;
        q = Math.max(0, Math.min(qmax, Math.trunc(fr(fr(x * id) + (bits === 4 ? 8.5 : 16.5)))));
        v = fr((q - (1 << (bits - 1))) * f16(d));
      }
      this.codes[r * k + j] = q;
      out[r] = v;
    }
  }

  /** The ggml bytes of the codes and block parameters: [N, nb] blocks, row-major. */
  encode(): Uint8Array {
    const { n, k, nb, type } = this;
    const tsize = type === 'Q4_0' ? 18 : type === 'Q5_0' ? 22 : type === 'Q8_0' ? 34 : type === 'Q4_1' ? 20 : 24;
    const out = new Uint8Array(n * nb * tsize);
    const L = new Uint8Array(QK);
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < nb; b++) {
        const ob = (r * nb + b) * tsize;
        const at = r * nb + b;
        for (let j = 0; j < QK; j++) L[j] = this.codes[r * k + b * QK + j] & 0xff;
        if (type === 'Q8_0') {
          putF16(out, ob, this.d[at]);
          for (let j = 0; j < QK; j++) out[ob + 2 + j] = L[j];
        } else if (type === 'Q4_1' || type === 'Q5_1') {
          qx_1Encode(type === 'Q4_1' ? 4 : 5, L, this.d[at], this.m[at], out, ob);
        } else {
          qx_0Encode(type === 'Q4_0' ? 4 : 5, L, this.d[at], out, ob);
        }
      }
    }
    return out;
  }
}
