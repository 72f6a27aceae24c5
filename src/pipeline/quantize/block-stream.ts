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
import { hfToGguf, nameInLayer } from '../../model/names.js';
import { saveModel, type StreamedQuantTensor } from '../../model/save.js';
import type { ModelWeights, TensorSource } from '../../model/weights.js';
import { ReusedFloatReads } from '../../model/reused-reads.js';
import { tensorToF32 } from '../../model/tensor-source.js';
import { tensorFromBytes } from '../../formats/bytes.js';
import type { GgmlType } from '../../core/dtype.js';
import { formatScheme } from '../../quant/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { CalibrationRunner, embedWindowStates, type WindowStates } from '../calibrate/batch.js';
import { calibrationSize, isSelfCalibration, resolveCalibration } from '../calibrate/windows.js';
import { quantizeCalibratedLayer } from './calibrated-layer.js';
import { OrtGemm } from '../../engine/gemm.js';
import { encodeGgmlTarget, reportFallbacks, reportTensors, type AwqRecord, type LayerBuffers, type LinearResult } from './layer.js';
import { ggufSaveOptions, isLinearName, planQuantization, recipeSettings } from './plan.js';
import type { QuantizeOptions, QuantizeReport } from './types.js';
import { hashInput, quantizeReport, writeQuantizeManifest } from './manifest.js';
import { storedInPieces } from './stored-pieces.js';

/**
 * Whether `quantizeModel` takes this path: calibrated methods to GGUF with nothing that needs the
 * whole model afterwards (verification compares the float and quantized models, keepHost returns
 * it, --target-bpw measures every tensor first). `--calib self` samples windows from the whole
 * float model, so it stays on the whole-model path.
 */
export function streamsCalibrated(o: QuantizeOptions): boolean {
  return (o.method === 'gptq' || o.method === 'awq') && o.format === 'gguf' && o.verify === false && !o.keepHost && o.targetBpw === undefined && !isSelfCalibration(o.calib);
}

/**
 * Test hook: sees the per-layer map at its fullest (after quantization, before it is dropped), and
 * `heldBytes`, the quantized bytes then waiting for the writer (this layer's, and any earlier layer's
 * the writer has not taken yet).
 */
export interface StreamProbe {
  onLayer?: (layer: number, host: HostModel, heldBytes: number) => void;
}

/**
 * Layer 0's inputs [W, T, E] from the stored embedding `src` [V, E]: float32, or F16/BF16 decoded for
 * the tokens used only. Where the source reads byte ranges, the embedding is read a chunk of rows
 * at a time (EMBED_CHUNK_BYTES) and only chunks holding a used token: the stored 128k-token
 * embedding of Llama-3 is 0.5 GiB in F16 (1 GiB as float32), more than the calibration windows.
 */
export async function embedFromSource(src: TensorSource, E: number, windows: number[][], chunkBytes = EMBED_CHUNK_BYTES): Promise<WindowStates> {
  if (src.dtype !== 'F16' && src.dtype !== 'BF16' && src.dtype !== 'F32') return embedWindowStates(await src.readF32(), E, windows);
  const T = windows[0]?.length ?? 0;
  const data = new Float32Array(windows.length * T * E);
  const V = src.shape[0];
  // where each token goes (row of [W·T, E], token id), grouped by the chunk of rows holding the token;
  // the ids were checked against the vocabulary by resolveCalibration
  const el = src.dtype === 'F32' ? 4 : 2;
  const rowsPer = src.readRange ? Math.max(1, Math.floor(chunkBytes / (E * el))) : V;
  const byChunk = new Map<number, number[]>();
  windows.forEach((w, i) =>
    w.forEach((t, j) => {
      const k = Math.floor(t / rowsPer);
      let l = byChunk.get(k);
      if (!l) byChunk.set(k, (l = []));
      l.push(i * T + j, t);
    }),
  );
  for (const k of [...byChunk.keys()].sort((a, b) => a - b)) {
    const r0 = k * rowsPer, nr = Math.min(rowsPer, V - r0);
    const rows = src.readRange ? tensorToF32(tensorFromBytes(src.dtype, [nr, E], await src.readRange(r0 * E * el, nr * E * el))) : await src.readF32();
    const at = byChunk.get(k)!;
    for (let p = 0; p < at.length; p += 2) {
      const o = (at[p + 1] - r0) * E;
      data.set(rows.subarray(o, o + E), at[p] * E);
    }
  }
  return { windows: windows.length, tokens: T, hidden: E, data };
}

