// Lowering of the IR (ir.ts) to an ONNX ModelProto: opset 21 in the default domain (Round,
// blocked DequantizeLinear, INT4/UINT4, Reduce* axes as inputs), com.microsoft v1 for MatMulNBits,
// IR version 10. Constants become initializers, inline or in one external-data blob (offsets
// aligned to 64 KiB so that onnxruntime can mmap them); parameters may instead become graph inputs
// (training feeds weights without a copy). Named dims (ir.ts Dim) become dim_param on the graph's
// inputs and outputs; where a node needs one's run-time size (a Reshape target, DimSize, Range) it
// is read from the first graph input that has it (Shape with start/end).

import { ConfigError } from '../core/errors.js';
import { encodeModel, ATTR, DATA_LOCATION, onnxDataType, type AttributeProtoJs, type NodeProtoJs, type TensorProtoJs, type ValueInfoProtoJs } from '../formats/onnx/proto.js';
import type { AttrValue, Dim, Graph, IrDType, IrTensor, StoredTensor, Value } from './ir.js';

export const OPSET = 21;
export const IR_VERSION = 10;
const EXTERNAL_ALIGN = 65536;

export interface LowerOptions {
  /** lower parameters as graph inputs named by their parameter names (default false: initializers) */
  paramsAsInputs?: boolean;
  /** put initializers of at least `minBytes` into one external blob named `location` */
  external?: { location: string; minBytes?: number };
  /** ModelProto doc_string / metadata */
  docString?: string;
  metadata?: Record<string, string>;
}

export interface LoweredModel {
  /** ModelProto bytes */
  model: Uint8Array;
  /** the directory of the file that holds the graph's stored constants (the model must be written there), or null */
  storedDir: string | null;
  /** the external-data blob as ordered parts (concatenate to write), when `external` was given */
  externalData: { location: string; parts: Uint8Array[]; byteLength: number } | null;
  /** graph inputs in order (parameters included when paramsAsInputs) */
  inputNames: string[];
  outputNames: string[];
}

/** ONNX type ids come from formats/onnx (one table for every ONNX writer). */
export const onnxDType: (d: IrDType) => number = onnxDataType;

function tensorBytes(t: Exclude<IrTensor, StoredTensor>): Uint8Array {
  const d = t.data;
  return new Uint8Array(d.buffer, d.byteOffset, d.byteLength);
}

