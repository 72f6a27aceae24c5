// `bitscale quantize MODEL --format onnx --out DIR --variants fp32,fp16,q8,q4,q4f16`: the set of
// files optimum / transformers.js repositories ship, side by side in one folder with one manifest.
// Each quantized width is quantized once (the q4 and q4f16 files share the codes; only the storage
// of the float weights differs), with the method and group size of the request.

import { join } from 'node:path';
import { ConfigError } from '../../core/errors.js';
import { withOutput } from '../../formats/io/index.js';
import { modelInputFiles } from '../../model/inputs.js';
import { loadModel } from '../../model/load.js';
import { isOnnxFolderOf, ONNX_DTYPE_SUFFIX, refuseExistingVariants, type OnnxDtype } from '../export/onnx.js';
import { exportFloatOnnx } from './onnx-float.js';
import { quantizeModel, type QuantizeOptions, type QuantizeReport } from './quantize.js';

export const ONNX_VARIANTS = Object.keys(ONNX_DTYPE_SUFFIX) as OnnxDtype[];

/** Group size and asymmetry to use for the quantized variants: the request's int group scheme, else transformers.js's q4 default (block 32, symmetric). */
function intShape(scheme: string | undefined): { group: number; asym: boolean } {
  const m = scheme ? /^int\d-g(\d+)(-asym)?$/.exec(scheme) : null;
  return m ? { group: Number(m[1]), asym: !!m[2] } : { group: 32, asym: false };
}

export function parseOnnxVariants(list: string[]): OnnxDtype[] {
  const out: OnnxDtype[] = [];
  for (const v of list) {
    const d = v.trim().toLowerCase();
    if (!(ONNX_VARIANTS as string[]).includes(d)) throw new ConfigError('bad_option', 'unknown ONNX variant', { field: '--variants', expected: ONNX_VARIANTS.join(', '), found: v });
    if (!out.includes(d as OnnxDtype)) out.push(d as OnnxDtype);
  }
  return out;
}

export interface OnnxVariantsResult {
  out: string;
  variants: OnnxDtype[];
  reports: QuantizeReport[];
  manifest: string;
}

/**
 * Writes every requested variant into `o.out` as one transaction: the folder is staged once, each
 * variant is added to the staged copy, and the folder is replaced only when all of them succeeded
 * (a failure or an interrupt leaves it as it was). Existing variants are refused before any work
 * unless `overwrite`. `o.scheme` may be absent (then int4/int8/int2 with group 32).
 */
export async function quantizeOnnxVariants(o: Omit<QuantizeOptions, 'scheme' | 'format'> & { scheme?: string; variants: OnnxDtype[] }): Promise<OnnxVariantsResult> {
  const { group, asym } = intShape(o.scheme);
  const bitsOf: Partial<Record<OnnxDtype, number>> = { q8: 8, q4: 4, q4f16: 4, q2: 2, q2f16: 2 };
  const probe = await loadModel(o.model, { tokenizer: o.tokenizer });
  let update: boolean;
  let inputs: string[];
  try {
    update = await isOnnxFolderOf(o.out, probe.config);
    inputs = await modelInputFiles(probe, o.tokenizer);
  } finally {
    await probe.close();
  }
  if (update && !o.overwrite) await refuseExistingVariants(o.out, o.variants);
  return withOutput(o.out, { kind: 'dir', force: o.overwrite, update, inputs, command: 'quantize' }, async (txn) => {
    // the staged copy is empty or carries the folder's variants; each step adds to it (overwrite:
    // replace a variant there only when the user asked to)
    const step = { ...o, out: txn.staged, overwrite: o.overwrite };
    const reports: QuantizeReport[] = [];
    const floats = o.variants.filter((v) => v === 'fp32' || v === 'fp16');
    if (floats.length) {
      await exportFloatOnnx({ model: o.model, out: step.out, storages: floats.map((v) => (v === 'fp16' ? 'f16' : 'f32')), tokenizer: o.tokenizer, overwrite: o.overwrite, signal: o.signal, recipe: o.recipe });
    }
    for (const bits of [8, 4, 2]) {
      const mine = o.variants.filter((v) => bitsOf[v] === bits);
      if (!mine.length) continue;
      const storages = mine.map((v) => (v.endsWith('f16') ? 'f16' : 'f32') as 'f32' | 'f16');
      const r = await quantizeModel({ ...step, format: 'onnx', scheme: `int${bits}-g${group}${asym ? '-asym' : ''}`, onnxFloat: storages });
      reports.push({ ...r, out: o.out, manifest: txn.finalPath(r.manifest), files: r.files.map((f) => txn.finalPath(f)) });
    }
    return { out: o.out, variants: o.variants, reports, manifest: join(o.out, 'bitscale-manifest.json') };
  });
}
