// Streaming RTN onto int / float / code-book schemes (`--scheme int4-g128`, `int8-channel`,
// `nf4-g64`, `fp8-e4m3`, …) into the Hugging Face folders that hold them: GPTQ-packed safetensors,
// compressed-tensors pack-quantized, or fake-quant float32. The model is never loaded whole: each
// linear's rows are read by the worker threads themselves (TensorSource.file; other sources are
// read into shared memory), quantized and packed there by quant's codec of the scheme
// (quant/codec-rows.ts: int32 words, scales, zero points; or ŵ), and written, while the writer
// writes the tensors before it and the input is hashed on another thread. Same bytes as the
// whole-model path (quantize.ts → layers.ts → write.ts), which stays the reference and still runs
// whatever this path does not take (calibrated methods, verification, ONNX, ragged groups):
// test/pipeline/quantize/codec-stream.test.ts.
// Memory: the linears in flight (about `lookahead` bytes of inputs and outputs, at least one),
// in buffers reused from tensor to tensor, plus the small per-linear tensors a packed container
// writes late (its f16 scales come after every int32 tensor in the file's order).
// Legend: N = rows (output features), K = input features, S = scales per row, b = bits.

import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { ConfigError, NumericError } from '../../core/errors.js';
import { checkAborted } from '../../core/progress.js';
import type { Tensor } from '../../core/tensor.js';
import { packCtColumns } from '../../formats/compressed-tensors/pack.js';
import { ctQuantizationConfig } from '../../formats/compressed-tensors/write.js';
import { packGptqZeros } from '../../formats/gptq/pack.js';
import { gptqPackable, gptqQuantizationConfig } from '../../formats/gptq/write.js';
import { writeHfSafetensorsDir } from '../../formats/io/index.js';
import { safetensorsLayout, type SafetensorsWriteTensor, type TensorData } from '../../formats/safetensors/index.js';
import { hfConfigJson } from '../../model/hf-config.js';
import { hfSideFiles, saveModel } from '../../model/save.js';
import type { ModelWeights, TensorSource } from '../../model/weights.js';
import { assertFinite } from '../../numerics/finite.js';
import { encodeF16Array, roundToF16 } from '../../numerics/float16.js';
import { scalesPerRow, type CodecOutput } from '../../quant/codec-rows.js';
import type { KernelInput } from '../../quant/ggml/index.js';
import { formatScheme } from '../../quant/index.js';
import { QuantPool, rowSplittable } from '../../quant/node/worker-pool.js';
import type { IntScheme, QuantScheme } from '../../quant/scheme.js';
import { hashInputOffThread, quantizeReport, writeQuantizeManifest } from './manifest.js';
import { isLinearName, recipeSettings, type QuantPlan } from './plan.js';
import { SharedBuffers } from './rtn-stream.js';
import { targetLabel } from './target.js';
import { hfRowOrder, permuteRows } from './write-packed.js';
import type { QuantizeOptions, QuantizeReport } from './types.js';

/** The scheme's group size along K (K for one scale per row), or null when it has neither. */
function groupOf(scheme: QuantScheme, K: number): number | null {
  if (!('granularity' in scheme) || !scheme.granularity) return null;
  const g = scheme.granularity;
  return g.kind === 'group' ? g.size : g.kind === 'channel' && g.axis === 0 ? K : null;
}

/**
 * Whether `quantizeModel` takes this path: RTN without verification into a safetensors folder
 * (GPTQ-packed, compressed-tensors, fake-quant) with a non-ggml scheme, every linear a 2-D
 * matrix whose rows hold whole groups (and, for GPTQ packing, whose codes fill 32-bit words). The
 * other cases stay on the whole-model path, which also reports their errors.
 */
export function streamsCodec(o: QuantizeOptions, scheme: QuantScheme, weights: ModelWeights): boolean {
  if (o.method !== 'rtn' || o.verify !== false || o.keepHost || o.targetBpw !== undefined) return false;
  if (o.format !== 'fakequant' && o.format !== 'safetensors' && o.format !== 'compressed-tensors') return false;
  if (scheme.kind === 'ggml') return false;
  const packed = o.format !== 'fakequant';
  if (packed && scheme.kind !== 'int') return false;
  for (const src of weights.tensors.values()) {
    if (!isLinearName(src.name)) continue;
    if (src.shape.length !== 2) return false;
    const [N, K] = src.shape;
    const G = groupOf(scheme, K);
    if ((scheme.kind === 'int' || scheme.kind === 'codebook') && (G === null || K % G !== 0)) return false;
    if (o.format === 'safetensors' && !gptqPackable(N, K, (scheme as IntScheme).bits)) return false;
    // compressed-tensors packs 2, 4 or 8 bits (the whole-model path reports the others)
    if (o.format === 'compressed-tensors' && ![2, 4, 8].includes((scheme as IntScheme).bits)) return false;
  }
  return true;
}

