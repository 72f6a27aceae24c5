// The graph IR every compute path builds on: inference graphs, calibration statistics and the
// training engineer's reverse-mode autodiff. Values have static shapes and dtypes; nodes are
// primitive ops (one gradient rule each). Fused ops used only for inference (MatMulNBits, blocked
// DequantizeLinear) are separate node kinds with a decomposed equivalent in the tests.
// Lowering to ONNX lives in lower.ts; this file has no runtime dependency.
//
// Conventions: shapes are row-major. A dimension is a size or a name (`Dim`): a named dimension is
// known only when the graph runs (ONNX dim_param: batch, sequence_length, …); two dims are equal
// when they are the same size or the same name. The dims a graph may hold are its builder's type
// parameter: `GraphBuilder` (= GraphBuilder<number>, every static graph: engine, calibration,
// training) has only sizes, so its users compute with shapes freely; `GraphBuilder<Dim>` (the
// transformers.js export) also takes names, and shape inference carries them (a reshape resolves
// its -1 by cancelling names; a concat along a named axis is told its result's name). Negative
// axes are normalised to non-negative when a node is created, so `node.attrs` always hold resolved
// values. Element-wise binary ops broadcast like NumPy. Builder methods accept a plain number
// wherever a scalar of the other operand's dtype makes sense.

import { DTYPES, type DType } from '../core/dtype.js';
import { ConfigError, ShapeError } from '../core/errors.js';
import { numel, type Tensor } from '../core/tensor.js';

/** Element types a graph value may have: the core dtypes plus packed 4-bit ints for quantized weights. */
export type IrDType = DType | 'I4' | 'U4';

/** 4-bit integers packed two per byte, element 2i in the low nibble (ONNX's INT4/UINT4 layout). */
export interface PackedTensor {
  dtype: 'I4' | 'U4';
  shape: number[];
  data: Uint8Array;
}

/**
 * A constant whose bytes already lie in a file (a session's weight file, engine/weight-file.ts):
 * lowered as ONNX external data that onnxruntime maps from the file, never read into memory here.
 */
export interface StoredTensor {
  dtype: IrDType;
  shape: number[];
  data: null;
  stored: { path: string; offset: number; byteLength: number };
}

/** What a constant holds: a core host tensor, packed 4-bit codes, or bytes stored in a file. */
export type IrTensor = Tensor | PackedTensor | StoredTensor;

/** Bytes a constant of this dtype and shape occupies (4-bit types packed two per byte). */
export function irTensorBytes(dtype: IrDType, shape: readonly number[]): number {
  if (dtype === 'I4' || dtype === 'U4') return Math.ceil(numel(shape) / 2);
  return numel(shape) * DTYPES[dtype].bytes;
}

/** A dimension: a size, or the name of a size known only at run time (ONNX dim_param). */
export type Dim = number | string;

export interface Value<D extends Dim = number> {
  readonly id: number;
  readonly dtype: IrDType;
  readonly shape: readonly D[];
  /** optional label (graph inputs/outputs and parameters always have one) */
  name?: string;
}

/** Primitive ops (each has a gradient rule) and inference-only fused ops. */
export type OpType =
  | 'MatMul'
  | 'Add'
  | 'Sub'
  | 'Mul'
  | 'Div'
  | 'Pow'
  | 'Max' // element-wise maximum of two tensors
  | 'Min'
  | 'Sqrt'
  | 'Exp'
  | 'Log'
  | 'Neg'
  | 'Abs'
  | 'Floor'
  | 'Round' // half to even, as ONNX Round
  | 'Sigmoid'
  | 'Clip' // attrs.min / attrs.max (numbers, either may be absent)
  | 'ReduceSum' // attrs.axes, attrs.keepdims
  | 'ReduceMean'
  | 'ReduceMax'
  | 'ReduceLogSumExp' // log Σ exp over attrs.axes, without an exp temporary (inference only)
  | 'Softmax' // attrs.axis
  | 'Gather' // attrs.axis; inputs [data, indices]
  | 'GatherElements' // attrs.axis; out[i…] = data[i… with index[i…] on axis] (inference only)
  | 'Reshape' // attrs.shape (resolved, no -1)
  | 'Transpose' // attrs.perm
  | 'Concat' // attrs.axis
  | 'Slice' // attrs.starts / ends / axes / steps (resolved, clamped, steps > 0)
  | 'Where' // inputs [cond BOOL, a, b]
  | 'Cast' // attrs.to
  | 'Equal'
  | 'Less'
  | 'Or' // BOOL or BOOL (inference only)
  | 'Identity'
  // inference-only fused ops (no gradient)
  | 'Gemm' // inputs [A, B, C?]; attrs transA, transB, alpha, beta (2-D; inference only)
  | 'MatMulNBits' // inputs [A, B packed U8, scales, zeroPoints?]; attrs K, N, bits, blockSize
  | 'DequantizeLinear' // inputs [x (I4/U4/I8/U8), scale, zeroPoint?]; attrs axis, blockSize
  // run-time sizes (graphs with named dims; no gradient)
  | 'DimSize' // I64 [] the run-time value of the named dim attrs.dim
  | 'Range'; // I64 [n] = 0 … n − 1, input [n I64 []]

