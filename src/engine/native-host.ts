// The native host model: every weight matrix goes into a session weight file (weight-file.ts) in the
// form the graph runs it, one tensor at a time, so peak memory is the converted weights plus one
// tensor's conversion and the float32 model never exists:
//   - stored ggml blocks with an integer-code form (ggml-nbits.ts), GPTQ / compressed-tensors codes
//     (int-nbits.ts), and int / ggml schemes applied by `weights` → MatMulNBits operands ('nbits');
//   - everything else (float checkpoints, IQ types, NF4/FP8/MX…) → float32, stored transposed [K, N]
//     so that the MatMul needs no transpose that onnxruntime would fold into a second copy ('float').
// The token embedding is never a float matrix: its rows are decoded per window from the stored
// bytes (read by range when the source allows it), and a tied output head runs on the same codes.
// Norms and biases (1-D) stay in memory as float32.
// Legend: N = out features, K = in features, V = vocab, E = hidden, T = tokens.

import { GGML_TYPES, isGgmlType, type GgmlType } from '../core/dtype.js';
import { ConfigError, NumericError } from '../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../core/progress.js';
import type { QuantTensor, Tensor } from '../core/tensor.js';
import { tensorFromBytes } from '../formats/bytes.js';
import type { ModelConfig } from '../model/config.js';
import { tensorToF32 } from '../model/tensor-source.js';
import type { ModelWeights, TensorSource } from '../model/weights.js';
import { firstNonFinite } from '../numerics/finite.js';
import { transposeF32Into } from '../numerics/gemm.js';
import { ReusedFloatReads } from '../model/reused-reads.js';
import { nameInLayer } from '../model/names.js';
import { dequantizeGgml } from '../quant/ggml/index.js';
import { dequantize, fakeQuant, formatScheme, quantize } from '../quant/index.js';
import type { QuantScheme } from '../quant/scheme.js';
import type { GgmlQuantized, IntQuantized } from '../quant/types.js';
import { ggmlNBitsKernel, ggmlNBitsWidth, ggmlToNBits } from './ggml-nbits.js';
import { checkModelTensors, expectedTensors, isLinearWeight, validateConfig, type HostModel, type StoredWeight, type WeightPath, type WeightPrecision } from './host.js';
import { intNBitsObstacle, intToNBits, packedIntToNBits } from './int-nbits.js';
import { dequantizePackedInt } from '../formats/packed-int.js';
import { splitNBitsRows, splitOperandRows, type NBitsLinear } from './nbits.js';
import { storeNBits, type NBitsConstants } from './nbits-graph.js';
import { WeightFile } from './weight-file.js';

