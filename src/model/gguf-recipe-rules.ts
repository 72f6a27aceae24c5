// The per-tensor rules of llama.cpp's named file types (Q4_K_M, IQ3_XS, …) as data, read from
// src/llama-quant.cpp of the llama.cpp release node-llama-cpp ships (v0.5.0) and checked against
// that libllama in test/model/gguf-recipe.test.ts (type choice for many shapes) and
// test/pipeline/quantize/gguf-recipes-llamacpp.test.ts (the bytes). gguf-recipe.ts evaluates them.
//
// How to read the table. A tensor's type starts as the file type's base type (core/ftype.ts).
// RECIPE_BLOCKS are tried in order; the first block whose roles and file types take the tensor
// decides it, even when none of its rules fires (then the base type stays): this is llama.cpp's
// if / else-if chain over tensor categories. Inside a block the first rule whose file types, roles
// and conditions all hold gives the type; `after` adjusts the result; `counts` names the roles whose
// running count this block advances (llama.cpp counts attn_v, ffn_down, ffn_gate and ffn_up
// tensors as it meets them, in its weight order: by layer, then by name).
//
// Indices in conditions: `count` is that running count of the role (i) over the role's total (n:
// the number of attn_v tensors, or the layer count for the FFN roles), which is the layer index in
// a dense model unless --tensor-type overrides skipped some; `layer` is llama.cpp's layer_info: the
// layer parsed from the name for mixture-of-experts models, else the running count.
//
// Not carried over: llama.cpp's ATTENTION_QKV branch (fused attn_qkv tensors) cannot fire in this
// release, because the attn_v branch above it already takes attn_qkv; it is left out.

import type { GgmlType } from '../core/dtype.js';
import type { LlamaFtype } from '../core/ftype.js';
import type { GgufTensorRole } from './names.js';

/** Layer bands over an index i of n: i < n/8, i < n/16, llama.cpp's use_more_bits, n/8 ≤ i < 7n/8 (integer division). */
export type Band = 'first8th' | 'first16th' | 'moreBits' | 'middle';

export type Cond =
  | { band: Band; of: 'count' | 'layer' }
  /** the running count of the role is below k */
  | { countBelow: number }
  /** n_head / n_head_kv (integer division) ≥ k */
  | { gqaAtLeast: number }
  | { expertsAtLeast: number }
  | { experts: number }
  /** an importance matrix was given (llama.cpp: any imatrix data at all) */
  | { imatrix: boolean }
  | { arch: string }
  | { notArch: string }
  /** llama.cpp's LLM_TYPE_70B: a llama with 80 layers and grouped-query attention, or an 80-layer qwen2 */
  | { model70B: boolean }
  /** the row length is not a whole number of the base type's blocks */
  | { rowNotWholeBaseBlocks: true }
  /** a stack of expert matrices (3-D with more than one) */
  | { stacked: boolean }
  | { any: readonly Cond[] };

export interface Rule {
  ftypes?: readonly LlamaFtype[];
  roles?: readonly GgufTensorRole[];
  when?: readonly Cond[];
  /** the type; 'base' keeps the file type's base type (and stops the block) */
  type: GgmlType | 'base';
}

export interface Adjust {
  when?: readonly Cond[];
  /** only when the type so far is one of these */
  from?: readonly GgmlType[];
  type: GgmlType;
}

export interface RecipeBlock {
  /** a name for reports and tests */
  name: string;
  roles: readonly GgufTensorRole[] | 'any';
  ftypes?: readonly LlamaFtype[];
  rules: readonly Rule[];
  after?: readonly Adjust[];
  counts?: readonly GgufTensorRole[];
}

/** Roles llama.cpp treats as attn_v (category_is_attn_v); they share one running count. */
export const ATTN_V_ROLES: readonly GgufTensorRole[] = ['attn_v', 'attn_qkv', 'attn_kv_b'];