export type AttrValue = number | number[] | string | Dim[];

export interface Node<D extends Dim = number> {
  readonly id: number;
  readonly op: OpType;
  readonly inputs: readonly Value<D>[];
  readonly outputs: readonly Value<D>[];
  readonly attrs: Readonly<Record<string, AttrValue>>;
}

export interface NamedValue<D extends Dim = number> {
  name: string;
  value: Value<D>;
}

/** A built graph. `constants` holds every constant and parameter tensor by value id. */
export interface Graph<D extends Dim = number> {
  readonly name: string;
  readonly nodes: readonly Node<D>[];
  /** runtime inputs (fed on every run) */
  readonly inputs: readonly NamedValue<D>[];
  readonly outputs: readonly NamedValue<D>[];
  /** constant tensors (small literals and weights) keyed by value id */
  readonly constants: ReadonlyMap<number, IrTensor>;
  /** ids of constants that are model parameters (named; may be lowered as graph inputs for training) */
  readonly params: ReadonlyMap<number, string>;
  /** the producer node of each computed value */
  readonly producers: ReadonlyMap<number, Node<D>>;
}

/** Whether a shape holds a named dim. */
export function hasNamedDim(shape: readonly Dim[]): boolean {
  return shape.some((d) => typeof d === 'string');
}

function showShape(shape: readonly Dim[]): string {
  return `[${shape.join(', ')}]`;
}

const FLOATS = new Set<IrDType>(['F64', 'F32', 'F16', 'BF16']);
export function isFloatDType(d: IrDType): boolean {
  return FLOATS.has(d);
}

/** NumPy broadcast of two shapes; throws a ShapeError naming `op` if incompatible. */
export function broadcastShapes<D extends Dim>(a: readonly D[], b: readonly D[], op = 'broadcast'): D[] {
  const n = Math.max(a.length, b.length);
  const out: D[] = [];
  for (let i = 0; i < n; i++) {
    const x = a[a.length - n + i] ?? (1 as D);
    const y = b[b.length - n + i] ?? (1 as D);
    // a named dim broadcasts only against itself or 1 (its size is not known here)
    if (x !== y && x !== 1 && y !== 1) {
      throw new ShapeError('shape_mismatch', `${op}: shapes do not broadcast`, { expected: `[${a.join(', ')}]`, found: `[${b.join(', ')}]` });
    }
    out.push(x === 1 ? y : x);
  }
  return out;
}

function normAxis(axis: number, rank: number, op: string): number {
  const a = axis < 0 ? axis + rank : axis;
  if (!Number.isInteger(a) || a < 0 || a >= rank) {
    throw new ShapeError('shape_mismatch', `${op}: axis out of range`, { field: 'axis', expected: `in [-${rank}, ${rank})`, found: axis });
  }
  return a;
}

type Operand<D extends Dim> = Value<D> | number;

/**
 * Builds a Graph. Every method creates one node (or a small composition of primitives, documented
 * as such) and returns its output value with its inferred static shape.
 */
