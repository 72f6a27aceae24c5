// llama.cpp's per-tensor type choice without quantizing any data: the staging API of libllama
// v0.5.0 (src/llama-ext.h, exported with C++ linkage, so called here by mangled name) builds a
// mock model from hyper-parameters (`llama_quant_model_from_metadata`) and runs the very function
// `llama_model_quantize` uses on a list of tensor descriptors (`llama_quant_compute_types`).
// This is the reference the recipe table (src/model/gguf-recipe*.ts) is checked against for many
// shapes at once; llama_model_quantize itself (llamacpp-quantize.ts) checks the bytes.
// Caveat, from llama-quant.cpp: compute_types resets has_imatrix to false, so the rules that
// depend on an importance matrix are checked through llama_model_quantize instead.
// Dev-only, like llamacpp-quantize.ts. Legend: ne = ggml shape (ne[0] = row length K, ne[1] = rows N).

import { dirname, join } from 'node:path';
import { ggmlTypeFromId, type GgmlType } from '../../src/core/dtype.js';
import { freeParams, libllamaPath, loadLibllama, quantizeParams, type LlamaCppQuantizeOptions } from './llamacpp-quantize.js';

/** The hyper-parameters llama.cpp's mock model takes (llama_quant_model_desc). */
export interface MockModelDesc {
  arch: string;
  nEmbd: number;
  nFf: number;
  nLayer: number;
  nHead: number;
  nHeadKv: number;
  nExpert?: number;
  headDim: number;
}

type Koffi = any;
interface Api {
  koffi: Koffi;
  ggmlInit: (p: Record<string, unknown>) => unknown;
  ggmlFree: (ctx: unknown) => void;
  newTensor: (ctx: unknown, type: number, nDims: number, ne: BigInt64Array) => unknown;
  setName: (t: unknown, name: string) => unknown;
  modelFromMetadata: (desc: Record<string, unknown>) => unknown;
  modelFree: (m: unknown) => void;
  quantInit: (model: unknown, params: unknown) => unknown;
  quantFree: (qs: unknown) => void;
  allows: (qs: unknown, t: unknown) => boolean;
  computeTypes: (qs: unknown, ftype: number, tensors: unknown, out: Int32Array, n: number) => void;
  defaultType: (ftype: number) => number;
}

let api: Api | null = null;

function load(): Api {
  if (api) return api;
  const l = loadLibllama();
  const { koffi, so } = l;
  const ggml = koffi.load(join(dirname(libllamaPath()), 'libggml-base.so'));
  koffi.struct('bs_ggml_init_params', { mem_size: 'size_t', mem_buffer: 'void *', no_alloc: 'bool' });
  koffi.struct('bs_quant_model_desc', {
    architecture: 'const char *', n_embd: 'uint32_t', n_ff: 'uint32_t', n_layer: 'uint32_t', n_head: 'uint32_t',
    n_head_kv: 'uint32_t', n_expert: 'uint32_t', n_embd_head_k: 'uint32_t', n_embd_head_v: 'uint32_t',
  });
  api = {
    koffi,
    ggmlInit: ggml.func('void *ggml_init(bs_ggml_init_params params)'),
    ggmlFree: ggml.func('void ggml_free(void *ctx)'),
    newTensor: ggml.func('void *ggml_new_tensor(void *ctx, int type, int n_dims, const int64_t *ne)'),
    setName: ggml.func('void *ggml_set_name(void *tensor, const char *name)'),
    modelFromMetadata: so.func('_Z31llama_quant_model_from_metadataPK22llama_quant_model_desc', 'void *', ['bs_quant_model_desc *']),
    modelFree: so.func('void llama_model_free(void *model)'),
    quantInit: so.func('_Z16llama_quant_initPK11llama_modelPK27llama_model_quantize_params', 'void *', ['void *', 'bs_quantize_params *']),
    quantFree: so.func('_Z16llama_quant_freeP19quantize_state_impl', 'void', ['void *']),
    allows: so.func('_Z38llama_quant_tensor_allows_quantizationPK19quantize_state_implPK11ggml_tensor', 'bool', ['void *', 'void *']),
    computeTypes: so.func('_Z25llama_quant_compute_typesP19quantize_state_impl11llama_ftypePP11ggml_tensorP9ggml_typem', 'void', ['void *', 'int', 'void **', '_Out_ int32_t *', 'size_t']),
    defaultType: so.func('_Z28llama_ftype_get_default_type11llama_ftype', 'int', ['int']),
  };
  return api;
}

