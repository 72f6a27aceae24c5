// The decoder graph in the form transformers.js and Optimum-exported Llama models use, written
// straight to ONNX protos because its shapes are dynamic (the IR in ir.ts is static-shaped):
//   inputs  input_ids [batch, sequence_length] int64, attention_mask [batch, total_sequence_length] int64,
//           position_ids [batch, sequence_length] int64,
//           past_key_values.{i}.key / .value [batch, Hk, past_sequence_length, D] float32
//   outputs logits [batch, sequence_length, V], present.{i}.key / .value [batch, Hk, total_sequence_length, D]
// The first step feeds an empty past (past_sequence_length = 0). Key slots are the concatenation
// past ++ new, so query t (slot past + t) sees slot j when j <= past + t and attention_mask[b, j] = 1;
// positions come from position_ids (left padding shifts them, not the slots).
// Linear layers whose integer codes fit com.microsoft MatMulNBits (2/4/8 bits, groups of a power of
// two >= 16 along K) run as MatMulNBits with accuracy_level 0 (fp32 dequantization, exact); every other
// weight is a float initializer holding what the engine computes with (the dequantized weight).
// Numerics follow llama.ts op for op, so logits match the engine up to accumulation order.
// Legend: B = batch, S = new tokens, T = past + S, V = vocab, E = hidden, H = query heads,
// Hk = KV heads, G = H / Hk, D = head dim, Dr = D / 2, P = RoPE table rows.

import { ConfigError } from '../core/errors.js';
import { encodeModel, onnxDataType, ATTR, DATA_LOCATION, type AttributeProtoJs, type NodeProtoJs, type TensorProtoJs, type ValueInfoProtoJs } from '../formats/onnx/proto.js';
import type { HostModel } from './host.js';
import { validateConfig } from './host.js';
import { IR_VERSION, OPSET } from './lower.js';
import { packMatMulNBits } from './lowbit-linear.js';
import { intLimits, type AbsmaxActSpec } from './actquant.js';
import { encodeF16Array } from '../numerics/float16.js';
import { ropeTables } from './rope.js';

const EXTERNAL_ALIGN = 65536;
const ONNX_F32 = onnxDataType('F32');
const ONNX_F16 = onnxDataType('F16');
const ONNX_U8 = onnxDataType('U8');
const ONNX_I8 = onnxDataType('I8');
const ONNX_I64 = onnxDataType('I64');
const ONNX_BOOL = onnxDataType('BOOL');
/** masked scores: the most negative float32, so a fully padded row stays finite (uniform, not NaN) */
const MASKED = -3.4028234663852886e38;

export interface HfOnnxOptions {
  /** RoPE table rows (positions must stay below); default the config's maxSeqLen (at least 1) */
  maxPositions?: number;
  /** initializers of at least `minBytes` go to one external-data file named `location` */
  external?: { location: string; minBytes?: number } | null;
  metadata?: Record<string, string>;
  /** fake-quantize the input of every decoder linear (not lm_head) in the graph, as BitNet trains */
  activations?: AbsmaxActSpec | null;
  /**
   * storage of the float weights (embeddings, norms, lm_head and linears without codes): 'f16' keeps
   * every one of at least F16_STORAGE_MIN_ELEMENTS elements as a float16 initializer cast to float32
   * in the graph (transformers.js's fp16 / q4f16 files at half the size; compute and I/O stay float32)
   */
  floatStorage?: 'f32' | 'f16';
}

/** float weights this large or larger are stored as float16 under floatStorage 'f16' (smaller ones, e.g. norms, stay float32) */
export const F16_STORAGE_MIN_ELEMENTS = 1024;

export interface HfOnnxLinear {
  name: string;
  /** 'MatMulNBits', 'DequantizeLinear' (int8/uint8 codes) or 'float' (dequantized or float weight) */
  op: 'MatMulNBits' | 'DequantizeLinear' | 'float';
  bits?: number;
  blockSize?: number;
  asymmetric?: boolean;
  /** MatMulNBits with float zero points (input 3 as float32 [N·Kb]) */
  floatZeroPoints?: boolean;
}

