// `bitscale quantize` with calibration (GPTQ, AWQ) to GGUF in bounded memory: the model is never
// loaded whole. The calibration windows are embedded from the rows of the embedding matrix their
// tokens use. saveModel streams the file tensor by tensor, in order; when it reaches a decoder
// block, the block is read from the lazy sources, calibrated on the outputs of the
// already-quantized blocks before it (pipeline/quantize/calibrated-layer.ts), quantized, run again on its
// quantized weights to produce the next block's inputs, and dropped; the writer then takes the ggml
// bytes of its linears (and, for AWQ, the rescaled norm vectors and biases) and they are dropped
// too. The other tensors (embeddings, final norm, head) are read one at a time. Peak memory: one
// block's float tensors and statistics, the activations of the calibration windows, one block's
// quantized bytes, one tensor while writing.
// The semantics are those of the whole-model path in quantize.ts (same layer order, same inputs,
// same functions), so both write the same bytes for the same seed (test/pipeline/quantize/block-stream.test.ts).
// Legend: W = windows, T = tokens per window, E = hidden size, V = vocab.

import { ConfigError, ShapeError } from '../../core/errors.js';
import { ProgressTracker, checkAborted } from '../../core/progress.js';
import type { QuantTensor, Tensor } from '../../core/tensor.js';
import { expectedTensors, validateConfig, type HostModel } from '../../engine/host.js';
import { readImatrixFile } from '../../formats/io/index.js';
import { importance } from '../../formats/imatrix/index.js';
import { hfToGguf } from '../../model/names.js';
import { saveModel } from '../../model/save.js';
import type { ModelWeights } from '../../model/weights.js';
import { formatScheme } from '../../quant/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { CalibrationRunner, embedWindowStates, type WindowStates } from '../calibrate/batch.js';
import { bf16ToF32, f16ToF32 } from '../../numerics/float16.js';
import { calibrationSize, isSelfCalibration, resolveCalibration } from '../calibrate/windows.js';
import { quantizeCalibratedLayer } from './calibrated-layer.js';
import { OrtGemm } from '../../engine/gemm.js';
import { encodeGgmlTarget, reportFallbacks, reportTensors, type AwqRecord, type LinearResult } from './layer.js';
import { ggufSaveOptions, isLinearName, planQuantization, recipeSettings } from './plan.js';
import type { QuantizeOptions, QuantizeReport } from './types.js';
import { hashInput, quantizeReport, writeQuantizeManifest } from './manifest.js';

/**
 * Whether `quantizeModel` takes this path: calibrated methods to GGUF with nothing that needs the
 * whole model afterwards (verification compares the float and quantized models, keepHost returns
 * it, --target-bpw measures every tensor first). `--calib self` samples windows from the whole
 * float model, so it stays on the whole-model path.
 */
export function streamsCalibrated(o: QuantizeOptions): boolean {
  return (o.method === 'gptq' || o.method === 'awq') && o.format === 'gguf' && o.verify === false && !o.keepHost && o.targetBpw === undefined && !isSelfCalibration(o.calib);
}

/** Test hook: sees the per-layer map at its fullest (after quantization, before it is dropped). */
export interface StreamProbe {
  onLayer?: (layer: number, host: HostModel) => void;
}

/**
 * Layer 0's inputs [W, T, E] from the stored embedding [V, E]: float32, or F16/BF16 decoded row by
 * row for the tokens used only (a float32 copy of a 128k-token vocabulary would be 1 GiB).
 */
async function embedFromSource(weights: ModelWeights, windows: number[][]): Promise<WindowStates> {
  const c = weights.config;
  const E = c.hiddenSize;
  const src = weights.tensors.get('model.embed_tokens.weight')!;
  if (src.dtype !== 'F16' && src.dtype !== 'BF16' && src.dtype !== 'F32') return embedWindowStates(await src.readF32(), E, windows);
  const raw = (await src.read()) as Tensor;
  const T = windows[0]?.length ?? 0;
  const data = new Float32Array(windows.length * T * E);
  const dec = src.dtype === 'F16' ? f16ToF32 : src.dtype === 'BF16' ? bf16ToF32 : (x: number) => x;
  windows.forEach((w, i) =>
    w.forEach((t, j) => {
      const o = (i * T + j) * E;
      for (let e = 0; e < E; e++) data[o + e] = dec(raw.data[t * E + e] as number);
    }),
  );
  return { windows: windows.length, tokens: T, hidden: E, data };
}

