// Host-side model preparation: validate a ModelWeights against its config (every tensor present with
// its expected shape, before any data is read), read the tensors as float32, and apply the weight
// precision knob with quant's own functions (fakeQuant for simulated precision, quantize for the
// real low-bit paths). Legend: V = vocab, E = hidden, F = feed-forward, H/Hk = heads/KV heads, D = head dim.

import { ConfigError, ShapeError } from '../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../core/progress.js';
import type { ModelConfig } from '../model/config.js';
import type { ModelWeights } from '../model/weights.js';
import { fakeQuant, quantize } from '../quant/index.js';
import type { QuantScheme } from '../quant/scheme.js';
import type { IntQuantized } from '../quant/types.js';
import type { StoredTensor } from './ir.js';
import type { LowBitMode, LowBitWeight } from './lowbit-linear.js';
import type { NBitsConstants } from './nbits-graph.js';

export const SUPPORTED_ARCHITECTURES = ['llama', 'mistral', 'qwen2', 'qwen3'] as const;

/** The model as the graph builder consumes it: float32 tensors by canonical name, [out, in] row-major. */
export interface HostModel {
  config: ModelConfig;
  tensors: Map<string, Float32Array>;
  /** linear weights executed in real low bit, with their integer codes (and float zero points, if any) */
  lowBit: Map<string, LowBitWeight>;
  /** weights already in a session weight file, as the graph runs them (native-host.ts): these names
   * are absent from `tensors` */
  stored?: Map<string, StoredWeight>;
  /** the token embedding rows [tokens.length, E] (native path: the table is read by rows, never as a
   * float matrix); when present the graph takes `embeds` instead of `tokens` */
  embedRows?: (tokens: ArrayLike<number>) => Promise<Float32Array>;
  /** which path each weight matrix runs on */
  weightPaths?: WeightPath[];
  /** bytes of the session weight file (native path) */
  weightBytes?: number;
  /** releases what the host holds outside memory (its weight file) */
  release?: () => Promise<void>;
}

/**
 * A weight in the session weight file: on its codes (MatMulNBits; one part, or consecutive row
 * ranges whose outputs are concatenated), or as float32 stored transposed [K, N].
 */
export type StoredWeight = { kind: 'nbits'; parts: NBitsConstants[] } | { kind: 'float'; wT: StoredTensor };

/** How one weight matrix runs: on its stored low-bit codes ('nbits') or dequantized to float32 ('float'). */
export interface WeightPath {
  name: string;
  /** what the source stores (ggml type, packing, dtype) or the applied scheme */
  stored: string;
  path: 'nbits' | 'float';
  /** the MatMulNBits mapping ("4-bit g32 + mins"), or why the weight runs in float */
  detail: string;
}

/** Which scheme (or none) applies to one linear weight; a single scheme applies to every linear layer. */
export type WeightPrecision = QuantScheme | ((name: string, shape: number[]) => QuantScheme | null);

export interface PrepareOptions {
  /** weight precision for the linear layers (q/k/v/o, gate/up/down); embeddings and norms stay float */
  weights?: WeightPrecision | null;
  /** also quantize lm_head (untied models) with the same rule (default false) */
  quantizeLmHead?: boolean;
  /** run int-scheme weights in real low bit ('nbits': MatMulNBits, 'dq': DequantizeLinear) instead of
   * fake-quantized float weights */
  lowBit?: LowBitMode | null;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

/** Canonical tensor names and shapes the config implies, in load order. */
export function expectedTensors(c: ModelConfig): { name: string; shape: number[] }[] {
  const E = c.hiddenSize;
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const out: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, E] }];
  for (let i = 0; i < c.nLayers; i++) {
    const p = `model.layers.${i}.`;
    out.push({ name: `${p}input_layernorm.weight`, shape: [E] });
    out.push({ name: `${p}self_attn.q_proj.weight`, shape: [q, E] });
    out.push({ name: `${p}self_attn.k_proj.weight`, shape: [kv, E] });
    out.push({ name: `${p}self_attn.v_proj.weight`, shape: [kv, E] });
    if (c.attentionBias) {
      out.push({ name: `${p}self_attn.q_proj.bias`, shape: [q] });
      out.push({ name: `${p}self_attn.k_proj.bias`, shape: [kv] });
      out.push({ name: `${p}self_attn.v_proj.bias`, shape: [kv] });
    }
    if (c.qkNorm) {
      out.push({ name: `${p}self_attn.q_norm.weight`, shape: [c.headDim] });
      out.push({ name: `${p}self_attn.k_norm.weight`, shape: [c.headDim] });
    }
    out.push({ name: `${p}self_attn.o_proj.weight`, shape: [E, q] });
    out.push({ name: `${p}post_attention_layernorm.weight`, shape: [E] });
    out.push({ name: `${p}mlp.gate_proj.weight`, shape: [c.intermediateSize, E] });
    out.push({ name: `${p}mlp.up_proj.weight`, shape: [c.intermediateSize, E] });
    out.push({ name: `${p}mlp.down_proj.weight`, shape: [E, c.intermediateSize] });
  }
  out.push({ name: 'model.norm.weight', shape: [E] });
  if (!c.tiedEmbeddings) out.push({ name: 'lm_head.weight', shape: [c.vocabSize, E] });
  return out;
}

