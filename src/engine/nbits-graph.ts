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

/** x [..., K] @ Wᵀ → [..., N] on the stored codes; `accuracyLevel` 0 = fp32 (exact), 4 = int8 activations. */
export function nbitsLinearGraph(b: GraphBuilder, name: string, x: Value, c: NBitsConstants, accuracyLevel = 0): Value {
  const lead = x.shape.slice(0, -1);
  const xin = c.perm ? b.gather(x, b.constant(c.perm, `${name}.perm`), x.shape.length - 1) : x;
  const B = b.constant(c.B, `${name}.qweight`);
  const S = b.constant(c.scales, `${name}.scales`);
  const Z = c.zeroPoints ? b.constant(c.zeroPoints, `${name}.zeros`) : null;
  let y = b.matmulNBits(xin, B, S, Z, { K: c.K, N: c.N, bits: c.bits, blockSize: c.blockSize, accuracyLevel });
  if (c.mins) {
    const Gm = c.mins.blockSize;
    const sums = b.sum(b.reshape(xin, [...lead, c.K / Gm, Gm]), -1, false); // [..., K/Gm]
    y = b.sub(y, b.matmul(sums, b.constant(c.mins.values, `${name}.mins`)));
  }
  return y;
}
