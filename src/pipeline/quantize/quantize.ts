// `bitscale quantize`: load a model, calibrate on seeded windows of text (built-in text unless
// --calib), quantize layer by layer (RTN / GPTQ / AWQ onto int, NF4 or ggml grids; each layer sees
// the already-quantized layers before it), write GGUF / fake-quant safetensors / GPTQ-packed or
// compressed-tensors pack-quantized safetensors atomically, reload the output and compare its logits with the engine's, and write a
// manifest (input hashes, settings, seed, tool version, measured quality) beside it.
// Legend: W = windows, T = tokens per window, V = vocab, N/K = a linear's rows/columns.

import { readFile, stat } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { availableParallelism } from 'node:os';
import { ConfigError, IoError, NumericError } from '../../core/errors.js';
import { BITSCALE_VERSION } from '../../core/version.js';
import { ProgressTracker, checkAborted, type ProgressFn } from '../../core/progress.js';
import type { QuantTensor, Tensor } from '../../core/tensor.js';
import { compareLogitRows } from '../../eval/divergence.js';
import { LlamaEngine } from '../../engine/model.js';
import { prepareHostModel, type HostModel } from '../../engine/host.js';
import { atomicWriteFile, readImatrixFile, sha256File, withOutput } from '../../formats/io/index.js';
import { importance, type Imatrix } from '../../formats/imatrix/index.js';
import { modelInputFiles } from '../../model/inputs.js';
import { loadModel } from '../../model/load.js';
import { hfToGguf } from '../../model/names.js';
import { saveModel } from '../../model/save.js';
import { roundToF16 } from '../../numerics/float16.js';
import { assertFinite } from '../../numerics/finite.js';
import { parseScheme, formatScheme } from '../../quant/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { CalibrationRunner, embedWindowStates } from '../calibrate/batch.js';
import { calibrationSize, isSelfCalibration, resolveCalibration } from '../calibrate/windows.js';
import { checkCalibrationBudget } from '../limits.js';
import { quantizeCalibratedLayer } from './calibrated-layer.js';
import { OrtGemm } from '../../engine/gemm.js';
import { quantizeLayerLinears, quantizeOtherTensors, reportFallbacks, reportTensors, type AwqRecord, type LinearResult } from './layer.js';
import { checkPlan, ggufSaveOptions, linearBpw, planQuantization, recipeSettings, type GgufRecipeOptions, type ImatrixSource, type QuantPlan } from './plan.js';
import { ftypeNames, type LlamaFtype } from '../../core/ftype.js';
import { GGML_TYPES } from '../../core/dtype.js';
import type { ModelWeights } from '../../model/weights.js';
import { checkTargetBpw, planMixedPrecision, type MixedPlanResult, type MixedSensitivity } from './mixed.js';
import { checkCtScheme, checkPackedLinears, writeCtSafetensors, writeGptqSafetensors } from './write-packed.js';
import { compareWithLlamaCpp, type LlamaCppCheck } from './verify-llamacpp.js';
import { llamaCppTolerance, reloadTolerance, verdict, verdictText, type CheckVerdict } from './tolerance.js';
import { writeQuantizedOnnx } from './write-onnx.js';
import { exportOnnx, hostWithGridCodes, isOnnxFolderOf, onnxVariantsOfBits, refuseExistingVariants } from '../export/onnx.js';
import { EngineSession } from '../../engine/session.js';
import { calibratedStreamingGguf, streamsCalibrated } from './block-stream.js';
import { hashFilesOffThread, writeRtnGguf } from './rtn-stream.js';
import { resolveQuantizeFormat } from './output-format.js';
import { exportFloatOnnx, isFloatOnnxScheme } from './onnx-float.js';

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

async function hashInput(path: string): Promise<Record<string, string>> {
  const st = await stat(path);
  if (st.isFile()) return { [path]: await sha256File(path) };
  const { readdir } = await import('node:fs/promises');
  const out: Record<string, string> = {};
  for (const f of (await readdir(path)).sort()) {
    if (/\.(safetensors|json|model)$/.test(f)) out[join(path, f)] = await sha256File(join(path, f));
  }
  return out;
}

