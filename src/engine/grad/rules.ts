// Gradient rules, one per primitive op of the IR: given the node, its (already built) inputs and
// output, and the gradient g of the output, build the gradients of the inputs with ordinary IR
// ops (onnxruntime's npm build registers no gradient ops, so everything lowers to standard ONNX).
// A rule returns null for an input that gets no gradient (integer inputs, piecewise-constant ops).
// Broadcasting: every gradient is summed back to its input's shape (`unbroadcast`).

import { ConfigError } from '../../core/errors.js';
import { numel } from '../../core/tensor.js';
import { makeTensor, type GraphBuilder, type Node, type OpType, type Value } from '../ir.js';

export interface RuleCtx {
  b: GraphBuilder;
  node: Node;
  /** the node's inputs and output in the builder being extended */
  ins: readonly Value[];
  out: Value;
  /** which inputs need a gradient (rules may skip the others) */
  need: readonly boolean[];
}

export type GradRule = (c: RuleCtx, g: Value) => (Value | null)[];

function sameShape(a: readonly number[], b: readonly number[]): boolean {
  return a.length === b.length && a.every((d, i) => d === b[i]);
}

/** A constant of zeros (F32 or F64). */
export function zerosConst(b: GraphBuilder, shape: readonly number[], dtype: Value['dtype'] = 'F32'): Value {
  const n = numel(shape);
  return b.constant(dtype === 'F64' ? { dtype, shape: [...shape], data: new Float64Array(n) } : { dtype: 'F32', shape: [...shape], data: new Float32Array(n) });
}

