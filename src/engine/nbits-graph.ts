// An NBitsLinear (nbits.ts) in a graph: its constants (in memory, or written to a session weight
// file so that onnxruntime maps them) and the nodes that apply it:
//   y = MatMulNBits(x[..., perm], B, scales, zp)  [− mins(blocksum(x[..., perm]))]
// where blocksum sums each Gm-block of the input (ReduceSum over a [..., K/Gm, Gm] view) and the
// mins apply as a float MatMul [K/Gm, N] or, coded (K-quants), as 8-bit MatMulNBits row parts over the
// sums with each super-block's sums repeated to a block of 16 (always accuracy level 0: the sums are
// not int8-friendly activations).
// Legend: N = out features, K = in features, Gm = min block, T = tokens.

import type { GraphBuilder, IrTensor, Value } from './ir.js';
import type { NBitsLinear, NBitsOperands, NBitsWidth } from './nbits.js';
import type { WeightFile } from './weight-file.js';

/** One MatMulNBits node's constants. */
export interface NBitsOperandConstants {
  N: number;
  K: number;
  bits: NBitsWidth;
  blockSize: number;
  /** U8 [N, Kb, G·bits/8] */
  B: IrTensor;
  /** F32 [N·Kb] */
  scales: IrTensor;
  /** U8 packed, or null */
  zeroPoints: IrTensor | null;
}

export type NBitsMinsConstants =
  /** F32 [K/Gm, N] */
  | { kind: 'float'; blockSize: number; values: IrTensor }
  | { kind: 'coded'; blockSize: number; perSuper: number; parts: NBitsOperandConstants[] };

/** The constants of an NBitsLinear as graph tensors. */
export interface NBitsConstants extends NBitsOperandConstants {
  kernel: string;
  mins: NBitsMinsConstants | null;
  /** I64 [K] */
  perm: IrTensor | null;
}

function operandConstants(m: NBitsOperands): NBitsOperandConstants {
  const Kb = m.K / m.blockSize;
  return {
    N: m.N, K: m.K, bits: m.bits, blockSize: m.blockSize,
    B: { dtype: 'U8', shape: [m.N, Kb, (m.blockSize * m.bits) / 8], data: m.B },
    scales: { dtype: 'F32', shape: [m.N * Kb], data: m.scales },
    zeroPoints: m.zeroPoints ? { dtype: 'U8', shape: [m.zeroPoints.length], data: m.zeroPoints } : null,
  };
}

/** In-memory constants (the arrays are shared, not copied). */
export function nbitsConstants(l: NBitsLinear): NBitsConstants {
  const m = l.mins;
  let mins: NBitsMinsConstants | null = null;
  if (m?.kind === 'float') mins = { kind: 'float', blockSize: m.blockSize, values: { dtype: 'F32', shape: [l.K / m.blockSize, l.N], data: m.values } };
  else if (m) mins = { kind: 'coded', blockSize: m.blockSize, perSuper: m.perSuper, parts: m.parts.map(operandConstants) };
  return {
    ...operandConstants(l.main),
    kernel: l.kernel,
    mins,
    perm: l.perm ? { dtype: 'I64', shape: [l.K], data: BigInt64Array.from(l.perm, (p) => BigInt(p)) } : null,
  };
}

/** Writes the linear's constants to `file`; the returned references hold no data. */
export async function storeNBits(file: WeightFile, l: NBitsLinear, name: string): Promise<NBitsConstants> {
  const c = nbitsConstants(l);
  const put = (t: IrTensor, part: string): Promise<IrTensor> => (t.data === null ? Promise.resolve(t) : file.add(t.dtype, t.shape, t.data, `${name}.${part}`));
  const putOperands = async (o: NBitsOperandConstants, tag: string): Promise<NBitsOperandConstants> => ({
    ...o,
    B: await put(o.B, `${tag}qweight`),
    scales: await put(o.scales, `${tag}scales`),
    zeroPoints: o.zeroPoints ? await put(o.zeroPoints, `${tag}zeros`) : null,
  });
  let mins = c.mins;
  if (mins?.kind === 'float') mins = { ...mins, values: await put(mins.values, 'mins') };
  else if (mins) {
    const parts: NBitsOperandConstants[] = [];
    for (let i = 0; i < mins.parts.length; i++) parts.push(await putOperands(mins.parts[i], `mins${i}.`));
    mins = { ...mins, parts };
  }
  return { ...(await putOperands(c, '')), kernel: c.kernel, mins, perm: c.perm ? await put(c.perm, 'perm') : null };
}

interface OperandValues {
  o: NBitsOperandConstants;
  B: Value;
  scales: Value;
  zeroPoints: Value | null;
}

/** The graph constants of one linear, created once and shared by every node that applies it. */
export interface NBitsValues {
  c: NBitsConstants;
  main: OperandValues;
  mins: { kind: 'float'; values: Value } | { kind: 'coded'; parts: OperandValues[] } | null;
  perm: Value | null;
}

function operandValues(b: GraphBuilder, name: string, o: NBitsOperandConstants): OperandValues {
  return {
    o,
    B: b.constant(o.B, `${name}.qweight`),
    scales: b.constant(o.scales, `${name}.scales`),
    zeroPoints: o.zeroPoints ? b.constant(o.zeroPoints, `${name}.zeros`) : null,
  };
}

export function nbitsValues(b: GraphBuilder, name: string, c: NBitsConstants): NBitsValues {
  const m = c.mins;
  return {
    c,
    main: operandValues(b, name, c),
    mins: !m ? null : m.kind === 'float' ? { kind: 'float', values: b.constant(m.values, `${name}.mins`) } : { kind: 'coded', parts: m.parts.map((p, i) => operandValues(b, `${name}.mins${i}`, p)) },
    perm: c.perm ? b.constant(c.perm, `${name}.perm`) : null,
  };
}

function applyOperands(b: GraphBuilder, x: Value, v: OperandValues, accuracyLevel: number): Value {
  const o = v.o;
  return b.matmulNBits(x, v.B, v.scales, v.zeroPoints, { K: o.K, N: o.N, bits: o.bits, blockSize: o.blockSize, accuracyLevel });
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
  let y = applyOperands(b, xin, v.main, accuracyLevel);
  if (v.mins && c.mins) {
    const Gm = c.mins.blockSize;
    const Kb = c.K / Gm;
    let sums = b.sum(b.reshape(xin, [...lead, Kb, Gm]), -1, false); // [..., K/Gm]
    let m: Value;
    if (v.mins.kind === 'float') m = b.matmul(sums, v.mins.values);
    else {
      const per = (c.mins as { perSuper: number }).perSuper;
      if (per < 16) {
        // each super-block's sums repeated to the kernel's 16-block; the repeats meet zero codes
        const grouped = b.reshape(sums, [...lead, Kb / per, per]);
        sums = b.reshape(b.concat(new Array<Value>(16 / per).fill(grouped), lead.length + 1), [...lead, (Kb / per) * 16]);
      }
      const outs = v.mins.parts.map((p) => applyOperands(b, sums, p, 0));
      m = outs.length === 1 ? outs[0] : b.concat(outs, lead.length);
    }
    y = b.sub(y, m);
  }
  return y;
}