/** llama.cpp's default tensor type of a file type id, or null where it has none (GGML_TYPE_COUNT). */
export function llamaCppDefaultType(ftype: number): GgmlType | null {
  return ggmlTypeFromId(load().defaultType(ftype)) ?? null;
}

/** llama.cpp's weight order (llama_model_loader::weight_name_comparer): by layer (non-layer first), then name. */
export function llamaCppOrder(a: string, b: string): number {
  const la = /^blk\.(\d+)\./.exec(a);
  const lb = /^blk\.(\d+)\./.exec(b);
  const ia = la ? Number(la[1]) : -1;
  const ib = lb ? Number(lb[1]) : -1;
  if (ia !== ib) return ia - ib;
  return a < b ? -1 : a > b ? 1 : 0;
}

/**
 * The type llama.cpp gives each tensor (GGUF names, ggml shapes `ne`) for these options on a model
 * with these hyper-parameters; null for tensors it leaves as they are (norms, 1-D, …). The
 * tensors are declared as F32 (the type of a freshly converted model).
 */
export function llamaCppTensorTypes(desc: MockModelDesc, tensors: readonly { name: string; ne: readonly number[] }[], opts: Omit<LlamaCppQuantizeOptions, 'imatrix'>): Map<string, GgmlType | null> {
  const a = load();
  const keep: unknown[] = [];
  const params = quantizeParams(opts, keep);
  const model = a.modelFromMetadata({
    architecture: desc.arch, n_embd: desc.nEmbd, n_ff: desc.nFf, n_layer: desc.nLayer, n_head: desc.nHead, n_head_kv: desc.nHeadKv,
    n_expert: desc.nExpert ?? 0, n_embd_head_k: desc.headDim, n_embd_head_v: desc.headDim,
  });
  // llama_quant_init keeps the params pointer: hold the struct in memory we own until qs is freed
  const pmem = a.koffi.alloc('bs_quantize_params', 1);
  a.koffi.encode(pmem, 'bs_quantize_params', params);
  const qs = a.quantInit(model, pmem);
  const ctx = a.ggmlInit({ mem_size: (tensors.length + 8) * 1024, mem_buffer: null, no_alloc: true });
  try {
    // every tensor goes to compute_types, as llama_model_quantize counts them all (whether the model
    // has an output.weight decides how the embedding is treated); the ones llama.cpp would not
    // quantize come back with their own type and are reported as null
    const out = new Map<string, GgmlType | null>();
    const handles = tensors.map((d) => {
      const t = a.newTensor(ctx, 0, d.ne.length, BigInt64Array.from(d.ne.map((x) => BigInt(x))));
      a.setName(t, d.name);
      return { name: d.name, t, allowed: a.allows(qs, t) };
    });
    handles.sort((x, y) => llamaCppOrder(x.name, y.name));
    const types = new Int32Array(handles.length);
    if (handles.length) a.computeTypes(qs, params.ftype as number, handles.map((h) => h.t), types, handles.length);
    handles.forEach((h, i) => {
      const t = ggmlTypeFromId(types[i]);
      if (!t) throw new Error(`llama.cpp chose an unknown ggml type id ${types[i]} for ${h.name}`);
      out.set(h.name, h.allowed ? t : null);
    });
    return out;
  } finally {
    a.ggmlFree(ctx);
    a.quantFree(qs);
    a.modelFree(model);
    a.koffi.free(pmem);
    freeParams(keep);
  }
}
