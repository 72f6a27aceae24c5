// A slow reference evaluator of the IR in plain TypeScript (float64 arithmetic), next to the fast
// onnxruntime path. Tests run the same graph through both and compare; the training engineer can
// use it to check gradients without onnxruntime. Not for large graphs.
//
// Every value is held as { shape, data: Float64Array } whatever its dtype (BOOL as 0/1, ints as
// exact integers); results are rounded to the value's dtype only when returned (Math.fround for F32).

import { ConfigError } from '../core/errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../numerics/float16.js';
import { decodeMini, E4M3, E5M2, encodeMini } from '../numerics/minifloat.js';
import { numel, type Tensor } from '../core/tensor.js';
import type { Graph, IrTensor, Node, Value } from './ir.js';

interface Arr {
  shape: number[];
  data: Float64Array;
}

function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

/** Index into `src` (shape `from`) for each flat index of `to`, with NumPy broadcasting. */
function broadcastIndex(from: readonly number[], to: readonly number[]): Int32Array {
  const n = numel(to);
  const idx = new Int32Array(n);
  const fs = strides(from);
  const off = to.length - from.length;
  const coord = new Array<number>(to.length).fill(0);
  for (let i = 0; i < n; i++) {
    let j = 0;
    for (let a = 0; a < from.length; a++) if (from[a] !== 1) j += coord[a + off] * fs[a];
    idx[i] = j;
    for (let a = to.length - 1; a >= 0; a--) {
      if (++coord[a] < to[a]) break;
      coord[a] = 0;
    }
  }
  return idx;
}

function toF64(t: IrTensor): Float64Array {
  if (t.data === null) throw new ConfigError('unsupported', 'interp: constants stored in a file are not read by the reference evaluator', { file: t.stored.path });
  if (t.dtype === 'I4' || t.dtype === 'U4') {
    const n = numel(t.shape);
    const out = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const nib = (t.data[i >> 1] >> ((i & 1) * 4)) & 15;
      out[i] = t.dtype === 'I4' && nib >= 8 ? nib - 16 : nib;
    }
    return out;
  }
  if (t.dtype === 'F16' || t.dtype === 'BF16' || t.dtype === 'F8_E4M3' || t.dtype === 'F8_E5M2') {
    throw new ConfigError('unsupported', 'interp: constant dtype not supported', { found: t.dtype });
  }
  return Float64Array.from(t.data as ArrayLike<number | bigint>, (v) => Number(v));
}

function fromF64(v: Value, a: Arr): Tensor {
  const shape = [...a.shape];
  switch (v.dtype) {
    case 'F32': return { dtype: 'F32', shape, data: Float32Array.from(a.data) };
    case 'F64': return { dtype: 'F64', shape, data: Float64Array.from(a.data) };
    case 'I64': return { dtype: 'I64', shape, data: BigInt64Array.from(Array.from(a.data, (x) => BigInt(x))) };
    case 'I32': return { dtype: 'I32', shape, data: Int32Array.from(a.data) };
    case 'BOOL': return { dtype: 'BOOL', shape, data: Uint8Array.from(a.data) };
    default: throw new ConfigError('unsupported', 'interp: output dtype not supported', { found: v.dtype });
  }
}

const BINARY: Partial<Record<Node['op'], (x: number, y: number) => number>> = {
  Add: (x, y) => x + y,
  Sub: (x, y) => x - y,
  Mul: (x, y) => x * y,
  Div: (x, y) => x / y,
  Pow: (x, y) => Math.pow(x, y),
  Max: (x, y) => Math.max(x, y),
  Min: (x, y) => Math.min(x, y),
  Equal: (x, y) => (x === y ? 1 : 0),
  Less: (x, y) => (x < y ? 1 : 0),
  Or: (x, y) => (x || y ? 1 : 0),
};

function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return r - x === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const UNARY: Partial<Record<Node['op'], (x: number) => number>> = {
  Sqrt: Math.sqrt,
  Exp: Math.exp,
  Log: Math.log,
  Neg: (x) => -x,
  Abs: Math.abs,
  Floor: Math.floor,
  Round: roundHalfEven,
  Sigmoid: (x) => 1 / (1 + Math.exp(-x)),
  Identity: (x) => x,
};

/** One op of the reference evaluator: inputs (float64, any dtype) → the output value. */
type OpImpl = (n: Node, ins: Arr[], outShape: number[]) => Arr;