/** Bytes of the stored embedding read at a time when cutting the calibration windows from it. */
const EMBED_CHUNK_BYTES = 1 << 25;

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
export async function calibratedStreamingGguf(weights: ModelWeights, scheme: QuantScheme, o: QuantizeOptions, t0: number, probe?: StreamProbe, measure?: { check: (written: string) => Promise<QuantizeReport['quality']> }): Promise<QuantizeReport> {
  // with `measure`, the checks run on the written file (verify-stored.ts) instead of being skipped
  if ((!streamsCalibrated(o) && !(measure && streamsCalibrated({ ...o, verify: false }))) || scheme.kind !== 'ggml') throw new ConfigError('internal', 'streaming calibration is for GPTQ/AWQ to GGUF without verification, or with the checks on the written file');
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
  const calib = await resolveCalibration(o.calib, weights.tokenizer, { config: c, tensors: new Map(), lowBit: new Map() }, { windows: nWin, seqLen, seed, signal: o.signal, onProgress: o.onProgress, tokens: o.calibTokens, runtime: o.calibRuntime });

  // the windows' first hidden states [W, T, E], cut from the embedding rows of their tokens
  const xs = await embedFromSource(weights.tensors.get('model.embed_tokens.weight')!, c.hiddenSize, calib.windows);

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
  const runtime = o.calibRuntime ?? 'native';
  const runner = new CalibrationRunner(c, seqLen, { runtime });
  // GPTQ interleaves short GEMMs with its column loop: idle pool threads must not spin through it
  const gemm = new OrtGemm({ spinning: false, runtime });
  const buffers: LayerBuffers = {};
  const planned = (n: string) => {
    const t = changedNorm(n) ? undefined : qplan.targets.get(n);
    return t?.kind === 'ggml' ? t : undefined;
  };
  // the layer being written: its quantized linears' bytes and changed norms, until the writer has them
  const pending = new Map<string, Tensor | QuantTensor>();
  // a block's float matrices in arrays reused from one layer to the next (model/reused-reads.ts)
  const reader = new ReusedFloatReads(weights.source.path);
  let done = -1;
  const quantizeThrough = async (layer: number): Promise<void> => {
    while (done < layer) {
      const l = ++done;
      checkAborted(o.signal);
      // one block's tensors under their canonical names: the calibration runner, awqLayer and
      // quantizeLayerLinears only index `model.layers.${l}.…`, so a HostModel holding just these serves them
      const host: HostModel = { config: c, tensors: new Map(), lowBit: new Map() };
      for (const n of layerNames[l]) host.tensors.set(n, await reader.read(weights.tensors.get(n)!, nameInLayer(n)));
      const lo = { method: o.method, scheme, targetOf, imatrix: fileImatrix ? imFor : undefined, actOrder: o.actOrder, percdamp: o.percdamp, signal: o.signal };
      const r = await quantizeCalibratedLayer(host, { runner, xs, layer: l, layers: c.nLayers, lo, gram: true, gemm: gemm.gemm, buffers, onProgress: o.onProgress, signal: o.signal });
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
      for (const [n, t] of host.tensors) if (changedNorm(n)) pending.set(n, { dtype: 'F32', shape: weights.tensors.get(n)!.shape, data: t });
      if (probe?.onLayer) {
        let held = 0;
        for (const t of pending.values()) held += 'type' in t ? t.bytes.byteLength : t.data.byteLength;
        probe.onLayer(l, host, held);
      }
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
      tensor: async (n, src): Promise<Tensor | QuantTensor | StreamedQuantTensor | null> => {
        const m = /^model\.layers\.(\d+)\./.exec(n);
        if (!m) {
          // the token embedding and the output: RTN onto the recipe's types while writing, a chunk of rows at a time
          const t = planned(n);
          if (!t) return null;
          if (t.copy) return storedInPieces(src)?.tensor ?? (await src.read());
          others.push({ name: n, target: t, method: 'rtn' });
          return streamByRows(src, t.type, imFor(n));
        }
        const t = planned(n);
        // a tensor the layer's quantization does not produce (GPTQ's norms: the writer asks for them
        // while building the header, since their type is not declared) is converted as saveModel
        // does by default, without quantizing the layer: quantizing it here ran every layer before
        // the first byte was written, and each layer's quantized bytes waited in `pending` for the end
        if (!changedNorm(n) && (!t || t.copy)) return t?.copy ? (storedInPieces(src)?.tensor ?? (await src.read())) : null;
        await quantizeThrough(Number(m[1]));
        const q = pending.get(n) ?? null;
        pending.delete(n);
        return q;
      },
    });
  } finally {
    await runner.close();
    await gemm.close();
  }
  xs.data = new Float32Array(0);
  results.push(...others);

  const quality = measure ? await measure.check(o.out) : { windows: 0, kld: NaN, top1Agreement: NaN, reloadMaxAbsLogitDiff: null, llamaCpp: null };
  const report = quantizeReport(o, { manifest: `${o.out}.manifest.json`, scheme: formatScheme(scheme), fileType: qplan.ftype, tensors: reportTensors(results), fallbacks: reportFallbacks(results), awq, quality, files: res.files });
  await writeQuantizeManifest(report, {
    model: o.model,
    ...(await hashInput(o.model)),
    calibration: { source: calib.source, windows: nWin, seqLen, seed, imatrix: o.imatrix ?? null, runtime: o.calibRuntime ?? 'native' },
    settings: { format: o.format, scheme: formatScheme(scheme), method: o.method, actOrder: !!o.actOrder, percdamp: o.percdamp ?? 0.01, targetBpw: null, mixedSensitivity: null, streaming: true, ...recipeSettings(qplan, o) },
    quality,
    recipe: o.recipe,
    withAwqAndPlan: true,
  });
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}