export class GraphBuilder<D extends Dim = number> {
  private nextId = 0;
  private readonly nodes: Node<D>[] = [];
  private readonly inputs: NamedValue<D>[] = [];
  private readonly outputs: NamedValue<D>[] = [];
  private readonly constants = new Map<number, IrTensor>();
  private readonly params = new Map<number, string>();
  private readonly producers = new Map<number, Node<D>>();
  private readonly scalarCache = new Map<string, Value<D>>();

  constructor(readonly name = 'bitscale') {}

  private value(dtype: IrDType, shape: readonly D[], name?: string): Value<D> {
    for (const d of shape) {
      if (typeof d === 'string' ? !/^[A-Za-z_][A-Za-z0-9_]*$/.test(d) : !Number.isInteger(d) || (d as number) < 0) {
        throw new ShapeError('shape_mismatch', 'dimensions must be non-negative integers or names', { found: showShape(shape) });
      }
    }
    return { id: this.nextId++, dtype, shape: [...shape], name };
  }

  private node(op: OpType, inputs: Value<D>[], outDtype: IrDType, outShape: readonly D[], attrs: Record<string, AttrValue> = {}): Value<D> {
    const out = this.value(outDtype, outShape);
    const n: Node<D> = { id: this.nodes.length, op, inputs, outputs: [out], attrs };
    this.nodes.push(n);
    this.producers.set(out.id, n);
    return out;
  }

  // ---- graph boundary ----

  /** A runtime input fed on every run (a named dim takes its size from the fed tensor). */
  input(name: string, dtype: IrDType, shape: readonly (D | number)[]): Value<D> {
    if (this.inputs.some((i) => i.name === name)) throw new ConfigError('bad_config', 'duplicate graph input', { field: name });
    const v = this.value(dtype, shape as D[], name);
    this.inputs.push({ name, value: v });
    return v;
  }

  /** Marks `v` as a graph output named `name`. */
  output(name: string, v: Value<D>): void {
    if (this.outputs.some((o) => o.name === name)) throw new ConfigError('bad_config', 'duplicate graph output', { field: name });
    this.outputs.push({ name, value: v });
  }

  /** A constant tensor (copied by reference; do not mutate it afterwards). */
  constant(t: IrTensor, name?: string): Value<D> {
    if (t.data === null) {
      const bytes = irTensorBytes(t.dtype, t.shape);
      if (t.stored.byteLength !== bytes) throw new ShapeError('shape_mismatch', 'stored constant length does not match its shape', { tensor: name, file: t.stored.path, expected: bytes, found: t.stored.byteLength });
      const v = this.value(t.dtype, t.shape as D[], name);
      this.constants.set(v.id, t);
      return v;
    }
    const want = t.dtype === 'I4' || t.dtype === 'U4' ? Math.ceil(numel(t.shape) / 2) : numel(t.shape);
    if (t.data.length !== want) {
      throw new ShapeError('shape_mismatch', 'constant data length does not match its shape', { tensor: name, expected: want, found: t.data.length });
    }
    const v = this.value(t.dtype, t.shape as D[], name);
    this.constants.set(v.id, t);
    return v;
  }

  /** A named model parameter: a constant that training may lower as a graph input instead. */
  param(name: string, t: IrTensor): Value<D> {
    const v = this.constant(t, name);
    this.params.set(v.id, name);
    return v;
  }

  /** A scalar constant (shape []), shared between uses. */
  scalar(x: number, dtype: IrDType = 'F32'): Value<D> {
    const key = `${dtype}:${Object.is(x, -0) ? '-0' : x}`;
    const hit = this.scalarCache.get(key);
    if (hit) return hit;
    const v = this.constant(makeTensor(dtype, [], [x]));
    this.scalarCache.set(key, v);
    return v;
  }

  /** A 1-D int64 constant. */
  ints(xs: readonly number[]): Value<D> {
    return this.constant(makeTensor('I64', [xs.length], xs));
  }

  private lift(x: Operand<D>, like: Value<D>): Value<D> {
    return typeof x === 'number' ? this.scalar(x, like.dtype) : x;
  }