export interface NativeOptions {
  /** scheme for the linear layers (applied to float weights read one at a time), as PrepareOptions.weights */
  weights?: WeightPrecision | null;
  /** also apply it to an untied lm_head */
  quantizeLmHead?: boolean;
  /** parent directory of the session weight file (default: the OS temp directory) */
  weightDir?: string;
  /** largest float32 matrix (elements) an unpacked (2-/8-bit) MatMulNBits node may dequantize per call;
   * larger weights are split into row parts (default 4M = 16 MB) */
  maxUnpackedFloats?: number;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

function isBlockType(d: string): d is GgmlType {
  return isGgmlType(d) && GGML_TYPES[d].quantized;
}

/** Row reader for the embedding table [V, E]: range reads when the source has them, else the stored bytes kept once. */
async function embeddingRows(src: TensorSource, c: ModelConfig): Promise<(tokens: ArrayLike<number>) => Promise<Float32Array>> {
  const E = c.hiddenSize;
  const type = src.dtype;
  const rowBytes = isBlockType(type) ? (E / GGML_TYPES[type].blockSize) * GGML_TYPES[type].typeSize : src.byteLength / c.vocabSize;
  const decode = (bytes: Uint8Array): Float32Array => {
    if (isBlockType(type)) return dequantizeGgml(type, bytes, E);
    return tensorToF32(tensorFromBytes(type as 'F32', [E], bytes));
  };
  // rows read lazily bypass the load-time NaN/Inf check (model/load.ts checks decoded reads): each decoded row is checked here
  const checkedRow = (id: number, row: Float32Array): Float32Array => {
    const i = firstNonFinite(row);
    if (i >= 0) throw new NumericError('non_finite', 'the embedding table holds a non-finite value', { tensor: src.name, index: id * E + i, found: row[i], hint: 'the checkpoint is damaged or was saved from a diverged run; bitscale does not evaluate it' });
    return row;
  };
  let readRow: (id: number) => Promise<Uint8Array>;
  if (src.readRange && Number.isInteger(rowBytes)) {
    const range = src.readRange.bind(src);
    readRow = (id) => range(id * rowBytes, rowBytes);
  } else {
    // no range reads (safetensors, llama2.c): the stored tensor is kept as stored, rows decoded on demand
    const t = await src.read();
    if ('type' in t) {
      const q = t as QuantTensor;
      readRow = async (id) => q.bytes.subarray(id * rowBytes, (id + 1) * rowBytes);
    } else {
      const f = tensorToF32(t as Tensor);
      return async (tokens) => {
        const out = new Float32Array(tokens.length * E);
        for (let i = 0; i < tokens.length; i++) out.set(f.subarray(tokens[i] * E, (tokens[i] + 1) * E), i * E);
        return out;
      };
    }
  }
  return async (tokens) => {
    const out = new Float32Array(tokens.length * E);
    const rows = new Map<number, Promise<Float32Array>>();
    for (let i = 0; i < tokens.length; i++) if (!rows.has(tokens[i])) rows.set(tokens[i], readRow(tokens[i]).then((b) => checkedRow(tokens[i], decode(b))));
    for (let i = 0; i < tokens.length; i++) out.set(await rows.get(tokens[i])!, i * E);
    return out;
  };
}

/** default largest float32 matrix (elements) an unpacked MatMulNBits part dequantizes per call: 16 MB */
const UNPACKED_PART_FLOATS = 1 << 22;

/**
 * 2- and 8-bit kernels run unpacked at accuracy level 0 (onnxruntime dequantizes the whole matrix on
 * every call): such weights, and the K-quants' 8-bit coded mins, are split into row parts whose
 * float32 form is at most `maxFloats` elements. The output head is split at that bound whatever its
 * width: the scoring graph applies it one row part (vocab range) at a time to every token of a
 * window (head-score.ts), so each part is dequantized once per window and its logits stay small.
 */
function boundUnpacked(l: NBitsLinear, maxFloats: number, head: boolean): NBitsLinear[] {
  const parts = l.main.bits === 4 && !head ? [l] : splitNBitsRows(l, Math.max(1, Math.floor(maxFloats / l.K)));
  return parts.map((p) => {
    if (p.mins?.kind !== 'coded') return p;
    const whole = p.mins.parts[0];
    return { ...p, mins: { ...p.mins, parts: splitOperandRows(whole, Math.max(1, Math.floor(maxFloats / whole.K))) } };
  });
}

interface Converted {
  weight: StoredWeight;
  path: WeightPath;
}

/**
 * Float32 arrays reused from one tensor to the next while a model is converted: the decoded
 * weights (ReusedFloatReads) and their transposes, one per tensor name within a layer. Fresh
 * arrays were paid for page by page (≈ 11 ns a value here), twice per weight: half of the 74 s
 * that a Llama-3.2-1B F16 model took to convert (docs/performance.md, tenth round).
 */
interface ConvertBuffers {
  reads: ReusedFloatReads;
  transposed: Map<string, Float32Array>;
}

/** W [N, K] transposed into [K, N] (the float path's stored layout), in the array kept for `name`'s kind (written to the weight file before its next use) */
function transposedInto(b: ConvertBuffers, name: string, w: Float32Array, N: number, K: number): Float32Array {
  const key = nameInLayer(name);
  let t = b.transposed.get(key);
  if (!t || t.length !== N * K) b.transposed.set(key, (t = new Float32Array(N * K)));
  transposeF32Into(w, N, K, t);
  return t;
}

async function convert(file: WeightFile, name: string, shape: number[], src: TensorSource, scheme: QuantScheme | null, maxUnpacked: number, buffers: ConvertBuffers): Promise<Converted> {
  try {
    return await convertWith(file, name, shape, src, scheme, maxUnpacked, buffers);
  } finally {
    // a tensor outside the layers (embedding, head) shares its arrays with no later one
    if (nameInLayer(name) === name) {
      buffers.reads.forget(name);
      buffers.transposed.delete(name);
    }
  }
}

async function convertWith(file: WeightFile, name: string, shape: number[], src: TensorSource, scheme: QuantScheme | null, maxUnpacked: number, buffers: ConvertBuffers): Promise<Converted> {
  const [N, K] = shape;
  const head = name === 'lm_head.weight' || name === 'model.embed_tokens.weight';
  const nbits = async (stored: string, l: NBitsLinear): Promise<Converted> => {
    const parts = boundUnpacked(l, maxUnpacked, head);
    const consts: NBitsConstants[] = [];
    for (let i = 0; i < parts.length; i++) consts.push(await storeNBits(file, parts[i], parts.length > 1 ? `${name}.part${i}` : name));
    return {
      weight: { kind: 'nbits', parts: consts },
      path: { name, stored, path: 'nbits', detail: parts.length > 1 ? `${l.kernel}, ${parts.length} row parts` : l.kernel },
    };
  };
  // stored ggml rows that will be split: converted and stored one row range at a time (the whole
  // tensor's operands and their sliced copies never exist together)
  const ggmlParts = async (type: GgmlType, bytes: Uint8Array): Promise<Converted> => {
    const rows = Math.max(1, Math.floor(maxUnpacked / K));
    const rowBytes = bytes.length / N;
    const consts: NBitsConstants[] = [];
    let kernel = '';
    for (let n0 = 0; n0 < N; n0 += rows) {
      const n1 = Math.min(N, n0 + rows);
      const l = ggmlToNBits(type, bytes.subarray(n0 * rowBytes, n1 * rowBytes), n1 - n0, K, name)!;
      kernel = l.kernel;
      for (const p of boundUnpacked(l, maxUnpacked, head)) consts.push(await storeNBits(file, p, `${name}.part${consts.length}`));
    }
    return { weight: { kind: 'nbits', parts: consts }, path: { name, stored: type, path: 'nbits', detail: `${kernel}, ${consts.length} row parts` } };
  };
  const float = async (stored: string, w: Float32Array, why: string): Promise<Converted> => ({
    weight: { kind: 'float', wT: await file.add('F32', [K, N], transposedInto(buffers, name, w, N, K), name) },
    path: { name, stored, path: 'float', detail: why },
  });
  if (scheme) {
    const label = formatScheme(scheme);
    const data = await src.readF32();
    if (scheme.kind === 'int') {
      const q = quantize(data, shape, scheme, { name }) as IntQuantized;
      const l = intToNBits(q);
      if (l) return nbits(label, l);
      const g = scheme.granularity;
      return float(label, dequantize(q), g.kind === 'group' ? `no MatMulNBits form: ${intNBitsObstacle(scheme.bits, g.size, K)}` : `no MatMulNBits form for ${g.kind} scales on axis ${'axis' in g ? g.axis : '-'}`);
    }
    if (scheme.kind === 'ggml') {
      const q = quantize(data, shape, scheme, { name }) as GgmlQuantized;
      const l = ggmlToNBits(scheme.type, q.bytes, N, K, name);
      if (l) return nbits(label, l);
      return float(label, dequantize(q), `${scheme.type} has no integer-code form`);
    }
    return float(label, fakeQuant(data, shape, scheme, { name }), 'no low-bit kernel for this scheme');
  }
  const type = src.dtype;
  if (isBlockType(type)) {
    if (ggmlNBitsKernel(type)) {
      const t = (await src.read()) as QuantTensor;
      const split = (head || ggmlNBitsWidth(type) !== 4) && N * K > maxUnpacked;
      return split ? ggmlParts(type, t.bytes) : nbits(type, ggmlToNBits(type, t.bytes, N, K, name)!);
    }
    return float(type, await src.readF32(), `${type} has no integer-code form`);
  }
  if (src.readCodes) {
    const codes = await src.readCodes();
    const l = packedIntToNBits(codes, N, K);
    const label = src.packing ?? `int${codes.bits}`;
    if (l) return nbits(label, l);
    return float(label, dequantizePackedInt(codes, N, K), intNBitsObstacle(codes.bits, codes.groupSize, K) ?? 'act-order groups of unequal size');
  }
  return float(src.packing ?? type, await buffers.reads.read(src, nameInLayer(name)), 'stored as float');
}

/**
 * Reads `w` into a native host: norms in memory, weight matrices in a session weight file as the
 * graph runs them, embedding rows on demand. `release()` deletes the weight file.
 */
export async function prepareNativeHost(w: ModelWeights, opts: NativeOptions = {}): Promise<HostModel> {
  const c = w.config;
  validateConfig(c);
  checkModelTensors(w);
  const tensors = new Map<string, Float32Array>();
  const stored = new Map<string, StoredWeight>();
  const paths: WeightPath[] = [];
  let embedRows: HostModel['embedRows'];
  const expected = expectedTensors(c);
  const track = new ProgressTracker('load', expected.length, opts.onProgress, 'tensor');
  const maxUnpacked = opts.maxUnpackedFloats ?? UNPACKED_PART_FLOATS;
  const file = await WeightFile.create(opts.weightDir);
  const buffers: ConvertBuffers = { reads: new ReusedFloatReads(w.source.path), transposed: new Map() };
  try {
    for (const e of expected) {
      checkAborted(opts.signal);
      const src = w.tensors.get(e.name)!;
      if (e.shape.length === 1) {
        tensors.set(e.name, await src.readF32());
      } else if (e.name === 'model.embed_tokens.weight') {
        embedRows = await embeddingRows(src, c);
        if (c.tiedEmbeddings) {
          // the output head is this table: the same stored codes, as a [V, E] linear
          const r = await convert(file, e.name, e.shape, src, null, maxUnpacked, buffers);
          stored.set(e.name, r.weight);
          paths.push(r.path);
        }
      } else {
        const quantizable = isLinearWeight(e.name) || (opts.quantizeLmHead && e.name === 'lm_head.weight');
        const scheme = quantizable && opts.weights ? (typeof opts.weights === 'function' ? opts.weights(e.name, e.shape) : opts.weights) : null;
        const r = await convert(file, e.name, e.shape, src, scheme, maxUnpacked, buffers);
        stored.set(e.name, r.weight);
        paths.push(r.path);
      }
      track.tick(e.name);
    }
    await file.close();
  } catch (err) {
    await file.remove();
    throw err;
  }
  if (!embedRows) throw new ConfigError('bad_config', 'model has no token embedding', { tensor: 'model.embed_tokens.weight' });
  return { config: c, tensors, lowBit: new Map(), stored, embedRows, weightPaths: paths, weightBytes: file.size, release: () => file.remove() };
}

/** One line per (stored form, path, detail): "112 × Q4_K → MatMulNBits 4-bit g32 + mins". */
export function summarizeWeightPaths(paths: readonly WeightPath[]): string[] {
  const groups = new Map<string, number>();
  for (const p of paths) {
    const key = p.path === 'nbits' ? `${p.stored} → MatMulNBits ${p.detail}` : `${p.stored} → float32 (${p.detail})`;
    groups.set(key, (groups.get(key) ?? 0) + 1);
  }
  return [...groups].map(([k, n]) => `${n} × ${k}`);
}