/** Sums g over the axes along which `target` was broadcast, and reshapes to `target`. */
export function unbroadcast(b: GraphBuilder, g: Value, target: readonly number[]): Value {
  if (sameShape(g.shape, target)) return g;
  const lead = g.shape.length - target.length;
  const axes: number[] = [];
  for (let i = 0; i < g.shape.length; i++) {
    if (i < lead) axes.push(i);
    else if (target[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
  }
  const s = axes.length ? b.sum(g, axes, true) : g;
  return sameShape(s.shape, target) ? s : b.reshape(s, target);
}

/** Broadcasts g (keepdims shape) up to `like`'s shape. */
export function expandLike(b: GraphBuilder, g: Value, like: Value): Value {
  if (sameShape(g.shape, like.shape)) return g;
  const r = like.shape.length;
  const onlyLast = r >= 2 && g.shape.length === r && g.shape[r - 1] === 1 && g.shape.slice(0, -1).every((d, i) => d === like.shape[i]);
  if (onlyLast) {
    // [..., 1] @ ones[1, K] → [..., K]: one small GEMM instead of a full-size constant
    const K = like.shape[r - 1];
    const ones = b.constant(g.dtype === 'F64' ? { dtype: 'F64', shape: [1, K], data: new Float64Array(K).fill(1) } : { dtype: 'F32', shape: [1, K], data: new Float32Array(K).fill(1) });
    return b.matmul(g, ones);
  }
  if (numel(like.shape) <= 1 << 16) return b.add(zerosConst(b, like.shape, g.dtype), g);
  return b.add(b.mul(like, 0), g);
}

function swapLast(b: GraphBuilder, x: Value): Value {
  const r = x.shape.length;
  const perm = x.shape.map((_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return b.transpose(x, perm);
}

const elementwise = (f: (c: RuleCtx, g: Value) => (Value | null)[]): GradRule => (c, g) =>
  f(c, g).map((v, i) => (v && c.need[i] ? unbroadcast(c.b, v, c.ins[i].shape) : null));

export const RULES: Partial<Record<OpType, GradRule>> = {
  Add: elementwise((_c, g) => [g, g]),
  Sub: elementwise((c, g) => [g, c.need[1] ? c.b.neg(g) : null]),
  Mul: elementwise((c, g) => [c.need[0] ? c.b.mul(g, c.ins[1]) : null, c.need[1] ? c.b.mul(g, c.ins[0]) : null]),
  // y = a/b: dy/da = 1/b, dy/db = −y/b
  Div: elementwise((c, g) => [c.need[0] ? c.b.div(g, c.ins[1]) : null, c.need[1] ? c.b.neg(c.b.div(c.b.mul(g, c.out), c.ins[1])) : null]),
  // y = a^p: dy/da = p·a^(p−1), dy/dp = y·ln a
  Pow: elementwise((c, g) => {
    const { b, ins, out } = c;
    return [c.need[0] ? b.mul(g, b.mul(ins[1], b.pow(ins[0], b.sub(ins[1], 1)))) : null, c.need[1] ? b.mul(g, b.mul(out, b.log(ins[0]))) : null];
  }),
  // ties go to the first operand
  Max: elementwise((c, g) => {
    const lt = c.b.less(c.ins[0], c.ins[1]);
    return [c.b.where(lt, 0, g), c.b.where(lt, g, 0)];
  }),
  Min: elementwise((c, g) => {
    const gt = c.b.less(c.ins[1], c.ins[0]);
    return [c.b.where(gt, 0, g), c.b.where(gt, g, 0)];
  }),
  Sqrt: (c, g) => [c.b.div(c.b.mul(g, 0.5), c.out)],
  Exp: (c, g) => [c.b.mul(g, c.out)],
  Log: (c, g) => [c.b.div(g, c.ins[0])],
  Neg: (c, g) => [c.b.neg(g)],
  Abs: (c, g) => [c.b.where(c.b.less(c.ins[0], 0), c.b.neg(g), g)],
  Floor: () => [null],
  Round: () => [null],
  Sigmoid: (c, g) => [c.b.mul(g, c.b.mul(c.out, c.b.sub(1, c.out)))],
  Identity: (_c, g) => [g],
  // the clamp passes the gradient on [min, max] (bounds included), nothing outside
  Clip: (c, g) => {
    const { b, ins, node } = c;
    let r = g;
    if (node.attrs.min !== undefined) r = b.where(b.less(ins[0], node.attrs.min as number), 0, r);
    if (node.attrs.max !== undefined) r = b.where(b.less(b.scalar(node.attrs.max as number, ins[0].dtype), ins[0]), 0, r);
    return [r];
  },
  ReduceSum: (c, g) => [expandLike(c.b, keepdims(c, g), c.ins[0])],
  ReduceMean: (c, g) => {
    const n = numel(c.ins[0].shape) / Math.max(1, numel(c.out.shape));
    return [expandLike(c.b, c.b.mul(keepdims(c, g), 1 / n), c.ins[0])];
  },
  // gradient to every position equal to the max (ties share it, as the subgradient)
  ReduceMax: (c, g) => {
    const { b, ins } = c;
    const yk = keepdims(c, c.out);
    return [b.where(b.equal(ins[0], yk), keepdims(c, g), 0)];
  },
  // dx = y ⊙ (g − Σ g⊙y along the axis)
  Softmax: (c, g) => {
    const { b, out, node } = c;
    const s = b.sum(b.mul(g, out), node.attrs.axis as number, true);
    return [b.mul(out, b.sub(g, s))];
  },
  // embedding lookup: dData = onehot(idx)ᵀ @ g (no scatter op in the IR); axis 0, rank-2 data
  Gather: (c, g) => {
    const { b, ins, node } = c;
    const [data, idx] = ins;
    if (node.attrs.axis !== 0 || data.shape.length !== 2) {
      throw new ConfigError('unsupported', 'gather gradient only for axis 0 of a rank-2 table (embeddings)', { found: `axis ${node.attrs.axis}, rank ${data.shape.length}` });
    }
    const [V, E] = data.shape;
    const T = numel(idx.shape);
    const arange = b.constant(makeTensor(idx.dtype, [1, V], Array.from({ length: V }, (_, i) => i)));
    const onehot = b.cast(b.equal(b.reshape(idx, [T, 1]), arange), data.dtype); // [T, V]
    return [b.matmul(b.transpose(onehot, [1, 0]), b.reshape(g, [T, E])), null];
  },
  Reshape: (c, g) => [c.b.reshape(g, c.ins[0].shape)],
  Transpose: (c, g) => {
    const perm = c.node.attrs.perm as number[];
    const inv = new Array<number>(perm.length);
    perm.forEach((p, i) => (inv[p] = i));
    return [c.b.transpose(g, inv)];
  },
  Concat: (c, g) => {
    const ax = c.node.attrs.axis as number;
    let off = 0;
    return c.ins.map((x, i) => {
      const s = off;
      off += x.shape[ax];
      return c.need[i] ? c.b.slice(g, [s], [s + x.shape[ax]], [ax]) : null;
    });
  },
  // zero-pad back to the input shape, one axis at a time (steps of 1 only)
  Slice: (c, g) => {
    const { b, ins, node } = c;
    const axes = node.attrs.axes as number[];
    const starts = node.attrs.starts as number[];
    const ends = node.attrs.ends as number[];
    if ((node.attrs.steps as number[]).some((s) => s !== 1)) throw new ConfigError('unsupported', 'slice gradient with steps other than 1');
    let r = g;
    axes.forEach((ax, i) => {
      const parts: Value[] = [];
      const before = starts[i];
      const after = ins[0].shape[ax] - ends[i];
      const padShape = (n: number) => r.shape.map((d, j) => (j === ax ? n : d));
      if (before > 0) parts.push(zerosConst(b, padShape(before), g.dtype));
      parts.push(r);
      if (after > 0) parts.push(zerosConst(b, padShape(after), g.dtype));
      r = parts.length > 1 ? b.concat(parts, ax) : r;
    });
    return [r];
  },
  Where: (c, g) => {
    const { b, ins, need } = c;
    return [
      null,
      need[1] ? unbroadcast(b, b.where(ins[0], g, 0), ins[1].shape) : null,
      need[2] ? unbroadcast(b, b.where(ins[0], 0, g), ins[2].shape) : null,
    ];
  },
  Cast: (c, g) => [c.b.cast(g, c.ins[0].dtype)],
  MatMul: (c, g) => {
    const { b, ins, need } = c;
    const [x, w] = ins;
    const gx = need[0] ? unbroadcast(b, b.matmul(g, swapLast(b, w)), x.shape) : null;
    let gw: Value | null = null;
    if (need[1]) {
      if (w.shape.length === 2 && x.shape.length > 2) {
        // [..., M, K] @ [K, N]: fold the batch into M and use one GEMM
        const K = x.shape[x.shape.length - 1];
        const N = w.shape[1];
        gw = b.matmul(b.transpose(b.reshape(x, [-1, K]), [1, 0]), b.reshape(g, [-1, N]));
      } else gw = unbroadcast(b, b.matmul(swapLast(b, x), g), w.shape);
    }
    return [gx, gw];
  },
};

/** g (shaped like the reduction's output) with the reduced axes reinstated as size-1 dims. */
function keepdims(c: RuleCtx, g: Value): Value {
  const axes = c.node.attrs.axes as number[];
  const kept = c.ins[0].shape.map((d, i) => (axes.includes(i) ? 1 : d));
  return sameShape(g.shape, kept) ? g : c.b.reshape(g, kept);
}

/** Ops whose outputs never carry a gradient (comparisons, integer results). */
export const NON_DIFFERENTIABLE: ReadonlySet<OpType> = new Set<OpType>(['Equal', 'Less', 'Floor', 'Round', 'MatMulNBits', 'DequantizeLinear']);
