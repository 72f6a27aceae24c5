// `bitscale quantize`: load a model, calibrate on seeded windows of text (built-in text unless
// --calib), quantize layer by layer (RTN / GPTQ / AWQ onto int, NF4 or ggml grids; each layer sees
// the already-quantized layers before it), write GGUF / fake-quant safetensors / GPTQ-packed or
// compressed-tensors pack-quantized safetensors atomically, reload the output and compare its logits with the engine's, and write a
// manifest (input hashes, settings, seed, tool version, measured quality) beside it.
// Legend: W = windows, T = tokens per window, V = vocab, N/K = a linear's rows/columns.

import { stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { availableParallelism } from 'node:os';
import { ConfigError, IoError } from '../../core/errors.js';
import { BITSCALE_VERSION } from '../../core/version.js';
import type { ProgressFn } from '../../core/progress.js';
import type { HostModel } from '../../engine/host.js';
import { atomicWriteFile, readImatrixFile, withOutput } from '../../formats/io/index.js';
import { importance, type Imatrix } from '../../formats/imatrix/index.js';
import { modelInputFiles } from '../../model/inputs.js';
import { loadModel } from '../../model/load.js';
import { hfToGguf } from '../../model/names.js';
import { parseScheme, formatScheme } from '../../quant/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { calibrationSize, isSelfCalibration } from '../calibrate/windows.js';
import { checkCalibrationBudget } from '../limits.js';
import type { AwqRecord } from './layer.js';
import { checkPlan, ggufSaveOptions, linearBpw, planQuantization, recipeSettings, type GgufRecipeOptions, type ImatrixSource, type QuantPlan } from './plan.js';
import { ftypeNames, type LlamaFtype } from '../../core/ftype.js';
import { GGML_TYPES } from '../../core/dtype.js';
import type { ModelWeights } from '../../model/weights.js';
import type { MixedPlanResult, MixedSensitivity } from './mixed.js';
import type { LlamaCppCheck } from './verify-llamacpp.js';
import type { CheckVerdict } from './tolerance.js';
import { hashFilesOffThread, writeRtnGguf } from './rtn-stream.js';
import { QuantPool } from '../../quant/node/worker-pool.js';
import { resolveQuantizeFormat } from './output-format.js';
// Only what the streaming RTN path runs is imported above; the in-memory path
// (in-memory.ts), the calibrated streaming path (block-stream.ts) and the ONNX, safetensors
// and compressed-tensors writers are imported where a run takes them, so `quantize --method rtn
// --no-verify` to GGUF starts without the engine, onnxruntime, protobuf or the tokenizers library.

/** bitscale's version, recorded in manifests (kept equal to package.json by a test). */
export const TOOL_VERSION = BITSCALE_VERSION;

export type QuantizeFormat = 'gguf' | 'safetensors' | 'fakequant' | 'onnx' | 'compressed-tensors';
export type QuantizeMethod = 'rtn' | 'gptq' | 'awq';

export interface QuantizeOptions extends GgufRecipeOptions {
  model: string;
  out: string;
  format: QuantizeFormat;
  /** parseScheme grammar: a llama.cpp file type (q4_k_m, iq2_m, q8_0, …), int4-g128, int4-g128-asym, nf4-g64, … */
  scheme: string;
  method: QuantizeMethod;
  /** calibration text file (default: the built-in text) */
  calib?: string;
  /** calibration windows as token ids (all of one length), instead of text; they set the windows and their length */
  calibTokens?: number[][];
  /** llama.cpp imatrix file (legacy .dat or GGUF) for ggml importance-weighted rounding */
  imatrix?: string;
  /** mixed precision: per-tensor ggml types chosen to meet this bits-per-weight over the linears */
  targetBpw?: number | 'recipe';
  /** how --target-bpw compares tensors: Hessian proxy calibrated by a measured KL (default) or the proxy alone */
  mixedSensitivity?: MixedSensitivity;
  seed?: number;
  windows?: number;
  seqLen?: number;
  actOrder?: boolean;
  percdamp?: number;
  /** tokenizer file for llama2.c checkpoints; null loads none (streaming RTN needs none) */
  tokenizer?: string | null;
  /** reload the output and compare logits (default true) */
  verify?: boolean;
  /** with verify and GGUF output: also compare with llama.cpp through node-llama-cpp (default true) */
  checkLlamaCpp?: boolean;
  /** |Δ logit| tolerances to enforce instead of the derived ones (pipeline/quantize/tolerance.ts) */
  tolerance?: { reload?: number; llamaCpp?: number };
  overwrite?: boolean;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
  /** return the quantized model (dequantized float tensors) in the report, for sweeps that evaluate it in memory */
  keepHost?: boolean;
  /** internal: the final path named in messages while `out` is a staging path */
  displayOut?: string;
  /** worker threads for the streaming RTN path (default: the machine's available parallelism) */
  threads?: number;
  /** ONNX folder output: one variant per float storage ('f32' → q4, 'f16' → q4f16 for int4 codes; default ['f32']) */
  onnxFloat?: ('f32' | 'f16')[];
  /** the recipe this run came from (recorded in the manifest) */
  recipe?: unknown;
}

/** quantizeModel's argument: `format` may be left out (then as the CLI: from --out and the scheme, see pipeline/quantize/output-format.ts). */
export type QuantizeRequest = Omit<QuantizeOptions, 'format'> & { format?: QuantizeFormat };

export interface QuantizeReport {
  out: string;
  manifest: string;
  format: QuantizeFormat;
  scheme: string;
  method: QuantizeMethod;
  /** the GGUF file type written (general.file_type), null for other schemes */
  fileType: LlamaFtype | null;
  tensors: { name: string; type: string; method: string; sqnrDb: number | null; note?: string }[];
  fallbacks: string[];
  awq: AwqRecord[];
  plan: MixedPlanResult | null;
  quality: {
    windows: number;
    kld: number;
    top1Agreement: number;
    /** the float model's largest |logit| on the windows, and the largest change quantization made */
    logitScale?: number;
    maxAbsLogitDiff?: number;
    reloadMaxAbsLogitDiff: number | null;
    llamaCpp: LlamaCppCheck | null;
    /** each verification with its tolerance; a failed one fails the command (nothing is written) */
    checks?: { reload: CheckVerdict | null; llamaCpp: CheckVerdict | null };
  };
  seconds: number;
  /** files written (the model file or the files of the output folder) */
  files: string[];
  /** the quantized model as the engine runs it (only with keepHost) */
  host?: HostModel;
}

/**
 * RTN to GGUF without calibration or verification, streamed (src/pipeline/quantize/rtn-stream.ts): each
 * linear is read, quantized to its ggml type (imatrix from --imatrix if given) on `threads` worker
 * threads and written, the stages overlapped; the input is hashed on another thread meanwhile.
 */
async function rtnStreamingGguf(weights: ModelWeights, scheme: QuantScheme, qplan: QuantPlan, fileImatrix: Imatrix | null, o: QuantizeOptions, t0: number, pool: QuantPool): Promise<QuantizeReport> {
  if (scheme.kind !== 'ggml') throw new ConfigError('internal', 'streaming RTN is for ggml schemes');
  const inputHash = hashInputOffThread(o.model);
  inputHash.catch(() => {}); // awaited below; a failure before then must not go unhandled
  const tensors: QuantizeReport['tensors'] = [];
  const fallbacks: string[] = [];
  const save = ggufSaveOptions(qplan, o, fileImatrix);
  const res = await writeRtnGguf(weights, o.out, {
    threads: pool.threads,
    pool,
    overwrite: o.overwrite,
    fileType: save.fileType,
    ggufMetadata: save.ggufMetadata,
    signal: o.signal,
    onProgress: o.onProgress,
    // every tensor the recipe plans (linears, token embedding, output), with its type
    plan: (n, src) => {
      const t = qplan.targets.get(n);
      if (t?.kind !== 'ggml') return null;
      if (t.copy) {
        tensors.push({ name: n, type: t.type, method: 'copy', sqnrDb: null });
        return { type: t.type, copy: true };
      }
      const K = src.shape[src.shape.length - 1];
      const e = fileImatrix?.entries.get(hfToGguf(n) ?? n);
      tensors.push({ name: n, type: t.type, method: 'rtn', sqnrDb: null });
      if (t.fallbackFrom) fallbacks.push(`${n}: ${t.fallbackFrom} → ${t.type}`);
      const im = e && GGML_TYPES[t.type].quantized ? importance(e) : undefined;
      return { type: t.type, imatrix: im && im.length === K ? im : undefined };
    },
  });
  const manifestPath = `${o.out}.manifest.json`;
  const quality = { windows: 0, kld: NaN, top1Agreement: NaN, reloadMaxAbsLogitDiff: null, llamaCpp: null };
  const manifest = {
    tool: 'bitscale', version: TOOL_VERSION, command: 'quantize',
    input: { model: o.model, sha256: await inputHash },
    calibration: null,
    settings: { format: o.format, scheme: formatScheme(scheme), method: 'rtn', imatrix: o.imatrix ?? null, streaming: true, ...recipeSettings(qplan, o) },
    output: { files: res.files }, tensors, fallbacks, quality: 'not measured (--no-verify)', recipe: o.recipe ?? null,
  };
  await atomicWriteFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n', { overwrite: true });
  return { out: o.out, manifest: manifestPath, format: o.format, scheme: formatScheme(scheme), method: 'rtn', fileType: qplan.ftype, tensors, fallbacks, awq: [], plan: null, quality, seconds: (Date.now() - t0) / 1000, files: res.files };
}

/** hashInput on a worker thread (the same hashes). */
async function hashInputOffThread(path: string): Promise<Record<string, string>> {
  const st = await stat(path);
  const { readdir } = await import('node:fs/promises');
  const files = st.isFile() ? [path] : (await readdir(path)).sort().filter((f) => /\.(safetensors|json|model)$/.test(f)).map((f) => join(path, f));
  let hashes: string[];
  try {
    hashes = await hashFilesOffThread(files);
  } catch (e) {
    throw new IoError('io', `cannot hash: ${(e as Error).message}`, { file: path, found: (e as { code?: string }).code });
  }
  return Object.fromEntries(files.map((f, i) => [f, hashes[i]]));
}

/** Whether the output is a folder (safetensors-style formats, ONNX unless --out ends in .onnx). */
function outputKind(o: QuantizeOptions): 'file' | 'dir' {
  return o.format === 'safetensors' || o.format === 'fakequant' || o.format === 'compressed-tensors' || (o.format === 'onnx' && !o.out.endsWith('.onnx')) ? 'dir' : 'file';
}

/**
 * The scheme a file format holds exactly. GPTQ-packed and compressed-tensors files store f16 scales,
 * so an int scheme with F32 or BF16 scales is quantized with F16 scales for them, and the report
 * and manifest name the scheme used (int8-channel → int8-channel-f16): `eval --w-bits` with that
 * name reproduces the file's weights.
 */
export function schemeForFormat(scheme: QuantScheme, format: QuantizeFormat): QuantScheme {
  const f16Scales = format === 'safetensors' || format === 'compressed-tensors';
  return f16Scales && scheme.kind === 'int' && scheme.scaleDtype !== 'F16' ? { ...scheme, scaleDtype: 'F16' } : scheme;
}

/** The files a run reads (model files, tokenizer, --calib, --imatrix, --recipe): the output never replaces one. */
async function runInputs(o: QuantizeOptions, probe: ModelWeights): Promise<string[]> {
  const inputs = await modelInputFiles(probe, o.tokenizer);
  if (o.calib && !isSelfCalibration(o.calib)) inputs.push(o.calib);
  if (o.imatrix) inputs.push(o.imatrix);
  // the recipe file this run came from (quantize --recipe)
  const recipePath = (o.recipe as { path?: unknown } | undefined)?.path;
  if (typeof recipePath === 'string') inputs.push(recipePath);
  return inputs;
}

/**
 * Quantizes `o.model` into `o.out`. The output is checked before any work (writable place, no
 * input replaced: model files, tokenizer, --calib, --imatrix; --force only over bitscale's own
 * output), locked, written and verified in a staging folder, and put in place only when the
 * whole run succeeded (formats/io/output.ts); the manifest then holds the output's sha256.
 */
export async function quantizeModel(req: QuantizeRequest): Promise<QuantizeReport> {
  const o: QuantizeOptions = { ...req, format: resolveQuantizeFormat(req.out, req.scheme, req.format) };
  // fp32/fp16 ONNX folders: export-onnx.ts checks, stages and verifies the folder itself
  if (o.format === 'onnx' && (await import('./onnx-float.js')).isFloatOnnxScheme(o.scheme)) return floatOnnxReport(o);
  parseScheme(o.scheme);
  const kind = outputKind(o);
  const base = basename(o.out);
  const sidecars = o.format === 'onnx' && kind === 'file' ? [`${base}.manifest.json`, `${base}.data`] : kind === 'file' || o.format === 'onnx' ? [`${base}.manifest.json`] : [];
  // streaming RTN: the worker threads start (module load, WebAssembly compile) while the model's
  // header is read and the output checked and staged, instead of after
  const pool = streamsRtn(o) ? new QuantPool(o.threads ?? availableParallelism()) : null;
  let probe: ModelWeights;
  try {
    probe = await loadModel(o.model, { tokenizer: o.tokenizer });
  } catch (e) {
    await pool?.close();
    throw e;
  }
  let inputs: string[];
  // an ONNX folder of the same model gets this run's variants added (the others are carried over)
  let update = false;
  try {
    const size = calibrationSize(probe.config, o);
    checkCalibrationBudget(size.windows, size.seqLen, probe.config);
    inputs = await runInputs(o, probe);
    if (o.format === 'onnx' && kind === 'dir') {
      const ox = await import('../export/onnx.js');
      update = await ox.isOnnxFolderOf(o.out, probe.config);
      // a variant the folder already holds is refused before quantizing, not after
      const sch = parseScheme(o.scheme);
      if (update && !o.overwrite && sch.kind === 'int') await ox.refuseExistingVariants(o.out, ox.onnxVariantsOfBits(sch.bits, o.onnxFloat ?? ['f32']));
    }
    // the model opened here is the one quantized (one header parse, one tokenizer built)
    return await withOutput(o.out, { kind, force: o.overwrite, update, inputs, sidecars, command: 'quantize' }, async (txn) => {
      // the staging folder is empty unless it carries a folder's variants (then --force replaces this run's variant there)
      const r = await quantizeResolved({ ...o, out: txn.staged, displayOut: o.out, overwrite: update ? o.overwrite : false }, probe, pool);
      const report = { ...r, out: o.out, manifest: txn.finalPath(r.manifest), files: r.files.map((f) => txn.finalPath(f)) };
      return report;
    });
  } finally {
    await pool?.close();
    await probe.close();
  }
}

/** Whether quantizeResolved takes the streaming RTN path (rtn-stream.ts). */
function streamsRtn(o: QuantizeOptions): boolean {
  return o.method === 'rtn' && o.targetBpw === undefined && o.format === 'gguf' && o.verify === false && !o.keepHost;
}

/** fp32 / fp16 ONNX variants: no quantization, the export's onnxruntime check is the verification. */
async function floatOnnxReport(o: QuantizeOptions): Promise<QuantizeReport> {
  const t0 = Date.now();
  const storages = o.onnxFloat ?? ['f32'];
  const { exportFloatOnnx } = await import('./onnx-float.js');
  const r = await exportFloatOnnx({ model: o.model, out: o.out, storages, tokenizer: o.tokenizer, overwrite: o.overwrite, signal: o.signal, recipe: o.recipe });
  const quality = { windows: 0, kld: 0, top1Agreement: 1, reloadMaxAbsLogitDiff: r.maxAbsLogitDiff, llamaCpp: null };
  return { out: o.out, manifest: r.manifest, format: 'onnx', scheme: storages.includes('f16') && !storages.includes('f32') ? 'fp16' : 'fp32', method: o.method, fileType: null, tensors: [], fallbacks: [], awq: [], plan: null, quality, seconds: (Date.now() - t0) / 1000, files: r.files };
}

/** Quantizes `weights` (opened and closed by the caller) as `o` says; `pool`: the workers of the streaming RTN path. */
async function quantizeResolved(o: QuantizeOptions, weights: ModelWeights, pool: QuantPool | null): Promise<QuantizeReport> {
  const t0 = Date.now();
  let scheme: QuantScheme = schemeForFormat(parseScheme(o.scheme), o.format);
  // fp16 / bf16 casts are llama.cpp's F16 / BF16 file types in a GGUF
  if (o.format === 'gguf' && scheme.kind === 'float' && scheme.granularity === null && (scheme.format === 'F16' || scheme.format === 'BF16')) scheme = { kind: 'ggml', type: scheme.format, recipe: scheme.format };
  if (o.format === 'gguf' && scheme.kind !== 'ggml') {
    throw new ConfigError('bad_option', 'GGUF output needs a llama.cpp file type (or ggml type) as the scheme', { field: '--scheme', expected: ftypeNames().map((n) => n.toLowerCase()).join(', '), found: o.scheme });
  }
  if (o.format === 'onnx' && (scheme.kind !== 'int' || scheme.granularity.kind !== 'group')) {
    throw new ConfigError('bad_option', 'ONNX output needs an int scheme with groups (MatMulNBits)', { field: '--scheme', expected: 'int4-g32, int4-g128-asym, …', found: o.scheme });
  }
  if (o.format === 'safetensors' && scheme.kind !== 'int') {
    throw new ConfigError('bad_option', 'GPTQ-packed safetensors need an int scheme', { field: '--scheme', expected: 'int4-g128, int4-g128-asym, int8-channel, …', found: o.scheme, hint: 'use --format fakequant for other schemes' });
  }
  if (o.format === 'compressed-tensors') (await import('./write-packed.js')).checkCtScheme(scheme);
  if (o.targetBpw !== undefined && scheme.kind !== 'ggml') {
    throw new ConfigError('bad_option', '--target-bpw chooses per-tensor ggml types; give a ggml scheme as the base', { field: '--target-bpw', found: o.scheme });
  }
  const seed = o.seed ?? 0;
  // RTN needs no calibration (ggml types then round without an imatrix unless --imatrix is given)
  const needStats = o.method !== 'rtn' || o.targetBpw !== undefined;
  const fileImatrix = o.imatrix ? await readImatrixFile(o.imatrix) : null;
  // every tensor's type, and llama.cpp's refusals, before any tensor is read
  const qplan = planQuantization(weights, scheme, { ...o, hasImatrix: !!fileImatrix || needStats });
  const imSource: ImatrixSource = fileImatrix ? { kind: 'file', file: o.imatrix!, has: (g) => fileImatrix.entries.has(g) } : needStats ? { kind: 'stats' } : { kind: 'none' };
  checkPlan(weights, qplan, imSource, o);
  // --target-bpw recipe: the data-driven allocation at the recipe's own size over the linears
  const targetBpw = o.targetBpw === 'recipe' ? linearBpw(weights, qplan) : o.targetBpw;
  if (streamsRtn(o) && pool) {
    return await rtnStreamingGguf(weights, scheme, qplan, fileImatrix, o, t0, pool);
  }
  // GPTQ/AWQ to GGUF without verification: one decoder block in memory at a time
  if (o.method !== 'rtn') {
    const st = await import('./block-stream.js');
    if (st.streamsCalibrated(o)) return await st.calibratedStreamingGguf(weights, scheme, o, t0, TOOL_VERSION);
  }
  // everything else holds the model in memory (engine, calibration, verification): that module and
  // its imports (onnxruntime among them) load only here
  const { quantizeInMemory } = await import('./in-memory.js');
  return await quantizeInMemory(weights, scheme, qplan, fileImatrix, { needStats, targetBpw, seed }, o, t0);
}