function valueInfo(name: string, v: Value<Dim>): ValueInfoProtoJs {
  return { name, type: { tensor_type: { elem_type: onnxDType(v.dtype), shape: { dim: v.shape.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } } };
}

function attr(name: string, v: AttrValue, kind: 'int' | 'ints' | 'float'): AttributeProtoJs {
  if (kind === 'int') return { name, type: ATTR.INT, i: v as number };
  if (kind === 'float') return { name, type: ATTR.FLOAT, f: v as number };
  return { name, type: ATTR.INTS, ints: v as number[] };
}

/** Lowers a graph to ONNX bytes. Deterministic: the same graph gives the same bytes. */
export function lowerToOnnx(g: Graph<Dim>, opts: LowerOptions = {}): LoweredModel {
  const names = new Map<number, string>();
  const used = new Set<string>();
  const claim = (id: number, want: string): string => {
    let n = want;
    for (let k = 1; used.has(n); k++) n = `${want}__${k}`;
    used.add(n);
    names.set(id, n);
    return n;
  };
  for (const i of g.inputs) claim(i.value.id, i.name);
  for (const [id, p] of g.params) claim(id, p);
  // A computed value that is an output carries the output's name itself. (An Identity to the output
  // name would be simpler, but onnxruntime's optimiser then drops the value's other consumers' input:
  // "Node input 'vN' is not a graph input, initializer, or output of a previous node".)
  for (const o of g.outputs) {
    if (g.producers.has(o.value.id) && !names.has(o.value.id) && !used.has(o.name)) claim(o.value.id, o.name);
  }
  const nameOf = (v: Value<Dim>): string => names.get(v.id) ?? claim(v.id, v.name ? `${v.name}` : `v${v.id}`);

  const inputs: ValueInfoProtoJs[] = g.inputs.map((i) => valueInfo(i.name, i.value));
  const initializers: TensorProtoJs[] = [];
  const parts: Uint8Array[] = [];
  let extOffset = 0;
  const minBytes = opts.external?.minBytes ?? 1024;

  const constIds = [...g.constants.keys()].sort((a, b) => a - b);
  let storedDir: string | null = null;
  for (const id of constIds) {
    const t = g.constants.get(id)!;
    const name = nameOf({ id, dtype: t.dtype, shape: t.shape });
    if (opts.paramsAsInputs && g.params.has(id)) {
      inputs.push(valueInfo(name, { id, dtype: t.dtype, shape: t.shape }));
      continue;
    }
    if (t.data === null) {
      // bytes already in a file: ONNX external data relative to the model, which sits beside it
      const cut = t.stored.path.lastIndexOf('/');
      const dir = t.stored.path.slice(0, cut);
      if (storedDir !== null && storedDir !== dir) throw new ConfigError('unsupported', 'stored constants of one graph must share a directory', { tensor: name, expected: storedDir, found: dir });
      storedDir = dir;
      initializers.push({
        name,
        dims: [...t.shape],
        data_type: onnxDType(t.dtype),
        data_location: DATA_LOCATION.EXTERNAL,
        external_data: [
          { key: 'location', value: t.stored.path.slice(cut + 1) },
          { key: 'offset', value: String(t.stored.offset) },
          { key: 'length', value: String(t.stored.byteLength) },
        ],
      });
      continue;
    }
    const bytes = tensorBytes(t);
    const tp: TensorProtoJs = { name, dims: [...t.shape], data_type: onnxDType(t.dtype) };
    if (opts.external && bytes.byteLength >= minBytes) {
      const pad = (EXTERNAL_ALIGN - (extOffset % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
      if (pad) parts.push(new Uint8Array(pad));
      extOffset += pad;
      parts.push(bytes);
      tp.data_location = DATA_LOCATION.EXTERNAL;
      tp.external_data = [
        { key: 'location', value: opts.external.location },
        { key: 'offset', value: String(extOffset) },
        { key: 'length', value: String(bytes.byteLength) },
      ];
      extOffset += bytes.byteLength;
    } else {
      tp.raw_data = bytes;
    }
    initializers.push(tp);
  }

  const nodes: NodeProtoJs[] = [];
  let aux = 0;
  const auxConst = (dtype: IrDType, shape: number[], data: Float32Array | BigInt64Array | Float64Array | Int32Array): string => {
    const name = claim(-1 - aux++, `_c${aux}`);
    initializers.push({ name, dims: shape, data_type: onnxDType(dtype), raw_data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) });
    return name;
  };
  const i64 = (xs: readonly number[]) => auxConst('I64', [xs.length], BigInt64Array.from(xs.map((x) => BigInt(x))));
  const scalarLike = (dtype: IrDType, x: number): string => {
    if (dtype === 'F32') return auxConst('F32', [], Float32Array.of(x));
    if (dtype === 'F64') return auxConst('F64', [], Float64Array.of(x));
    if (dtype === 'I64') return auxConst('I64', [], BigInt64Array.of(BigInt(x)));
    if (dtype === 'I32') return auxConst('I32', [], Int32Array.of(x));
    throw new ConfigError('unsupported', 'clip bounds for this dtype', { found: dtype });
  };

  // where each named dim's run-time size is read: the first graph input that has it
  const dimSource = new Map<string, { input: string; axis: number }>();
  for (const i of g.inputs) i.value.shape.forEach((d, axis) => typeof d === 'string' && !dimSource.has(d) && dimSource.set(d, { input: i.name, axis }));
  const sizeOf = (d: string): string => {
    const src = dimSource.get(d);
    if (!src) throw new ConfigError('bad_config', 'named dim is not a dim of any graph input', { field: d });
    const out = `_shape_${d}`;
    if (!used.has(out)) {
      used.add(out);
      nodes.push({ op_type: 'Shape', input: [src.input], output: [out], name: `shape_${d}`, attribute: [attr('start', src.axis, 'int'), attr('end', src.axis + 1, 'int')] });
    }
    return out; // I64 [1]
  };
  const scalarSizeOf = (d: string): string => {
    const out = `_size_${d}`;
    if (!used.has(out)) {
      const v = sizeOf(d);
      used.add(out);
      nodes.push({ op_type: 'Squeeze', input: [v, i64([0])], output: [out], name: `size_${d}` });
    }
    return out; // I64 []
  };
  // a Reshape target with names: 0 where the input has the same name on that axis, -1 for one
  // other name, else the sizes read from the inputs
  const reshapeTarget = (x: Value<Dim>, shape: readonly Dim[]): string => {
    const lit = shape.map((d, i) => (typeof d === 'number' ? d : x.shape[i] === d ? 0 : null));
    const open = lit.filter((d) => d === null).length;
    if (open <= 1) return i64(lit.map((d) => d ?? -1));
    const parts = shape.map((d, i) => (typeof d === 'number' || x.shape[i] === d ? i64([lit[i]!]) : sizeOf(d)));
    const out = `_target_${aux++}`;
    used.add(out);
    nodes.push({ op_type: 'Concat', input: parts, output: [out], name: out, attribute: [attr('axis', 0, 'int')] });
    return out;
  };

  for (const n of g.nodes) {
    const ins = n.inputs.map(nameOf);
    const out = nameOf(n.outputs[0]);
    const a = n.attrs;
    const node: NodeProtoJs = { op_type: n.op, input: ins, output: [out], name: `n${n.id}_${n.op}` };
    switch (n.op) {
      case 'ReduceSum':
      case 'ReduceMean':
      case 'ReduceMax':
      case 'ReduceLogSumExp':
        node.input = [ins[0], i64(a.axes as number[])];
        node.attribute = [attr('keepdims', a.keepdims, 'int')];
        break;
      case 'Softmax':
      case 'Gather':
      case 'GatherElements':
      case 'Concat':
        node.attribute = [attr('axis', a.axis, 'int')];
        break;
      case 'Reshape':
        node.input = [ins[0], reshapeTarget(n.inputs[0], a.shape as Dim[])];
        break;
      case 'DimSize':
        node.op_type = 'Identity';
        node.input = [scalarSizeOf(a.dim as string)];
        break;
      case 'Range':
        node.input = [scalarLike('I64', 0), ins[0], scalarLike('I64', 1)];
        break;
      case 'Transpose':
        node.attribute = [attr('perm', a.perm, 'ints')];
        break;
      case 'Slice':
        node.input = [ins[0], i64(a.starts as number[]), i64(a.ends as number[]), i64(a.axes as number[]), i64(a.steps as number[])];
        break;
      case 'Cast':
        node.attribute = [attr('to', onnxDType(a.to as IrDType), 'int')];
        break;
      case 'Clip': {
        const dt = n.inputs[0].dtype;
        node.input = [ins[0], a.min !== undefined ? scalarLike(dt, a.min as number) : '', a.max !== undefined ? scalarLike(dt, a.max as number) : ''];
        while (node.input[node.input.length - 1] === '') node.input.pop();
        break;
      }
      case 'Gemm':
        node.attribute = [attr('transA', a.transA, 'int'), attr('transB', a.transB, 'int'), attr('alpha', a.alpha, 'float'), attr('beta', a.beta, 'float')];
        break;
      case 'MatMulNBits':
        node.domain = 'com.microsoft';
        node.attribute = ['K', 'N', 'bits', 'block_size', 'accuracy_level'].map((k) => attr(k, a[k], 'int'));
        break;
      case 'DequantizeLinear':
        node.attribute = [attr('axis', a.axis, 'int')];
        if ((a.block_size as number) > 0) node.attribute.push(attr('block_size', a.block_size, 'int'));
        break;
      default:
        break;
    }
    nodes.push(node);
  }

  const outputs: ValueInfoProtoJs[] = [];
  for (const o of g.outputs) {
    if (o.value.dtype === 'I4' || o.value.dtype === 'U4') {
      // onnxruntime-node aborts the whole process when a 4-bit tensor is returned (RUNTIME-NOTES).
      throw new ConfigError('unsupported', 'graph output has a 4-bit dtype', { field: o.name, hint: 'cast to a wider type before returning it' });
    }
    const name = o.name;
    if (names.get(o.value.id) !== name) {
      // an input, a constant, or a value already returned under another name
      if (used.has(name)) throw new ConfigError('bad_config', 'graph output name clashes with another value', { field: name });
      used.add(name);
      nodes.push({ op_type: 'Identity', input: [nameOf(o.value)], output: [name], name: `out_${name}` });
    }
    outputs.push(valueInfo(name, o.value));
  }

  const opset = [{ domain: '', version: OPSET }];
  if (g.nodes.some((n) => n.op === 'MatMulNBits')) opset.push({ domain: 'com.microsoft', version: 1 });
  const model = encodeModel({
    ir_version: IR_VERSION,
    producer_name: 'bitscale',
    producer_version: '0.1.0',
    doc_string: opts.docString ?? '',
    graph: { name: g.name, node: nodes, initializer: initializers, input: inputs, output: outputs },
    opset_import: opset,
    metadata_props: Object.entries(opts.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return {
    model,
    storedDir,
    externalData: opts.external ? { location: opts.external.location, parts, byteLength: extOffset } : null,
    inputNames: inputs.map((i) => i.name),
    outputNames: outputs.map((o) => o.name),
  };
}
