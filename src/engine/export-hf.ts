// The decoder graph in the form transformers.js and Optimum-exported Llama models use:
//   inputs  input_ids [batch_size, sequence_length] int64, attention_mask [batch_size, total_sequence_length] int64,
//           position_ids [batch_size, sequence_length] int64,
//           past_key_values.{i}.key / .value [batch_size, Hk, past_sequence_length, D] float32
//   outputs logits [batch_size, sequence_length, V], present.{i}.key / .value [batch_size, Hk, total_sequence_length, D]
// The blocks are engine/decoder-block.ts's (the one block definition), built on the IR with those
// names as dims (GraphBuilder<Dim>) and lowered by engine/lower.ts; this file adds only the
// wrapping: the inputs and outputs by those names, the positions, the mask, the past/present KV
// and the logits. The first step feeds an empty past (past_sequence_length = 0). Key slots are
// past ++ new, so query s (slot past + s) sees slot j when j <= past + s and attention_mask[b, j] = 1;
// the RoPE angles come from position_ids (left padding shifts them, not the slots).
// Linear layers whose integer codes fit com.microsoft MatMulNBits (2/4/8 bits, groups of a power of
// two >= 16 along K) run as MatMulNBits with accuracy_level 0 (fp32 dequantization, exact); other
// int codes of at most 8 bits as DequantizeLinear; every other weight is a float initializer
// holding what the engine computes with (the dequantized weight).
// Legend: B = batch_size, S = sequence_length, T = total_sequence_length (past + S), V = vocab,
// E = hidden, Hk = KV heads, D = head dim, P = RoPE table rows.

import { ConfigError } from '../core/errors.js';
import { encodeF16Array } from '../numerics/float16.js';
import { decoderBlock, ropeInputs, type AttentionInputs, type BlockWeights } from './decoder-block.js';
import { GraphBuilder, type Dim, type Value } from './ir.js';
import type { HostModel } from './host.js';
import { validateConfig } from './host.js';
import { lowerToOnnx } from './lower.js';
import { packMatMulNBits } from './lowbit-linear.js';
import { fakeQuantActivation, type AbsmaxActSpec } from './actquant.js';

/** masked scores: the most negative float32, so a fully padded row stays finite (uniform, not NaN) */
const MASKED = -3.4028234663852886e38;
const BATCH = 'batch_size';
const NEW = 'sequence_length';
const PAST = 'past_sequence_length';
const TOTAL = 'total_sequence_length';

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