function binaryOp(f: (x: number, y: number) => number): OpImpl {
  return (_n, [x, y], outShape) => {
    const ix = broadcastIndex(x.shape, outShape);
    const iy = broadcastIndex(y.shape, outShape);
    const d = new Float64Array(numel(outShape));
    for (let i = 0; i < d.length; i++) d[i] = f(x.data[ix[i]], y.data[iy[i]]);
    return { shape: outShape, data: d };
  };
}

function unaryOp(f: (x: number) => number): OpImpl {
  return (_n, ins, outShape) => ({ shape: outShape, data: ins[0].data.map(f) });
}

const reduceOp: OpImpl = (n, ins, outShape) => {
  const a = n.attrs;
  const x = ins[0];
  const axes = a.axes as number[];
  const keptShape = x.shape.map((dim, i) => (axes.includes(i) ? 1 : dim));
  const idx = broadcastIndex(keptShape, x.shape); // maps each input element to its output slot
  const d = new Float64Array(numel(keptShape)).fill(n.op === 'ReduceMax' ? -Infinity : 0);
  for (let i = 0; i < x.data.length; i++) d[idx[i]] = n.op === 'ReduceMax' ? Math.max(d[idx[i]], x.data[i]) : d[idx[i]] + x.data[i];
  if (n.op === 'ReduceMean') {
    const cnt = numel(x.shape) / Math.max(1, numel(keptShape));
    for (let i = 0; i < d.length; i++) d[i] /= cnt;
  }
  return { shape: outShape, data: d };
};

