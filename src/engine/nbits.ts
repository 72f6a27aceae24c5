// Linear layers on stored low-bit codes, as onnxruntime's com.microsoft MatMulNBits runs them.
//
// MatMulNBits operands (measured on onnxruntime-node 1.30, CPU EP; test/engine/nbits-kernel.test.ts):
//   B      U8  [N, Kb, G·bits/8]   row n, block j: the block's G codes as a little-endian bit stream
//   scales F32 [N·Kb]
//   zp     U8  [N·⌈Kb·bits/8⌉]     per row, packed the same way; absent = 2^(bits−1)
// With integer zero points the kernel's weight is W[n, k] = fround((u − z)·s), bit for bit, for
// bits 2/4/8 and every power-of-two block from 16 to 256. Float zero points are not used here: the
// kernel then computes fround(u·s) − fround(z·s), runs an unpacked fallback that dequantizes the whole
// matrix on every call (3–4× slower at 4 bits) and refuses 8 bits.
//
// An NBitsLinear adds the two things the stored formats need beyond one MatMulNBits node:
//   mins: a per-block offset subtracted after the product (ggml's Q4_1/Q5_1/Q2_K/Q4_K/Q5_K "min"):
//         W[n, k] = main[n, k] − mins[n, ⌊k/Gm⌋], computed as x @ mainᵀ − blocksum(x) @ minsᵀ;
//   perm: an input order (act-order GPTQ / compressed-tensors checkpoints, whose groups are sets of
//         columns): column k of `main` multiplies input feature perm[k].
// The dequantized reference of an NBitsLinear rounds each element once more, fround(main − min),
// which is exactly how ggml evaluates those types; the graph's sum differs from x @ fround(…)ᵀ by
// float32 accumulation order only.
// Legend: N = out features, K = in features, G = block, Kb = K / G, Gm = min block, T = tokens.

import { ConfigError } from '../core/errors.js';

export type NBitsWidth = 2 | 4 | 8;

/** One MatMulNBits node's constant operands. */
export interface NBitsOperands {
  N: number;
  K: number;
  bits: NBitsWidth;
  blockSize: number;
  /** [N, Kb, G·bits/8] */
  B: Uint8Array;
  /** [N·Kb] */
  scales: Float32Array;
  /** [N·⌈Kb·bits/8⌉] integer zero points, or null for 2^(bits−1) */
  zeroPoints: Uint8Array | null;
  /** `scales` as a product, where the format defines them so (nbits-graph.ts stores these instead) */
  scaleFactors?: ScaleFactors;
}

/**
 * scales[i] = fround(units[⌊i/per⌋]·(codes[i] − 128)): ggml's 8-bit K-quants (Q6_K) store a float
 * per super-block times an 8-bit integer per 16-block. Kept so, a block's scale costs 1 + 4/per bytes
 * instead of 4 (Q6_K on the 8-bit kernel: 1.08 instead of 1.25 bytes per weight), and the graph
 * multiplies them out at each call. Rows n hold codes [n·Kb, (n + 1)·Kb) and units [n·Kb/per, …).
 */
export interface ScaleFactors {
  /** blocks per unit (divides Kb) */
  per: number;
  /** U8 [N·Kb]: the integer + 128 */
  codes: Uint8Array;
  /** F32 [N·Kb/per] */
  units: Float32Array;
}

/**
 * The per-block mins of an NBitsLinear, W[n, k] = main[n, k] − min[n, ⌊k/Gm⌋]:
 *   float: values [K/Gm, N] (transposed for the MatMul)
 *   coded: the ggml K-quants' mins are 6-bit integers times a per-super-block dmin, so they are
 *          themselves an 8-bit MatMulNBits over the block sums (0.625 instead of 1 bit per weight):
 *          each super-block's `perSuper` sums are repeated to a block of 16 (the kernel's smallest),
 *          codes m + 128 in the first `perSuper` columns and 128 (zero) in the repeats, scale dmin;
 *          `parts` are row ranges (the kernel dequantizes them unpacked on every call)
 */
export type NBitsMins =
  | { kind: 'float'; blockSize: number; values: Float32Array }
  | { kind: 'coded'; blockSize: number; perSuper: number; parts: NBitsOperands[] };

/** A linear weight W [N, K] on stored codes (see the file header). */
export interface NBitsLinear {
  N: number;
  K: number;
  main: NBitsOperands;
  /** W = main − mins per Gm-block */
  mins: NBitsMins | null;
  /** column k of main multiplies input feature perm[k] */
  perm: Int32Array | null;
  /** how the stored format maps onto the kernel, for reports ("4-bit g32 + mins") */
  kernel: string;
}

