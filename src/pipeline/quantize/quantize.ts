// `bitscale quantize`: load a model, calibrate on seeded windows of text (built-in text unless
// --calib), quantize layer by layer (RTN / GPTQ / AWQ onto int, NF4 or ggml grids; each layer sees
// the already-quantized layers before it), write GGUF / fake-quant safetensors / GPTQ-packed or
// compressed-tensors pack-quantized safetensors atomically, reload the output and compare its logits with the engine's, and write a
// manifest (input hashes, settings, seed, tool version, measured quality) beside it.
// This file is the orchestration; each step has its module:
//   plan (plan.ts, mixed.ts) → calibrate/quantize (../calibrate/, layers.ts) → write per format
//   (write.ts) → verify (verify.ts) → report and manifest (manifest.ts);
// the two bounded-memory GGUF paths are rtn-stream.ts (RTN) and block-stream.ts (GPTQ/AWQ).
// Only what the streaming RTN path runs is imported statically; the engine, calibration, the
// writers other than GGUF and verification are imported where a run takes them, so `quantize
// --method rtn --no-verify` to GGUF starts without onnxruntime, protobuf or the tokenizers library.
// Legend: W = windows, T = tokens per window, V = vocab, N/K = a linear's rows/columns.

import { readFile } from 'node:fs/promises';
import type { HostModel } from '../../engine/host.js';
import { basename, join } from 'node:path';
import { availableParallelism, totalmem } from 'node:os';
import { ConfigError } from '../../core/errors.js';
import { atomicWriteFile, readImatrixFile, withOutput } from '../../formats/io/index.js';
import { importance, type Imatrix } from '../../formats/imatrix/index.js';
import { modelInputFiles } from '../../model/inputs.js';
import { loadModel } from '../../model/load.js';
import { hfToGguf } from '../../model/names.js';
import { parseScheme, formatScheme } from '../../quant/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { calibrationSize, isSelfCalibration, resolveCalibration } from '../calibrate/windows.js';
import { checkCalibrationBudget } from '../limits.js';
import { reportFallbacks, reportTensors } from './layer.js';
import { checkPlan, ggufSaveOptions, isLinearName, linearBpw, planQuantization, recipeSettings, type ImatrixSource, type QuantPlan } from './plan.js';
import { ftypeNames } from '../../core/ftype.js';
import { GGML_TYPES } from '../../core/dtype.js';
import type { ModelWeights } from '../../model/weights.js';
import { writeRtnGguf } from './rtn-stream.js';
import { float32Bytes, verifiesStoredFile } from './verify-stored.js';
import { QuantPool } from '../../quant/node/worker-pool.js';
import { resolveQuantizeFormat } from './output-format.js';
import { tracePhase } from '../../core/phase-trace.js';
import { hashInput, hashInputOffThread, quantizeManifest, quantizeReport, writeQuantizeManifest, type InputDigests, type QuantizeManifestParts } from './manifest.js';
import { TOOL_VERSION, type QuantizeFormat, type QuantizeOptions, type QuantizeReport, type QuantizeRequest } from './types.js';

// the public names of `bitscale quantize`, defined with its steps (types.ts)
export { TOOL_VERSION };
export type { QuantizeFormat, QuantizeMethod, QuantizeOptions, QuantizeReport, QuantizeRequest } from './types.js';

/**
 * RTN to GGUF without calibration or verification, streamed (src/pipeline/quantize/rtn-stream.ts): each
 * linear is read, quantized to its ggml type (imatrix from --imatrix if given) on `threads` worker
 * threads and written, the stages overlapped; the input is hashed on another thread meanwhile.
 */