/** The checks prepareHostModel makes, before any tensor data is read: config, names, shapes. */
function checkWeights(w: ModelWeights): void {
  validateConfig(w.config);
  for (const e of expectedTensors(w.config)) {
    const src = w.tensors.get(e.name);
    if (!src) throw new ShapeError('missing_tensor', 'model is missing a tensor', { file: w.source.path, tensor: e.name, expected: `[${e.shape.join(', ')}]`, found: 'nothing' });
    if (src.shape.length !== e.shape.length || src.shape.some((d, i) => d !== e.shape[i])) {
      throw new ShapeError('shape_mismatch', 'tensor shape does not match the config', { file: w.source.path, tensor: e.name, expected: `[${e.shape.join(', ')}]`, found: `[${src.shape.join(', ')}]` });
    }
  }
}

/** GPTQ / AWQ to GGUF, one decoder block in memory at a time (see the file comment). */
export async function calibratedStreamingGguf(weights: ModelWeights, scheme: QuantScheme, o: QuantizeOptions, t0: number, probe?: StreamProbe): Promise<QuantizeReport> {
  if (!streamsCalibrated(o) || scheme.kind !== 'ggml') throw new ConfigError('internal', 'streaming calibration is for GPTQ/AWQ to GGUF without verification');
  if (!weights.tokenizer) throw new ConfigError('bad_option', 'the model has no tokenizer; pass --tokenizer', { field: '--tokenizer' });
  checkWeights(weights);
  const c = weights.config;
  const seed = o.seed ?? 0;
  const { windows: nWin, seqLen } = calibrationSize(c, o);
  const fileImatrix = o.imatrix ? await readImatrixFile(o.imatrix) : null;
  const imFor = (name: string): Float32Array | undefined => {
    const e = fileImatrix?.entries.get(hfToGguf(name) ?? name);
    return e ? importance(e) : undefined;
  };
  // every tensor's type (the same plan quantizeModel checked), calibration statistics as the imatrix
  const qplan = planQuantization(weights, scheme, { ...o, hasImatrix: true });
  const targetOf = (name: string) => qplan.targets.get(name);
  // not 'self' (streamsCalibrated), so the windows come from text and no model is read here
  const calib = await resolveCalibration(o.calib, weights.tokenizer, { config: c, tensors: new Map(), lowBit: new Map() }, { windows: nWin, seqLen, seed, signal: o.signal, onProgress: o.onProgress, tokens: o.calibTokens });

  // the windows' first hidden states [W, T, E], cut from the embedding rows of their tokens
  const xs = await embedFromSource(weights, calib.windows);

  const layerNames: string[][] = Array.from({ length: c.nLayers }, () => []);
  for (const e of expectedTensors(c)) {
    const m = /^model\.layers\.(\d+)\./.exec(e.name);
    if (m) layerNames[Number(m[1])].push(e.name);
  }
  // AWQ folds its scales into norms (and v_proj/up_proj biases): small vectors written as F32
  const changedNorm = (n: string) => o.method === 'awq' && /(layernorm|_proj)\.(weight|bias)$/.test(n) && !isLinearName(n);
  const results: LinearResult[] = [];
  // the embedding and output, listed after the layers as the whole-model path lists them
  const others: LinearResult[] = [];
  const awq: AwqRecord[] = [];
  const track = new ProgressTracker('quantize', c.nLayers, o.onProgress, 'layer');
  const runner = new CalibrationRunner(c, seqLen);
  const gemm = new OrtGemm();
  const planned = (n: string) => {
    const t = changedNorm(n) ? undefined : qplan.targets.get(n);
    return t?.kind === 'ggml' ? t : undefined;
  };
  // the layer being written: its quantized linears' bytes and changed norms, until the writer has them
  const pending = new Map<string, Tensor | QuantTensor>();
  let done = -1;
  const quantizeThrough = async (layer: number): Promise<void> => {
    while (done < layer) {
      const l = ++done;
      checkAborted(o.signal);
      // one block's tensors under their canonical names: the calibration runner, awqLayer and
      // quantizeLayerLinears only index `model.layers.${l}.…`, so a HostModel holding just these serves them
      const host: HostModel = { config: c, tensors: new Map(), lowBit: new Map() };
      for (const n of layerNames[l]) host.tensors.set(n, await weights.tensors.get(n)!.readF32());
      const lo = { method: o.method, scheme, targetOf, imatrix: fileImatrix ? imFor : undefined, actOrder: o.actOrder, percdamp: o.percdamp, signal: o.signal };
      const r = await quantizeCalibratedLayer(host, { runner, xs, layer: l, layers: c.nLayers, lo, gram: true, gemm: gemm.gemm, onProgress: o.onProgress, signal: o.signal });
      for (const lr of r.results) {
        if (lr.method === 'copy') {
          results.push(lr);
          continue;
        }
        const shape = weights.tensors.get(lr.name)!.shape;
        pending.set(lr.name, { type: (lr.target as { type: QuantTensor['type'] }).type, shape, bytes: lr.ggmlBytes! });
        results.push({ ...lr, ggmlBytes: undefined });
      }
      awq.push(...r.awq);
      probe?.onLayer?.(l, host);
      for (const [n, t] of host.tensors) if (changedNorm(n)) pending.set(n, { dtype: 'F32', shape: weights.tensors.get(n)!.shape, data: t });
      host.tensors.clear();
      track.tick(`layer ${l}`);
    }
  };

  // each layer is quantized when the writer reaches its first tensor (tensors are written in
  // order, layer by layer): the file's header needs only the types, which follow from the shapes
  let res: Awaited<ReturnType<typeof saveModel>>;
  try {
    // block 0 before the writer starts: the writer's first tensor is the embedding, and the
    // suspended write loop would keep it alive while it waits for the next tensor
    if (c.nLayers > 0) await quantizeThrough(0);
    res = await saveModel(weights, o.out, {
      ...ggufSaveOptions(qplan, o, fileImatrix),
      signal: o.signal,
      // the header needs every type before any tensor is quantized: they are the plan's
      tensorType: (n) => (changedNorm(n) ? 'F32' : planned(n)?.type),
      tensor: async (n, src): Promise<Tensor | QuantTensor | null> => {
        const m = /^model\.layers\.(\d+)\./.exec(n);
        if (!m) {
          // the token embedding and the output: RTN onto the recipe's types while writing (one tensor in memory)
          const t = planned(n);
          if (!t) return null;
          if (t.copy) return await src.read();
          others.push({ name: n, target: t, method: 'rtn' });
          const K = src.shape[src.shape.length - 1];
          return { type: t.type, shape: src.shape, bytes: encodeGgmlTarget(t.type, await src.readF32(), src.shape.reduce((a, b) => a * b, 1) / K, K, imFor(n)) };
        }
        await quantizeThrough(Number(m[1]));
        const t = pending.get(n) ?? null;
        pending.delete(n);
        if (!t && planned(n)?.copy) return await src.read();
        return t;
      },
    });
  } finally {
    await runner.close();
    await gemm.close();
  }
  xs.data = new Float32Array(0);
  results.push(...others);

  const quality = { windows: 0, kld: NaN, top1Agreement: NaN, reloadMaxAbsLogitDiff: null, llamaCpp: null };
  const report = quantizeReport(o, { manifest: `${o.out}.manifest.json`, scheme: formatScheme(scheme), fileType: qplan.ftype, tensors: reportTensors(results), fallbacks: reportFallbacks(results), awq, quality, files: res.files });
  await writeQuantizeManifest(report, {
    model: o.model,
    inputSha256: await hashInput(o.model),
    calibration: { source: calib.source, windows: nWin, seqLen, seed, imatrix: o.imatrix ?? null },
    settings: { format: o.format, scheme: formatScheme(scheme), method: o.method, actOrder: !!o.actOrder, percdamp: o.percdamp ?? 0.01, targetBpw: null, mixedSensitivity: null, streaming: true, ...recipeSettings(qplan, o) },
    quality,
    recipe: o.recipe,
    withAwqAndPlan: true,
  });
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}