/** Largest power of two ≤ 256 that divides `g` (0 when it is below 16: MatMulNBits's smallest block). */
export function nbitsBlockFor(g: number): number {
  let b = 256;
  while (b >= 16 && g % b !== 0) b >>= 1;
  return b >= 16 ? b : 0;
}

/** Smallest kernel width that holds codes of `bits` bits. */
export function nbitsContainer(bits: number): NBitsWidth {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) throw new ConfigError('unsupported', 'code width has no MatMulNBits container', { field: 'bits', expected: '1..8', found: bits });
  return bits <= 2 ? 2 : bits <= 4 ? 4 : 8;
}

/** Packs values low-bits-first: value i of a run lands at bit i·bits of the run's bytes. */
function packRun(out: Uint8Array, off: number, values: ArrayLike<number>, from: number, count: number, bits: number): void {
  for (let e = 0; e < count; e++) {
    const bit = e * bits;
    out[off + (bit >> 3)] |= values[from + e] << (bit & 7);
  }
}

/**
 * MatMulNBits operands from unsigned codes u [N·K] (each < 2^bits), scales [N·Kb] and integer zero
 * points [N·Kb] (null: the kernel's default 2^(bits−1)). Codes and zero points are checked here.
 */
export function packNBits(N: number, K: number, bits: NBitsWidth, G: number, codes: ArrayLike<number>, scales: Float32Array, zeros: ArrayLike<number> | null): NBitsOperands {
  if (G < 16 || (G & (G - 1)) !== 0 || K % G !== 0) {
    throw new ConfigError('unsupported', 'MatMulNBits block must be a power of two >= 16 dividing K', { field: 'blockSize', expected: `power of two >= 16 dividing ${K}`, found: G });
  }
  const Kb = K / G;
  if (codes.length !== N * K || scales.length !== N * Kb || (zeros && zeros.length !== N * Kb)) {
    throw new ConfigError('bad_config', 'MatMulNBits operand sizes do not match [N, K] and the block', { expected: `${N * K} codes, ${N * Kb} scales`, found: `${codes.length} codes, ${scales.length} scales` });
  }
  const top = 1 << bits;
  for (let i = 0; i < codes.length; i++) {
    if (!(codes[i] >= 0 && codes[i] < top)) throw new ConfigError('bad_config', 'code does not fit the MatMulNBits width', { index: i, expected: `0..${top - 1}`, found: codes[i] });
  }
  const blob = (G * bits) / 8;
  const B = new Uint8Array(N * Kb * blob);
  for (let n = 0; n < N; n++) for (let j = 0; j < Kb; j++) packRun(B, (n * Kb + j) * blob, codes, n * K + j * G, G, bits);
  let zeroPoints: Uint8Array | null = null;
  if (zeros) {
    const row = Math.ceil((Kb * bits) / 8);
    zeroPoints = new Uint8Array(N * row);
    for (let i = 0; i < zeros.length; i++) {
      if (!(zeros[i] >= 0 && zeros[i] < top)) throw new ConfigError('bad_config', 'zero point does not fit the MatMulNBits width', { index: i, expected: `0..${top - 1}`, found: zeros[i] });
    }
    for (let n = 0; n < N; n++) packRun(zeroPoints, n * row, zeros, n * Kb, Kb, bits);
  }
  return { N, K, bits, blockSize: G, B, scales, zeroPoints };
}

/** The code of element (n, k) and its block's zero point, read back from packed operands. */
function unpackAt(o: NBitsOperands, n: number, k: number): { u: number; z: number; s: number } {
  const G = o.blockSize;
  const Kb = o.K / G;
  const j = Math.floor(k / G);
  const mask = (1 << o.bits) - 1;
  const bit = (k % G) * o.bits;
  const u = (o.B[(n * Kb + j) * ((G * o.bits) / 8) + (bit >> 3)] >> (bit & 7)) & mask;
  let z = 1 << (o.bits - 1);
  if (o.zeroPoints) {
    const zb = j * o.bits;
    z = (o.zeroPoints[n * Math.ceil((Kb * o.bits) / 8) + (zb >> 3)] >> (zb & 7)) & mask;
  }
  return { u, z, s: o.scales[n * Kb + j] };
}

/** The kernel's weight W [N, K] from packed operands: fround((u − z)·s). The slow reference for the node. */
export function dequantizeNBitsOperands(o: NBitsOperands): Float32Array {
  const out = new Float32Array(o.N * o.K);
  for (let n = 0; n < o.N; n++) {
    for (let k = 0; k < o.K; k++) {
      const { u, z, s } = unpackAt(o, n, k);
      out[n * o.K + k] = (u - z) * s;
    }
  }
  return out;
}

