// What every tensor of a `bitscale quantize` run becomes, decided once before any tensor is read:
// for ggml schemes, the llama.cpp file type's recipe (model/gguf-recipe.ts: embeddings, output and
// every linear, with llama-quantize's options); for int/NF4/… schemes, the linears' grids. Every
// quantize path (whole model, layer streaming, mixed precision, sweeps) takes its types from here,
// and the checks llama.cpp makes (an importance matrix where the types need one, no silent
// requantizing) run here too, so that bad input fails before any work.
// Legend: N/K = a matrix's rows/columns.

import { GGML_TYPES, isGgmlType, type GgmlType } from '../../core/dtype.js';
import { ConfigError } from '../../core/errors.js';
import { ftypeNames, LLAMA_FTYPES, type LlamaFtype } from '../../core/ftype.js';
import { planGgufTypes, recipeModelOf, type TensorChoice, type TensorTypeOverride } from '../../model/gguf-recipe.js';
import { gv, type GgufValue } from '../../formats/gguf/index.js';
import type { Imatrix } from '../../formats/imatrix/index.js';
import { hfToGguf } from '../../model/names.js';
import type { SaveOptions } from '../../model/save.js';
import type { ModelWeights } from '../../model/weights.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { targetFor, targetLabel, type Target } from './layer.js';

/** llama-quantize's options, as strings from the command line or the library. */
export interface GgufRecipeOptions {
  /** --pure: every quantizable tensor in the file type's base type */
  pure?: boolean;
  /** --output-tensor-type TYPE (a ggml type name, any case) */
  outputTensorType?: string;
  /** --token-embedding-type TYPE */
  tokenEmbeddingType?: string;
  /** --leave-output-tensor: output.weight keeps its type */
  leaveOutputTensor?: boolean;
  /** --tensor-type PATTERN=TYPE, in order (first match wins); PATTERN is a regular expression over GGUF names */
  tensorTypes?: readonly string[];
  /** --allow-requantize: quantize tensors that are already block-quantized */
  allowRequantize?: boolean;
}

export interface QuantPlan {
  /** the GGUF file type (general.file_type), null for non-ggml schemes */
  ftype: LlamaFtype | null;
  /** per canonical tensor name: what it is quantized to (tensors not listed are written as before) */
  targets: Map<string, Target>;
  /** the recipe's choice per canonical name (ggml schemes) */
  choices: Map<string, TensorChoice>;
}

const LINEAR = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;
export const isLinearName = (name: string): boolean => LINEAR.test(name);

/** A ggml type from its name in any case (q4_k, Q8_0, f16, bf16), as llama-quantize's parse_ggml_type. */
export function ggmlTypeByName(name: string, field: string): GgmlType {
  const up = name.trim().toUpperCase();
  if (isGgmlType(up) && !['I8', 'I16', 'I32', 'I64', 'F64'].includes(up)) return up;
  throw new ConfigError('bad_option', `unknown ggml type '${name}'`, {
    field, found: name, expected: (Object.keys(GGML_TYPES) as GgmlType[]).filter((t) => GGML_TYPES[t].quantized || ['F32', 'F16', 'BF16'].includes(t)).map((t) => t.toLowerCase()).join(', '),
  });
}

/** --tensor-type values: PATTERN=TYPE; the pattern is lower-cased, as llama-quantize does. */
export function parseTensorTypes(list: readonly string[] | undefined): TensorTypeOverride[] {
  return (list ?? []).map((s) => {
    const eq = s.indexOf('=');
    if (eq < 0) throw new ConfigError('bad_option', 'malformed --tensor-type: expected PATTERN=TYPE', { field: '--tensor-type', found: s, expected: 'e.g. attn_v=q8_0' });
    if (eq === 0) throw new ConfigError('bad_option', '--tensor-type: missing tensor name', { field: '--tensor-type', found: s });
    if (eq === s.length - 1) throw new ConfigError('bad_option', '--tensor-type: missing quantization type', { field: '--tensor-type', found: s });
    return { pattern: s.slice(0, eq).toLowerCase(), type: ggmlTypeByName(s.slice(eq + 1), '--tensor-type') };
  });
}