export interface HfOnnxModel {
  model: Uint8Array;
  external: { location: string; parts: Uint8Array[]; byteLength: number } | null;
  inputNames: string[];
  outputNames: string[];
  linears: HfOnnxLinear[];
}

export function hfPastNames(i: number): { pastK: string; pastV: string; presentK: string; presentV: string } {
  return { pastK: `past_key_values.${i}.key`, pastV: `past_key_values.${i}.value`, presentK: `present.${i}.key`, presentV: `present.${i}.value` };
}

/** Whether a quantized weight can run as MatMulNBits (see engine/lowbit-linear.ts for the packing). */
export function nbitsFits(q: { shape: number[]; scheme: { bits: number; granularity: { kind: string; size?: number } } }): boolean {
  const g = q.scheme.granularity;
  const b = q.scheme.bits;
  return g.kind === 'group' && (b === 2 || b === 4 || b === 8) && g.size! >= 16 && (g.size! & (g.size! - 1)) === 0 && q.shape[1] % g.size! === 0;
}

/** Whether a quantized weight can be an int8/uint8-container DequantizeLinear (≤ 8 bits, 2-D). */
export function dqFits(q: { shape: number[]; scheme: { bits: number; granularity: { kind: string; size?: number; axis?: number } } }): boolean {
  const g = q.scheme.granularity;
  if (q.scheme.bits > 8 || q.shape.length !== 2) return false;
  if (g.kind === 'group') return q.shape[1] % g.size! === 0;
  return (g.kind === 'channel' && g.axis === 0) || g.kind === 'tensor';
}

function bytesOf(a: Float32Array | Uint8Array | Uint16Array | BigInt64Array): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
}

class Emitter {
  readonly nodes: NodeProtoJs[] = [];
  readonly inits: TensorProtoJs[] = [];
  readonly parts: Uint8Array[] = [];
  extOffset = 0;
  private n = 0;
  private readonly cache = new Map<string, string>();
  constructor(private readonly ext: { location: string; minBytes?: number } | null) {}

  init(name: string, dataType: number, dims: number[], data: Float32Array | Uint8Array | Uint16Array | BigInt64Array): string {
    const bytes = bytesOf(data);
    const tp: TensorProtoJs = { name, dims, data_type: dataType };
    if (this.ext && bytes.byteLength >= (this.ext.minBytes ?? 1024)) {
      // 64 KiB-aligned offsets let onnxruntime mmap each initializer
      const pad = (EXTERNAL_ALIGN - (this.extOffset % EXTERNAL_ALIGN)) % EXTERNAL_ALIGN;
      if (pad) this.parts.push(new Uint8Array(pad));
      this.extOffset += pad;
      this.parts.push(bytes);
      tp.data_location = DATA_LOCATION.EXTERNAL;
      tp.external_data = [
        { key: 'location', value: this.ext.location },
        { key: 'offset', value: String(this.extOffset) },
        { key: 'length', value: String(bytes.byteLength) },
      ];
      this.extOffset += bytes.byteLength;
    } else {
      tp.raw_data = bytes;
    }
    this.inits.push(tp);
    return name;
  }

  i64(xs: readonly number[], scalar = false): string {
    const key = `i64:${scalar}:${xs.join(',')}`;
    let hit = this.cache.get(key);
    if (!hit) {
      hit = this.init(`const_i64_${this.cache.size}`, ONNX_I64, scalar ? [] : [xs.length], BigInt64Array.from(xs.map(BigInt)));
      this.cache.set(key, hit);
    }
    return hit;
  }

  f32(x: number): string {
    const key = `f32:${x}`;
    let hit = this.cache.get(key);
    if (!hit) {
      hit = this.init(`const_f32_${this.cache.size}`, ONNX_F32, [], Float32Array.of(x));
      this.cache.set(key, hit);
    }
    return hit;
  }

