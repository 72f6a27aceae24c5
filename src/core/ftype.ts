// llama.cpp's file types (`llama_ftype`, the `general.file_type` of a GGUF): one table like the ggml
// type table in dtype.ts. Ids and names are those of include/llama.h and tools/quantize in the
// llama.cpp release node-llama-cpp ships (v0.5.0); `base` is llama_ftype_get_default_type, the type
// of every tensor the recipe does not single out. The per-tensor rules of each file type live in
// src/model/gguf-recipe-rules.ts. A test checks ids and base types against libllama itself.

import type { GgmlType } from './dtype.js';

export type LlamaFtype =
  | 'F32' | 'F16' | 'BF16' | 'Q4_0' | 'Q4_1' | 'Q5_0' | 'Q5_1' | 'Q8_0' | 'Q1_0' | 'Q2_0' | 'MXFP4_MOE'
  | 'Q2_K' | 'Q2_K_S' | 'Q3_K_S' | 'Q3_K_M' | 'Q3_K_L' | 'Q4_K_S' | 'Q4_K_M' | 'Q5_K_S' | 'Q5_K_M' | 'Q6_K'
  | 'IQ1_S' | 'IQ1_M' | 'IQ2_XXS' | 'IQ2_XS' | 'IQ2_S' | 'IQ2_M' | 'IQ3_XXS' | 'IQ3_XS' | 'IQ3_S' | 'IQ3_M'
  | 'IQ4_NL' | 'IQ4_XS' | 'TQ1_0' | 'TQ2_0';

export interface FtypeTraits {
  /** LLAMA_FTYPE_* value, written as general.file_type */
  id: number;
  /** the type of the tensors the recipe does not single out */
  base: GgmlType;
  /** llama_ftype_name (what llama.cpp prints as "file type") */
  label: string;
}

export const LLAMA_FTYPES = {
  F32: { id: 0, base: 'F32', label: 'all F32' },
  F16: { id: 1, base: 'F16', label: 'F16' },
  Q4_0: { id: 2, base: 'Q4_0', label: 'Q4_0' },
  Q4_1: { id: 3, base: 'Q4_1', label: 'Q4_1' },
  Q8_0: { id: 7, base: 'Q8_0', label: 'Q8_0' },
  Q5_0: { id: 8, base: 'Q5_0', label: 'Q5_0' },
  Q5_1: { id: 9, base: 'Q5_1', label: 'Q5_1' },
  Q2_K: { id: 10, base: 'Q2_K', label: 'Q2_K - Medium' },
  Q3_K_S: { id: 11, base: 'Q3_K', label: 'Q3_K - Small' },
  Q3_K_M: { id: 12, base: 'Q3_K', label: 'Q3_K - Medium' },
  Q3_K_L: { id: 13, base: 'Q3_K', label: 'Q3_K - Large' },
  Q4_K_S: { id: 14, base: 'Q4_K', label: 'Q4_K - Small' },
  Q4_K_M: { id: 15, base: 'Q4_K', label: 'Q4_K - Medium' },
  Q5_K_S: { id: 16, base: 'Q5_K', label: 'Q5_K - Small' },
  Q5_K_M: { id: 17, base: 'Q5_K', label: 'Q5_K - Medium' },
  Q6_K: { id: 18, base: 'Q6_K', label: 'Q6_K' },
  IQ2_XXS: { id: 19, base: 'IQ2_XXS', label: 'IQ2_XXS - 2.0625 bpw' },
  IQ2_XS: { id: 20, base: 'IQ2_XS', label: 'IQ2_XS - 2.3125 bpw' },
  Q2_K_S: { id: 21, base: 'Q2_K', label: 'Q2_K - Small' },
  IQ3_XS: { id: 22, base: 'IQ3_S', label: 'IQ3_XS - 3.3 bpw' },
  IQ3_XXS: { id: 23, base: 'IQ3_XXS', label: 'IQ3_XXS - 3.0625 bpw' },
  IQ1_S: { id: 24, base: 'IQ1_S', label: 'IQ1_S - 1.5625 bpw' },
  IQ4_NL: { id: 25, base: 'IQ4_NL', label: 'IQ4_NL - 4.5 bpw' },
  IQ3_S: { id: 26, base: 'IQ3_S', label: 'IQ3_S - 3.4375 bpw' },
  IQ3_M: { id: 27, base: 'IQ3_S', label: 'IQ3_S mix - 3.66 bpw' },
  IQ2_S: { id: 28, base: 'IQ2_XS', label: 'IQ2_S - 2.5 bpw' },
  IQ2_M: { id: 29, base: 'IQ2_S', label: 'IQ2_M - 2.7 bpw' },
  IQ4_XS: { id: 30, base: 'IQ4_XS', label: 'IQ4_XS - 4.25 bpw' },
  IQ1_M: { id: 31, base: 'IQ1_M', label: 'IQ1_M - 1.75 bpw' },
  BF16: { id: 32, base: 'BF16', label: 'BF16' },
  TQ1_0: { id: 36, base: 'TQ1_0', label: 'TQ1_0 - 1.69 bpw ternary' },
  TQ2_0: { id: 37, base: 'TQ2_0', label: 'TQ2_0 - 2.06 bpw ternary' },
  MXFP4_MOE: { id: 38, base: 'MXFP4', label: 'MXFP4 MoE' },
  Q1_0: { id: 40, base: 'Q1_0', label: 'Q1_0' },
  Q2_0: { id: 41, base: 'Q2_0', label: 'Q2_0' },
} as const satisfies Record<LlamaFtype, FtypeTraits>;

/** llama-quantize's aliases: a K-quant family name means its _M mix. */
export const FTYPE_ALIASES: Readonly<Record<string, LlamaFtype>> = { Q3_K: 'Q3_K_M', Q4_K: 'Q4_K_M', Q5_K: 'Q5_K_M' };

/** GGML_QNT_VERSION: written as general.quantization_version by llama.cpp's converter and quantizer. */
export const GGML_QUANTIZATION_VERSION = 2;

export function isLlamaFtype(s: string): s is LlamaFtype {
  return Object.prototype.hasOwnProperty.call(LLAMA_FTYPES, s);
}

/** The file type a llama-quantize type name means (any case, aliases included), or undefined. */
export function ftypeByName(name: string): LlamaFtype | undefined {
  const up = name.trim().toUpperCase();
  return isLlamaFtype(up) ? up : FTYPE_ALIASES[up];
}

/** Every name ftypeByName accepts, upper case: the file types, then the aliases. */
export function ftypeNames(): string[] {
  return [...Object.keys(LLAMA_FTYPES), ...Object.keys(FTYPE_ALIASES)];
}

const BY_ID = new Map<number, LlamaFtype>((Object.entries(LLAMA_FTYPES) as [LlamaFtype, FtypeTraits][]).map(([n, t]) => [t.id, n]));

/** The file type of a general.file_type value, or undefined. */
export function ftypeFromId(id: number): LlamaFtype | undefined {
  return BY_ID.get(id);
}

/**
 * The file type to label a file whose quantized tensors are mostly `type` and that no recipe chose
 * (QAT exports): the file type of that name, else its "_S" mix (Q3_K → Q3_K_S), whose tensors are
 * nearly all the base type; undefined where llama.cpp has none.
 */
export function ftypeForTensorType(type: GgmlType): LlamaFtype | undefined {
  if (isLlamaFtype(type) && LLAMA_FTYPES[type].base === type) return type;
  const s = `${type}_S`;
  return isLlamaFtype(s) && LLAMA_FTYPES[s].base === type ? s : undefined;
}