/** The file type a ggml scheme stands for: its recipe, else the first file type of that base type. */
export function ftypeOfScheme(scheme: QuantScheme): LlamaFtype {
  if (scheme.kind !== 'ggml') throw new ConfigError('internal', 'not a ggml scheme');
  if (scheme.recipe) return scheme.recipe;
  const f = (Object.keys(LLAMA_FTYPES) as LlamaFtype[]).find((k) => LLAMA_FTYPES[k].base === scheme.type);
  if (!f) throw new ConfigError('unsupported', `ggml type ${scheme.type} is no llama.cpp file type`, { field: '--scheme', found: scheme.type, expected: ftypeNames().map((n) => n.toLowerCase()).join(', ') });
  return f;
}

/** Whether this ggml scheme asks for the recipe (a named file type) or for one type everywhere. */
const pureOf = (scheme: QuantScheme, o: GgufRecipeOptions) => !!o.pure || (scheme.kind === 'ggml' && !scheme.recipe);

const isBlockQuantized = (t: string) => isGgmlType(t) && GGML_TYPES[t].quantized;

/**
 * Plans every tensor of `w` for `scheme`. `hasImatrix`: an importance matrix will be used (from
 * --imatrix, or the calibration statistics of GPTQ/AWQ/mixed precision), which some recipes read.
 */
export function planQuantization(w: ModelWeights, scheme: QuantScheme, o: GgufRecipeOptions & { hasImatrix: boolean }): QuantPlan {
  const targets = new Map<string, Target>();
  const choices = new Map<string, TensorChoice>();
  if (scheme.kind !== 'ggml') {
    for (const src of w.tensors.values()) if (isLinearName(src.name)) targets.set(src.name, targetFor(scheme, src.shape[src.shape.length - 1]));
    return { ftype: null, targets, choices };
  }
  const ftype = ftypeOfScheme(scheme);
  const plan = planGgufTypes(recipeModelOf(w.config), [...w.tensors.values()].filter((s) => hfToGguf(s.name)).map((s) => ({ name: hfToGguf(s.name)!, shape: s.shape })), {
    ftype,
    pure: pureOf(scheme, o),
    outputTensorType: o.outputTensorType ? ggmlTypeByName(o.outputTensorType, '--output-tensor-type') : undefined,
    tokenEmbeddingType: o.tokenEmbeddingType ? ggmlTypeByName(o.tokenEmbeddingType, '--token-embedding-type') : undefined,
    leaveOutputTensor: o.leaveOutputTensor,
    tensorTypes: parseTensorTypes(o.tensorTypes),
    hasImatrix: o.hasImatrix,
  });
  // in the model's tensor order (embedding, layers, norm, output), not llama.cpp's
  for (const src of w.tensors.values()) {
    const g = hfToGguf(src.name);
    const c = g ? plan.get(g) : undefined;
    if (!c) continue;
    const name = src.name;
    choices.set(name, c);
    if (c.type === null) {
      // kept as it is: 2-D tensors (--leave-output-tensor) keep their stored type; 1-D ones are written as before
      if (src.shape.length > 1 && isGgmlType(src.dtype)) targets.set(name, { kind: 'ggml', type: src.dtype, copy: true });
      continue;
    }
    // a tensor already stored in its target type is copied as it is (as llama.cpp does)
    const copy = src.dtype === c.type && isGgmlType(src.dtype);
    targets.set(name, { kind: 'ggml', type: c.type, ...(c.fallbackFrom ? { fallbackFrom: c.fallbackFrom } : {}), ...(copy ? { copy } : {}) });
  }
  return { ftype, targets, choices };
}

/** Where the importance matrix comes from: none, an --imatrix file (which names it holds), or calibration statistics. */
export type ImatrixSource = { kind: 'none' } | { kind: 'file'; file: string; has: (ggufName: string) => boolean } | { kind: 'stats' };

/**
 * llama.cpp's refusals, made before any tensor is read: a type that needs an importance matrix
 * without one (every tensor, as llama_model_quantize checks them up front), and requantizing a
 * block-quantized tensor into another type without --allow-requantize.
 */