  op(opType: string, inputs: string[], attrs: Record<string, number | number[]> = {}, domain?: string, outName?: string): string {
    const out = outName ?? `t${this.n++}_${opType}`;
    const attribute: AttributeProtoJs[] = Object.entries(attrs).map(([name, v]) => (Array.isArray(v) ? { name, type: ATTR.INTS, ints: v } : Number.isInteger(v) ? { name, type: ATTR.INT, i: v } : { name, type: ATTR.FLOAT, f: v }));
    const node: NodeProtoJs = { op_type: opType, input: inputs, output: [out], name: `n${this.nodes.length}_${opType}` };
    if (attribute.length) node.attribute = attribute;
    if (domain) node.domain = domain;
    this.nodes.push(node);
    return out;
  }
}

function io(name: string, elemType: number, dims: (number | string)[]): ValueInfoProtoJs {
  return { name, type: { tensor_type: { elem_type: elemType, shape: { dim: dims.map((d) => (typeof d === 'number' ? { dim_value: d } : { dim_param: d })) } } } };
}

/** Builds the transformers.js-style decoder for `m` (float or with low-bit linears). */
export function buildHfOnnx(m: HostModel, o: HfOnnxOptions = {}): HfOnnxModel {
  const c = m.config;
  validateConfig(c);
  const E = c.hiddenSize;
  const H = c.nHeads;
  const Hk = c.nKvHeads;
  const G = H / Hk;
  const D = c.headDim;
  const Dr = D / 2;
  const V = c.vocabSize;
  const P = Math.max(1, o.maxPositions ?? c.maxSeqLen);
  const e = new Emitter(o.external ?? null);
  const linears: HfOnnxLinear[] = [];
  const params = new Map<string, string>();
  const param = (name: string, dims: number[]): string => {
    let hit = params.get(name);
    if (!hit) {
      const data = m.tensors.get(name);
      if (!data) throw new ConfigError('bad_config', 'tensor missing from the prepared model', { tensor: name });
      if (data.length !== dims.reduce((a, b) => a * b, 1)) throw new ConfigError('bad_config', 'tensor size does not match the config', { tensor: name, expected: `[${dims.join(', ')}]`, found: data.length });
      hit =
        o.floatStorage === 'f16' && data.length >= F16_STORAGE_MIN_ELEMENTS
          ? e.op('Cast', [e.init(`${name}.f16`, ONNX_F16, dims, encodeF16Array(data))], { to: ONNX_F32 })
          : e.init(name, ONNX_F32, dims, data);
      params.set(name, hit);
    }
    return hit;
  };

  const rmsnorm = (x: string, w: string): string => {
    const ms = e.op('ReduceMean', [e.op('Mul', [x, x]), e.i64([-1])], { keepdims: 1 });
    const inv = e.op('Div', [e.f32(1), e.op('Sqrt', [e.op('Add', [ms, e.f32(c.rmsNormEps)])])]);
    return e.op('Mul', [e.op('Mul', [x, inv]), w]);
  };

  // per-token absmax fake quant of a linear's input (actquant.ts AbsmaxActSpec), once per input value
  const quantized = new Map<string, string>();
  const actIn = (x: string): string => {
    const a = o.activations;
    if (!a) return x;
    let hit = quantized.get(x);
    if (!hit) {
      const { qmin, qmax } = intLimits(a.bits, true);
      const amax = e.op('Max', [e.op('ReduceMax', [e.op('Abs', [x]), e.i64([-1])], { keepdims: 1 }), e.f32(a.eps)]);
      const s = e.op('Div', [e.f32(qmax), amax]);
      hit = e.op('Div', [e.op('Clip', [e.op('Round', [e.op('Mul', [x, s])]), e.f32(qmin), e.f32(qmax)]), s]);
      quantized.set(x, hit);
    }
    return hit;
  };

  const linear = (x0: string, name: string, N: number, K: number, bias?: string): string => {
    const lb = m.lowBit.get(name);
    const x = name === 'lm_head.weight' ? x0 : actIn(x0);
    let y: string;
    if (lb && nbitsFits(lb.q)) {
      const p = packMatMulNBits(lb.q, lb.floatZeros);
      const Kb = p.K / p.G;
      const B = e.init(`${name}.qweight`, ONNX_U8, [p.N, Kb, (p.G * p.bits) / 8], p.B);
      const S = e.init(`${name}.scales`, ONNX_F32, [p.N * Kb], p.scales);
      const ins = [x, B, S];
      if (p.floatZeroPoints) ins.push(e.init(`${name}.zeros`, ONNX_F32, [p.N * Kb], p.floatZeroPoints));
      else if (p.zeroPoints) ins.push(e.init(`${name}.zeros`, ONNX_U8, [p.zeroPoints.length], p.zeroPoints));
      y = e.op('MatMulNBits', ins, { K: p.K, N: p.N, bits: p.bits, block_size: p.G, accuracy_level: 0 }, 'com.microsoft');
      linears.push({ name, op: 'MatMulNBits', bits: p.bits, blockSize: p.G, asymmetric: !!(p.zeroPoints || p.floatZeroPoints), ...(p.floatZeroPoints ? { floatZeroPoints: true } : {}) });
    } else if (lb && !lb.floatZeros && dqFits(lb.q)) {
      // every other int weight (3–8 bits, any group that divides K, per channel, per tensor) as
      // DequantizeLinear over codes in an int8/uint8 container: exact, 1 byte per weight instead of 4
      // (never an int4 container, which onnxruntime fuses into MatMulNBits at accuracy_level 4 in
      // sessions that do not pin it, as transformers.js's do not)
      const q = lb.q;
      const [N2, K2] = q.shape;
      const g = q.scheme.granularity;
      const sym = q.scheme.symmetric;
      const codeType = sym ? ONNX_I8 : ONNX_U8;
      const container = (xs: ArrayLike<number>) => (sym ? new Uint8Array(Int8Array.from(xs).buffer) : Uint8Array.from(xs));
      // always blocked along K (per channel = one block of K, per tensor = the scale repeated per row):
      // a per-axis int8 DequantizeLinear → MatMul came out inexact in transformers.js's session (max
      // |Δ logit| 3e-2; exact in ours, which pins the QDQ accuracy level), the blocked form exact in both
      const G = g.kind === 'group' ? g.size! : K2;
      const perRow = (xs: ArrayLike<number>) => (g.kind === 'tensor' ? Array.from({ length: N2 }, () => xs[0]) : xs);
      const scaleDims = [N2, K2 / G];
      const ins = [e.init(`${name}.codes`, codeType, [N2, K2], container(q.codes)), e.init(`${name}.scales`, ONNX_F32, scaleDims, Float32Array.from(perRow(q.scales)))];
      if (q.zeros) ins.push(e.init(`${name}.zeros`, codeType, scaleDims, container(perRow(q.zeros))));
      const w = e.op('DequantizeLinear', ins, { axis: 1, block_size: G });
      y = e.op('MatMul', [x, e.op('Transpose', [w], { perm: [1, 0] })]);
      linears.push({ name, op: 'DequantizeLinear', bits: q.scheme.bits, blockSize: G, asymmetric: !sym });
    } else {
      // host.tensors holds the dequantized weight for every other scheme; ORT folds the transpose at load
      y = e.op('MatMul', [x, e.op('Transpose', [param(name, [N, K])], { perm: [1, 0] })]);
      linears.push({ name, op: 'float' });
    }
    return bias ? e.op('Add', [y, param(bias, [N])]) : y;
  };

  // rotation of x [B, S, Hx, D] by cos/sin [B, S, 1, Dr] (rope.ts, both layouts)
  const rope = (x: string, Hx: number, cos4: string, sin4: string, cos5: string, sin5: string): string => {
    if (c.ropeLayout === 'interleaved') {
      const xp = e.op('Reshape', [x, e.i64([0, 0, Hx, Dr, 2])]);
      const x0 = e.op('Slice', [xp, e.i64([0]), e.i64([1]), e.i64([4])]);
      const x1 = e.op('Slice', [xp, e.i64([1]), e.i64([2]), e.i64([4])]);
      const y0 = e.op('Sub', [e.op('Mul', [x0, cos5]), e.op('Mul', [x1, sin5])]);
      const y1 = e.op('Add', [e.op('Mul', [x0, sin5]), e.op('Mul', [x1, cos5])]);
      return e.op('Reshape', [e.op('Concat', [y0, y1], { axis: 4 }), e.i64([0, 0, Hx, D])]);
    }
    const x0 = e.op('Slice', [x, e.i64([0]), e.i64([Dr]), e.i64([3])]);
    const x1 = e.op('Slice', [x, e.i64([Dr]), e.i64([D]), e.i64([3])]);
    const y0 = e.op('Sub', [e.op('Mul', [x0, cos4]), e.op('Mul', [x1, sin4])]);
    const y1 = e.op('Add', [e.op('Mul', [x1, cos4]), e.op('Mul', [x0, sin4])]);
    return e.op('Concat', [y0, y1], { axis: 3 });
  };

  const inputs: ValueInfoProtoJs[] = [
    io('input_ids', ONNX_I64, ['batch_size', 'sequence_length']),
    io('attention_mask', ONNX_I64, ['batch_size', 'total_sequence_length']),
    io('position_ids', ONNX_I64, ['batch_size', 'sequence_length']),
  ];
  const outputs: ValueInfoProtoJs[] = [io('logits', ONNX_F32, ['batch_size', 'sequence_length', V])];
  for (let i = 0; i < c.nLayers; i++) {
    const n = hfPastNames(i);
    inputs.push(io(n.pastK, ONNX_F32, ['batch_size', Hk, 'past_sequence_length', D]), io(n.pastV, ONNX_F32, ['batch_size', Hk, 'past_sequence_length', D]));
    outputs.push(io(n.presentK, ONNX_F32, ['batch_size', Hk, 'total_sequence_length', D]), io(n.presentV, ONNX_F32, ['batch_size', Hk, 'total_sequence_length', D]));
  }

  const embed = param('model.embed_tokens.weight', [V, E]);
  let x = e.op('Gather', [embed, 'input_ids'], { axis: 0 }); // [B, S, E]

  const tab = ropeTables(c, P);
  const cos = e.op('Gather', [e.init('rope.cos', ONNX_F32, [P, Dr], tab.cos), 'position_ids'], { axis: 0 }); // [B, S, Dr]
  const sin = e.op('Gather', [e.init('rope.sin', ONNX_F32, [P, Dr], tab.sin), 'position_ids'], { axis: 0 });
  const cos4 = e.op('Unsqueeze', [cos, e.i64([2])]);
  const sin4 = e.op('Unsqueeze', [sin, e.i64([2])]);
  const cos5 = e.op('Unsqueeze', [cos, e.i64([2, 4])]); // [B, S, 1, Dr, 1]
  const sin5 = e.op('Unsqueeze', [sin, e.i64([2, 4])]);

  // allowed [B, 1, 1, S, T]: causal over slots and not padding
  const past0 = hfPastNames(0).pastK;
  const scalarDim = (t: string, axis: number) => e.op('Squeeze', [e.op('Shape', [t], { start: axis, end: axis + 1 }), e.i64([0])]);
  const pastLen = scalarDim(past0, 2);
  const S = scalarDim('input_ids', 1);
  const T = scalarDim('attention_mask', 1);
  const qSlot = e.op('Range', [pastLen, e.op('Add', [pastLen, S]), e.i64([1], true)]); // [S]
  const kSlot = e.op('Range', [e.i64([0], true), T, e.i64([1], true)]); // [T]
  const causal = e.op('LessOrEqual', [e.op('Unsqueeze', [kSlot, e.i64([0])]), e.op('Unsqueeze', [qSlot, e.i64([1])])]); // [S, T]
  const notPad = e.op('Unsqueeze', [e.op('Cast', ['attention_mask'], { to: ONNX_BOOL }), e.i64([1, 2, 3])]); // [B, 1, 1, 1, T]
  const allowed = e.op('And', [causal, notPad]);
  const invSqrtD = 1 / Math.sqrt(D);

  for (let i = 0; i < c.nLayers; i++) {
    const p = `model.layers.${i}.`;
    const pn = hfPastNames(i);
    const h = rmsnorm(x, param(`${p}input_layernorm.weight`, [E]));
    const bias = (nm: string) => (c.attentionBias ? `${p}self_attn.${nm}_proj.bias` : undefined);
    let q = e.op('Reshape', [linear(h, `${p}self_attn.q_proj.weight`, H * D, E, bias('q')), e.i64([0, 0, H, D])]);
    let k = e.op('Reshape', [linear(h, `${p}self_attn.k_proj.weight`, Hk * D, E, bias('k')), e.i64([0, 0, Hk, D])]);
    const v = e.op('Reshape', [linear(h, `${p}self_attn.v_proj.weight`, Hk * D, E, bias('v')), e.i64([0, 0, Hk, D])]);
    if (c.qkNorm) {
      q = rmsnorm(q, param(`${p}self_attn.q_norm.weight`, [D]));
      k = rmsnorm(k, param(`${p}self_attn.k_norm.weight`, [D]));
    }
    q = rope(q, H, cos4, sin4, cos5, sin5);
    k = rope(k, Hk, cos4, sin4, cos5, sin5);
    const presentK = e.op('Concat', [pn.pastK, e.op('Transpose', [k], { perm: [0, 2, 1, 3] })], { axis: 2 }, undefined, pn.presentK); // [B, Hk, T, D]
    const presentV = e.op('Concat', [pn.pastV, e.op('Transpose', [v], { perm: [0, 2, 1, 3] })], { axis: 2 }, undefined, pn.presentV);
    // queries of KV head j are heads j·G … j·G + G − 1: q5 [B, Hk, G, S, D] against K/V [B, Hk, 1, T, D]
    const q5 = e.op('Transpose', [e.op('Reshape', [q, e.i64([0, 0, Hk, G, D])])], { perm: [0, 2, 3, 1, 4] });
    const kT5 = e.op('Unsqueeze', [e.op('Transpose', [presentK], { perm: [0, 1, 3, 2] }), e.i64([2])]);
    let scores = e.op('Mul', [e.op('MatMul', [q5, kT5]), e.f32(invSqrtD)]); // [B, Hk, G, S, T]
    scores = e.op('Where', [allowed, scores, e.f32(MASKED)]);
    const probs = e.op('Softmax', [scores], { axis: -1 });
    const ctx5 = e.op('MatMul', [probs, e.op('Unsqueeze', [presentV, e.i64([2])])]); // [B, Hk, G, S, D]
    const ctx = e.op('Reshape', [e.op('Transpose', [ctx5], { perm: [0, 3, 1, 2, 4] }), e.i64([0, 0, H * D])]);
    x = e.op('Add', [x, linear(ctx, `${p}self_attn.o_proj.weight`, E, H * D)]);

    const h2 = rmsnorm(x, param(`${p}post_attention_layernorm.weight`, [E]));
    const gate = linear(h2, `${p}mlp.gate_proj.weight`, c.intermediateSize, E);
    const up = linear(h2, `${p}mlp.up_proj.weight`, c.intermediateSize, E);
    const act = e.op('Mul', [e.op('Mul', [gate, e.op('Sigmoid', [gate])]), up]);
    x = e.op('Add', [x, linear(act, `${p}mlp.down_proj.weight`, E, c.intermediateSize)]);
  }
  const xf = rmsnorm(x, param('model.norm.weight', [E]));
  if (c.tiedEmbeddings) e.op('MatMul', [xf, e.op('Transpose', [embed], { perm: [1, 0] })], {}, undefined, 'logits');
  else e.op('Identity', [linear(xf, 'lm_head.weight', V, E)], {}, undefined, 'logits');

  const opset = [{ domain: '', version: OPSET }];
  if (e.nodes.some((nd) => nd.domain === 'com.microsoft')) opset.push({ domain: 'com.microsoft', version: 1 });
  const model = encodeModel({
    ir_version: IR_VERSION,
    producer_name: 'bitscale',
    producer_version: '0.1.0',
    graph: { name: `${c.architecture}-decoder`, node: e.nodes, initializer: e.inits, input: inputs, output: outputs },
    opset_import: opset,
    metadata_props: Object.entries(o.metadata ?? {}).map(([key, value]) => ({ key, value })),
  });
  return {
    model,
    external: o.external ? { location: o.external.location, parts: e.parts, byteLength: e.extOffset } : null,
    inputNames: inputs.map((i) => i.name),
    outputNames: outputs.map((x2) => x2.name),
    linears,
  };
}