  private binary(op: OpType, a: Operand<D>, b: Operand<D>): Value<D> {
    if (typeof a === 'number' && typeof b === 'number') throw new ConfigError('bad_config', `${op}: at least one operand must be a Value<D>`);
    const va = typeof a === 'number' ? this.lift(a, b as Value<D>) : a;
    const vb = typeof b === 'number' ? this.lift(b, va) : b;
    if (va.dtype !== vb.dtype) throw new ShapeError('shape_mismatch', `${op}: operand dtypes differ`, { expected: va.dtype, found: vb.dtype });
    const shape = broadcastShapes(va.shape, vb.shape, op);
    const outDtype: IrDType = op === 'Equal' || op === 'Less' ? 'BOOL' : va.dtype;
    return this.node(op, [va, vb], outDtype, shape);
  }

  // ---- element-wise ----
  add(a: Operand<D>, b: Operand<D>): Value<D> { return this.binary('Add', a, b); }
  sub(a: Operand<D>, b: Operand<D>): Value<D> { return this.binary('Sub', a, b); }
  mul(a: Operand<D>, b: Operand<D>): Value<D> { return this.binary('Mul', a, b); }
  div(a: Operand<D>, b: Operand<D>): Value<D> { return this.binary('Div', a, b); }
  pow(a: Operand<D>, b: Operand<D>): Value<D> { return this.binary('Pow', a, b); }
  /** element-wise maximum */
  maximum(a: Operand<D>, b: Operand<D>): Value<D> { return this.binary('Max', a, b); }
  minimum(a: Operand<D>, b: Operand<D>): Value<D> { return this.binary('Min', a, b); }
  equal(a: Operand<D>, b: Operand<D>): Value<D> { return this.binary('Equal', a, b); }
  less(a: Operand<D>, b: Operand<D>): Value<D> { return this.binary('Less', a, b); }
  /** logical or of two BOOL values */
  or(a: Value<D>, b: Value<D>): Value<D> {
    if (a.dtype !== 'BOOL') throw new ShapeError('shape_mismatch', 'or: operands must be BOOL', { expected: 'BOOL', found: a.dtype });
    return this.binary('Or', a, b);
  }

  private unary(op: OpType, x: Value<D>, attrs: Record<string, AttrValue> = {}): Value<D> {
    return this.node(op, [x], x.dtype, x.shape, attrs);
  }
  sqrt(x: Value<D>): Value<D> { return this.unary('Sqrt', x); }
  exp(x: Value<D>): Value<D> { return this.unary('Exp', x); }
  log(x: Value<D>): Value<D> { return this.unary('Log', x); }
  neg(x: Value<D>): Value<D> { return this.unary('Neg', x); }
  abs(x: Value<D>): Value<D> { return this.unary('Abs', x); }
  floor(x: Value<D>): Value<D> { return this.unary('Floor', x); }
  /** round half to even (ONNX Round) */
  round(x: Value<D>): Value<D> { return this.unary('Round', x); }
  sigmoid(x: Value<D>): Value<D> { return this.unary('Sigmoid', x); }
  identity(x: Value<D>): Value<D> { return this.unary('Identity', x); }

  /** clip(x, min, max); either bound may be omitted. */
  clip(x: Value<D>, min?: number, max?: number): Value<D> {
    const attrs: Record<string, AttrValue> = {};
    if (min !== undefined) attrs.min = min;
    if (max !== undefined) attrs.max = max;
    return this.unary('Clip', x, attrs);
  }

  cast(x: Value<D>, to: IrDType): Value<D> {
    return this.node('Cast', [x], to, x.shape, { to });
  }

  /** where(cond, a, b); `dtype` gives the result type when both branches are numbers (default F32). */
  where(cond: Value<D>, a: Operand<D>, b: Operand<D>, dtype: IrDType = 'F32'): Value<D> {
    if (cond.dtype !== 'BOOL') throw new ShapeError('shape_mismatch', 'where: condition must be BOOL', { expected: 'BOOL', found: cond.dtype });
    const va = typeof a === 'number' ? (typeof b === 'number' ? this.scalar(a, dtype) : this.lift(a, b)) : a;
    const vb = this.lift(b, va);
    if (va.dtype !== vb.dtype) throw new ShapeError('shape_mismatch', 'where: branch dtypes differ', { expected: va.dtype, found: vb.dtype });
    const shape = broadcastShapes(broadcastShapes(cond.shape, va.shape, 'where'), vb.shape, 'where');
    return this.node('Where', [cond, va, vb], va.dtype, shape);
  }