export function checkPlan(w: ModelWeights, plan: QuantPlan, im: ImatrixSource, o: GgufRecipeOptions): void {
  for (const [name, c] of plan.choices) {
    if (!c.requiresImatrix) continue;
    const g = hfToGguf(name)!;
    if (im.kind === 'none') {
      throw new ConfigError('bad_option', `this quantization requires an importance matrix (${plan.ftype} puts ${g} in ${c.type})`, {
        tensor: g, field: '--imatrix', expected: 'an importance matrix', found: 'none',
        hint: 'pass --imatrix FILE (bitscale imatrix MODEL --out FILE makes one), or use a calibrated --method (gptq, awq)',
      });
    }
    if (im.kind === 'file' && !im.has(g)) {
      throw new ConfigError('bad_option', `missing importance matrix for tensor ${g} in a very low-bit quantization (${c.type})`, { file: im.file, tensor: g, expected: 'an entry for this tensor', found: 'none' });
    }
  }
  for (const [name, t] of plan.targets) {
    const src = w.tensors.get(name);
    if (!src || (t.kind === 'ggml' && t.copy) || !isBlockQuantized(src.dtype) || o.allowRequantize) continue;
    const to = t.kind === 'ggml' ? t.type : targetLabel(t);
    throw new ConfigError('bad_option', `requantizing from type ${src.dtype} is disabled`, {
      file: w.source.path, tensor: name, expected: `a float tensor (or --allow-requantize to quantize ${src.dtype} → ${to})`, found: src.dtype,
      hint: 'requantizing loses quality compared with quantizing from 16 or 32 bits; pass --allow-requantize to do it anyway',
    });
  }
}

/**
 * saveModel options for a GGUF output of this plan: general.file_type as llama.cpp writes it and,
 * with an --imatrix file, the quantize.imatrix.* keys llama-quantize adds (file as given, first
 * dataset, entry count, chunk count).
 */
export function ggufSaveOptions(plan: QuantPlan, o: { overwrite?: boolean; imatrix?: string }, imatrix?: Imatrix | null): Pick<SaveOptions, 'format' | 'dtype' | 'overwrite' | 'fileType' | 'ggufMetadata'> {
  const md: Record<string, GgufValue> = {};
  if (imatrix && o.imatrix) {
    md['quantize.imatrix.file'] = gv.str(o.imatrix.slice(0, 127));
    if (imatrix.datasets.length) md['quantize.imatrix.dataset'] = gv.str(imatrix.datasets[0].slice(0, 127));
    md['quantize.imatrix.entries_count'] = gv.u32(imatrix.entries.size);
    if (imatrix.chunkCount > 0) md['quantize.imatrix.chunks_count'] = gv.u32(imatrix.chunkCount);
  }
  return { format: 'gguf', dtype: 'F16', overwrite: o.overwrite, ...(plan.ftype ? { fileType: LLAMA_FTYPES[plan.ftype].id } : {}), ggufMetadata: md };
}

/** The recipe's settings for a manifest. */
export function recipeSettings(plan: QuantPlan, o: GgufRecipeOptions): Record<string, unknown> {
  if (!plan.ftype) return {};
  return {
    fileType: plan.ftype, pure: !!o.pure, outputTensorType: o.outputTensorType ?? null, tokenEmbeddingType: o.tokenEmbeddingType ?? null,
    leaveOutputTensor: !!o.leaveOutputTensor, tensorTypes: o.tensorTypes ?? [], allowRequantize: !!o.allowRequantize,
  };
}

/** Bits per weight of the plan over the linears (what --target-bpw measures), headers and scales included. */
export function linearBpw(w: ModelWeights, plan: QuantPlan): number {
  let bits = 0;
  let n = 0;
  for (const [name, t] of plan.targets) {
    if (!isLinearName(name) || t.kind !== 'ggml') continue;
    const numel = w.tensors.get(name)!.shape.reduce((a, b) => a * b, 1);
    bits += (numel / GGML_TYPES[t.type].blockSize) * GGML_TYPES[t.type].typeSize * 8;
    n += numel;
  }
  return n ? bits / n : NaN;
}
