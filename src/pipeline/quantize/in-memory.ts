// `bitscale quantize` with the model in memory: every path but the streaming ones (RTN to GGUF
// without verification, rtn-stream.ts; calibrated GGUF, quantize-stream.ts). Calibrates on
// seeded windows, quantizes layer by layer (each layer sees the quantized layers before it),
// writes GGUF / fake-quant / GPTQ-packed / compressed-tensors safetensors / ONNX, reloads the
// output and compares its logits with the engine's (and llama.cpp's), and writes the manifest.
// Split from quantize.ts so that the streaming RTN path starts without the engine, onnxruntime
// and the calibration and export modules (issue 12's start-up cost); quantize.ts loads it on use.
// Legend: W = windows, T = tokens per window, V = vocab, N/K = a linear's rows/columns.

import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, NumericError } from '../../core/errors.js';
import { BITSCALE_VERSION } from '../../core/version.js';
import { ProgressTracker, checkAborted } from '../../core/progress.js';
import type { QuantTensor, Tensor } from '../../core/tensor.js';
import { compareLogitRows } from '../../eval/divergence.js';
import { LlamaEngine } from '../../engine/model.js';
import { prepareHostModel, type HostModel } from '../../engine/host.js';
import { atomicWriteFile, sha256File } from '../../formats/io/index.js';
import { importance, type Imatrix } from '../../formats/imatrix/index.js';
import { loadModel } from '../../model/load.js';
import { hfToGguf } from '../../model/names.js';
import { saveModel } from '../../model/save.js';
import type { ModelWeights } from '../../model/weights.js';
import { roundToF16 } from '../../numerics/float16.js';
import { assertFinite } from '../../numerics/finite.js';
import { formatScheme } from '../../quant/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { CalibrationRunner, embedWindowStates } from '../calibrate/batch.js';
import { calibrationSize, resolveCalibration } from '../calibrate/windows.js';
import { quantizeCalibratedLayer } from './calibrated-layer.js';
import { OrtGemm } from '../../engine/gemm.js';
import { quantizeLayerLinears, quantizeOtherTensors, reportFallbacks, reportTensors, type AwqRecord, type LinearResult } from './layer.js';
import { ggufSaveOptions, recipeSettings, type QuantPlan } from './plan.js';
import { checkTargetBpw, planMixedPrecision } from './mixed.js';
import { checkCtScheme, checkPackedLinears, writeCtSafetensors, writeGptqSafetensors } from './write-packed.js';
import { compareWithLlamaCpp, type LlamaCppCheck } from './verify-llamacpp.js';
import { llamaCppTolerance, reloadTolerance, verdict, verdictText } from './tolerance.js';
import { writeQuantizedOnnx } from './write-onnx.js';
import { exportOnnx, hostWithGridCodes } from '../export/onnx.js';
import { EngineSession } from '../../engine/session.js';
import type { QuantizeOptions, QuantizeReport } from './quantize.js';

const TOOL_VERSION = BITSCALE_VERSION;

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

/** What quantizeResolved (quantize.ts) settled before handing over: whether statistics are needed, the bits-per-weight target, the seed. */
export interface InMemorySettings {
  needStats: boolean;
  targetBpw: number | undefined;
  seed: number;
}

/**
 * Quantizes `weights` (opened by the caller, who closes it) in memory and writes `o.out` with its
 * manifest; `qplan` is the checked GGUF plan, `fileImatrix` the --imatrix file's contents.
 */
export async function quantizeInMemory(weights: ModelWeights, scheme: QuantScheme, qplan: QuantPlan, fileImatrix: Imatrix | null, s: InMemorySettings, o: QuantizeOptions, t0: number): Promise<QuantizeReport> {
  const { needStats, targetBpw, seed } = s;
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
  // --out DIR (not *.onnx): the transformers.js folder (export-onnx.ts), already checked in onnxruntime
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
  // the stated tolerances (quantize-tolerance.ts), known before the checks so each prints its verdict
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
}
