// The K-quants (Q2_K … Q6_K) as a GPTQ column grid. A group is one 256-value super-block of one
// row. Its scales/mins are fitted by ggml's own rule (with the imatrix when given) from the weights
// as GPTQ reaches them: the group's [N, 256] block goes through quantizeGgml (the codec's row
// quantizer, WebAssembly where a kernel exists) and each row's block parameters are read back from
// the bytes (the layouts below, ggml's block_q*_K structs). Each value then takes the code whose
// decoded value (the block hook's value(p, j, q): exactly what ggml's to_float returns) is nearest;
// levels are affine in the code within a sub-block, so the nearest code is found from two decoded
// levels and checked against its neighbours. The tensor encoded afterwards (the hook's encode)
// decodes to exactly the weights GPTQ reports.
// Legend: N = rows, K = columns (a multiple of QK = 256), nb = K/QK super-blocks per row,
// S = sub-block width (16 or 32), L = codes per sub-block (max code + 1).

import { ConfigError } from '../core/errors.js';
import { f16ToF32 } from '../numerics/float16.js';
import { GGML_BLOCK_HOOKS, quantizeGgml, type BlockHook, type K45Scales, type KGroupScales } from '../quant/ggml/index.js';
import type { ColumnGrid } from './grid.js';
import { transposeInto } from './gptq-fast.js';
import { transposeF32Into } from '../numerics/gemm.js';

export const HOOK_GRID_TYPES = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K'] as const;
export type HookGridType = (typeof HOOK_GRID_TYPES)[number];

const MAX_CODE: Record<HookGridType, number> = { Q2_K: 3, Q3_K: 7, Q4_K: 15, Q5_K: 31, Q6_K: 63 };
/** values sharing one sub-scale (the hook's value depends on j only through j / S) */
const SUB_BLOCK: Record<HookGridType, number> = { Q2_K: 16, Q3_K: 16, Q4_K: 32, Q5_K: 32, Q6_K: 16 };

const f16At = (b: Uint8Array, o: number): number => f16ToF32(b[o] | (b[o + 1] << 8));

/** Q4_K/Q5_K: d, dmin (f16) at 0 and 2, then 8 six-bit scales and mins packed in 12 bytes (get_scale_min_k4). */
function decodeK45(b: Uint8Array, o: number): K45Scales {
  const sc = new Uint8Array(8), mn = new Uint8Array(8);
  const s = o + 4;
  for (let j = 0; j < 8; j++) {
    if (j < 4) {
      sc[j] = b[s + j] & 63;
      mn[j] = b[s + j + 4] & 63;
    } else {
      sc[j] = (b[s + j + 4] & 15) | ((b[s + j - 4] >> 6) << 4);
      mn[j] = (b[s + j + 4] >> 4) | ((b[s + j] >> 6) << 4);
    }
  }
  return { d: f16At(b, o), dmin: f16At(b, o + 2), sc, mn };
}

/** Block parameters read back from one block's bytes at o, in the hook's own form. */
const DECODE: Record<HookGridType, (b: Uint8Array, o: number) => unknown> = {
  // Q2_K (84 bytes): 16 bytes of (scale | min << 4), 64 bytes of codes, d and dmin (f16) at 80 and 82
  Q2_K: (b, o): KGroupScales => {
    const sc = new Int16Array(16), mn = new Int16Array(16);
    for (let j = 0; j < 16; j++) {
      sc[j] = b[o + j] & 15;
      mn[j] = b[o + j] >> 4;
    }
    return { d: f16At(b, o + 80), dmin: f16At(b, o + 82), sc, mn };
  },
  // Q3_K (110 bytes): high-bit mask 32, codes 64, then 16 six-bit scales in 12 bytes at 96 (low
  // nibbles in bytes 0–7, two high bits per scale in bytes 8–11), d (f16) at 108
  Q3_K: (b, o): KGroupScales => {
    const sc = new Int16Array(16);
    const s = o + 96;
    for (let j = 0; j < 16; j++) {
      const lo = j < 8 ? b[s + j] & 15 : b[s + j - 8] >> 4;
      sc[j] = lo | (((b[s + 8 + (j % 4)] >> (2 * (j >> 2))) & 3) << 4);
    }
    return { d: f16At(b, o + 108), dmin: 0, sc, mn: new Int16Array(16) };
  },
  Q4_K: decodeK45,
  Q5_K: decodeK45,
  // Q6_K (210 bytes): codes 192, 16 int8 scales at 192, d (f16) at 208
  Q6_K: (b, o): KGroupScales => {
    const sc = new Int16Array(16);
    for (let j = 0; j < 16; j++) sc[j] = (b[o + 192 + j] << 24) >> 24;
    return { d: f16At(b, o + 208), dmin: 0, sc, mn: new Int16Array(16) };
  },
};