  // ---- linear algebra ----

  /** Batched matmul, rank ≥ 2 on both sides: [..., M, K] @ [..., K, N] → [..., M, N] (batch dims broadcast). */
  matmul(a: Value<D>, b: Value<D>): Value<D> {
    if (a.shape.length < 2 || b.shape.length < 2) {
      throw new ShapeError('shape_mismatch', 'matmul: operands must have rank >= 2', { expected: 'rank >= 2', found: `[${a.shape.join(', ')}] @ [${b.shape.join(', ')}]` });
    }
    const [M, K] = a.shape.slice(-2);
    const [K2, N] = b.shape.slice(-2);
    if (K !== K2) {
      throw new ShapeError('shape_mismatch', 'matmul: inner dimensions differ', { expected: `[..., ${M}, ${K}] @ [..., ${K}, N]`, found: `[${a.shape.join(', ')}] @ [${b.shape.join(', ')}]` });
    }
    if (a.dtype !== b.dtype) throw new ShapeError('shape_mismatch', 'matmul: operand dtypes differ', { expected: a.dtype, found: b.dtype });
    const batch = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
    // (a named K is compared by name)
    return this.node('MatMul', [a, b], a.dtype, [...batch, M, N]);
  }

  // ---- reductions ----

  private reduce(op: OpType, x: Value<D>, axes: number | readonly number[], keepdims: boolean): Value<D> {
    const ax = [...new Set((typeof axes === 'number' ? [axes] : axes).map((a) => normAxis(a, x.shape.length, op)))].sort((p, q) => p - q);
    const shape: D[] = [];
    x.shape.forEach((d, i) => {
      if (!ax.includes(i)) shape.push(d);
      else if (keepdims) shape.push(1 as D);
    });
    return this.node(op, [x], x.dtype, shape, { axes: ax, keepdims: keepdims ? 1 : 0 });
  }
  sum(x: Value<D>, axes: number | readonly number[], keepdims = true): Value<D> { return this.reduce('ReduceSum', x, axes, keepdims); }
  mean(x: Value<D>, axes: number | readonly number[], keepdims = true): Value<D> { return this.reduce('ReduceMean', x, axes, keepdims); }
  max(x: Value<D>, axes: number | readonly number[], keepdims = true): Value<D> { return this.reduce('ReduceMax', x, axes, keepdims); }
  /** log Σ exp(x) over `axes` (onnxruntime reduces without materialising exp(x)) */
  logSumExp(x: Value<D>, axes: number | readonly number[], keepdims = true): Value<D> { return this.reduce('ReduceLogSumExp', x, axes, keepdims); }

  softmax(x: Value<D>, axis = -1): Value<D> {
    return this.node('Softmax', [x], x.dtype, x.shape, { axis: normAxis(axis, x.shape.length, 'softmax') });
  }

  // ---- indexing and layout ----

  /** out = data.shape[:axis] + indices.shape + data.shape[axis+1:] */
  gather(data: Value<D>, indices: Value<D>, axis = 0): Value<D> {
    if (indices.dtype !== 'I64' && indices.dtype !== 'I32') throw new ShapeError('shape_mismatch', 'gather: indices must be I64 or I32', { found: indices.dtype });
    const ax = normAxis(axis, data.shape.length, 'gather');
    const shape = [...data.shape.slice(0, ax), ...indices.shape, ...data.shape.slice(ax + 1)];
    return this.node('Gather', [data, indices], data.dtype, shape, { axis: ax });
  }

  /** out[…, i, …] = data[…, indices[…, i, …], …] on `axis`; indices has data's rank, out has its shape */
  gatherElements(data: Value<D>, indices: Value<D>, axis = 0): Value<D> {
    if (indices.dtype !== 'I64' && indices.dtype !== 'I32') throw new ShapeError('shape_mismatch', 'gatherElements: indices must be I64 or I32', { found: indices.dtype });
    if (indices.shape.length !== data.shape.length) throw new ShapeError('shape_mismatch', 'gatherElements: indices must have the rank of data', { expected: data.shape.length, found: indices.shape.length });
    const ax = normAxis(axis, data.shape.length, 'gatherElements');
    return this.node('GatherElements', [data, indices], data.dtype, indices.shape, { axis: ax });
  }