/** Throws a typed error for configs the graph builder cannot run. */
export function validateConfig(c: ModelConfig): void {
  if (!(SUPPORTED_ARCHITECTURES as readonly string[]).includes(c.architecture)) {
    throw new ConfigError('unsupported', 'unknown model architecture', { field: 'architecture', expected: SUPPORTED_ARCHITECTURES.join(', '), found: c.architecture });
  }
  const ints: (keyof ModelConfig)[] = ['vocabSize', 'hiddenSize', 'intermediateSize', 'nLayers', 'nHeads', 'nKvHeads', 'headDim'];
  for (const k of ints) {
    const v = c[k] as number;
    if (!Number.isInteger(v) || v <= 0) throw new ConfigError('bad_config', 'config value must be a positive integer', { field: k, found: v });
  }
  if (c.nHeads % c.nKvHeads !== 0) {
    throw new ConfigError('bad_config', 'query heads must be a multiple of KV heads', { field: 'nKvHeads', expected: `a divisor of ${c.nHeads}`, found: c.nKvHeads });
  }
  if (c.headDim % 2 !== 0) throw new ConfigError('bad_config', 'head dim must be even for RoPE', { field: 'headDim', found: c.headDim });
  if (c.ropeLayout !== 'interleaved' && c.ropeLayout !== 'half') {
    throw new ConfigError('bad_config', 'unknown RoPE layout', { field: 'ropeLayout', expected: 'interleaved or half', found: c.ropeLayout });
  }
}

export const LINEAR_SUFFIXES = ['q_proj.weight', 'k_proj.weight', 'v_proj.weight', 'o_proj.weight', 'gate_proj.weight', 'up_proj.weight', 'down_proj.weight'];
export function isLinearWeight(name: string): boolean {
  return name.startsWith('model.layers.') && LINEAR_SUFFIXES.some((s) => name.endsWith(s));
}

/** Every tensor the config implies is present with its shape; checked before any tensor data is read. */
export function checkModelTensors(w: ModelWeights): void {
  for (const e of expectedTensors(w.config)) {
    const src = w.tensors.get(e.name);
    if (!src) throw new ShapeError('missing_tensor', 'model is missing a tensor', { file: w.source.path, tensor: e.name, expected: `[${e.shape.join(', ')}]`, found: 'nothing' });
    if (src.shape.length !== e.shape.length || src.shape.some((d, i) => d !== e.shape[i])) {
      throw new ShapeError('shape_mismatch', 'tensor shape does not match the config', { file: w.source.path, tensor: e.name, expected: `[${e.shape.join(', ')}]`, found: `[${src.shape.join(', ')}]` });
    }
  }
}

/** Reads, validates and (optionally) quantizes every tensor of `w`. */
export async function prepareHostModel(w: ModelWeights, opts: PrepareOptions = {}): Promise<HostModel> {
  const c = w.config;
  validateConfig(c);
  const expected = expectedTensors(c);
  checkModelTensors(w);
  const tensors = new Map<string, Float32Array>();
  const lowBit = new Map<string, LowBitWeight>();
  const track = new ProgressTracker('load', expected.length, opts.onProgress, 'tensor');
  for (const e of expected) {
    checkAborted(opts.signal);
    const data = await w.tensors.get(e.name)!.readF32();
    const quantizable = isLinearWeight(e.name) || (opts.quantizeLmHead && e.name === 'lm_head.weight');
    const scheme = quantizable && opts.weights ? (typeof opts.weights === 'function' ? opts.weights(e.name, e.shape) : opts.weights) : null;
    if (scheme && opts.lowBit && scheme.kind === 'int') {
      const q = quantize(data, e.shape, scheme, { name: e.name }) as IntQuantized;
      lowBit.set(e.name, { q, mode: opts.lowBit });
      tensors.set(e.name, fakeQuant(data, e.shape, scheme, { name: e.name }));
    } else {
      tensors.set(e.name, scheme ? fakeQuant(data, e.shape, scheme, { name: e.name }) : data);
    }
    track.tick(e.name);
  }
  return { config: c, tensors, lowBit };
}
