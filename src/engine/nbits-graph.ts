// An NBitsLinear (nbits.ts) in a graph: its constants (in memory, or written to a session weight
// file so that onnxruntime maps them) and the nodes that apply it:
//   y = MatMulNBits(x[..., perm], B, scales, zp)  [− blocksum(x[..., perm]) @ mins]
// where blocksum sums each Gm-block of the input (ReduceSum over a [..., K/Gm, Gm] view).
// Legend: N = out features, K = in features, Gm = min block, T = tokens.

import type { GraphBuilder, IrTensor, Value } from './ir.js';
import type { NBitsLinear, NBitsWidth } from './nbits.js';
import type { WeightFile } from './weight-file.js';

/** The constants of an NBitsLinear as graph tensors. */
export interface NBitsConstants {
  N: number;
  K: number;
  bits: NBitsWidth;
  blockSize: number;
  kernel: string;
  /** U8 [N, Kb, G·bits/8] */
  B: IrTensor;
  /** F32 [N·Kb] */
  scales: IrTensor;
  /** U8 packed, or null */
  zeroPoints: IrTensor | null;
  /** F32 [K/Gm, N] */
  mins: { blockSize: number; values: IrTensor } | null;
  /** I64 [K] */
  perm: IrTensor | null;
}

function shapes(l: NBitsLinear): { B: number[]; S: number[]; Z: number[]; M: number[] } {
  const m = l.main;
  const Kb = m.K / m.blockSize;
  return { B: [m.N, Kb, (m.blockSize * m.bits) / 8], S: [m.N * Kb], Z: [m.zeroPoints?.length ?? 0], M: l.mins ? [l.K / l.mins.blockSize, l.N] : [] };
}

/** In-memory constants (the arrays are shared, not copied). */
export function nbitsConstants(l: NBitsLinear): NBitsConstants {
  const s = shapes(l);
  const m = l.main;
  return {
    N: l.N, K: l.K, bits: m.bits, blockSize: m.blockSize, kernel: l.kernel,
    B: { dtype: 'U8', shape: s.B, data: m.B },
    scales: { dtype: 'F32', shape: s.S, data: m.scales },
    zeroPoints: m.zeroPoints ? { dtype: 'U8', shape: s.Z, data: m.zeroPoints } : null,
    mins: l.mins ? { blockSize: l.mins.blockSize, values: { dtype: 'F32', shape: s.M, data: l.mins.values } } : null,
    perm: l.perm ? { dtype: 'I64', shape: [l.K], data: BigInt64Array.from(l.perm, (p) => BigInt(p)) } : null,
  };
}

/** Writes the linear's constants to `file`; the returned references hold no data. */
export async function storeNBits(file: WeightFile, l: NBitsLinear, name: string): Promise<NBitsConstants> {
  const c = nbitsConstants(l);
  const put = (t: IrTensor, part: string) => {
    if (t.data === null) return Promise.resolve(t);
    return file.add(t.dtype, t.shape, t.data, `${name}.${part}`);
  };
  return {
    ...c,
    B: await put(c.B, 'qweight'),
    scales: await put(c.scales, 'scales'),
    zeroPoints: c.zeroPoints ? await put(c.zeroPoints, 'zeros') : null,
    mins: c.mins ? { blockSize: c.mins.blockSize, values: await put(c.mins.values, 'mins') } : null,
    perm: c.perm ? await put(c.perm, 'perm') : null,
  };
}

/** The graph constants of one linear, created once and shared by every node that applies it. */
export interface NBitsValues {
  c: NBitsConstants;
  B: Value;
  scales: Value;
  zeroPoints: Value | null;
  mins: Value | null;
  perm: Value | null;
}

export function nbitsValues(b: GraphBuilder, name: string, c: NBitsConstants): NBitsValues {
  return {
    c,
    B: b.constant(c.B, `${name}.qweight`),
    scales: b.constant(c.scales, `${name}.scales`),
    zeroPoints: c.zeroPoints ? b.constant(c.zeroPoints, `${name}.zeros`) : null,
    mins: c.mins ? b.constant(c.mins.values, `${name}.mins`) : null,
    perm: c.perm ? b.constant(c.perm, `${name}.perm`) : null,
  };
}

/**
 * x [..., K] @ Wᵀ → [..., N] on the stored codes; `accuracyLevel` 0 = fp32 (exact), 4 = int8
 * activations. Pass the same NBitsValues wherever one weight is applied more than once (onnxruntime
 * would otherwise hold a prepacked copy per constant).
 */
export function nbitsLinearGraph(b: GraphBuilder, x: Value, v: NBitsValues, accuracyLevel = 0): Value {
  const c = v.c;
  const lead = x.shape.slice(0, -1);
  const xin = v.perm ? b.gather(x, v.perm, x.shape.length - 1) : x;
  let y = b.matmulNBits(xin, v.B, v.scales, v.zeroPoints, { K: c.K, N: c.N, bits: c.bits, blockSize: c.blockSize, accuracyLevel });
  if (v.mins && c.mins) {
    const Gm = c.mins.blockSize;
    const sums = b.sum(b.reshape(xin, [...lead, c.K / Gm, Gm]), -1, false); // [..., K/Gm]
    y = b.sub(y, b.matmul(sums, v.mins));
  }
  return y;
}