/** The evaluator's ops, one entry each (element-wise ops from BINARY and UNARY above). */
const OPS: Partial<Record<Node['op'], OpImpl>> = {
  ...Object.fromEntries(Object.entries(BINARY).map(([op, f]) => [op, binaryOp(f)])),
  ...Object.fromEntries(Object.entries(UNARY).map(([op, f]) => [op, unaryOp(f)])),
  Cast: (n, ins, outShape) => {
    const a = n.attrs;
    const to = a.to as string;
    const CASTS: Record<string, (x: number) => number> = {
      F32: Math.fround,
      F64: (x) => x,
      BOOL: (x) => (x ? 1 : 0),
      F16: (x) => f16ToF32(f32ToF16(x)),
      BF16: (x) => bf16ToF32(f32ToBf16(x)),
      // ONNX Cast to float8 saturates by default
      F8_E4M3: (x) => decodeMini(E4M3, encodeMini(E4M3, x, { saturate: true })),
      F8_E5M2: (x) => decodeMini(E5M2, encodeMini(E5M2, x, { saturate: true })),
    };
    const f = CASTS[to] ?? Math.trunc;
    return { shape: outShape, data: ins[0].data.map(f) };
  },
  Clip: (n, ins, outShape) => {
    const a = n.attrs;
    const lo = (a.min as number | undefined) ?? -Infinity;
    const hi = (a.max as number | undefined) ?? Infinity;
    return { shape: outShape, data: ins[0].data.map((x) => Math.min(hi, Math.max(lo, x))) };
  },
  Where: (_n, ins, outShape) => {
    const [c, x, y] = ins;
    const ic = broadcastIndex(c.shape, outShape);
    const ix = broadcastIndex(x.shape, outShape);
    const iy = broadcastIndex(y.shape, outShape);
    const d = new Float64Array(numel(outShape));
    for (let i = 0; i < d.length; i++) d[i] = c.data[ic[i]] ? x.data[ix[i]] : y.data[iy[i]];
    return { shape: outShape, data: d };
  },
  MatMul: (_n, ins, outShape) => {
    const [x, y] = ins;
    const [M, K] = x.shape.slice(-2);
    const N = y.shape[y.shape.length - 1];
    const batch = outShape.slice(0, -2);
    const nb = numel(batch);
    const bx = broadcastIndex(x.shape.slice(0, -2), batch);
    const by = broadcastIndex(y.shape.slice(0, -2), batch);
    const d = new Float64Array(nb * M * N);
    for (let b = 0; b < nb; b++) {
      const xo = bx[b] * M * K;
      const yo = by[b] * K * N;
      for (let m = 0; m < M; m++)
        for (let k = 0; k < K; k++) {
          const xv = x.data[xo + m * K + k];
          for (let j = 0; j < N; j++) d[b * M * N + m * N + j] += xv * y.data[yo + k * N + j];
        }
    }
    return { shape: outShape, data: d };
  },
  // Y [M, N] = α·op(A)·op(B) + β·C, 2-D
  Gemm: (n, ins, outShape) => {
    const [A, B, C] = ins;
    const tA = n.attrs.transA === 1, tB = n.attrs.transB === 1, alpha = n.attrs.alpha as number, beta = n.attrs.beta as number;
    const [M, N] = outShape;
    const K = tA ? A.shape[0] : A.shape[1];
    const a = (m: number, k: number) => A.data[tA ? k * M + m : m * K + k];
    const b = (k: number, j: number) => B.data[tB ? j * K + k : k * N + j];
    const d = new Float64Array(M * N);
    for (let m = 0; m < M; m++)
      for (let j = 0; j < N; j++) {
        let acc = 0;
        for (let k = 0; k < K; k++) acc += a(m, k) * b(k, j);
        d[m * N + j] = alpha * acc + (C ? beta * C.data[m * N + j] : 0);
      }
    return { shape: outShape, data: d };
  },
  // ReduceSum, ReduceMean, ReduceMax: one body, the op picks the accumulation
  ReduceSum: reduceOp,
  ReduceMean: reduceOp,
  ReduceMax: reduceOp,
  Softmax: (n, ins, outShape) => {
    const a = n.attrs;
    const x = ins[0];
    const ax = a.axis as number;
    const st = strides(x.shape)[ax];
    const len = x.shape[ax];
    const d = new Float64Array(x.data.length);
    for (let base = 0; base < x.data.length; base++) {
      if (Math.floor(base / st) % len !== 0) continue;
      let m = -Infinity;
      for (let j = 0; j < len; j++) m = Math.max(m, x.data[base + j * st]);
      let s = 0;
      for (let j = 0; j < len; j++) s += Math.exp(x.data[base + j * st] - m);
      for (let j = 0; j < len; j++) d[base + j * st] = Math.exp(x.data[base + j * st] - m) / s;
    }
    return { shape: outShape, data: d };
  },
  Gather: (n, ins, outShape) => {
    const a = n.attrs;
    const [x, ind] = ins;
    const ax = a.axis as number;
    const outer = numel(x.shape.slice(0, ax));
    const inner = numel(x.shape.slice(ax + 1));
    const dim = x.shape[ax];
    const d = new Float64Array(numel(outShape));
    let o = 0;
    for (let p = 0; p < outer; p++)
      for (const raw of ind.data) {
        const j = raw < 0 ? raw + dim : raw;
        if (j < 0 || j >= dim) throw new ConfigError('bad_option', 'gather: index out of range', { expected: `< ${dim}`, found: raw });
        for (let q = 0; q < inner; q++) d[o++] = x.data[(p * dim + j) * inner + q];
      }
    return { shape: outShape, data: d };
  },
  Reshape: (_n, ins, outShape) => {
    return { shape: outShape, data: ins[0].data };
  },
  Transpose: (n, ins, outShape) => {
    const a = n.attrs;
    const x = ins[0];
    const perm = a.perm as number[];
    const xs = strides(x.shape);
    const d = new Float64Array(x.data.length);
    const coord = new Array<number>(outShape.length).fill(0);
    for (let i = 0; i < d.length; i++) {
      let j = 0;
      for (let k = 0; k < perm.length; k++) j += coord[k] * xs[perm[k]];
      d[i] = x.data[j];
      for (let k = outShape.length - 1; k >= 0; k--) {
        if (++coord[k] < outShape[k]) break;
        coord[k] = 0;
      }
    }
    return { shape: outShape, data: d };
  },
  Concat: (n, ins, outShape) => {
    const a = n.attrs;
    const ax = a.axis as number;
    const outer = numel(outShape.slice(0, ax));
    const d = new Float64Array(numel(outShape));
    let o = 0;
    for (let p = 0; p < outer; p++)
      for (const x of ins) {
        const chunk = numel(x.shape.slice(ax));
        d.set(x.data.subarray(p * chunk, (p + 1) * chunk), o);
        o += chunk;
      }
    return { shape: outShape, data: d };
  },
  Slice: (n, ins, outShape) => {
    const a = n.attrs;
    const x = ins[0];
    const starts = a.starts as number[];
    const steps = a.steps as number[];
    const axes = a.axes as number[];
    const xs = strides(x.shape);
    const d = new Float64Array(numel(outShape));
    const coord = new Array<number>(outShape.length).fill(0);
    for (let i = 0; i < d.length; i++) {
      let j = 0;
      for (let k = 0; k < outShape.length; k++) {
        const ai = axes.indexOf(k);
        j += (ai < 0 ? coord[k] : starts[ai] + coord[k] * steps[ai]) * xs[k];
      }
      d[i] = x.data[j];
      for (let k = outShape.length - 1; k >= 0; k--) {
        if (++coord[k] < outShape[k]) break;
        coord[k] = 0;
      }
    }
    return { shape: outShape, data: d };
  },
  DequantizeLinear: (n, ins, outShape) => {
    const a = n.attrs;
    const [x, s, z] = ins;
    const ax = a.axis as number;
    const bs = (a.block_size as number) || 0;
    const xs = strides(x.shape);
    const ss = strides(s.shape);
    const d = new Float64Array(x.data.length);
    for (let i = 0; i < d.length; i++) {
      let si = 0;
      if (s.shape.length > 0) {
        for (let k = 0; k < x.shape.length; k++) {
          const c = Math.floor(i / xs[k]) % x.shape[k];
          if (bs > 0) si += (k === ax ? Math.floor(c / bs) : c) * ss[k];
          else if (k === ax) si = c;
        }
      }
      d[i] = (x.data[i] - (z ? z.data[si] : 0)) * s.data[si];
    }
    return { shape: outShape, data: d };
  },
  MatMulNBits: (n, ins, outShape) => {
    const a = n.attrs;
    // unpack codes low-bits-first per block, W[n, k] = fround((u − z)·s), then x @ Wᵀ
    const [x, B, s, z] = ins;
    const [K, N, bits, G] = [a.K, a.N, a.bits, a.block_size] as number[];
    const Kb = Math.ceil(K / G);
    const blob = (G * bits) / 8;
    const mask = (1 << bits) - 1;
    const floatZp = n.inputs[3]?.dtype === 'F32';
    const zRow = Math.ceil((Kb * bits) / 8);
    const w = new Float64Array(N * K);
    for (let r = 0; r < N; r++) {
      for (let k = 0; k < K; k++) {
        const j = Math.floor(k / G);
        const bit = (k % G) * bits;
        const u = (B.data[(r * Kb + j) * blob + (bit >> 3)] >> (bit & 7)) & mask;
        const zb = j * bits;
        const zp = !z ? 1 << (bits - 1) : floatZp ? z.data[r * Kb + j] : (z.data[r * zRow + (zb >> 3)] >> (zb & 7)) & mask;
        w[r * K + k] = Math.fround((u - zp) * s.data[r * Kb + j]);
      }
    }
    const M = x.data.length / K;
    const d = new Float64Array(M * N);
    for (let m = 0; m < M; m++) for (let r = 0; r < N; r++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += x.data[m * K + k] * w[r * K + k];
      d[m * N + r] = acc;
    }
    return { shape: outShape, data: d };
  },
};

