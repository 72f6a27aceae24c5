// Tensor names across formats. Canonical names are Hugging Face transformers' Llama-family names;
// GGUF names are llama.cpp's (token_embd, blk.N.attn_q, …, output_norm, output); llama2.c names
// are run.c's TransformerWeights arrays (wq, w1, …) with a layer index.
// Legend: N = layer index.

import { FormatError } from '../core/errors.js';
import type { ModelConfig } from './config.js';
import type { Llama2cArray } from '../formats/llama2c/checkpoint.js';

interface Row {
  hf: string;
  gguf: string;
  l2c: Llama2cArray | null;
}

/** Per-layer tensors: suffixes after `model.layers.N.` / `blk.N.`. */
const LAYER_ROWS: Row[] = [
  { hf: 'input_layernorm.weight', gguf: 'attn_norm.weight', l2c: 'rms_att_weight' },
  { hf: 'self_attn.q_proj.weight', gguf: 'attn_q.weight', l2c: 'wq' },
  { hf: 'self_attn.q_proj.bias', gguf: 'attn_q.bias', l2c: null },
  { hf: 'self_attn.k_proj.weight', gguf: 'attn_k.weight', l2c: 'wk' },
  { hf: 'self_attn.k_proj.bias', gguf: 'attn_k.bias', l2c: null },
  { hf: 'self_attn.v_proj.weight', gguf: 'attn_v.weight', l2c: 'wv' },
  { hf: 'self_attn.v_proj.bias', gguf: 'attn_v.bias', l2c: null },
  { hf: 'self_attn.o_proj.weight', gguf: 'attn_output.weight', l2c: 'wo' },
  { hf: 'self_attn.q_norm.weight', gguf: 'attn_q_norm.weight', l2c: null },
  { hf: 'self_attn.k_norm.weight', gguf: 'attn_k_norm.weight', l2c: null },
  { hf: 'post_attention_layernorm.weight', gguf: 'ffn_norm.weight', l2c: 'rms_ffn_weight' },
  { hf: 'mlp.gate_proj.weight', gguf: 'ffn_gate.weight', l2c: 'w1' },
  { hf: 'mlp.up_proj.weight', gguf: 'ffn_up.weight', l2c: 'w3' },
  { hf: 'mlp.down_proj.weight', gguf: 'ffn_down.weight', l2c: 'w2' },
];

const GLOBAL_ROWS: Row[] = [
  { hf: 'model.embed_tokens.weight', gguf: 'token_embd.weight', l2c: 'token_embedding_table' },
  { hf: 'model.norm.weight', gguf: 'output_norm.weight', l2c: 'rms_final_weight' },
  { hf: 'lm_head.weight', gguf: 'output.weight', l2c: 'wcls' },
];

const HF_LAYER = /^model\.layers\.(\d+)\.(.+)$/;
const GGUF_LAYER = /^blk\.(\d+)\.(.+)$/;

/** Canonical (HF) name → GGUF name, or null if GGUF has no such tensor. */
export function hfToGguf(name: string): string | null {
  const g = GLOBAL_ROWS.find((r) => r.hf === name);
  if (g) return g.gguf;
  const m = HF_LAYER.exec(name);
  const row = m && LAYER_ROWS.find((r) => r.hf === m[2]);
  return row ? `blk.${m[1]}.${row.gguf}` : null;
}

/** GGUF name → canonical (HF) name, or null for an unknown tensor. */
export function ggufToHf(name: string): string | null {
  const g = GLOBAL_ROWS.find((r) => r.gguf === name);
  if (g) return g.hf;
  const m = GGUF_LAYER.exec(name);
  const row = m && LAYER_ROWS.find((r) => r.gguf === m[2]);
  return row ? `model.layers.${m[1]}.${row.hf}` : null;
}

/** llama2.c array (and layer) → canonical name. The RoPE table has none. */
export function llama2cToHf(array: Llama2cArray, layer: number | null): string | null {
  const g = GLOBAL_ROWS.find((r) => r.l2c === array);
  if (g) return g.hf;
  const row = LAYER_ROWS.find((r) => r.l2c === array);
  return row && layer !== null ? `model.layers.${layer}.${row.hf}` : null;
}

/** Canonical name → llama2.c array and layer, or null where llama2.c has no such array. */
export function hfToLlama2c(name: string): { array: Llama2cArray; layer: number | null } | null {
  const g = GLOBAL_ROWS.find((r) => r.hf === name);
  if (g) return g.l2c ? { array: g.l2c, layer: null } : null;
  const m = HF_LAYER.exec(name);
  const row = m && LAYER_ROWS.find((r) => r.hf === m[2]);
  return row?.l2c ? { array: row.l2c, layer: Number(m![1]) } : null;
}

/** Layer index of a canonical per-layer name, else null. */
export function layerOf(name: string): number | null {
  const m = HF_LAYER.exec(name);
  return m ? Number(m[1]) : null;
}

/**
 * A canonical name relative to its layer ("model.layers.3.mlp.up_proj.weight" → "mlp.up_proj.weight");
 * other names unchanged. What is the same tensor from one layer to the next: one block graph's weight
 * inputs, arrays reused per layer.
 */