export function isHookGridType(t: string): t is HookGridType {
  return (HOOK_GRID_TYPES as readonly string[]).includes(t);
}

export class KQuantGrid implements ColumnGrid {
  readonly groupSize: number;
  readonly fixedGroups = true;
  /** [N, nb] fitted block parameters */
  readonly params: unknown[];
  /** [K, N] codes, column-major (GPTQ writes a column at a time; encode() transposes) */
  private readonly codesT: Uint8Array;
  private readonly hook: BlockHook<unknown>;
  private readonly nb: number;
  private readonly maxCode: number;
  private readonly sub: number;
  /** per group: decoded levels [QK/S, N, L] (types with L ≤ S: at most one float per weight; a column reads one contiguous [N, L] slab) */
  private readonly tables = new Map<number, Float32Array>();
  private readonly useTables: boolean;

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
    this.codesT = new Uint8Array(n * k);
    this.maxCode = MAX_CODE[type];
    this.sub = SUB_BLOCK[type];
    this.useTables = this.maxCode + 1 <= this.sub;
  }

  fitGroup(g: number, w: Float64Array, c0: number): void {
    const QK = this.groupSize, n = this.n, k = this.k;
    const blk = new Float32Array(n * QK);
    for (let r = 0; r < n; r++) for (let j = 0; j < QK; j++) blk[r * QK + j] = w[r * k + c0 + j];
    this.fitFrom(g, c0, blk);
  }

  /** fitGroup reading the matrix transposed (wT [K, N]), for gptq-fast.ts. */
  fitGroupT(g: number, wT: Float32Array, c0: number): void {
    const QK = this.groupSize, n = this.n;
    const blk = new Float32Array(n * QK);
    // the group's QK rows of wT, [QK, N] → [N, QK]
    transposeF32Into(wT.subarray(c0 * n, (c0 + QK) * n), QK, n, blk);
    this.fitFrom(g, c0, blk);
  }

  /** Fits group g (columns c0 …) from its weights blk [N, QK]. */
  private fitFrom(g: number, c0: number, blk: Float32Array): void {
    const QK = this.groupSize, n = this.n;
    const bytes = quantizeGgml(this.type, blk, n, QK, this.imatrix?.subarray(c0, c0 + QK));
    const ts = this.hook.typeSize, decode = DECODE[this.type];
    for (let r = 0; r < n; r++) this.params[r * this.nb + g] = decode(bytes, r * ts);
    this.tables.delete(g);
  }

  /** Group g's decoded levels [QK/S, N, L], built on first use. */
  private table(g: number): Float32Array {
    let t = this.tables.get(g);
    if (t) return t;
    const ns = this.groupSize / this.sub, L = this.maxCode + 1, h = this.hook;
    t = new Float32Array(this.n * ns * L);
    for (let r = 0; r < this.n; r++) {
      const p = this.params[r * this.nb + g];
      for (let s = 0; s < ns; s++) for (let q = 0; q < L; q++) t[(s * this.n + r) * L + q] = h.value(p, s * this.sub, q);
    }
    this.tables.set(g, t);
    return t;
  }

  quantizeColumn(j: number, g: number, col: Float64Array, out: Float64Array): void {
    const jb = j % this.groupSize;
    const mx = this.maxCode;
    if (this.useTables) {
      const L = mx + 1;
      const t = this.table(g);
      const s = Math.floor(jb / this.sub);
      const codes = this.codesT.subarray(j * this.n, (j + 1) * this.n);
      for (let r = 0; r < this.n; r++) {
        const o = (s * this.n + r) * L;
        const x = Math.fround(col[r]);
        const v0 = t[o];
        const step = t[o + 1] - v0;
        let q = step === 0 ? 0 : Math.round((x - v0) / step);
        q = q < 0 ? 0 : q > mx ? mx : q;
        let best = t[o + q];
        if (q > 0 && Math.abs(t[o + q - 1] - x) < Math.abs(best - x)) best = t[o + --q];
        else if (q < mx && Math.abs(t[o + q + 1] - x) < Math.abs(best - x)) best = t[o + ++q];
        codes[r] = q;
        out[r] = best;
      }
      return;
    }
    const h = this.hook;
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
      this.codesT[j * this.n + r] = q;
      out[r] = best;
    }
  }

  /** The ggml bytes: [N, nb] blocks, row-major. */
  encode(): Uint8Array {
    const { n, k, nb } = this;
    const QK = this.groupSize;
    const ts = this.hook.typeSize;
    const out = new Uint8Array(n * nb * ts);
    const codes = new Uint8Array(n * k); // [N, K]
    transposeInto(this.codesT, k, n, codes);
    for (let r = 0; r < n; r++) {
      for (let b = 0; b < nb; b++) {
        this.hook.encode(codes.subarray(r * k + b * QK, r * k + b * QK + QK), this.params[r * nb + b], out, (r * nb + b) * ts);
      }
    }
    return out;
  }
}