function evalNode(n: Node, ins: Arr[]): Arr {
  const impl = OPS[n.op];
  if (!impl) throw new ConfigError('unsupported', 'interp: op not implemented in the reference evaluator', { found: n.op });
  return impl(n, ins, [...n.outputs[0].shape]);
}

/**
 * Evaluates `g` on `feeds` in float64. F32 values are rounded to float32 after every node, so the
 * result follows a float32 engine to within accumulation-order error.
 */
export function interpret(g: Graph, feeds: Record<string, Tensor>, opts: { roundF32?: boolean } = {}): Record<string, Tensor> {
  const roundF32 = opts.roundF32 ?? true;
  const env = new Map<number, Arr>();
  for (const [id, t] of g.constants) env.set(id, { shape: [...t.shape], data: toF64(t) });
  for (const i of g.inputs) {
    const t = feeds[i.name];
    if (!t) throw new ConfigError('bad_option', 'missing feed for a graph input', { field: i.name });
    env.set(i.value.id, { shape: [...t.shape], data: toF64(t) });
  }
  for (const n of g.nodes) {
    const r = evalNode(n, n.inputs.map((v) => env.get(v.id)!));
    if (roundF32 && n.outputs[0].dtype === 'F32') for (let i = 0; i < r.data.length; i++) r.data[i] = Math.fround(r.data[i]);
    env.set(n.outputs[0].id, r);
  }
  const out: Record<string, Tensor> = {};
  for (const o of g.outputs) out[o.name] = fromF64(o.value, env.get(o.value.id)!);
  return out;
}