/** Values per chunk of rows that streamByRows decodes at a time (64 MiB of float32). */
const ROW_CHUNK_VALUES = 1 << 24;

/**
 * RTN of a whole tensor onto a ggml type as a StreamedQuantTensor: where the source can read byte
 * ranges of a float tensor larger than a chunk, it is read, decoded and encoded a chunk of rows at a
 * time, each chunk's bytes handed to the writer as soon as it asks for them. The token embedding of
 * a 128k vocabulary is 1 GiB as float32, and its Q6_K bytes (215 MB at Llama-3.2-1B's shape) stayed
 * alive until garbage collection when encoded whole. Row-wise codecs, so the bytes are the same as
 * from the whole tensor; any other tensor comes whole, as one piece.
 */
export function streamByRows(src: TensorSource, type: GgmlType, imatrix?: Float32Array, chunkValues = ROW_CHUNK_VALUES): StreamedQuantTensor {
  const K = src.shape[src.shape.length - 1];
  const N = src.shape.reduce((a, b) => a * b, 1) / K;
  const el = src.dtype === 'F32' || src.dtype === 'F16' || src.dtype === 'BF16' ? src.dtype : null;
  async function* chunks(): AsyncGenerator<Uint8Array> {
    if (!src.readRange || !el || N * K <= chunkValues) {
      yield encodeGgmlTarget(type, await src.readF32(), N, K, imatrix);
      return;
    }
    const inRow = K * (el === 'F32' ? 4 : 2);
    const rows = Math.max(1, Math.floor(chunkValues / K));
    for (let r0 = 0; r0 < N; r0 += rows) {
      const nr = Math.min(rows, N - r0);
      const bytes = await src.readRange(r0 * inRow, nr * inRow);
      yield encodeGgmlTarget(type, tensorToF32(tensorFromBytes(el, [nr, K], bytes)), nr, K, imatrix);
    }
  }
  return { type, shape: [...src.shape], chunks: chunks() };
}