  /**
   * Reshape; one dimension may be -1 (resolved here). With named dims the element counts must
   * agree name for name: the names of `shape` are cancelled against those of x's shape, and the
   * -1 takes what is left (a size, or one name).
   */
  reshape(x: Value<D>, shape: readonly (D | number)[]): Value<D> {
    const bad = () => new ShapeError('shape_mismatch', 'reshape: element count differs', { expected: `${showShape(x.shape)} (${numelOf(x.shape)} elements)`, found: showShape(shape) });
    const inN = splitDims(x.shape);
    const outN = splitDims(shape.filter((d) => d !== -1));
    const holes = shape.length - shape.filter((d) => d !== -1).length;
    if (holes > 1) throw bad();
    const left = [...inN.names];
    for (const nm of outN.names) {
      const at = left.indexOf(nm);
      if (at < 0) throw bad();
      left.splice(at, 1);
    }
    let hole: Dim | null = null;
    if (left.length === 0) {
      const r = outN.size === 0 ? 0 : inN.size / outN.size;
      if (holes) hole = r;
      else if (r !== 1 && !(inN.size === 0 && outN.size === 0)) throw bad();
    } else if (left.length === 1 && holes && inN.size === outN.size) hole = left[0];
    else throw bad();
    const resolved = shape.map((d) => (d === -1 ? hole! : d)) as D[];
    if (resolved.some((d) => typeof d === 'number' && (!Number.isInteger(d) || d < 0))) throw bad();
    return this.node('Reshape', [x], x.dtype, resolved, { shape: resolved });
  }

  transpose(x: Value<D>, perm: readonly number[]): Value<D> {
    const r = x.shape.length;
    const p = perm.map((a) => normAxis(a, r, 'transpose'));
    if (p.length !== r || new Set(p).size !== r) throw new ShapeError('shape_mismatch', 'transpose: perm is not a permutation', { expected: `permutation of ${r} axes`, found: `[${perm.join(', ')}]` });
    return this.node('Transpose', [x], x.dtype, p.map((a) => x.shape[a]), { perm: p });
  }

  /** Concatenation along `axis`; where an input is named along it, `named` is the result's dim there (a sum of names is not inferred). */
  concat(xs: readonly Value<D>[], axis: number, named?: D): Value<D> {
    if (!xs.length) throw new ConfigError('bad_config', 'concat: no inputs');
    const r = xs[0].shape.length;
    const ax = normAxis(axis, r, 'concat');
    const shape = [...xs[0].shape];
    let total = 0;
    let anyNamed = false;
    for (const x of xs) {
      const ok = x.shape.length === r && x.dtype === xs[0].dtype && x.shape.every((d, i) => i === ax || d === xs[0].shape[i]);
      if (!ok) throw new ShapeError('shape_mismatch', 'concat: shapes differ off the concat axis', { expected: showShape(xs[0].shape), found: showShape(x.shape) });
      const d = x.shape[ax];
      if (typeof d === 'number') total += d;
      else anyNamed = true;
    }
    if (anyNamed && named === undefined) throw new ShapeError('shape_mismatch', 'concat along a named dim needs the name of the result', { expected: 'a dim name', found: xs.map((x) => x.shape[ax]).join(' + ') });
    shape[ax] = named ?? (total as D);
    return this.node('Concat', [...xs], xs[0].dtype, shape, { axis: ax });
  }

  /** x[starts:ends:steps] on `axes` (default: the first starts.length axes); negative indices count from the end. */
  slice(x: Value<D>, starts: readonly number[], ends: readonly number[], axes?: readonly number[], steps?: readonly number[]): Value<D> {
    const ax = (axes ?? starts.map((_, i) => i)).map((a) => normAxis(a, x.shape.length, 'slice'));
    const st = steps ?? ax.map(() => 1);
    if (starts.length !== ax.length || ends.length !== ax.length || st.length !== ax.length || st.some((s) => !Number.isInteger(s) || s <= 0)) {
      throw new ConfigError('bad_config', 'slice: starts/ends/axes/steps must have equal lengths and positive steps');
    }
    const shape = [...x.shape];
    const rs: number[] = [];
    const re: number[] = [];
    ax.forEach((a, i) => {
      const d = x.shape[a];
      if (typeof d !== 'number') throw new ShapeError('shape_mismatch', 'slice: the axis has a named dim', { field: 'axes', found: showShape(x.shape) });
      const clampIdx = (v: number) => Math.min(d, Math.max(0, v < 0 ? v + d : v));
      const s = clampIdx(starts[i]);
      const e = Math.max(s, clampIdx(ends[i]));
      rs.push(s);
      re.push(e);
      shape[a] = Math.ceil((e - s) / st[i]) as D;
    });
    return this.node('Slice', [x], x.dtype, shape, { starts: rs, ends: re, axes: ax, steps: [...st] });
  }