const IQ2_FAMILY: readonly LlamaFtype[] = ['IQ2_XXS', 'IQ2_XS', 'IQ1_S', 'IQ2_S', 'IQ2_M', 'IQ1_M'];
const NOT_FALCON = { notArch: 'falcon' } as const;
const GQA4 = { gqaAtLeast: 4 } as const;

/**
 * The rule table. Block 'output' also takes the token embedding when the model has no
 * output.weight (tied embeddings): llama.cpp quantizes that shared tensor as the output.
 */
export const RECIPE_BLOCKS: readonly RecipeBlock[] = [
  {
    name: 'output',
    roles: ['output'],
    rules: [
      { ftypes: ['MXFP4_MOE'], type: 'Q8_0' },
      { when: [{ arch: 'falcon' }], type: 'Q8_0' },
      { when: [{ rowNotWholeBaseBlocks: true }], type: 'Q8_0' },
      { ftypes: ['IQ2_XXS', 'IQ2_XS', 'IQ3_XXS', 'IQ1_S', 'IQ2_S', 'IQ2_M', 'IQ1_M'], type: 'Q5_K' },
      { ftypes: ['Q8_0'], type: 'base' },
      { type: 'Q6_K' },
    ],
  },
  {
    name: 'mxfp4-moe',
    roles: 'any',
    ftypes: ['MXFP4_MOE'],
    rules: [{ when: [{ stacked: true }], type: 'MXFP4' }, { type: 'Q8_0' }],
  },
  {
    name: 'token_embd',
    roles: ['token_embd'],
    rules: [
      { ftypes: ['IQ2_XXS', 'IQ2_XS', 'IQ1_S', 'IQ1_M'], type: 'Q2_K' },
      { ftypes: ['IQ2_S', 'IQ2_M', 'IQ3_XXS'], type: 'IQ3_S' },
      { ftypes: ['TQ1_0', 'TQ2_0', 'Q2_0'], type: 'Q4_K' },
    ],
  },
  {
    name: 'iq2-family',
    roles: 'any',
    ftypes: IQ2_FAMILY,
    rules: [
      { roles: ATTN_V_ROLES, when: [{ any: [GQA4, { expertsAtLeast: 4 }] }], type: 'Q4_K' },
      { roles: ATTN_V_ROLES, ftypes: ['IQ2_S', 'IQ2_M'], type: 'IQ3_S' },
      { roles: ATTN_V_ROLES, type: 'Q2_K' },
      { roles: ['attn_k'], when: [{ experts: 8 }], type: 'Q4_K' },
      { roles: ['ffn_down'], ftypes: ['IQ2_S', 'IQ2_M'], when: [{ band: 'first8th', of: 'count' }], type: 'IQ3_S' },
      { roles: ['ffn_down'], when: [{ band: 'first8th', of: 'count' }], type: 'Q2_K' },
      { roles: ['attn_output'], when: [{ experts: 8 }], type: 'Q5_K' },
      { roles: ['attn_output'], ftypes: ['IQ1_S', 'IQ1_M'], type: 'IQ2_XXS' },
      { roles: ['attn_output'], ftypes: ['IQ2_S', 'IQ2_M'], type: 'IQ3_S' },
    ],
    counts: [...ATTN_V_ROLES, 'ffn_down'],
  },
  {
    name: 'attn_v',
    roles: ATTN_V_ROLES,
    rules: [
      { ftypes: ['Q2_K'], when: [GQA4], type: 'Q4_K' },
      { ftypes: ['Q2_K'], type: 'Q3_K' },
      { ftypes: ['Q2_K_S'], when: [GQA4], type: 'Q4_K' },
      { ftypes: ['IQ3_XXS'], when: [GQA4], type: 'Q4_K' },
      { ftypes: ['IQ3_XXS'], when: [{ imatrix: false }], type: 'IQ3_S' },
      { ftypes: ['IQ3_XXS'], type: 'base' },
      { ftypes: ['IQ3_XS', 'IQ3_S'], when: [GQA4], type: 'Q4_K' },
      { ftypes: ['IQ3_M'], type: 'Q4_K' },
      { ftypes: ['Q3_K_M'], when: [{ countBelow: 2 }], type: 'Q5_K' },
      { ftypes: ['Q3_K_M'], type: 'Q4_K' },
      { ftypes: ['Q3_K_L'], type: 'Q5_K' },
      { ftypes: ['IQ4_NL', 'IQ4_XS'], when: [GQA4], type: 'Q5_K' },
      { ftypes: ['Q4_K_M', 'Q5_K_M'], when: [{ band: 'moreBits', of: 'count' }], type: 'Q6_K' },
      { ftypes: ['Q4_K_S'], when: [{ countBelow: 4 }], type: 'Q5_K' },
    ],
    after: [
      // 70B: attn_v is 8× smaller than attn_q, so more bits cost little
      { when: [{ model70B: true }], from: ['Q3_K', 'Q4_K'], type: 'Q5_K' },
      { when: [{ experts: 8 }], type: 'Q8_0' },
    ],
    counts: ATTN_V_ROLES,
  },
  {
    name: 'attn_k',
    roles: ['attn_k'],
    rules: [
      { when: [{ experts: 8 }], type: 'Q8_0' },
      { ftypes: ['IQ3_XS'], type: 'IQ3_XXS' },
      { ftypes: ['IQ3_XXS'], type: 'IQ2_S' },
    ],
  },
  {
    name: 'attn_q',
    roles: ['attn_q'],
    rules: [
      { ftypes: ['IQ3_XS'], type: 'IQ3_XXS' },
      { ftypes: ['IQ3_XXS'], type: 'IQ2_S' },
    ],
  },
  {
    name: 'ffn_down',
    roles: ['ffn_down'],
    rules: [
      { ftypes: ['Q2_K'], type: 'Q3_K' },
      { ftypes: ['Q2_K_S'], when: [{ band: 'first8th', of: 'layer' }], type: 'Q4_K' },
      { ftypes: ['IQ3_XXS'], when: [{ imatrix: false }, { band: 'first8th', of: 'layer' }], type: 'Q4_K' },
      { ftypes: ['IQ3_XXS'], when: [{ imatrix: false }], type: 'Q3_K' },
      { ftypes: ['Q3_K_M'], when: [{ band: 'first16th', of: 'layer' }], type: 'Q5_K' },
      { ftypes: ['Q3_K_M'], when: [{ any: [NOT_FALCON, { band: 'moreBits', of: 'layer' }] }], type: 'Q4_K' },
      { ftypes: ['IQ3_M'], when: [{ band: 'first8th', of: 'layer' }], type: 'Q4_K' },
      { ftypes: ['IQ3_M'], when: [{ experts: 8 }, { band: 'moreBits', of: 'layer' }], type: 'Q4_K' },
      { ftypes: ['Q3_K_L'], when: [{ arch: 'falcon' }], type: 'Q4_K' },
      { ftypes: ['Q3_K_L'], type: 'Q5_K' },
      { ftypes: ['Q4_K_M'], when: [{ arch: 'falcon' }, { band: 'first16th', of: 'layer' }], type: 'Q6_K' },
      { ftypes: ['Q4_K_M'], when: [{ arch: 'falcon' }, { band: 'moreBits', of: 'layer' }], type: 'Q5_K' },
      { ftypes: ['Q4_K_M'], when: [{ arch: 'falcon' }], type: 'base' },
      { ftypes: ['Q4_K_M'], when: [{ band: 'moreBits', of: 'layer' }], type: 'Q6_K' },
      { ftypes: ['IQ4_NL', 'IQ4_XS'], when: [{ band: 'first8th', of: 'layer' }, { imatrix: false }], type: 'Q5_K' },
      { ftypes: ['Q5_K_M'], when: [{ band: 'moreBits', of: 'layer' }], type: 'Q6_K' },
      { ftypes: ['Q4_K_S'], when: [NOT_FALCON, { band: 'first8th', of: 'layer' }], type: 'Q5_K' },
      // first ffn_down layers guarded with an imatrix only, so that imatrix-free files stay as before
      { ftypes: ['Q4_0'], when: [{ imatrix: true }, { band: 'first8th', of: 'layer' }], type: 'Q4_1' },
      { ftypes: ['Q5_0'], when: [{ imatrix: true }, { band: 'first8th', of: 'layer' }], type: 'Q5_1' },
    ],
    counts: ['ffn_down'],
  },
  {
    name: 'attn_output',
    roles: ['attn_output'],
    rules: [
      {
        ftypes: ['Q2_K', 'IQ3_XS', 'IQ3_XXS', 'Q3_K_S', 'Q3_K_M', 'IQ4_NL', 'Q4_K_S', 'Q4_K_M', 'IQ3_S', 'IQ3_M', 'IQ4_XS'],
        when: [NOT_FALCON, { experts: 8 }],
        type: 'Q5_K',
      },
      { when: [NOT_FALCON, { experts: 8 }], type: 'base' },
      { ftypes: ['Q2_K'], when: [NOT_FALCON], type: 'Q3_K' },
      { ftypes: ['IQ3_XXS'], when: [NOT_FALCON], type: 'IQ3_S' },
      { ftypes: ['Q3_K_M', 'IQ3_M'], when: [NOT_FALCON], type: 'Q4_K' },
      { ftypes: ['Q3_K_L'], when: [NOT_FALCON], type: 'Q5_K' },
      { ftypes: ['Q3_K_L'], when: [{ arch: 'falcon' }], type: 'Q4_K' },
    ],
  },
  {
    name: 'ffn_gate',
    roles: ['ffn_gate'],
    rules: [{ ftypes: ['IQ3_XS'], when: [{ band: 'middle', of: 'layer' }], type: 'IQ3_XXS' }],
    counts: ['ffn_gate'],
  },
  {
    name: 'ffn_up',
    roles: ['ffn_up'],
    rules: [{ ftypes: ['IQ3_XS'], when: [{ band: 'middle', of: 'layer' }], type: 'IQ3_XXS' }],
    counts: ['ffn_up'],
  },
];

