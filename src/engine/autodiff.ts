// Reverse-mode automatic differentiation as a graph transformation IR → IR: the result holds the
// forward graph unchanged plus one gradient output per requested value ("grad.<name>"). Parameters
// stay parameters, so lowering with `paramsAsInputs` feeds weights without a copy and returns their
// gradients as outputs (DESIGN: training on the inference-only onnxruntime build).
// Straight-through estimators and other custom gradients enter through `stop`: a value listed there
// passes no gradient to its producer (write x + stop(q(x) − x) for an identity STE).

import { ConfigError } from '../core/errors.js';
import { GraphBuilder, isFloatDType, type Graph, type Node, type Value } from './ir.js';
import { NON_DIFFERENTIABLE, RULES, zerosConst } from './grad/rules.js';

export interface GradOptions {
  /** name of the scalar graph output to differentiate (default 'loss') */
  loss?: string;
  /** values to differentiate with respect to: parameter names and/or graph input names (default: every float parameter) */
  wrt?: readonly string[];
  /** ids (in the source graph) of values whose producers receive no gradient */
  stop?: ReadonlySet<number>;
  /** prefix of the gradient outputs (default 'grad.') */
  prefix?: string;
}

/** Rebuilds `g` node by node in builder `b`; returns the map from source value ids to new values. */
export function replay(g: Graph, b: GraphBuilder): Map<number, Value> {
  const map = new Map<number, Value>();
  for (const i of g.inputs) map.set(i.value.id, b.input(i.name, i.value.dtype, i.value.shape));
  for (const [id, t] of g.constants) {
    const p = g.params.get(id);
    map.set(id, p !== undefined ? b.param(p, t) : b.constant(t));
  }
  const m = (v: Value) => map.get(v.id) as Value;
  for (const n of g.nodes) map.set(n.outputs[0].id, replayNode(b, n, n.inputs.map(m)));
  for (const o of g.outputs) b.output(o.name, m(o.value));
  return map;
}

function replayNode(b: GraphBuilder, n: Node, x: Value[]): Value {
  const a = n.attrs;
  switch (n.op) {
    case 'MatMul': return b.matmul(x[0], x[1]);
    case 'Add': return b.add(x[0], x[1]);
    case 'Sub': return b.sub(x[0], x[1]);
    case 'Mul': return b.mul(x[0], x[1]);
    case 'Div': return b.div(x[0], x[1]);
    case 'Pow': return b.pow(x[0], x[1]);
    case 'Max': return b.maximum(x[0], x[1]);
    case 'Min': return b.minimum(x[0], x[1]);
    case 'Equal': return b.equal(x[0], x[1]);
    case 'Less': return b.less(x[0], x[1]);
    case 'Sqrt': return b.sqrt(x[0]);
    case 'Exp': return b.exp(x[0]);
    case 'Log': return b.log(x[0]);
    case 'Neg': return b.neg(x[0]);
    case 'Abs': return b.abs(x[0]);
    case 'Floor': return b.floor(x[0]);
    case 'Round': return b.round(x[0]);
    case 'Sigmoid': return b.sigmoid(x[0]);
    case 'Identity': return b.identity(x[0]);
    case 'Clip': return b.clip(x[0], a.min as number | undefined, a.max as number | undefined);
    case 'ReduceSum': return b.sum(x[0], a.axes as number[], a.keepdims === 1);
    case 'ReduceMean': return b.mean(x[0], a.axes as number[], a.keepdims === 1);
    case 'ReduceMax': return b.max(x[0], a.axes as number[], a.keepdims === 1);
    case 'Softmax': return b.softmax(x[0], a.axis as number);
    case 'Gather': return b.gather(x[0], x[1], a.axis as number);
    case 'Reshape': return b.reshape(x[0], a.shape as number[]);
    case 'Transpose': return b.transpose(x[0], a.perm as number[]);
    case 'Concat': return b.concat(x, a.axis as number);
    case 'Slice': return b.slice(x[0], a.starts as number[], a.ends as number[], a.axes as number[], a.steps as number[]);
    case 'Where': return b.where(x[0], x[1], x[2]);
    case 'Cast': return b.cast(x[0], a.to as Value['dtype']);
    default:
      throw new ConfigError('unsupported', 'autodiff cannot replay this op', { found: n.op, hint: 'fused inference ops have no gradient; build the decomposed form' });
  }
}