  // ---- compositions of primitives (no node kinds of their own) ----

  /** silu(x) = x · sigmoid(x) */
  silu(x: Value<D>): Value<D> {
    return this.mul(x, this.sigmoid(x));
  }

  /** RMSNorm over the last axis: x / sqrt(mean(x²) + eps) · w (w broadcast on the last axis). */
  rmsnorm(x: Value<D>, w: Value<D>, eps: number): Value<D> {
    const ms = this.mean(this.mul(x, x), -1, true);
    const inv = this.div(1, this.sqrt(this.add(ms, eps)));
    return this.mul(this.mul(x, inv), w);
  }

  // ---- inference-only fused ops ----

  /**
   * com.microsoft MatMulNBits: a [..., K] @ dequant(B)ᵀ → [..., N]. `packed` is U8 [N, K/G, G·bits/8],
   * `scales` F32 [N·K/G], `zeroPoints` U8 packed as ORT expects (or absent: zero point 2^(bits−1)).
   */
  /**
   * ONNX Gemm, 2-D: α·op(A)·op(B) (+ β·C), op = transpose where asked. transB takes a [N, K] weight
   * without a Transpose node (which runs as a copy when the graph is not optimised); C of the
   * result's shape may be an accumulator whose output aliases it (Gemm reads C before writing).
   */
  gemm(a: Value<D>, bm: Value<D>, c: Value<D> | null, o: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {}): Value<D> {
    if (a.shape.length !== 2 || bm.shape.length !== 2) throw new ShapeError('shape_mismatch', 'gemm: operands must be 2-D', { expected: 'rank 2', found: `[${a.shape.join(', ')}] , [${bm.shape.join(', ')}]` });
    const [M, K]: D[] = o.transA ? [a.shape[1], a.shape[0]] : [a.shape[0], a.shape[1]];
    const [K2, N]: D[] = o.transB ? [bm.shape[1], bm.shape[0]] : [bm.shape[0], bm.shape[1]];
    if (K !== K2 || a.dtype !== bm.dtype) throw new ShapeError('shape_mismatch', 'gemm: inner dimensions or dtypes differ', { expected: `op(A) [M, ${K}]`, found: `op(B) [${K2}, ${N}]` });
    if (c && (c.shape.length !== 2 || c.shape[0] !== M || c.shape[1] !== N)) throw new ShapeError('shape_mismatch', 'gemm: C must have the result shape', { expected: `[${M}, ${N}]`, found: `[${c.shape.join(', ')}]` });
    const attrs = { transA: o.transA ? 1 : 0, transB: o.transB ? 1 : 0, alpha: o.alpha ?? 1, beta: c ? (o.beta ?? 1) : 0 };
    return this.node('Gemm', c ? [a, bm, c] : [a, bm], a.dtype, [M, N], attrs);
  }

  matmulNBits(a: Value<D>, packed: Value<D>, scales: Value<D>, zeroPoints: Value<D> | null, o: { K: number; N: number; bits: number; blockSize: number; accuracyLevel?: number }): Value<D> {
    if (a.shape[a.shape.length - 1] !== (o.K as D)) throw new ShapeError('shape_mismatch', 'matmulNBits: input features differ', { expected: o.K, found: a.shape[a.shape.length - 1] });
    const kBlocks = Math.ceil(o.K / o.blockSize);
    assertShapeIs(packed.shape, [o.N, kBlocks, (o.blockSize * o.bits) / 8], 'matmulNBits packed weight');
    const inputs = zeroPoints ? [a, packed, scales, zeroPoints] : [a, packed, scales];
    return this.node('MatMulNBits', inputs, a.dtype, [...a.shape.slice(0, -1), o.N as D], {
      K: o.K, N: o.N, bits: o.bits, block_size: o.blockSize, accuracy_level: o.accuracyLevel ?? 0,
    });
  }

