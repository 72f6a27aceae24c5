// An NBitsLinear (nbits.ts) in a graph: its constants (in memory, or written to a session weight
// file so that onnxruntime maps them) and the nodes that apply it:
//   y = MatMulNBits(x[..., perm], B, scales, zp)  [− mins(blocksum(x[..., perm]))]
// where blocksum sums each Gm-block of the input (ReduceSum over a [..., K/Gm, Gm] view) and the
// mins apply as a float MatMul [K/Gm, N] or, coded (K-quants), as 8-bit MatMulNBits row parts over the
// sums with each super-block's sums repeated to a block of 16 (always accuracy level 0: the sums are
// not int8-friendly activations).
// Scales given as a product (nbits.ts ScaleFactors: Q4_K, Q5_K, Q6_K) are stored so, U8 codes and F32 units, and
// multiplied out in the graph at each call, gated on the node's input: onnxruntime folds any subgraph
// of constants into a new float32 initializer when the session loads, which would bring back the
// 4 bytes per block that storing the factors saves.
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
  /** F32 [N·Kb], or null where `scaleFactors` hold them */
  scales: IrTensor | null;
  /** U8 packed, or null */
  zeroPoints: IrTensor | null;
  /** scales[i] = fround(units[⌊i/per⌋]·(codes[i] − 128)): codes U8 [N·Kb/per, per], units F32 [N·Kb/per, 1] */
  scaleFactors: { codes: IrTensor; units: IrTensor } | null;
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

/** Whether the factors give every scale bit for bit (else the float32 scales are kept). */
export function factorsExact(m: NBitsOperands): boolean {
  const f = m.scaleFactors;
  if (!f || f.codes.length !== m.scales.length || f.units.length * f.per !== m.scales.length) return false;
  for (let i = 0; i < m.scales.length; i++) if (!Object.is(Math.fround(f.units[Math.floor(i / f.per)] * (f.codes[i] - 128)), m.scales[i])) return false;
  return true;
}

function operandConstants(m: NBitsOperands): NBitsOperandConstants {
  const Kb = m.K / m.blockSize;
  const f = factorsExact(m) ? m.scaleFactors! : null;
  return {
    N: m.N, K: m.K, bits: m.bits, blockSize: m.blockSize,
    B: { dtype: 'U8', shape: [m.N, Kb, (m.blockSize * m.bits) / 8], data: m.B },
    scales: f ? null : { dtype: 'F32', shape: [m.N * Kb], data: m.scales },
    zeroPoints: m.zeroPoints ? { dtype: 'U8', shape: [m.zeroPoints.length], data: m.zeroPoints } : null,
    scaleFactors: f ? { codes: { dtype: 'U8', shape: [f.units.length, f.per], data: f.codes }, units: { dtype: 'F32', shape: [f.units.length, 1], data: f.units } } : null,
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
    scales: o.scales ? await put(o.scales, `${tag}scales`) : null,
    zeroPoints: o.zeroPoints ? await put(o.zeroPoints, `${tag}zeros`) : null,
    scaleFactors: o.scaleFactors ? { codes: await put(o.scaleFactors.codes, `${tag}scalecodes`), units: await put(o.scaleFactors.units, `${tag}scaleunits`) } : null,
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
  /** null: made from `factors` at each application */
  scales: Value | null;
  zeroPoints: Value | null;
  factors: { codes: Value; units: Value } | null;
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
    scales: o.scales ? b.constant(o.scales, `${name}.scales`) : null,
    zeroPoints: o.zeroPoints ? b.constant(o.zeroPoints, `${name}.zeros`) : null,
    factors: o.scaleFactors ? { codes: b.constant(o.scaleFactors.codes, `${name}.scalecodes`), units: b.constant(o.scaleFactors.units, `${name}.scaleunits`) } : null,
  };
}

/**
 * scales F32 [N·Kb] from their factors, computed when `x` is: the codes pass through
 * Where(x₀ < −∞, codes, codes) — the same bytes (false for every x₀, NaN included) but not a constant,
 * so onnxruntime can neither fold the product into an initializer nor compute it before it is needed.
 * (u − 128) and its product with the unit are exact / rounded once in float32, as fround(d·sc).
 */
function factoredScales(b: GraphBuilder, x: Value, f: { codes: Value; units: Value }): Value {
  const x0 = b.reshape(b.slice(x, x.shape.map(() => 0), x.shape.map(() => 1)), [1]);
  const codes = b.where(b.less(x0, -Infinity), f.codes, f.codes, 'U8');
  return multipliedScales(b, { codes, units: f.units });
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

/**
 * scales F32 [N·Kb] = (codes − 128)·units. On the constants themselves (accuracy level ≠ 0) onnxruntime
 * folds this into a float32 initializer when the session loads, which level 4 needs: its int8 kernel packs the scales with
 * the codes at load and gives wrong products from run-time scales (measured on onnxruntime-node 1.30:
 * errors the size of the outputs), so there the scales must be constant, at their full cost (this
 * relies on onnxruntime's constant folding: any optimisation level but 'disabled').
 */
function multipliedScales(b: GraphBuilder, f: { codes: Value; units: Value }): Value {
  const [G, per] = f.codes.shape as number[];
  return b.reshape(b.mul(b.sub(b.cast(f.codes, 'F32'), 128), f.units), [G * per]);
}

function applyOperands(b: GraphBuilder, x: Value, v: OperandValues, accuracyLevel: number): Value {
  const o = v.o;
  const scales = v.scales ?? (accuracyLevel === 0 ? factoredScales(b, x, v.factors!) : multipliedScales(b, v.factors!));
  return b.matmulNBits(x, v.B, scales, v.zeroPoints, { K: o.K, N: o.N, bits: o.bits, blockSize: o.blockSize, accuracyLevel });
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