async function rtnStreamingGguf(weights: ModelWeights, scheme: QuantScheme, qplan: QuantPlan, fileImatrix: Imatrix | null, o: QuantizeOptions, t0: number, early?: EarlyStart, measure?: MeasureWritten): Promise<QuantizeReport> {
  if (scheme.kind !== 'ggml') throw new ConfigError('internal', 'streaming RTN is for ggml schemes');
  const inputHash = early?.inputHash ?? (o.rtnStream ? hashInput(o.model) : hashInputOffThread(o.model));
  inputHash.catch(() => {}); // awaited below; a failure before then must not go unhandled
  const tensors: QuantizeReport['tensors'] = [];
  const fallbacks: string[] = [];
  const save = ggufSaveOptions(qplan, o, fileImatrix);
  const res = await writeRtnGguf(weights, o.out, {
    threads: rtnThreads(o),
    pool: o.rtnStream?.pool ?? early?.pool ?? undefined,
    lookahead: o.rtnStream?.lookahead,
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
  const quality = measure ? await measure.check(o.out) : { windows: 0, kld: NaN, top1Agreement: NaN, reloadMaxAbsLogitDiff: null, llamaCpp: null };
  const report = quantizeReport(o, { manifest: `${o.out}.manifest.json`, scheme: formatScheme(scheme), method: 'rtn', fileType: qplan.ftype, tensors, fallbacks, quality, files: res.files });
  await writeQuantizeManifest(report, {
    model: o.model,
    ...(await inputHash),
    calibration: measure ? measure.calibration : null,
    settings: { format: o.format, scheme: formatScheme(scheme), method: 'rtn', imatrix: o.imatrix ?? null, streaming: true, ...recipeSettings(qplan, o) },
    quality: measure ? quality : 'not measured (--no-verify)',
    recipe: o.recipe,
    withAwqAndPlan: false,
  });
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}

/**
 * The checks of a streamed run with verification (verify-stored.ts): the written file against the
 * float model on held-out windows of the calibration text, which the manifest names.
 */
interface MeasureWritten {
  check: (written: string) => Promise<QuantizeReport['quality']>;
  calibration: QuantizeManifestParts['calibration'];
}

/** The held-out windows (the in-memory path's: 2 windows, seed + 7919) and the check on the written file. */
async function measureWritten(weights: ModelWeights, o: QuantizeOptions): Promise<MeasureWritten> {
  if (!weights.tokenizer) throw new ConfigError('bad_option', 'the model has no tokenizer; pass --tokenizer', { field: '--tokenizer' });
  const c = weights.config;
  const seed = o.seed ?? 0;
  const { seqLen } = calibrationSize(c, o);
  const calib = await resolveCalibration(o.calib, weights.tokenizer, { config: c, tensors: new Map(), lowBit: new Map() }, { windows: 1, seqLen, seed, signal: o.signal, tokens: o.calibTokens });
  const windows = await calib.heldOut(2, seed + 7919);
  const { verifyStoredFile } = await import('./verify-stored.js');
  return {
    check: (written) => verifyStoredFile(o, weights, written, windows),
    calibration: { source: calib.source, windows: 0, seqLen, seed, imatrix: o.imatrix ?? null, runtime: 'native' },
  };
}

/** Whether the run streams RTN to GGUF (rtnStreamingGguf): decided from the options alone, so the input hash and the worker pool can start before the headers are read. */
function streamsRtnGguf(o: QuantizeOptions): boolean {
  return o.method === 'rtn' && o.targetBpw === undefined && o.format === 'gguf' && o.verify === false && !o.keepHost;
}

/** Worker threads of the streaming RTN path. */
const rtnThreads = (o: QuantizeOptions): number => o.threads ?? availableParallelism();

/**
 * What a streaming RTN run starts before the model's headers are read, on threads of their own:
 * the input's sha256 and the worker pool (its threads boot and compile the WebAssembly kernels
 * while this thread parses the headers and plans). Both are ended by quantizeModel, used or not.
 */
interface EarlyStart {
  inputHash: Promise<InputDigests>;
  /** null where the pool refused the options (bad --threads): the run's own pool then throws that error where it always did */
  pool: QuantPool | null;
}

function startEarly(o: QuantizeOptions, signal: AbortSignal): EarlyStart {
  const inputHash = hashInputOffThread(o.model, signal);
  inputHash.catch(() => {}); // awaited by the run; a failure before then must not go unhandled
  let pool: QuantPool | null = null;
  try {
    pool = new QuantPool(rtnThreads(o));
    tracePhase('rtn: pool started');
  } catch {
    pool = null;
  }
  return { inputHash, pool };
}

/**
 * The in-memory paths hold the model in float32 about twice (the quantized copy and the float one
 * sensitivities read) and, with verification, about five times (engines over both, the reloaded
 * file): refused before any work where that exceeds the machine's memory, instead of being killed
 * by the kernel minutes in.
 */
export function checkInMemoryFits(weights: ModelWeights, o: QuantizeOptions, machineBytes = totalmem()): void {
  const copies = (o.verify ?? true) ? 5 : 2;
  const need = copies * float32Bytes(weights);
  if (need <= machineBytes) return;
  const gb = (x: number): string => `${(x / 2 ** 30).toFixed(1)} GiB`;
  throw new ConfigError('too_large', 'this run holds the model in float32 in memory, more than this machine has', {
    file: o.model,
    expected: `<= ${gb(machineBytes)} (the machine's memory)`,
    found: `≈ ${gb(need)} (${copies} float32 copies of ${gb(float32Bytes(weights))})`,
    hint: o.format === 'gguf' ? '--verify-on memory, --target-bpw and --calib self hold the model in memory; without them a GGUF run streams and checks the written file' : '--no-verify streams int/float schemes tensor by tensor; --format gguf streams and checks the written file',
  });
}

/** GPTQ packing constraints, checked before any work: K·b and N·b multiples of 32, K a multiple of G. */
function checkGptqShapes(host: HostModel, scheme: QuantScheme): void {
  if (scheme.kind !== 'int') return;
  const b = scheme.bits;
  const g = scheme.granularity.kind === 'group' ? scheme.granularity.size : 0;
  for (const [name, w] of host.tensors) {
    if (!isLinearName(name)) continue;
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
  if (o.format === 'onnx' && (await import('./onnx-float.js')).isFloatOnnxScheme(o.scheme)) return floatOnnxReport(o);
  parseScheme(o.scheme);
  // streaming RTN hashes the input and starts its worker pool on threads of their own: started
  // here, before the headers are read and the plan is made, they use the core that this
  // single-threaded start-up leaves idle (docs/performance.md, sixth and seventh rounds); ended
  // if not used
  const stop = streamsRtnGguf(o) && !o.rtnStream ? new AbortController() : null;
  const early = stop ? startEarly(o, stop.signal) : undefined;
  try {
    return await quantizeChecked(o, early);
  } finally {
    stop?.abort();
    await early?.pool?.close();
  }
}

async function quantizeChecked(o: QuantizeOptions, early: EarlyStart | undefined): Promise<QuantizeReport> {
  const kind = outputKind(o);
  const base = basename(o.out);
  const sidecars = o.format === 'onnx' && kind === 'file' ? [`${base}.manifest.json`, `${base}.data`] : kind === 'file' || o.format === 'onnx' ? [`${base}.manifest.json`] : [];
  // the headers are read once: the checks below and the run itself use this load (a 128k-token
  // vocabulary is ≈ 0.2 s of parsing on one thread, before any tensor is quantized)
  const weights = await loadModel(o.model, { tokenizer: o.tokenizer });
  tracePhase('quantize: headers read');
  try {
    const size = calibrationSize(weights.config, o);
    checkCalibrationBudget(size.windows, size.seqLen, weights.config);
    const inputs = await runInputs(o, weights);
    // an ONNX folder of the same model gets this run's variants added (the others are carried over)
    let update = false;
    if (o.format === 'onnx' && kind === 'dir') {
      const ox = await import('../export/onnx.js');
      update = await ox.isOnnxFolderOf(o.out, weights.config);
      // a variant the folder already holds is refused before quantizing, not after
      const sch = parseScheme(o.scheme);
      if (update && !o.overwrite && sch.kind === 'int') await ox.refuseExistingVariants(o.out, ox.onnxVariantsOfBits(sch.bits, o.onnxFloat ?? ['f32']));
    }
    return await withOutput(o.out, { kind, force: o.overwrite, update, inputs, sidecars, command: 'quantize' }, async (txn) => {
      // the staging folder is empty unless it carries a folder's variants (then --force replaces this run's variant there)
      const r = await quantizeResolved(weights, { ...o, out: txn.staged, displayOut: o.out, overwrite: update ? o.overwrite : false }, early);
      const report = { ...r, out: o.out, manifest: txn.finalPath(r.manifest), files: r.files.map((f) => txn.finalPath(f)) };
      return report;
    });
  } finally {
    await weights.close();
  }
}

/** fp32 / fp16 ONNX variants: no quantization, the export's onnxruntime check is the verification. */
async function floatOnnxReport(o: QuantizeOptions): Promise<QuantizeReport> {
  const t0 = Date.now();
  const storages = o.onnxFloat ?? ['f32'];
  const { exportFloatOnnx } = await import('./onnx-float.js');
  const r = await exportFloatOnnx({ model: o.model, out: o.out, storages, tokenizer: o.tokenizer, overwrite: o.overwrite, signal: o.signal, recipe: o.recipe });
  const quality = { windows: 0, kld: 0, top1Agreement: 1, reloadMaxAbsLogitDiff: r.maxAbsLogitDiff, llamaCpp: null };
  return quantizeReport(o, { manifest: r.manifest, scheme: storages.includes('f16') && !storages.includes('f32') ? 'fp16' : 'fp32', fileType: null, tensors: [], fallbacks: [], quality, seconds: (Date.now() - t0) / 1000, files: r.files });
}

/** The run on the loaded model `weights` (quantizeChecked loads it and closes it). */
async function quantizeResolved(weights: ModelWeights, o: QuantizeOptions, early?: EarlyStart): Promise<QuantizeReport> {
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
  if (streamsRtnGguf(o)) {
    return await rtnStreamingGguf(weights, scheme, qplan, fileImatrix, o, t0, early);
  }
  // GGUF with the checks on, a model too large to check in memory (or verifyOn 'file'): streamed as
  // with --no-verify, then the written file measured (verify-stored.ts)
  if (verifiesStoredFile(o, weights)) {
    const measure = await measureWritten(weights, o);
    if (o.method === 'rtn') return await rtnStreamingGguf(weights, scheme, qplan, fileImatrix, o, t0, undefined, measure);
    const { calibratedStreamingGguf } = await import('./block-stream.js');
    return await calibratedStreamingGguf(weights, scheme, o, t0, undefined, measure);
  }
  // int / float / code-book schemes into safetensors folders, streamed on Node's worker threads
  // (codec-stream.ts); the page (which brings its own pool in rtnStream) keeps the whole-model path
  if (o.method === 'rtn' && o.format !== 'gguf' && o.format !== 'onnx' && o.verify === false && !o.rtnStream) {
    const cs = await import('./codec-stream.js');
    if (cs.streamsCodec(o, scheme, weights)) return await cs.rtnStreamingCodec(weights, scheme, qplan, o, t0);
  }
  // the paths below need the engine (onnxruntime) and the writers: imported here, so the streaming
  // RTN run above starts without them
  if (o.calibRuntime === 'portable' && o.threads !== undefined) (await import('../../engine/ort-portable.js')).setPortableThreads(o.threads);
  const [{ calibratedStreamingGguf, streamsCalibrated }, { prepareHostModel }, { quantizeHostModel }, { writeQuantizedModel }, { verifyQuantized }, { checkCtScheme }] = await Promise.all([
    import('./block-stream.js'),
    import('../../engine/host.js'),
    import('./layers.js'),
    import('./write.js'),
    import('./verify.js'),
    import('./write-packed.js'),
  ]);
  // GPTQ/AWQ to GGUF without verification: one decoder block in memory at a time
  if (streamsCalibrated(o)) return await calibratedStreamingGguf(weights, scheme, o, t0);
  if (!weights.tokenizer) throw new ConfigError('bad_option', 'the model has no tokenizer; pass --tokenizer', { field: '--tokenizer' });
  const c = weights.config;
  const { windows: nWin, seqLen } = calibrationSize(c, o);
  // every streaming path is behind: this one holds the model in float32 (refused where it cannot fit)
  checkInMemoryFits(weights, o);
  const host = await prepareHostModel(weights);
  // --target-bpw measures sensitivities on the engine: imported only when asked for
  const mixed = targetBpw !== undefined ? await import('./mixed.js') : null;
  if (mixed && targetBpw !== undefined) mixed.checkTargetBpw(host, targetBpw);
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
  const calib = await resolveCalibration(o.calib, weights.tokenizer, floatHost, { windows: needStats ? nWin : 1, seqLen, seed, signal: o.signal, onProgress: o.onProgress, tokens: o.calibTokens, runtime: o.calibRuntime });
  const wins = calib.windows;
  const plan = mixed && targetBpw !== undefined ? await mixed.planMixedPrecision(floatHost, wins, scheme, targetBpw, o.signal, o.onProgress, o.mixedSensitivity, o.method, { actOrder: o.actOrder, percdamp: o.percdamp }, o.calibRuntime) : null;
  // mixed precision chooses the linears; the recipe everything else (and the linears otherwise)
  const targetOf = (name: string) => plan?.targets.get(name) ?? qplan.targets.get(name);

  const { results, awq } = await quantizeHostModel(o, { host, scheme, wins, seqLen, needStats, targetOf, otherTargets: qplan.targets, imatrix: fileImatrix ? imFor : undefined });
  const written = await writeQuantizedModel(o, { weights, host, results, scheme, qplan, fileImatrix, seqLen, seed });
  const { evalWins, q, reloadDiff, llamaCpp, checks } = await verifyQuantized(o, { config: c, floatHost, host, results, scheme, written, heldOut: calib.heldOut, seed });
  const { files, onnxDtypes } = written;
  const isDir = o.format === 'safetensors' || o.format === 'fakequant' || o.format === 'compressed-tensors' || onnxDtypes.length > 0;
  const report = quantizeReport(o, {
    manifest: isDir ? join(o.out, 'bitscale-manifest.json') : `${o.out}.manifest.json`,
    scheme: formatScheme(scheme),
    fileType: o.format === 'gguf' ? qplan.ftype : null,
    tensors: reportTensors(results),
    fallbacks: reportFallbacks(results),
    awq,
    plan,
    quality: { windows: evalWins.length, kld: q.kld, top1Agreement: q.top1, logitScale: q.scale, maxAbsLogitDiff: q.maxAbs, reloadMaxAbsLogitDiff: reloadDiff, llamaCpp, checks },
    seconds: (Date.now() - t0) / 1000,
    files,
    host: o.keepHost ? host : undefined,
  });
  const manifest: QuantizeManifestParts = {
    model: o.model,
    ...(await hashInput(o.model)),
    calibration: { source: calib.source, windows: needStats ? nWin : 0, seqLen, seed, imatrix: o.imatrix ?? null, runtime: o.calibRuntime ?? 'native' },
    settings: { format: o.format, scheme: formatScheme(scheme), method: o.method, actOrder: !!o.actOrder, percdamp: o.percdamp ?? 0.01, targetBpw: targetBpw ?? null, targetBpwFrom: o.targetBpw === 'recipe' ? 'recipe' : null, mixedSensitivity: o.targetBpw !== undefined ? (o.mixedSensitivity ?? 'kl') : null, ...recipeSettings(qplan, o) },
    quality: report.quality,
    recipe: o.recipe,
    withAwqAndPlan: true,
  };
  if (onnxDtypes.length) {
    // the ONNX folder has one manifest for all its variants: this run's details go to its variants
    const folder = JSON.parse(await readFile(report.manifest, 'utf8')) as { variants?: Record<string, Record<string, unknown>> } & Record<string, unknown>;
    const { tool: _t, version: _v, command: _c, output: _o, ...details } = quantizeManifest(report, manifest);
    for (const d of onnxDtypes) if (folder.variants?.[d]) folder.variants[d].quantize = details;
    folder.quantize = details;
    await atomicWriteFile(report.manifest, JSON.stringify(folder, null, 2) + '\n', { overwrite: true });
    return report;
  }
  await writeQuantizeManifest(report, manifest);
  return report;
}