/**
 * The type a tensor falls back to when its rows are not a whole number of the wanted type's blocks
 * (llama.cpp's tensor_type_fallback). Types with 32-value blocks have none (they go to F16);
 * a wider-block type missing here is an error, as in llama.cpp. If the fallback's own blocks do
 * not divide the row either, F16 is used.
 */
export const ROW_FALLBACK: Readonly<Partial<Record<GgmlType, GgmlType>>> = {
  IQ1_S: 'IQ4_NL', IQ1_M: 'IQ4_NL', IQ2_XXS: 'IQ4_NL', IQ2_XS: 'IQ4_NL', IQ2_S: 'IQ4_NL', IQ3_XXS: 'IQ4_NL', IQ3_S: 'IQ4_NL', IQ4_XS: 'IQ4_NL',
  Q2_0: 'Q4_0', Q2_K: 'Q4_0', Q3_K: 'Q4_0', TQ1_0: 'Q4_0', TQ2_0: 'Q4_0',
  Q4_K: 'Q5_0', Q5_K: 'Q5_1', Q6_K: 'Q8_0',
};

/**
 * Types llama.cpp refuses to write without an importance matrix (tensor_requires_imatrix), for
 * every tensor but the token embedding and the output; Q2_K only inside a Q2_K_S file.
 */
export const IMATRIX_REQUIRED: readonly GgmlType[] = ['IQ3_XXS', 'IQ2_XXS', 'IQ2_XS', 'IQ2_S', 'IQ1_M', 'IQ1_S'];
export const IMATRIX_REQUIRED_IN: Readonly<Partial<Record<LlamaFtype, readonly GgmlType[]>>> = { Q2_K_S: ['Q2_K'] };