/** What one linear's job hands the writer: codes for packed containers, ŵ for fake-quant. */
type LinearOut = { kind: 'packed'; words: Int32Array; scales: Float32Array; zeros: Uint8Array } | { kind: 'dequant'; values: Float32Array };

interface LinearJob {
  promise: Promise<LinearOut>;
  bytes: number;
  release: () => void;
}

const KERNEL_INPUTS: Partial<Record<string, KernelInput>> = { F32: 'F32', F16: 'F16', BF16: 'BF16' };

// as rtn-stream.ts: a few of the largest tensors in flight, their buffers reused
const DEFAULT_LOOKAHEAD = 256 << 20;

/**
 * The linears' jobs in the order the writer needs them: each is started ahead of its turn while
 * the bytes in flight stay under `lookahead` (one job at least), and its buffers go back to the
 * pool when the writer is done with it.
 */
class LinearJobs {
  private readonly jobs = new Map<string, LinearJob>();
  private next = 0;
  private inFlight = 0;

  constructor(
    private readonly order: string[],
    private readonly start: (name: string) => LinearJob,
    private readonly lookahead: number,
  ) {}

  get(name: string): Promise<LinearOut> {
    this.fill(name);
    const j = this.jobs.get(name);
    if (!j) throw new ConfigError('internal', 'a linear was asked for twice or out of order', { tensor: name });
    return j.promise;
  }

  /** The writer has what it needs of `name`: its buffers are reused and later jobs start. */
  done(name: string): void {
    const j = this.jobs.get(name);
    if (!j) return;
    this.jobs.delete(name);
    j.release();
    this.inFlight -= j.bytes;
    this.fill(null);
  }

  /** Starts jobs in order up to `upTo` (if given) and on while the lookahead allows. */
  private fill(upTo: string | null): void {
    let need = upTo !== null && !this.jobs.has(upTo);
    while (this.next < this.order.length && (need || this.inFlight === 0 || this.inFlight < this.lookahead)) {
      const n = this.order[this.next++];
      const j = this.start(n);
      j.promise.catch(() => {}); // surfaces when the writer asks for it
      this.jobs.set(n, j);
      this.inFlight += j.bytes;
      if (n === upTo) need = false;
    }
  }

  async settle(): Promise<void> {
    await Promise.allSettled([...this.jobs.values()].map((j) => j.promise));
  }
}

/** F16 bytes of a float tensor for a packed folder (checked finite and within F16; q/k rows in rotate-half order). */
async function f16Tensor(weights: ModelWeights, src: TensorSource): Promise<TensorData> {
  const order = hfRowOrder(weights.config, src.name);
  if (src.dtype === 'F16') {
    // stored in F16 already: F16 → float32 → F16 gives every finite value back, so the stored
    // halves are written as they are once none is NaN/±Inf (half the memory of decoding the embedding)
    const h = (await src.read() as Tensor).data as Uint16Array;
    for (let i = 0; i < h.length; i++) {
      if ((h[i] & 0x7c00) !== 0x7c00) continue;
      const found = h[i] & 0x3ff ? NaN : h[i] & 0x8000 ? -Infinity : Infinity;
      throw new NumericError('non_finite', 'the weights hold a non-finite value', { file: weights.source.path, tensor: src.name, index: i, found });
    }
    return permuteRows(h, order);
  }
  const x = await src.readF32();
  assertFinite(x, { file: weights.source.path, tensor: src.name });
  for (let i = 0; i < x.length; i++) {
    if (!Number.isFinite(roundToF16(x[i]))) {
      throw new NumericError('overflow', 'a value does not fit in F16', { tensor: src.name, index: i, expected: '|x| <= 65504', found: x[i], hint: 'this format keeps float tensors in F16; this model needs a wider type' });
    }
  }
  return encodeF16Array(permuteRows(x, order));
}

