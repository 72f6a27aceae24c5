// `bitscale quantize --format onnx --scheme fp32 --out DIR` (and `--dtype f16` for fp16): the float
// variants of a transformers.js folder, written beside the quantized ones (pipeline/export/onnx.ts adds
// variants to a folder of the same model). No calibration and no quantization: the model is
// exported as it is, and the export's own onnxruntime check is the verification.

import { ConfigError } from '../../core/errors.js';
import { prepareHostModel } from '../../engine/host.js';
import { modelInputFiles } from '../../model/inputs.js';
import { loadModel } from '../../model/load.js';
import { exportOnnx, type OnnxDtype } from '../export/onnx.js';

/** Scheme names that mean "no quantization" for ONNX folder output. */
export function isFloatOnnxScheme(s: string): boolean {
  return /^(fp32|f32|float)$/i.test(s);
}

export interface FloatOnnxOptions {
  model: string;
  out: string;
  /** float storage of each variant to write: 'f32' → fp32, 'f16' → fp16 */
  storages: ('f32' | 'f16')[];
  tokenizer?: string | null;
  overwrite?: boolean;
  signal?: AbortSignal;
  /** recorded in the folder manifest */
  recipe?: unknown;
}

export async function exportFloatOnnx(o: FloatOnnxOptions): Promise<{ files: string[]; dtypes: OnnxDtype[]; maxAbsLogitDiff: number; manifest: string }> {
  if (o.out.endsWith('.onnx')) throw new ConfigError('bad_option', 'a float ONNX export is a transformers.js folder', { field: '--out', expected: 'a folder path (not *.onnx)', found: o.out });
  const weights = await loadModel(o.model, { tokenizer: o.tokenizer });
  try {
    // every file the model was read from (tokenizer included) is protected, not only the path given
    const inputs = await modelInputFiles(weights, o.tokenizer);
    const recipePath = (o.recipe as { path?: unknown } | undefined)?.path;
    if (typeof recipePath === 'string') inputs.push(recipePath);
    const host = await prepareHostModel(weights);
    let files: string[] = [];
    const dtypes: OnnxDtype[] = [];
    let diff = 0;
    for (const st of o.storages) {
      const r = await exportOnnx(host, weights.tokenizer, o.out, {
        inputs,
        overwrite: o.overwrite,
        signal: o.signal,
        floatStorage: st,
        manifest: { command: 'quantize', scheme: st === 'f16' ? 'fp16' : 'fp32', settings: o.recipe ? { recipe: o.recipe } : {} },
      });
      files = r.files;
      dtypes.push(r.dtype);
      diff = Math.max(diff, r.maxAbsLogitDiff);
    }
    return { files, dtypes, maxAbsLogitDiff: diff, manifest: `${o.out}/bitscale-manifest.json` };
  } finally {
    await weights.close();
  }
}
