// The ggml type of every tensor of a GGUF file of a named llama.cpp file type (Q4_K_M, IQ2_M, …),
// with llama-quantize's options: one function, planGgufTypes, that every quantize path asks. It
// evaluates the rule table (gguf-recipe-rules.ts) the way llama.cpp's llama_tensor_get_type does:
//
//   1. tensors llama.cpp never quantizes (1-D, not named *weight, norms, --leave-output-tensor's
//      output) keep their type (null here);
//   2. --token-embedding-type / --output-tensor-type name their tensor's type outright;
//   3. for a block-quantized base type: the first --tensor-type pattern that matches the GGUF name
//      (a regular expression, searched), else, unless --pure, the recipe rules; then the row
//      fallback (rows that are not whole blocks of the chosen type);
//   4. float file types (F32, F16, BF16) give their type to every quantizable tensor.
//
// Tensors are visited in llama.cpp's weight order (by layer, then by name), because some rules
// depend on how many attn_v / ffn_* tensors came before. Pure: names, shapes and hyper-parameters in,
// types out; nothing is read. Legend: K = row length (the last, contiguous dimension).

import { GGML_TYPES, type GgmlType } from '../core/dtype.js';
import { ConfigError } from '../core/errors.js';
import { LLAMA_FTYPES, type LlamaFtype } from '../core/ftype.js';
import type { ModelConfig } from './config.js';
import { ATTN_V_ROLES, IMATRIX_REQUIRED, IMATRIX_REQUIRED_IN, RECIPE_BLOCKS, ROW_FALLBACK, type Band, type Cond, type RecipeBlock } from './gguf-recipe-rules.js';
import { ggufLayerOf, ggufTensorRole, type GgufTensorRole } from './names.js';

/** The hyper-parameters the rules read. */
export interface RecipeModel {
  /** GGUF general.architecture (llama, qwen2, …) */
  arch: string;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** experts per MoE layer (0 or absent for dense models) */
  nExperts?: number;
}

/** A --tensor-type PATTERN=TYPE override. */
export interface TensorTypeOverride {
  pattern: string;
  type: GgmlType;
}

/** llama-quantize's options. */
export interface RecipeOptions {
  ftype: LlamaFtype;
  /** --pure: every quantizable tensor in the base type (overrides still apply) */
  pure?: boolean;
  /** --output-tensor-type */
  outputTensorType?: GgmlType;
  /** --token-embedding-type */
  tokenEmbeddingType?: GgmlType;
  /** --leave-output-tensor: output.weight keeps its type */
  leaveOutputTensor?: boolean;
  /** --tensor-type, first match wins */
  tensorTypes?: readonly TensorTypeOverride[];
  /** an importance matrix is given (some rules differ) */
  hasImatrix?: boolean;
}

/** One tensor as the plan sees it: GGUF name and row-major shape ([N, K] for a matrix). */
export interface RecipeTensor {
  name: string;
  shape: readonly number[];
}

export type ChoiceSource = 'kept' | 'token-embedding-type' | 'output-tensor-type' | 'tensor-type' | 'pure' | 'recipe' | 'float';

export interface TensorChoice {
  /** the type to store, or null: the tensor is not quantized and keeps its type */
  type: GgmlType | null;
  /** the type chosen before the row fallback, when the fallback changed it */
  fallbackFrom?: GgmlType;
  source: ChoiceSource;
  /** the recipe block that decided (source 'recipe') */
  block?: string;
  /** llama.cpp refuses this tensor without an importance matrix */
  requiresImatrix: boolean;
}

export function recipeModelOf(c: ModelConfig): RecipeModel {
  const arch = c.architecture === 'qwen2' || c.architecture === 'qwen3' ? c.architecture : 'llama';
  return { arch, nLayers: c.nLayers, nHeads: c.nHeads, nKvHeads: c.nKvHeads, nExperts: 0 };
}

/** llama.cpp's weight order (llama_model_loader's comparer): by layer (non-layer tensors first), then name. */
export function llamaCppTensorOrder(a: string, b: string): number {
  const la = ggufLayerOf(a) ?? -1;
  const lb = ggufLayerOf(b) ?? -1;
  if (la !== lb) return la - lb;
  return a < b ? -1 : a > b ? 1 : 0;
}

/** ggml_n_dims: dimensions without the trailing (ggml order) ones. */
function nDims(shape: readonly number[]): number {
  let n = shape.length;
  let i = 0;
  while (n > 1 && shape[i] === 1) {
    n--;
    i++;
  }
  return Math.max(1, n);
}