/**
 * The small tensors of one packed linear the main thread encodes from the workers' scales and
 * zero points [N, S] (rows in the file's order), as the whole-model writer does (write-packed.ts,
 * formats/gptq and formats/compressed-tensors): GPTQ qzeros and scales [S, N] f16, compressed-tensors
 * weight_scale [N, S] f16 and weight_zero_point. The packed codes come from the workers as they are.
 */
function packedSmall(format: 'safetensors' | 'compressed-tensors', base: string, N: number, S: number, scheme: IntScheme, scales: Float32Array, zeros: Uint8Array): Map<string, TensorData> {
  const b = scheme.bits;
  if (format === 'safetensors') {
    const t = new Float32Array(S * N);
    for (let n = 0; n < N; n++) for (let g = 0; g < S; g++) t[g * N + n] = scales[n * S + g];
    return new Map<string, TensorData>([[`${base}.qzeros`, packGptqZeros(zeros, N, S, b)], [`${base}.scales`, encodeF16Array(t)]]);
  }
  const m = new Map<string, TensorData>([[`${base}.weight_scale`, encodeF16Array(scales)]]);
  if (!scheme.symmetric) m.set(`${base}.weight_zero_point`, packCtColumns(zeros, N, S, b));
  return m;
}

/**
 * The header entries of one packed linear (names, dtypes, shapes as packedLinear gives them), the
 * ones that need its codes with `produce`, the others (g_idx, weight_shape) with their data.
 */
function packedEntries(format: 'safetensors' | 'compressed-tensors', tensor: string, N: number, K: number, scheme: IntScheme, produce: (n: string) => () => Promise<TensorData>): SafetensorsWriteTensor[] {
  const b = scheme.bits;
  const S = scalesPerRow(scheme, K);
  if (format === 'safetensors') {
    const base = tensor.replace(/\.weight$/, '');
    const G = K / S;
    return [
      { name: `${base}.qweight`, dtype: 'I32', shape: [(K * b) / 32, N], produce: produce(`${base}.qweight`) },
      { name: `${base}.qzeros`, dtype: 'I32', shape: [S, (N * b) / 32], produce: produce(`${base}.qzeros`) },
      { name: `${base}.scales`, dtype: 'F16', shape: [S, N], produce: produce(`${base}.scales`) },
      { name: `${base}.g_idx`, dtype: 'I32', shape: [K], data: Int32Array.from({ length: K }, (_, j) => Math.floor(j / G)) },
    ];
  }
  const base = tensor.replace(/\.weight$/, '');
  const t: SafetensorsWriteTensor[] = [
    { name: `${base}.weight_packed`, dtype: 'I32', shape: [N, Math.ceil((K * b) / 32)], produce: produce(`${base}.weight_packed`) },
    { name: `${base}.weight_scale`, dtype: 'F16', shape: [N, S], produce: produce(`${base}.weight_scale`) },
    { name: `${base}.weight_shape`, dtype: 'I64', shape: [2], data: BigInt64Array.from([BigInt(N), BigInt(K)]) },
  ];
  if (!scheme.symmetric) t.push({ name: `${base}.weight_zero_point`, dtype: 'I32', shape: [Math.ceil((N * b) / 32), S], produce: produce(`${base}.weight_zero_point`) });
  return t;
}