/** The mins as a float matrix [K/Gm, N] (coded mins dequantized as the kernel does). */
export function minsValues(l: NBitsLinear): Float32Array | null {
  const m = l.mins;
  if (!m) return null;
  if (m.kind === 'float') return m.values;
  const Kb = l.K / m.blockSize;
  const out = new Float32Array(Kb * l.N);
  let n0 = 0;
  for (const p of m.parts) {
    const d = dequantizeNBitsOperands(p); // [Np, Kb/perSuper·16]
    for (let n = 0; n < p.N; n++) {
      for (let b = 0; b < Kb; b++) out[b * l.N + n0 + n] = d[n * p.K + Math.floor(b / m.perSuper) * 16 + (b % m.perSuper)];
    }
    n0 += p.N;
  }
  return out;
}

/** W [N, K] in input-feature order: fround(main − min) per element, columns placed by perm. */
export function dequantizeNBitsLinear(l: NBitsLinear): Float32Array {
  const main = dequantizeNBitsOperands(l.main);
  const mins = minsValues(l);
  const Gm = l.mins?.blockSize ?? 1;
  const { N, K } = l;
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      let w = main[n * K + k];
      if (mins) w -= mins[Math.floor(k / Gm) * N + n];
      out[n * K + (l.perm ? l.perm[k] : k)] = w;
    }
  }
  return out;
}

function operandBytes(o: NBitsOperands): number {
  return o.B.byteLength + o.scales.byteLength + (o.zeroPoints?.byteLength ?? 0);
}

/** Bytes the linear keeps as constants (what the session holds for it). */
export function nbitsLinearBytes(l: NBitsLinear): number {
  const m = l.mins;
  const mins = !m ? 0 : m.kind === 'float' ? m.values.byteLength : m.parts.reduce((a, p) => a + operandBytes(p), 0);
  return operandBytes(l.main) + mins + (l.perm ? l.perm.length * 8 : 0);
}

/**
 * Splits a linear into row ranges of at most `rows` output features each (same input order). Used
 * where onnxruntime runs MatMulNBits unpacked (2 and 8 bits at accuracy level 0): it dequantizes the
 * whole matrix to float32 on every call, so a part bounds that temporary.
 */
export function splitNBitsRows(l: NBitsLinear, rows: number): NBitsLinear[] {
  if (l.N <= rows) return [l];
  const out: NBitsLinear[] = [];
  for (let n0 = 0; n0 < l.N; n0 += rows) {
    const n1 = Math.min(l.N, n0 + rows);
    const Np = n1 - n0;
    let mins: NBitsMins | null = null;
    if (l.mins?.kind === 'float') {
      const Km = l.K / l.mins.blockSize;
      const v = new Float32Array(Km * Np);
      for (let j = 0; j < Km; j++) v.set(l.mins.values.subarray(j * l.N + n0, j * l.N + n1), j * Np);
      mins = { kind: 'float', blockSize: l.mins.blockSize, values: v };
    } else if (l.mins) {
      const whole = l.mins.parts.length === 1 ? l.mins.parts[0] : null;
      if (!whole) throw new ConfigError('unsupported', 'splitting a linear whose coded mins are already split');
      mins = { ...l.mins, parts: [sliceOperandRows(whole, n0, n1)] };
    }
    out.push({ N: Np, K: l.K, main: sliceOperandRows(l.main, n0, n1), mins, perm: l.perm, kernel: l.kernel });
  }
  return out;
}

/** Rows [n0, n1) of packed operands. */
export function sliceOperandRows(m: NBitsOperands, n0: number, n1: number): NBitsOperands {
  const Kb = m.K / m.blockSize;
  const blob = (m.blockSize * m.bits) / 8;
  const zRow = Math.ceil((Kb * m.bits) / 8);
  return {
    ...m,
    N: n1 - n0,
    B: m.B.slice(n0 * Kb * blob, n1 * Kb * blob),
    scales: m.scales.slice(n0 * Kb, n1 * Kb),
    zeroPoints: m.zeroPoints ? m.zeroPoints.slice(n0 * zRow, n1 * zRow) : null,
    ...(m.scaleFactors ? { scaleFactors: sliceFactorRows(m.scaleFactors, Kb, n0, n1) } : {}),
  };
}

function sliceFactorRows(f: ScaleFactors, Kb: number, n0: number, n1: number): ScaleFactors {
  const u = Kb / f.per;
  return { per: f.per, codes: f.codes.slice(n0 * Kb, n1 * Kb), units: f.units.slice(n0 * u, n1 * u) };
}

/** Row ranges of at most `rows` rows of one operand set. */
export function splitOperandRows(m: NBitsOperands, rows: number): NBitsOperands[] {
  if (m.N <= rows) return [m];
  const out: NBitsOperands[] = [];
  for (let n0 = 0; n0 < m.N; n0 += rows) out.push(sliceOperandRows(m, n0, Math.min(m.N, n0 + rows)));
  return out;
}