/** Whether llama.cpp quantizes this tensor at all (tensor_allows_quantization, for the names bitscale writes). */
export function quantizable(t: RecipeTensor, opts: Pick<RecipeOptions, 'leaveOutputTensor'>): boolean {
  if (nDims(t.shape) < 2) return false;
  if (!t.name.endsWith('weight')) return false;
  if (t.name.includes('_norm.weight')) return false;
  if (opts.leaveOutputTensor && t.name === 'output.weight') return false;
  // expert routers and positional / token-type embeddings stay as they are
  if (t.name.includes('ffn_gate_inp.weight') || t.name === 'position_embd.weight' || t.name === 'token_types.weight') return false;
  return true;
}

/** The row fallback (see ROW_FALLBACK): the type itself when the rows are whole blocks. */
export function rowFallback(type: GgmlType, k: number, tensor = '?'): GgmlType {
  const qk = GGML_TYPES[type].blockSize;
  if (k % qk === 0) return type;
  let t = ROW_FALLBACK[type];
  if (!t) {
    if (qk > 32) {
      throw new ConfigError('unsupported', `no tensor type fallback is defined for type ${type} (rows of ${k} values are not whole ${qk}-value blocks)`, { tensor, found: type, expected: `rows a multiple of ${qk}` });
    }
    t = type;
  }
  return k % GGML_TYPES[t].blockSize === 0 ? t : 'F16';
}

/** tensor_requires_imatrix. */
export function requiresImatrix(ggufName: string, type: GgmlType | null, ftype: LlamaFtype): boolean {
  if (type === null) return false;
  const role = ggufTensorRole(ggufName);
  if (role === 'token_embd' || role === 'output') return false;
  return IMATRIX_REQUIRED.includes(type) || (IMATRIX_REQUIRED_IN[ftype]?.includes(type) ?? false);
}

interface Ctx {
  ftype: LlamaFtype;
  role: GgufTensorRole;
  base: GgmlType;
  k: number;
  stacked: boolean;
  /** running count of the role and the role's total */
  count: number;
  countOf: number;
  /** llama.cpp's layer_info index and the layer count */
  layer: number;
  layers: number;
  model: RecipeModel;
  hasImatrix: boolean;
}

const intDiv = (a: number, b: number) => Math.trunc(a / b);

function inBand(band: Band, i: number, n: number): boolean {
  switch (band) {
    case 'first8th': return i < intDiv(n, 8);
    case 'first16th': return i < intDiv(n, 16);
    case 'middle': return i >= intDiv(n, 8) && i < intDiv(7 * n, 8);
    case 'moreBits': return i < intDiv(n, 8) || i >= intDiv(7 * n, 8) || (i - intDiv(n, 8)) % 3 === 2;
  }
}

function is70B(m: RecipeModel): boolean {
  return m.nLayers === 80 && ((m.arch === 'llama' && m.nHeads !== m.nKvHeads) || m.arch === 'qwen2');
}

function holds(c: Cond, x: Ctx): boolean {
  if ('band' in c) return c.of === 'count' ? inBand(c.band, x.count, x.countOf) : inBand(c.band, x.layer, x.layers);
  if ('countBelow' in c) return x.count < c.countBelow;
  if ('gqaAtLeast' in c) return (x.model.nKvHeads > 0 ? intDiv(x.model.nHeads, x.model.nKvHeads) : 0) >= c.gqaAtLeast;
  if ('expertsAtLeast' in c) return (x.model.nExperts ?? 0) >= c.expertsAtLeast;
  if ('experts' in c) return (x.model.nExperts ?? 0) === c.experts;
  if ('imatrix' in c) return x.hasImatrix === c.imatrix;
  if ('arch' in c) return x.model.arch === c.arch;
  if ('notArch' in c) return x.model.arch !== c.notArch;
  if ('model70B' in c) return is70B(x.model) === c.model70B;
  if ('rowNotWholeBaseBlocks' in c) return x.k % GGML_TYPES[x.base].blockSize !== 0;
  if ('stacked' in c) return x.stacked === c.stacked;
  return c.any.some((d) => holds(d, x));
}

const allHold = (cs: readonly Cond[] | undefined, x: Ctx) => !cs || cs.every((c) => holds(c, x));

/** The block that takes a tensor (first match), or undefined. */
function blockFor(role: GgufTensorRole, ftype: LlamaFtype): RecipeBlock | undefined {
  return RECIPE_BLOCKS.find((b) => (b.roles === 'any' || b.roles.includes(role)) && (!b.ftypes || b.ftypes.includes(ftype)));
}