/**
 * Appends the backward pass of `fwd` (a snapshot of builder `b`, values shared) to `b` and marks
 * the gradients as outputs. `targets` maps output names to the values to differentiate.
 */
export function appendBackward(b: GraphBuilder, fwd: Graph, loss: Value, targets: ReadonlyMap<string, Value>, stop: ReadonlySet<number> = new Set()): void {
  if (loss.shape.reduce((p, d) => p * d, 1) !== 1 || !isFloatDType(loss.dtype)) {
    throw new ConfigError('bad_config', 'the loss must be a float scalar', { field: 'loss', expected: 'one float element', found: `${loss.dtype} [${loss.shape.join(', ')}]` });
  }
  // forward sweep: which values depend on a target through differentiable ops
  const needs = new Set<number>();
  for (const v of targets.values()) needs.add(v.id);
  for (const n of fwd.nodes) {
    const out = n.outputs[0];
    if (stop.has(out.id) || NON_DIFFERENTIABLE.has(n.op) || !isFloatDType(out.dtype)) continue;
    if (n.inputs.some((v) => needs.has(v.id))) needs.add(out.id);
  }
  const grads = new Map<number, Value>();
  const acc = (v: Value, gv: Value) => {
    const prev = grads.get(v.id);
    grads.set(v.id, prev ? b.add(prev, gv) : gv);
  };
  if (needs.has(loss.id)) {
    const one = loss.dtype === 'F64' ? { dtype: 'F64' as const, shape: [...loss.shape], data: Float64Array.of(1) } : { dtype: 'F32' as const, shape: [...loss.shape], data: Float32Array.of(1) };
    acc(loss, b.constant(one));
  }
  for (let k = fwd.nodes.length - 1; k >= 0; k--) {
    const n = fwd.nodes[k];
    const out = n.outputs[0];
    const g = grads.get(out.id);
    if (!g || !needs.has(out.id)) continue;
    const rule = RULES[n.op];
    if (!rule) throw new ConfigError('unsupported', 'no gradient rule for this op', { found: n.op });
    const need = n.inputs.map((v) => needs.has(v.id));
    const gi = rule({ b, node: n, ins: n.inputs, out, need }, g);
    n.inputs.forEach((v, i) => {
      const gv = gi[i];
      if (gv && need[i]) acc(v, gv);
    });
  }
  for (const [name, v] of targets) b.output(name, grads.get(v.id) ?? zerosConst(b, v.shape, v.dtype));
}

/**
 * The forward graph `g` plus gradients of its scalar output `loss` with respect to `wrt`, as
 * outputs named `${prefix}${name}`.
 */
export function gradGraph(g: Graph, opts: GradOptions = {}): Graph {
  const lossName = opts.loss ?? 'loss';
  const prefix = opts.prefix ?? 'grad.';
  const b = new GraphBuilder(`${g.name}_grad`);
  const map = replay(g, b);
  const lossOut = g.outputs.find((o) => o.name === lossName);
  if (!lossOut) throw new ConfigError('bad_config', 'the graph has no loss output', { field: lossName, expected: 'a scalar output', found: g.outputs.map((o) => o.name) });
  const byName = new Map<string, Value>();
  for (const [id, p] of g.params) byName.set(p, map.get(id) as Value);
  for (const i of g.inputs) byName.set(i.name, map.get(i.value.id) as Value);
  const wrt = opts.wrt ?? [...g.params].filter(([id]) => isFloatDType(g.constants.get(id)!.dtype)).map(([, p]) => p);
  const targets = new Map<string, Value>();
  for (const w of wrt) {
    const v = byName.get(w);
    if (!v) throw new ConfigError('bad_config', 'no parameter or input with this name', { field: w });
    targets.set(`${prefix}${w}`, v);
  }
  const stop = new Set<number>();
  for (const id of opts.stop ?? []) {
    const v = map.get(id);
    if (v) stop.add(v.id);
  }
  const snapshot = b.build();
  appendBackward(b, snapshot, map.get(lossOut.value.id) as Value, targets, stop);
  return b.build();
}
