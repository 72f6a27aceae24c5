// The write step of `bitscale quantize`: the quantized model in the requested container, one writer
// per format — GGUF (model/save.ts, ggml bytes per tensor), fake-quant safetensors (dequantized F32),
// ONNX (one graph: write-onnx.ts; a transformers.js folder: export/onnx.ts), GPTQ-packed and
// compressed-tensors folders (write-packed.ts). Packed formats keep every float tensor in F16, so
// those are rounded here first: the model verified afterwards is the model in the file.

import { NumericError } from '../../core/errors.js';
import type { QuantTensor, Tensor } from '../../core/tensor.js';
import type { HostModel } from '../../engine/host.js';
import type { Imatrix } from '../../formats/imatrix/index.js';
import { saveModel } from '../../model/save.js';
import type { ModelWeights } from '../../model/weights.js';
import { roundToF16 } from '../../numerics/float16.js';
import { formatScheme } from '../../quant/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { exportOnnx, hostWithGridCodes } from '../export/onnx.js';
import type { LinearResult } from './layer.js';
import { isLinearName as isLinear, ggufSaveOptions, type QuantPlan } from './plan.js';
import type { QuantizeOptions } from './types.js';
import { writeQuantizedOnnx } from './write-onnx.js';
import { writeCtSafetensors, writeGptqSafetensors } from './write-packed.js';

export interface WrittenModel {
  files: string[];
  /** single-graph ONNX: the shape of its tokens input (for the reload check) */
  onnxTokensShape: number[];
  /** transformers.js folder: the largest logit difference its own onnxruntime check measured, else null */
  onnxFolderDiff: number | null;
  /** transformers.js folder: the variants this run wrote */
  onnxDtypes: string[];
}

export async function writeQuantizedModel(
  o: QuantizeOptions,
  x: { weights: ModelWeights; host: HostModel; results: LinearResult[]; scheme: QuantScheme; qplan: QuantPlan; fileImatrix: Imatrix | null; seqLen: number; seed: number },
): Promise<WrittenModel> {
  const { weights, host, results, scheme, qplan, fileImatrix, seqLen, seed } = x;
  // what the file will hold for the float tensors: every float tensor F16 in the packed safetensors
  // formats; the model measured here is then the model in the file (a sweep's numbers are what
  // `bitscale eval` measures on the file). A value beyond F16's range is an error, never a silent Inf.
  const packedSt = o.format === 'safetensors' || o.format === 'compressed-tensors';
  const f16Names = packedSt ? [...host.tensors.keys()].filter((n) => !results.some((r) => r.name === n)) : [];
  for (const n of f16Names) {
    const t = host.tensors.get(n);
    if (!t) continue;
    for (let i = 0; i < t.length; i++) {
      const h = roundToF16(t[i]);
      if (!Number.isFinite(h)) throw new NumericError('overflow', 'a value does not fit in F16', { tensor: n, index: i, expected: '|x| <= 65504', found: t[i], hint: 'this format keeps float tensors in F16; this model needs a wider type' });
      t[i] = h;
    }
  }
  const byName = new Map(results.map((r) => [r.name, r]));
  const changedNorm = (n: string) => o.method === 'awq' && /(layernorm|_proj)\.(weight|bias)$/.test(n);
  let files: string[];
  let onnxTokensShape: number[] = [];
  // --out DIR (not *.onnx): the transformers.js folder (pipeline/export/onnx.ts), already checked in onnxruntime
  let onnxFolderDiff: number | null = null;
  const onnxDtypes: string[] = [];
  if (o.format === 'gguf') {
    const res = await saveModel(weights, o.out, {
      ...ggufSaveOptions(qplan, o, fileImatrix),
      signal: o.signal,
      tensorType: (n) => (byName.has(n) ? (byName.get(n)!.target as { type: 'F16' }).type : changedNorm(n) && !isLinear(n) ? 'F32' : undefined),
      tensor: async (n, src): Promise<Tensor | QuantTensor | null> => {
        const r = byName.get(n);
        if (r?.method === 'copy') return await src.read();
        if (r) return { type: (r.target as { type: QuantTensor['type'] }).type, shape: src.shape, bytes: r.ggmlBytes! };
        if (changedNorm(n)) return { dtype: 'F32', shape: src.shape, data: host.tensors.get(n)! };
        return null;
      },
    });
    files = res.files;
  } else if (o.format === 'fakequant') {
    const res = await saveModel(weights, o.out, {
      format: 'hf',
      dtype: 'F32',
      overwrite: o.overwrite,
      signal: o.signal,
      tensor: async (n, src) => (byName.has(n) || changedNorm(n) ? { dtype: 'F32', shape: src.shape, data: host.tensors.get(n)! } : null),
    });
    files = res.files;
  } else if (o.format === 'onnx' && !o.out.endsWith('.onnx')) {
    // one variant per float storage (q4 and q4f16 share these codes); variants already in the folder stay
    const coded = hostWithGridCodes(host, results, scheme);
    files = [];
    onnxFolderDiff = 0;
    for (const st of o.onnxFloat ?? ['f32']) {
      const ox = await exportOnnx(coded, weights.tokenizer, o.out, { inputs: [o.model], overwrite: o.overwrite, signal: o.signal, floatStorage: st, manifest: { command: 'quantize', scheme: formatScheme(scheme), seed, settings: { method: o.method } } });
      files = ox.files;
      onnxDtypes.push(ox.dtype);
      onnxFolderDiff = Math.max(onnxFolderDiff, ox.maxAbsLogitDiff);
    }
  } else if (o.format === 'onnx') {
    const ox = await writeQuantizedOnnx(host, results, scheme, seqLen, o.out, o.overwrite);
    files = ox.files;
    onnxTokensShape = ox.tokensShape;
  } else if (o.format === 'compressed-tensors') {
    files = await writeCtSafetensors(weights, host, results, scheme, o);
  } else {
    files = await writeGptqSafetensors(weights, host, results, scheme, o);
  }
  return { files, onnxTokensShape, onnxFolderDiff, onnxDtypes };
}