  /** DequantizeLinear (blocked when blockSize > 0): (x − zp) · scale, scale/zp broadcast along `axis` in blocks. */
  dequantizeLinear(x: Value<D>, scale: Value<D>, zeroPoint: Value<D> | null, axis: number, blockSize = 0): Value<D> {
    const ax = normAxis(axis, x.shape.length, 'dequantizeLinear');
    const inputs = zeroPoint ? [x, scale, zeroPoint] : [x, scale];
    return this.node('DequantizeLinear', inputs, scale.dtype, x.shape, { axis: ax, block_size: blockSize });
  }

  // ---- run-time sizes (named dims) ----

  /** The run-time size of a dim, I64 []: a constant for a size, a DimSize node for a name. */
  dimSize(d: D): Value<D> {
    if (typeof d === 'number') return this.scalar(d, 'I64');
    if (!this.inputs.some((i) => i.value.shape.includes(d))) throw new ConfigError('bad_config', 'named dim is not a dim of any graph input', { field: d });
    return this.node('DimSize', [], 'I64', [], { dim: d });
  }

  /** 0 … n − 1 as I64 [n] (n a size or a name). */
  iota(n: D): Value<D> {
    if (typeof n === 'number') return this.constant(makeTensor('I64', [n], Array.from({ length: n }, (_, i) => i)));
    return this.node('Range', [this.dimSize(n)], 'I64', [n]);
  }

  /** Freezes the builder's state into a Graph. */
  build(): Graph<D> {
    if (!this.outputs.length) throw new ConfigError('bad_config', 'graph has no outputs', { field: this.name });
    return {
      name: this.name,
      nodes: [...this.nodes],
      inputs: [...this.inputs],
      outputs: [...this.outputs],
      constants: new Map(this.constants),
      params: new Map(this.params),
      producers: new Map(this.producers),
    };
  }
}

function assertShapeIs(shape: readonly Dim[], expected: readonly number[], what: string): void {
  if (shape.length !== expected.length || shape.some((d, i) => d !== expected[i])) {
    throw new ShapeError('shape_mismatch', `wrong shape for ${what}`, { tensor: what, expected: `[${expected.join(', ')}]`, found: `[${shape.join(', ')}]` });
  }
}

/** A shape as its product of sizes and its list of names. */
function splitDims(shape: readonly Dim[]): { size: number; names: string[] } {
  let size = 1;
  const names: string[] = [];
  for (const d of shape) {
    if (typeof d === 'number') size *= d;
    else names.push(d);
  }
  return { size, names };
}

function numelOf(shape: readonly Dim[]): string {
  const { size, names } = splitDims(shape);
  return [String(size), ...names].join('·');
}

/** A host tensor of a core dtype from plain numbers (I64 via BigInt). */
export function makeTensor(dtype: IrDType, shape: number[], values: ArrayLike<number>): Tensor {
  const n = numel(shape);
  if (values.length !== n) throw new ShapeError('shape_mismatch', 'values do not match shape', { expected: n, found: values.length });
  switch (dtype) {
    case 'F32': return { dtype, shape, data: Float32Array.from(values) };
    case 'F64': return { dtype, shape, data: Float64Array.from(values) };
    case 'I64': return { dtype, shape, data: BigInt64Array.from(Array.from(values, (v) => BigInt(v))) };
    case 'I32': return { dtype, shape, data: Int32Array.from(values) };
    case 'I8': return { dtype, shape, data: Int8Array.from(values) };
    case 'U8': return { dtype, shape, data: Uint8Array.from(values) };
    case 'BOOL': return { dtype, shape, data: Uint8Array.from(values, (v) => (v ? 1 : 0)) };
    default:
      throw new ConfigError('unsupported', 'makeTensor: dtype not supported for literals', { expected: 'F32, F64, I64, I32, I8, U8, BOOL', found: dtype });
  }
}