/**
 * KL(P_ref ‖ P_test) per token (nats) and top-1 agreement over the windows, with the largest logit
 * change the quantization caused and the float model's largest |logit| (the scales the
 * verification tolerances are stated in).
 */
async function compareLogits(ref: LlamaEngine, test: LlamaEngine, windows: number[][]): Promise<{ kld: number; top1: number; maxAbs: number; scale: number }> {
  let kl = 0;
  let agree = 0;
  let n = 0;
  let maxAbs = 0;
  let scale = 0;
  for (const w of windows) {
    const a = await ref.forward(w);
    const b = await test.forward(w);
    const c = compareLogitRows(a, b, ref.config.vocabSize);
    kl += c.klSum;
    agree += c.agree;
    n += c.rows;
    for (let i = 0; i < a.length; i++) {
      maxAbs = Math.max(maxAbs, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(a[i]));
    }
  }
  return { kld: kl / n, top1: agree / n, maxAbs, scale };
}

/**
 * RTN to GGUF without calibration or verification, streamed (src/pipeline/quantize/rtn-stream.ts): each
 * linear is read, quantized to its ggml type (imatrix from --imatrix if given) on `threads` worker
 * threads and written, the stages overlapped; the input is hashed on another thread meanwhile.
 */
async function rtnStreamingGguf(weights: ModelWeights, scheme: QuantScheme, qplan: QuantPlan, fileImatrix: Imatrix | null, o: QuantizeOptions, t0: number): Promise<QuantizeReport> {
  if (scheme.kind !== 'ggml') throw new ConfigError('internal', 'streaming RTN is for ggml schemes');
  const inputHash = hashInputOffThread(o.model);
  inputHash.catch(() => {}); // awaited below; a failure before then must not go unhandled
  const tensors: QuantizeReport['tensors'] = [];
  const fallbacks: string[] = [];
  const save = ggufSaveOptions(qplan, o, fileImatrix);
  const res = await writeRtnGguf(weights, o.out, {
    threads: o.threads ?? availableParallelism(),
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

/** GPTQ packing constraints, checked before any work: K·b and N·b multiples of 32, K a multiple of G. */
function checkGptqShapes(host: HostModel, scheme: QuantScheme): void {
  if (scheme.kind !== 'int') return;
  const b = scheme.bits;
  const g = scheme.granularity.kind === 'group' ? scheme.granularity.size : 0;
  for (const [name, w] of host.tensors) {
    if (!isLinear(name)) continue;
    const c = host.config;
    const K = /down_proj/.test(name) ? c.intermediateSize : /o_proj/.test(name) ? c.nHeads * c.headDim : c.hiddenSize;
    const N = w.length / K;
    if ((K * b) % 32 || (N * b) % 32 || (g && K % g)) {
      throw new ConfigError('unsupported', 'GPTQ-packed safetensors need K·bits and N·bits to be multiples of 32 and K a multiple of the group size', {
        tensor: name, expected: `[N, K] with those properties for ${b} bits, group ${g || 'per-channel'}`, found: `[${N}, ${K}]`, hint: 'use --format fakequant or gguf for this model',
      });
    }
  }
}

function isLinear(name: string): boolean {
  return /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/.test(name);
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
  // fp32/fp16 ONNX folders: pipeline/export/onnx.ts checks, stages and verifies the folder itself
  if (o.format === 'onnx' && isFloatOnnxScheme(o.scheme)) return floatOnnxReport(o);
  parseScheme(o.scheme);
  const kind = outputKind(o);
  const base = basename(o.out);
  const sidecars = o.format === 'onnx' && kind === 'file' ? [`${base}.manifest.json`, `${base}.data`] : kind === 'file' || o.format === 'onnx' ? [`${base}.manifest.json`] : [];
  const probe = await loadModel(o.model, { tokenizer: o.tokenizer });
  let inputs: string[];
  // an ONNX folder of the same model gets this run's variants added (the others are carried over)
  let update = false;
  try {
    const size = calibrationSize(probe.config, o);
    checkCalibrationBudget(size.windows, size.seqLen, probe.config);
    inputs = await runInputs(o, probe);
    if (o.format === 'onnx' && kind === 'dir') update = await isOnnxFolderOf(o.out, probe.config);
    // a variant the folder already holds is refused before quantizing, not after
    const sch = parseScheme(o.scheme);
    if (update && !o.overwrite && sch.kind === 'int') await refuseExistingVariants(o.out, onnxVariantsOfBits(sch.bits, o.onnxFloat ?? ['f32']));
  } finally {
    await probe.close();
  }
  return withOutput(o.out, { kind, force: o.overwrite, update, inputs, sidecars, command: 'quantize' }, async (txn) => {
    // the staging folder is empty unless it carries a folder's variants (then --force replaces this run's variant there)
    const r = await quantizeResolved({ ...o, out: txn.staged, displayOut: o.out, overwrite: update ? o.overwrite : false });
    const report = { ...r, out: o.out, manifest: txn.finalPath(r.manifest), files: r.files.map((f) => txn.finalPath(f)) };
    return report;
  });
}

/** fp32 / fp16 ONNX variants: no quantization, the export's onnxruntime check is the verification. */
async function floatOnnxReport(o: QuantizeOptions): Promise<QuantizeReport> {
  const t0 = Date.now();
  const storages = o.onnxFloat ?? ['f32'];
  const r = await exportFloatOnnx({ model: o.model, out: o.out, storages, tokenizer: o.tokenizer, overwrite: o.overwrite, signal: o.signal, recipe: o.recipe });
  const quality = { windows: 0, kld: 0, top1Agreement: 1, reloadMaxAbsLogitDiff: r.maxAbsLogitDiff, llamaCpp: null };
  return { out: o.out, manifest: r.manifest, format: 'onnx', scheme: storages.includes('f16') && !storages.includes('f32') ? 'fp16' : 'fp32', method: o.method, fileType: null, tensors: [], fallbacks: [], awq: [], plan: null, quality, seconds: (Date.now() - t0) / 1000, files: r.files };
}

async function quantizeResolved(o: QuantizeOptions): Promise<QuantizeReport> {
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
  if (o.format === 'compressed-tensors') checkCtScheme(scheme);
  if (o.targetBpw !== undefined && scheme.kind !== 'ggml') {
    throw new ConfigError('bad_option', '--target-bpw chooses per-tensor ggml types; give a ggml scheme as the base', { field: '--target-bpw', found: o.scheme });
  }
  const seed = o.seed ?? 0;
  const weights = await loadModel(o.model, { tokenizer: o.tokenizer });
  try {
    // RTN needs no calibration (ggml types then round without an imatrix unless --imatrix is given)
    const needStats = o.method !== 'rtn' || o.targetBpw !== undefined;
    const fileImatrix = o.imatrix ? await readImatrixFile(o.imatrix) : null;
    // every tensor's type, and llama.cpp's refusals, before any tensor is read
    const qplan = planQuantization(weights, scheme, { ...o, hasImatrix: !!fileImatrix || needStats });
    const imSource: ImatrixSource = fileImatrix ? { kind: 'file', file: o.imatrix!, has: (g) => fileImatrix.entries.has(g) } : needStats ? { kind: 'stats' } : { kind: 'none' };
    checkPlan(weights, qplan, imSource, o);
    // --target-bpw recipe: the data-driven allocation at the recipe's own size over the linears
    const targetBpw = o.targetBpw === 'recipe' ? linearBpw(weights, qplan) : o.targetBpw;
    if (o.method === 'rtn' && o.targetBpw === undefined && o.format === 'gguf' && o.verify === false && !o.keepHost) {
      return await rtnStreamingGguf(weights, scheme, qplan, fileImatrix, o, t0);
    }
    // GPTQ/AWQ to GGUF without verification: one decoder block in memory at a time
    if (streamsCalibrated(o)) return await calibratedStreamingGguf(weights, scheme, o, t0, TOOL_VERSION);
    if (!weights.tokenizer) throw new ConfigError('bad_option', 'the model has no tokenizer; pass --tokenizer', { field: '--tokenizer' });
    const c = weights.config;
    const { windows: nWin, seqLen } = calibrationSize(c, o);
    const host = await prepareHostModel(weights);
    if (targetBpw !== undefined) checkTargetBpw(host, targetBpw);
    // a float copy only where something reads it (verification, sensitivity for --target-bpw)
    const keepFloat = (o.verify ?? true) || o.targetBpw !== undefined;
    const floatHost: HostModel = keepFloat ? { config: c, tensors: new Map([...host.tensors].map(([k, v]) => [k, v.slice()])), lowBit: new Map() } : host;
    const imFor = (name: string): Float32Array | undefined => {
      const e = fileImatrix?.entries.get(hfToGguf(name) ?? name);
      return e ? importance(e) : undefined;
    };
    if (o.format === 'safetensors') checkGptqShapes(host, scheme);
    if (o.format === 'compressed-tensors') checkCtScheme(scheme, host);
    // generated windows (--calib self) come from the float model, before any layer is quantized
    const calib = await resolveCalibration(o.calib, weights.tokenizer, floatHost, { windows: needStats ? nWin : 1, seqLen, seed, signal: o.signal, onProgress: o.onProgress, tokens: o.calibTokens });
    const wins = calib.windows;
    const plan = targetBpw !== undefined ? await planMixedPrecision(floatHost, wins, scheme, targetBpw, o.signal, o.onProgress, o.mixedSensitivity, o.method, { actOrder: o.actOrder, percdamp: o.percdamp }) : null;
    // mixed precision chooses the linears; the recipe everything else (and the linears otherwise)
    const targetOf = (name: string) => plan?.targets.get(name) ?? qplan.targets.get(name);

    const results: LinearResult[] = [];
    const awq: AwqRecord[] = [];
    const track = new ProgressTracker('quantize', c.nLayers, o.onProgress, 'layer');
    const runner = needStats ? new CalibrationRunner(c, seqLen) : null;
    const gemm = new OrtGemm();
    try {
      const xs = runner ? embedWindowStates(host.tensors.get('model.embed_tokens.weight')!, c.hiddenSize, wins) : null;
      for (let l = 0; l < c.nLayers; l++) {
        checkAborted(o.signal);
        const lo = { method: o.method, scheme, targetOf, imatrix: fileImatrix ? imFor : undefined, actOrder: o.actOrder, percdamp: o.percdamp, signal: o.signal };
        if (runner && xs) {
          const r = await quantizeCalibratedLayer(host, { runner, xs, layer: l, layers: c.nLayers, lo, gram: true, gemm: gemm.gemm, onProgress: o.onProgress, signal: o.signal });
          results.push(...r.results);
          awq.push(...r.awq);
        } else {
          results.push(...(await quantizeLayerLinears(host, l, null, lo)));
        }
        track.tick(`layer ${l}`);
      }
    } finally {
      await runner?.close();
      await gemm.close();
    }

    // the token embedding and the output, as the recipe has them (the host keeps the decoded values)
    results.push(...quantizeOtherTensors(host, qplan.targets, fileImatrix ? imFor : undefined));
    // the quantized weights are finite (a scheme whose range a weight overflows gives ±Inf)
    for (const r of results) assertFinite(host.tensors.get(r.name)!, { file: o.displayOut ?? o.model, tensor: r.name, hint: `the ${formatScheme(scheme)} grid cannot hold this weight; nothing was written` }, 'the quantized weights hold a non-finite value');
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

    // measured quality: held-out windows (another seed), float vs quantized engine, and the reload
    const verify = o.verify ?? true;
    const evalWins = verify ? await calib.heldOut(2, seed + 7919) : [];
    const refEngine = LlamaEngine.fromHost(floatHost);
    const qEngine = LlamaEngine.fromHost(host);
    // verification can take a while (reload, llama.cpp): one progress line per check, named as it starts
    const llamaCheck = verify && o.format === 'gguf' && o.checkLlamaCpp !== false;
    const vt = new ProgressTracker('verify', verify ? (onnxFolderDiff !== null ? 1 : llamaCheck ? 3 : 2) : 0, o.onProgress, 'check');
    if (verify) vt.emit('KL divergence vs the float model on held-out windows');
    const q = verify ? await compareLogits(refEngine, qEngine, evalWins) : { kld: NaN, top1: NaN, maxAbs: NaN, scale: NaN };
    const shown = o.displayOut ?? o.out;
    if (verify && !(Number.isFinite(q.kld) && Number.isFinite(q.maxAbs))) {
      throw new NumericError('non_finite', "the quantized model's outputs are not finite", { file: shown, field: 'KL divergence vs float', found: q.kld, hint: `a value overflowed the scheme's range (${formatScheme(scheme)}); nothing was written at the final path` });
    }
    if (verify) vt.tick(`KL divergence ${q.kld.toExponential(2)} nats/token (measured, no tolerance)`);
    // the stated tolerances (pipeline/quantize/tolerance.ts), known before the checks so each prints its verdict
    const reloadTol = o.tolerance?.reload ?? reloadTolerance(q.scale);
    const llamaTol = o.tolerance?.llamaCpp ?? llamaCppTolerance(c.nLayers, q.scale);
    let reloadDiff: number | null = null;
    let llamaCpp: LlamaCppCheck | null = null;
    if (onnxFolderDiff !== null) {
      reloadDiff = onnxFolderDiff;
    } else if (verify && o.format === 'onnx') {
      const sess = await EngineSession.fromOnnx(o.out);
      try {
        reloadDiff = 0;
        for (const w of evalWins) {
          const pos = { dtype: 'I64' as const, shape: [w.length], data: BigInt64Array.from(w.map((_, i) => BigInt(i))) };
          const r = await sess.run({ tokens: { dtype: 'I64', shape: onnxTokensShape, data: BigInt64Array.from(w.map((t) => BigInt(t))) }, positions: pos }, ['logits']);
          const a = r.logits.data as Float32Array;
          const b = await qEngine.forward(w);
          for (let i = 0; i < a.length; i++) reloadDiff = Math.max(reloadDiff, Math.abs(a[i] - b[i]));
        }
      } finally {
        await sess.release();
      }
      vt.tick(`onnxruntime on the file: ${verdictText(verdict(reloadDiff, reloadTol))}`);
    } else if (verify) {
      const back = await loadModel(o.out, { tokenizer: o.tokenizer });
      try {
        // packed safetensors: every linear must dequantize to exactly the weights this run computed
        // (the readers use the fp16 scales the grids rounded with), and the float tensors were
        // rounded to the file's F16 above, so the logits below agree to float rounding
        if (o.format === 'safetensors' || o.format === 'compressed-tensors') await checkPackedLinears(back, host, results, o.format === 'safetensors' ? 'GPTQ' : 'compressed-tensors');
        const e = await LlamaEngine.create(back);
        if (llamaCheck) {
          new ProgressTracker('llama.cpp', 1, o.onProgress, 'check').emit('loading the GGUF in node-llama-cpp and comparing logits');
          llamaCpp = await compareWithLlamaCpp(o.out, evalWins, c.vocabSize, (w) => e.forward(w));
          vt.tick(llamaCpp.maxAbsLogitDiff === null ? `llama.cpp: ${llamaCpp.available ? 'failed' : 'not installed'}` : `llama.cpp on the file: ${verdictText(verdict(llamaCpp.maxAbsLogitDiff, llamaTol))}`);
        }
        reloadDiff = 0;
        for (const w of evalWins) {
          const a = await e.forward(w);
          const b = await qEngine.forward(w);
          for (let i = 0; i < a.length; i++) reloadDiff = Math.max(reloadDiff, Math.abs(a[i] - b[i]));
        }
        await e.close();
        vt.tick(`reloaded file: ${verdictText(verdict(reloadDiff, reloadTol))}`);
      } finally {
        await back.close();
      }
    }
    await refEngine.close();
    await qEngine.close();
    const checks = {
      // an ONNX folder reports its export check's difference even with verify off: no verdict without the logit scale
      reload: reloadDiff === null || !verify ? null : verdict(reloadDiff, reloadTol),
      llamaCpp: llamaCpp?.available && llamaCpp.maxAbsLogitDiff !== null ? verdict(llamaCpp.maxAbsLogitDiff, llamaTol) : null,
    };
    if (checks.reload && !checks.reload.pass) {
      throw new NumericError('mismatch', 'the written file does not reproduce the quantized model', { file: shown, field: 'reload check', expected: `max |Δ logit| <= ${checks.reload.tolerance.toExponential(2)}`, found: checks.reload.maxAbsLogitDiff, hint: 'nothing was written at the final path' });
    }
    if (llamaCpp?.available && llamaCpp.maxAbsLogitDiff === null) {
      throw new NumericError('mismatch', 'llama.cpp could not run the written file', { file: shown, field: 'llama.cpp check', found: llamaCpp.error ?? 'no logits', hint: 'nothing was written at the final path' });
    }
    if (checks.llamaCpp && !checks.llamaCpp.pass) {
      throw new NumericError('mismatch', "llama.cpp's logits on the written file differ from the engine's beyond the tolerance", { file: shown, field: 'llama.cpp check', expected: `max |Δ logit| <= ${checks.llamaCpp.tolerance.toExponential(2)}`, found: checks.llamaCpp.maxAbsLogitDiff, hint: 'nothing was written at the final path' });
    }

    const report: QuantizeReport = {
      out: o.out,
      manifest: '',
      format: o.format,
      scheme: formatScheme(scheme),
      method: o.method,
      fileType: o.format === 'gguf' ? qplan.ftype : null,
      tensors: reportTensors(results),
      fallbacks: reportFallbacks(results),
      awq,
      plan,
      quality: { windows: evalWins.length, kld: q.kld, top1Agreement: q.top1, logitScale: q.scale, maxAbsLogitDiff: q.maxAbs, reloadMaxAbsLogitDiff: reloadDiff, llamaCpp, checks },
      seconds: (Date.now() - t0) / 1000,
      files,
      ...(o.keepHost ? { host } : {}),
    };
    const isDir = o.format === 'safetensors' || o.format === 'fakequant' || o.format === 'compressed-tensors' || onnxDtypes.length > 0;
    const manifestPath = isDir ? join(o.out, 'bitscale-manifest.json') : `${o.out}.manifest.json`;
    report.manifest = manifestPath;
    const manifest = {
      tool: 'bitscale',
      version: TOOL_VERSION,
      command: 'quantize',
      input: { model: o.model, sha256: await hashInput(o.model) },
      calibration: { source: calib.source, windows: needStats ? nWin : 0, seqLen, seed, imatrix: o.imatrix ?? null },
      settings: { format: o.format, scheme: formatScheme(scheme), method: o.method, actOrder: !!o.actOrder, percdamp: o.percdamp ?? 0.01, targetBpw: targetBpw ?? null, targetBpwFrom: o.targetBpw === 'recipe' ? 'recipe' : null, mixedSensitivity: o.targetBpw !== undefined ? (o.mixedSensitivity ?? 'kl') : null, ...recipeSettings(qplan, o) },
      output: { files },
      tensors: report.tensors,
      fallbacks: report.fallbacks,
      awq,
      plan: plan ? plan.plan : null,
      quality: report.quality,
      recipe: o.recipe ?? null,
    };
    if (onnxDtypes.length) {
      // the ONNX folder has one manifest for all its variants: this run's details go to its variants
      const folder = JSON.parse(await readFile(manifestPath, 'utf8')) as { variants?: Record<string, Record<string, unknown>> } & Record<string, unknown>;
      const { tool: _t, version: _v, command: _c, output: _o, ...details } = manifest;
      for (const d of onnxDtypes) if (folder.variants?.[d]) folder.variants[d].quantize = details;
      folder.quantize = details;
      await atomicWriteFile(manifestPath, JSON.stringify(folder, null, 2) + '\n', { overwrite: true });
      return report;
    }
    await atomicWriteFile(manifestPath, JSON.stringify(manifest, null, 2) + '\n', { overwrite: true });
    return report;
  } finally {
    await weights.close();
  }
}