/** RTN of every linear onto `scheme` into a safetensors folder, streamed (see the file comment). */
export async function rtnStreamingCodec(weights: ModelWeights, scheme: QuantScheme, qplan: QuantPlan, o: QuantizeOptions, t0: number, lookahead = DEFAULT_LOOKAHEAD): Promise<QuantizeReport> {
  if (!streamsCodec(o, scheme, weights)) throw new ConfigError('internal', 'streaming codec RTN does not take this run');
  const inputHash = hashInputOffThread(o.model);
  inputHash.catch(() => {}); // awaited below
  const format = o.format as 'fakequant' | 'safetensors' | 'compressed-tensors';
  const packed = format !== 'fakequant';
  const linears = [...weights.tensors.values()].filter((s) => isLinearName(s.name));
  const pool = new QuantPool(o.threads ?? availableParallelism());
  const buffers = new SharedBuffers();
  const where = o.displayOut ?? o.model;

  const start = (tensor: string): LinearJob => {
    const src = weights.tensors.get(tensor)!;
    const [N, K] = src.shape;
    const input = KERNEL_INPUTS[src.dtype];
    // a float tensor in a local file: each worker reads its own rows
    const file = input && src.file ? src.file : undefined;
    const inBytes = file ? 0 : input ? src.byteLength : N * K * 4;
    const srcBuf = file ? null : buffers.take(inBytes);
    const S = packed ? scalesPerRow(scheme, K) : 0;
    const b = packed ? (scheme as IntScheme).bits : 0;
    // int32 words per row: GPTQ's K·b/32 (checked whole by streamsCodec), compressed-tensors' rounded up
    const W = packed ? Math.ceil((K * b) / 32) : 0;
    const outBufs = packed ? [buffers.take(N * W * 4), buffers.take(N * S * 4), buffers.take(N * S)] : [buffers.take(N * K * 4)];
    const out: CodecOutput = packed ? { kind: 'packed', layout: format === 'safetensors' ? 'gptq' : 'ct', words: outBufs[0], scales: outBufs[1], zeros: outBufs[2] } : { kind: 'dequant', values: outBufs[0] };
    // packed folders store q/k rows in rotate-half order: the workers read them in that order
    // (fake-quant ones are permuted by saveModel, as on the whole-model path)
    const rowOrder = packed ? hfRowOrder(weights.config, tensor) : null;
    const promise = (async (): Promise<LinearOut> => {
      if (srcBuf) {
        const view = new Uint8Array(srcBuf, 0, inBytes);
        if (input && src.readInto) await src.readInto(view);
        else if (input) {
          const d = (await src.read() as Tensor).data as Float32Array | Uint16Array;
          view.set(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
        } else new Float32Array(srcBuf, 0, N * K).set(await src.readF32()); // stored in a block type: dequantized first
      }
      try {
        await pool.quantizeCodecRows({ scheme, input: input ?? 'F32', src: srcBuf, srcOffset: 0, ...(file ? { file } : {}), ...(rowOrder ? { rowOrder } : {}), out, nPerRow: K, nRows: N, split: rowSplittable(scheme, [N, K]) });
      } catch (e) {
        // name the tensor (the workers only know rows)
        if (e instanceof NumericError) {
          const quantized = e.message.startsWith('the quantized');
          throw new NumericError(e.code, quantized ? 'the quantized weights hold a non-finite value' : 'tensor holds a non-finite value', {
            ...e.context, tensor, file: quantized ? where : weights.source.path,
            ...(quantized ? { hint: `the ${formatScheme(scheme)} grid cannot hold this weight; nothing was written` } : {}),
          });
        }
        throw e;
      }
      if (out.kind === 'dequant') return { kind: 'dequant', values: new Float32Array(out.values, 0, N * K) };
      // packed by the workers (quant/codec-rows.ts)
      return { kind: 'packed', words: new Int32Array(out.words, 0, N * W), scales: new Float32Array(out.scales, 0, N * S), zeros: new Uint8Array(out.zeros, 0, N * S) };
    })();
    return {
      promise,
      bytes: inBytes + outBufs.reduce((a, b) => a + b.byteLength, 0),
      release: () => {
        if (srcBuf) buffers.give(srcBuf);
        for (const b of outBufs) buffers.give(b);
      },
    };
  };

  let files: string[];
  let jobs: LinearJobs | null = null;
  try {
    if (!packed) {
      // fake-quant: saveModel writes the tensors in the checkpoint's order, ŵ for the linears
      jobs = new LinearJobs(linears.map((s) => s.name), start, lookahead);
      const js = jobs;
      let current: string | null = null;
      const res = await saveModel(weights, o.out, {
        format: 'hf', dtype: 'F32', overwrite: o.overwrite, signal: o.signal,
        tensor: async (n, src) => {
          checkAborted(o.signal);
          // the previous tensor is written: its buffers can be reused
          if (current) js.done(current);
          current = null;
          if (!isLinearName(n)) {
            // as the whole-model path, which holds the float model: no non-finite weight is written
            const x = await src.readF32();
            assertFinite(x, { file: weights.source.path, tensor: n });
            return { dtype: 'F32', shape: src.shape, data: x };
          }
          const r = await js.get(n);
          current = n;
          return { dtype: 'F32', shape: src.shape, data: (r as { values: Float32Array }).values };
        },
      });
      files = res.files;
    } else {
      const s = scheme as IntScheme;
      // tensors of a linear's packed form not yet written (produced together from its codes)
      const later = new Map<string, TensorData>();
      const owner = new Map<string, string>();
      // the linear whose packed codes the writer holds (a view of its job's buffer, released when
      // the writer comes back for the next tensor: the codes are written by then)
      let pendingDone: string | null = null;
      const next = (): void => {
        checkAborted(o.signal);
        if (pendingDone) jobs!.done(pendingDone);
        pendingDone = null;
      };
      const produce = (t: string) => async (): Promise<TensorData> => {
        next();
        let d = later.get(t);
        if (!d) {
          // the first of a linear's tensors the writer reaches is its packed codes (int32, sorted
          // before the f16 scales): the rest is encoded now and kept for later
          const lin = owner.get(t)!;
          const src = weights.tensors.get(lin)!;
          const r = (await jobs!.get(lin)) as Extract<LinearOut, { kind: 'packed' }>;
          const base = lin.replace(/\.weight$/, '');
          for (const [n, v] of packedSmall(format as 'safetensors' | 'compressed-tensors', base, src.shape[0], scalesPerRow(s, src.shape[1]), s, r.scales, r.zeros)) later.set(n, v);
          const wordsName = format === 'safetensors' ? `${base}.qweight` : `${base}.weight_packed`;
          if (t === wordsName) {
            d = r.words;
            pendingDone = lin;
          } else {
            // (not the order the writer has: the codes are kept as a copy)
            later.set(wordsName, r.words.slice());
            d = later.get(t)!;
            jobs!.done(lin);
          }
        }
        later.delete(t);
        return d;
      };
      const tensors: SafetensorsWriteTensor[] = [];
      let groupSize = -1;
      for (const src of weights.tensors.values()) {
        if (isLinearName(src.name)) {
          const [N, K] = src.shape;
          const entries = packedEntries(format as 'safetensors' | 'compressed-tensors', src.name, N, K, s, produce);
          for (const e of entries) if (e.produce) owner.set(e.name, src.name);
          tensors.push(...entries);
          const S = scalesPerRow(s, K);
          groupSize = S === 1 ? -1 : K / S;
        } else tensors.push({ name: src.name, dtype: 'F16', shape: src.shape, produce: () => (next(), f16Tensor(weights, src)) });
      }
      // the linears in the order the writer reaches them (its header order: widest dtype first, then name)
      const firstNeed: string[] = [];
      for (const t of safetensorsLayout(tensors).tensors) {
        const lin = owner.get(t.name);
        if (lin && !firstNeed.includes(lin)) firstNeed.push(lin);
      }
      jobs = new LinearJobs(firstNeed, start, lookahead);
      const cfg = hfConfigJson({ ...weights.config, ropeLayout: 'half' }, 'float16') as Record<string, unknown>;
      const side = { overwrite: o.overwrite, signal: o.signal, files: hfSideFiles(weights.config, weights.tokenizer) };
      if (format === 'safetensors') {
        cfg.quantization_config = gptqQuantizationConfig({ bits: s.bits, groupSize, descAct: !!o.actOrder, sym: s.symmetric, dampPercent: o.percdamp ?? 0.01 });
        files = await writeHfSafetensorsDir(o.out, tensors, cfg, side);
      } else {
        const G = s.granularity.kind === 'group' ? s.granularity.size : null;
        cfg.quantization_config = ctQuantizationConfig({ bits: s.bits, symmetric: s.symmetric, groupSize: G, actOrder: !!o.actOrder });
        files = await writeHfSafetensorsDir(o.out, tensors, cfg, { ...side, metadata: { 'bitscale.format': 'compressed-tensors/pack-quantized' } });
      }
    }
  } finally {
    await jobs?.settle();
    await pool.close();
  }

  const tensorsReport = linears.map((src) => {
    const t = qplan.targets.get(src.name);
    return { name: src.name, type: t ? targetLabel(t) : formatScheme(scheme), method: 'rtn', sqnrDb: null };
  });
  const quality = { windows: 0, kld: NaN, top1Agreement: NaN, reloadMaxAbsLogitDiff: null, llamaCpp: null };
  const report = quantizeReport(o, { manifest: join(o.out, 'bitscale-manifest.json'), scheme: formatScheme(scheme), method: 'rtn', fileType: null, tensors: tensorsReport, fallbacks: [], quality, files });
  await writeQuantizeManifest(report, {
    model: o.model,
    ...(await inputHash),
    calibration: null,
    settings: { format: o.format, scheme: formatScheme(scheme), method: 'rtn', streaming: true, ...recipeSettings(qplan, o) },
    quality: 'not measured (--no-verify)',
    recipe: o.recipe,
    withAwqAndPlan: false,
  });
  report.seconds = (Date.now() - t0) / 1000;
  return report;
}