/** Builds the transformers.js-style decoder for `m` (float or with low-bit linears). */
export function buildHfOnnx(m: HostModel, o: HfOnnxOptions = {}): HfOnnxModel {
  const c = m.config;
  validateConfig(c);
  const E = c.hiddenSize;
  const Hk = c.nKvHeads;
  const D = c.headDim;
  const V = c.vocabSize;
  const P = Math.max(1, o.maxPositions ?? c.maxSeqLen);
  const b = new GraphBuilder<Dim>(`${c.architecture}-decoder`);
  const linears: HfOnnxLinear[] = [];

  // every weight is a parameter (ir.ts param): its initializer keeps the tensor's name (.f16, .qweight,
  // .scales, .zeros, .codes for the stored forms), which model/load-onnx.ts reads the file back by
  const params = new Map<string, Value<Dim>>();
  const param = (name: string, dims: number[]): Value<Dim> => {
    let hit = params.get(name);
    if (!hit) {
      const data = m.tensors.get(name);
      if (!data) throw new ConfigError('bad_config', 'tensor missing from the prepared model', { tensor: name });
      if (data.length !== dims.reduce((a, x) => a * x, 1)) throw new ConfigError('bad_config', 'tensor size does not match the config', { tensor: name, expected: `[${dims.join(', ')}]`, found: data.length });
      hit =
        o.floatStorage === 'f16' && data.length >= F16_STORAGE_MIN_ELEMENTS
          ? b.cast(b.param(`${name}.f16`, { dtype: 'F16', shape: dims, data: encodeF16Array(data) }), 'F32')
          : b.param(name, { dtype: 'F32', shape: dims, data });
      params.set(name, hit);
    }
    return hit;
  };

  const linear = (x: Value<Dim>, name: string, N: number): Value<Dim> => {
    const K = x.shape[x.shape.length - 1] as number;
    const lb = m.lowBit.get(name);
    if (lb && nbitsFits(lb.q)) {
      const p = packMatMulNBits(lb.q, lb.floatZeros);
      const Kb = p.K / p.G;
      const B = b.param(`${name}.qweight`, { dtype: 'U8', shape: [p.N, Kb, (p.G * p.bits) / 8], data: p.B });
      const S = b.param(`${name}.scales`, { dtype: 'F32', shape: [p.N * Kb], data: p.scales });
      const Z = p.floatZeroPoints
        ? b.param(`${name}.zeros`, { dtype: 'F32', shape: [p.N * Kb], data: p.floatZeroPoints })
        : p.zeroPoints ? b.param(`${name}.zeros`, { dtype: 'U8', shape: [p.zeroPoints.length], data: p.zeroPoints }) : null;
      linears.push({ name, op: 'MatMulNBits', bits: p.bits, blockSize: p.G, asymmetric: !!(p.zeroPoints || p.floatZeroPoints), ...(p.floatZeroPoints ? { floatZeroPoints: true } : {}) });
      return b.matmulNBits(x, B, S, Z, { K: p.K, N: p.N, bits: p.bits, blockSize: p.G, accuracyLevel: 0 });
    }
    if (lb && !lb.floatZeros && dqFits(lb.q)) {
      // every other int weight (3–8 bits, any group that divides K, per channel, per tensor) as
      // DequantizeLinear over codes in an int8/uint8 container: exact, 1 byte per weight instead of 4
      // (never an int4 container, which onnxruntime fuses into MatMulNBits at accuracy_level 4 in
      // sessions that do not pin it, as transformers.js's do not)
      const q = lb.q;
      const [N2, K2] = q.shape;
      const g = q.scheme.granularity;
      const sym = q.scheme.symmetric;
      const codes = (xs: ArrayLike<number>, shape: number[], nm: string) =>
        sym ? b.param(nm, { dtype: 'I8', shape, data: Int8Array.from(xs) }) : b.param(nm, { dtype: 'U8', shape, data: Uint8Array.from(xs) });
      // always blocked along K (per channel = one block of K, per tensor = the scale repeated per row):
      // a per-axis int8 DequantizeLinear → MatMul came out inexact in transformers.js's session (max
      // |Δ logit| 3e-2; exact in ours, which pins the QDQ accuracy level), the blocked form exact in both
      const G = g.kind === 'group' ? g.size! : K2;
      const perRow = (xs: ArrayLike<number>) => (g.kind === 'tensor' ? Array.from({ length: N2 }, () => xs[0]) : xs);
      const scaleDims = [N2, K2 / G];
      const w = b.dequantizeLinear(
        codes(q.codes, [N2, K2], `${name}.codes`),
        b.param(`${name}.scales`, { dtype: 'F32', shape: scaleDims, data: Float32Array.from(perRow(q.scales)) }),
        q.zeros ? codes(perRow(q.zeros), scaleDims, `${name}.zeros`) : null,
        1,
        G,
      );
      linears.push({ name, op: 'DequantizeLinear', bits: q.scheme.bits, blockSize: G, asymmetric: !sym });
      return b.matmul(x, b.transpose(w, [1, 0]));
    }
    // host.tensors holds the dequantized weight for every other scheme; ORT folds the transpose at load
    linears.push({ name, op: 'float' });
    return b.matmul(x, b.transpose(param(name, [N, K]), [1, 0]));
  };

  // the inputs, in the order transformers.js feeds them
  const inputIds = b.input('input_ids', 'I64', [BATCH, NEW]);
  const mask = b.input('attention_mask', 'I64', [BATCH, TOTAL]);
  const positionIds = b.input('position_ids', 'I64', [BATCH, NEW]);
  const past = Array.from({ length: c.nLayers }, (_, i) => {
    const n = hfPastNames(i);
    return { k: b.input(n.pastK, 'F32', [BATCH, Hk, PAST, D]), v: b.input(n.pastV, 'F32', [BATCH, Hk, PAST, D]) };
  });

  const embed = param('model.embed_tokens.weight', [V, E]);
  let x = b.gather(embed, inputIds, 0); // [B, S, E]

  // hidden [B, 1, 1, S, T]: a later slot (causal over slots) or a padded one
  const qSlot = b.add(b.iota(NEW), b.dimSize(PAST)); // [S]
  const causal = b.less(b.reshape(qSlot, [NEW, 1]), b.reshape(b.iota(TOTAL), [1, TOTAL])); // [S, T]
  const padded = b.reshape(b.equal(mask, 0), [BATCH, 1, 1, 1, TOTAL]);
  const presents: { k: Value<Dim>; v: Value<Dim> }[] = [];
  const at: AttentionInputs<Dim> = {
    ...ropeInputs(b, c, positionIds, P), // cos/sin [B, S, D]
    hidden: b.or(padded, causal),
    masked: MASKED,
    append: (i, k, v) => {
      const kv = { k: b.concat([past[i].k, k], 2, TOTAL), v: b.concat([past[i].v, v], 2, TOTAL) }; // [B, Hk, T, D]
      presents.push(kv);
      return kv;
    },
  };
  const weights: BlockWeights<Dim> = { tensor: (n, shape) => param(n, shape), linear };
  const site = (h: Value<Dim>) => fakeQuantActivation(b, h, o.activations ?? null);
  for (let i = 0; i < c.nLayers; i++) x = decoderBlock(b, c, i, x, weights, at, { site });

  const xf = b.rmsnorm(x, param('model.norm.weight', [E]), c.rmsNormEps);
  b.output('logits', c.tiedEmbeddings ? b.matmul(xf, b.transpose(embed, [1, 0])) : linear(xf, 'lm_head.weight', V));
  presents.forEach((kv, i) => {
    const n = hfPastNames(i);
    b.output(n.presentK, kv.k);
    b.output(n.presentV, kv.v);
  });

  const lowered = lowerToOnnx(b.build(), { external: o.external ? { location: o.external.location, minBytes: o.external.minBytes } : undefined, metadata: o.metadata });
  return { model: lowered.model, external: lowered.externalData, inputNames: lowered.inputNames, outputNames: lowered.outputNames, linears };
}