export function nameInLayer(name: string): string {
  return name.replace(/^model\.layers\.\d+\./, '');
}

/**
 * The canonical tensors a config implies, in ModelWeights order: embedding, each layer, final
 * norm, then lm_head unless tied. With their [out, in] shapes.
 */
/** Tensors every decoder layer has at least: four attention and three MLP matrices, two norms. */
export const MIN_TENSORS_PER_LAYER = 9;

/**
 * Refuses a layer count that the file's tensors cannot cover (checked before canonicalTensors
 * builds a list of that length: a header saying 2^40 layers is an error, not a minute of work).
 */
export function checkLayerCount(nLayers: number, tensorsInFile: number, file: string, field: string): void {
  if (!(Number.isSafeInteger(nLayers) && nLayers >= 1 && nLayers * MIN_TENSORS_PER_LAYER <= tensorsInFile)) {
    throw new FormatError('bad_header', 'the layer count is more than the file holds', {
      file,
      field,
      expected: `an integer in [1, ${Math.floor(tensorsInFile / MIN_TENSORS_PER_LAYER)}] (the file has ${tensorsInFile} tensors, ${MIN_TENSORS_PER_LAYER} or more per layer)`,
      found: nLayers,
    });
  }
}

export function canonicalTensors(c: ModelConfig): { name: string; shape: number[] }[] {
  const E = c.hiddenSize;
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  const out: { name: string; shape: number[] }[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, E] }];
  const shapes: Record<string, number[]> = {
    'input_layernorm.weight': [E],
    'self_attn.q_proj.weight': [q, E],
    'self_attn.q_proj.bias': [q],
    'self_attn.k_proj.weight': [kv, E],
    'self_attn.k_proj.bias': [kv],
    'self_attn.v_proj.weight': [kv, E],
    'self_attn.v_proj.bias': [kv],
    'self_attn.o_proj.weight': [E, q],
    'self_attn.q_norm.weight': [c.headDim],
    'self_attn.k_norm.weight': [c.headDim],
    'post_attention_layernorm.weight': [E],
    'mlp.gate_proj.weight': [c.intermediateSize, E],
    'mlp.up_proj.weight': [c.intermediateSize, E],
    'mlp.down_proj.weight': [E, c.intermediateSize],
  };
  for (let l = 0; l < c.nLayers; l++) {
    for (const r of LAYER_ROWS) {
      if (r.hf.endsWith('.bias') && !c.attentionBias) continue;
      if (r.hf.includes('_norm.') && r.hf.startsWith('self_attn') && !c.qkNorm) continue;
      out.push({ name: `model.layers.${l}.${r.hf}`, shape: shapes[r.hf] });
    }
  }
  out.push({ name: 'model.norm.weight', shape: [E] });
  if (!c.tiedEmbeddings) out.push({ name: 'lm_head.weight', shape: [c.vocabSize, E] });
  return out;
}

/** True for q_proj/k_proj weights and biases: the tensors whose rows follow the rotary layout. */
export function isRotaryProjection(name: string): 'q' | 'k' | null {
  if (/\.self_attn\.q_proj\.(weight|bias)$/.test(name)) return 'q';
  if (/\.self_attn\.k_proj\.(weight|bias)$/.test(name)) return 'k';
  return null;
}

/**
 * llama.cpp's broad tensor categories for choosing quantization types (llama-quant.cpp
 * tensor_get_category), for any GGUF name: exact names for the embedding and the output, else the
 * first of these substrings the name contains (so `blk.3.ffn_down_exps.weight` is ffn_down).
 */
export type GgufTensorRole =
  | 'token_embd' | 'output' | 'attn_qkv' | 'attn_kv_b' | 'attn_v' | 'attn_k' | 'attn_q' | 'attn_output'
  | 'ffn_up' | 'ffn_gate' | 'ffn_down' | 'other';

const ROLE_EXACT: Record<string, GgufTensorRole> = { 'output.weight': 'output', 'token_embd.weight': 'token_embd', 'per_layer_token_embd.weight': 'token_embd' };
const ROLE_SUBSTRINGS: [string, GgufTensorRole][] = [
  ['attn_qkv.weight', 'attn_qkv'], ['attn_kv_b.weight', 'attn_kv_b'], ['attn_v.weight', 'attn_v'], ['attn_k.weight', 'attn_k'],
  ['attn_q.weight', 'attn_q'], ['attn_output.weight', 'attn_output'], ['ffn_up', 'ffn_up'], ['ffn_gate', 'ffn_gate'], ['ffn_down', 'ffn_down'],
];

/** The role llama.cpp's quantizer gives a GGUF tensor name. */
export function ggufTensorRole(ggufName: string): GgufTensorRole {
  const exact = ROLE_EXACT[ggufName];
  if (exact) return exact;
  return ROLE_SUBSTRINGS.find(([s]) => ggufName.includes(s))?.[1] ?? 'other';
}

/** The layer index in a GGUF per-layer name (`blk.N.…`), else null. */
export function ggufLayerOf(ggufName: string): number | null {
  const m = GGUF_LAYER.exec(ggufName);
  return m ? Number(m[1]) : null;
}