/** The running-count key a role shares (the attn_v-like roles share one). */
const counterOf = (role: GgufTensorRole): string => (ATTN_V_ROLES.includes(role) ? 'attn_v' : role);

/**
 * The type of every tensor (by GGUF name) in a file of `opts.ftype` for a model with these
 * hyper-parameters, as llama.cpp's llama_model_quantize chooses it. Throws ConfigError for a bad
 * --tensor-type pattern and for rows no fallback can hold.
 */
export function planGgufTypes(model: RecipeModel, tensors: readonly RecipeTensor[], opts: RecipeOptions): Map<string, TensorChoice> {
  const ft = LLAMA_FTYPES[opts.ftype];
  if (!ft) throw new ConfigError('bad_option', 'unknown llama.cpp file type', { field: 'ftype', found: opts.ftype });
  const base = ft.base as GgmlType;
  const patterns = (opts.tensorTypes ?? []).map((o) => {
    try {
      return { re: new RegExp(o.pattern), type: o.type };
    } catch (e) {
      throw new ConfigError('bad_option', `invalid --tensor-type pattern: ${(e as Error).message}`, { field: '--tensor-type', found: o.pattern });
    }
  });
  const tied = !tensors.some((t) => t.name === 'output.weight');
  const totals = new Map<string, number>([['attn_v', tensors.filter((t) => ATTN_V_ROLES.includes(ggufTensorRole(t.name))).length]]);
  const counts = new Map<string, number>();
  const experts = model.nExperts ?? 0;
  const out = new Map<string, TensorChoice>();
  const order = [...tensors].sort((a, b) => llamaCppTensorOrder(a.name, b.name));
  for (const t of order) {
    const category = ggufTensorRole(t.name);
    const choose = (type: GgmlType | null, source: ChoiceSource, extra: Partial<TensorChoice> = {}) =>
      out.set(t.name, { type, source, ...extra, requiresImatrix: requiresImatrix(t.name, type, opts.ftype) });
    if (!quantizable(t, opts)) {
      choose(null, 'kept');
      continue;
    }
    if (opts.tokenEmbeddingType && category === 'token_embd') {
      choose(opts.tokenEmbeddingType, 'token-embedding-type');
      continue;
    }
    if (opts.outputTensorType && category === 'output') {
      choose(opts.outputTensorType, 'output-tensor-type');
      continue;
    }
    if (!GGML_TYPES[base].quantized) {
      choose(base, 'float');
      continue;
    }
    const k = t.shape[t.shape.length - 1];
    let type = base;
    let source: ChoiceSource = opts.pure ? 'pure' : 'recipe';
    let block: string | undefined;
    const manual = patterns.find((p) => p.re.test(t.name));
    if (manual) {
      type = manual.type;
      source = 'tensor-type';
    } else if (!opts.pure) {
      // the tied embedding is the output: it takes the output's rules (and --output-tensor-type)
      const role: GgufTensorRole = category === 'token_embd' && tied ? 'output' : category;
      const key = counterOf(role);
      const count = counts.get(key) ?? 0;
      const countOf = totals.get(key) ?? model.nLayers;
      let layer = count;
      if (experts > 1 && (key === 'ffn_down' || key === 'ffn_gate' || key === 'ffn_up')) {
        const l = ggufLayerOf(t.name);
        if (l === null || l < 0 || l >= model.nLayers) throw new ConfigError('bad_config', 'cannot tell the layer of an expert tensor', { tensor: t.name, expected: `blk.N. with N < ${model.nLayers}` });
        layer = l;
      }
      const x: Ctx = { ftype: opts.ftype, role, base, k, stacked: t.shape.length === 3 && t.shape[0] > 1, count, countOf, layer, layers: model.nLayers, model, hasImatrix: !!opts.hasImatrix };
      if (role === 'output' && opts.outputTensorType) {
        type = opts.outputTensorType;
        block = 'output';
      } else {
        const b = blockFor(role, opts.ftype);
        if (b) {
          block = b.name;
          const r = b.rules.find((r) => (!r.ftypes || r.ftypes.includes(opts.ftype)) && (!r.roles || r.roles.includes(role)) && allHold(r.when, x));
          if (r && r.type !== 'base') type = r.type;
          for (const a of b.after ?? []) if (allHold(a.when, x) && (!a.from || a.from.includes(type))) type = a.type;
          if (b.counts?.includes(role)) counts.set(key, count + 1);
        }
      }
    }
    const fb = rowFallback(type, k, t.name);
    choose(fb, source, { ...(fb !== type ? { fallbackFrom: type } : {}), ...(block ? { block } : {}) });
  }
  return out;
}
