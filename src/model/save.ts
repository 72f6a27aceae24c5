// saveModel: writes a ModelWeights as
// - 'hf':      a directory with model.safetensors (metadata format=pt), config.json,
//              generation_config.json, tokenizer.json + tokenizer_config.json; q/k rows in the
//              rotate-half layout;
// - 'gguf':    one GGUF v3 file with the metadata llama.cpp reads ({arch}.* hyper-parameters,
//              tokenizer.ggml.*, general.alignment); q/k rows in the layout llama.cpp expects for
//              the architecture (interleaved for llama, rotate-half for qwen2/qwen3);
// - 'llama2c': a llama2.c checkpoint (version 0, 1 or 2), interleaved.
// Tensors stream one at a time. Every output goes through formats/io/output.ts: checked before
// any work, staged, verified (`verify`), then renamed into place; it never replaces the model's own
// input files, and --force replaces a folder only when bitscale wrote it. `writeModelFiles` is the
// unchecked writer, for a caller that stages the output itself.
//
// Quantized output: `tensor(name, src)` may return a QuantTensor (GGUF only) or a Tensor for any
// tensor, in the ModelWeights' own rotary layout and canonical [out, in] shape; saveModel permutes
// rows (whole rows of blocks, so any ggml type) and writes it as given. Returning null uses the
// default conversion to `dtype`. Tensors already stored in a ggml block type are copied as is.
// For GGUF, a quantized tensor may also come in pieces (StreamedQuantTensor), written as they come.

import { mkdir } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { isGgmlType, type DType, type GgmlType } from '../core/dtype.js';
import { GGML_QUANTIZATION_VERSION } from '../core/ftype.js';
import { ConfigError, ShapeError } from '../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../core/progress.js';
import type { QuantTensor, Tensor } from '../core/tensor.js';
import { bytesOfTyped, concatBytes } from '../formats/bytes.js';
import { archKey, gv, LLM, TOKENIZER, type GgufValue, type GgufWriteTensor } from '../formats/gguf/index.js';
import { generationConfigJson } from '../formats/hf/json.js';
import { atomicWriteFile, withAtomicFile, withOutput, writeGgufFile, writeSafetensorsFile } from '../formats/io/index.js';
import { encodeLlama2c, type Llama2cVersion } from '../formats/llama2c/checkpoint.js';
import type { HfTokenizer } from '../formats/tokenizer/hf.js';
import type { Tokenizer } from '../formats/tokenizer/types.js';
import { bpeTokenizerFiles, spmTokenizerFiles, type VocabExport } from '../formats/tokenizer/vocab.js';
import { encodeBf16Array, encodeF16Array } from '../numerics/float16.js';
import { assertNoNarrowingOverflow } from '../numerics/finite.js';
import type { ModelConfig, RopeLayout } from './config.js';
import { hfConfigJson } from './hf-config.js';
import { llama3RopeFactors } from './rope-scaling.js';
import { modelInputFiles } from './inputs.js';
import { hfToGguf, hfToLlama2c, isRotaryProjection } from './names.js';
import { permuteRowBytes, rotaryRowOrder } from './permute.js';
import type { ModelWeights, TensorSource } from './weights.js';

export type SaveFormat = 'hf' | 'gguf' | 'llama2c';
export type FloatDType = 'F32' | 'F16' | 'BF16';

export interface SaveOptions {
  format: SaveFormat;
  /** element type for weight matrices (default F32); 1-D tensors (norms, biases) stay F32 in GGUF */
  dtype?: FloatDType;
  /** per-tensor override (see the file comment); null → default conversion */
  tensor?: (name: string, src: TensorSource) => Promise<Tensor | QuantTensor | StreamedQuantTensor | null>;
  /** the type `tensor` will return for a name (lets GGUF headers be written without preparing tensors early) */
  tensorType?: (name: string, src: TensorSource) => DType | GgmlType | undefined;
  /** GGUF general.file_type (default from dtype: 0 F32, 1 F16, 32 BF16) */
  fileType?: number;
  /** extra GGUF metadata appended after the standard keys */
  ggufMetadata?: Record<string, GgufValue>;
  /** llama2.c version (default 0, the legacy format run.c reads) and Q8_0 group size for version 2 */
  llama2cVersion?: Llama2cVersion;
  llama2cGroupSize?: number;
  /** replace an existing output (a folder only when bitscale wrote it) */
  overwrite?: boolean;
  /** more paths the output must not replace (tokenizer, calibration text, …), beside the model's own files */
  inputs?: readonly (string | null | undefined)[];
  /** runs on the staged output before it is put in place; a throw leaves nothing at the final path */
  verify?: (stagedPath: string) => Promise<void>;
  /** the command recorded in an output folder's manifest (default 'save') */
  command?: string;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

export interface SaveResult {
  format: SaveFormat;
  /** files written */
  files: string[];
  tensors: number;
}

const FILE_TYPE: Record<FloatDType, number> = { F32: 0, F16: 1, BF16: 32 };
const TOKEN_TYPE_UNUSED = 5;

/** GGUF architecture name and the rotary layout llama.cpp expects for it. */
function ggufArch(c: ModelConfig): { arch: string; layout: RopeLayout } {
  if (c.architecture === 'qwen2' || c.architecture === 'qwen3') return { arch: c.architecture, layout: 'half' };
  return { arch: 'llama', layout: 'interleaved' };
}

function storedBytes(t: Tensor | QuantTensor): Uint8Array {
  if ('type' in t) return t.bytes;
  return bytesOfTyped(t.data as ArrayBufferView, (t.data as unknown as { BYTES_PER_ELEMENT: number }).BYTES_PER_ELEMENT);
}

/** float32 → `dtype` bytes; a value that overflows the narrower type is an error, never a silent ±Inf. */
function encodeFloat(x: Float32Array, dtype: FloatDType, tensor: string): Uint8Array {
  if (dtype === 'F32') return bytesOfTyped(x, 4);
  const h = dtype === 'F16' ? encodeF16Array(x) : encodeBf16Array(x);
  assertNoNarrowingOverflow(x, h, dtype, { tensor });
  return bytesOfTyped(h, 2);
}

/**
 * A quantized tensor whose bytes come as consecutive pieces, each valid until the next is asked
 * for (the producer reuses its buffers): a large tensor (a 128k-row embedding) is then never whole
 * in memory. Written piece by piece into GGUF; other formats and permuted rows gather it first.
 */
export interface StreamedQuantTensor {
  type: GgmlType;
  shape: number[];
  chunks: AsyncIterable<Uint8Array>;
}

interface Prepared {
  type: DType | GgmlType;
  bytes: Uint8Array;
}

interface PreparedStream {
  type: GgmlType;
  chunks: AsyncIterable<Uint8Array>;
}

/** The pieces copied into one array (each piece is valid only until the next is asked for). */
async function gather(chunks: AsyncIterable<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const c of chunks) parts.push(c.slice());
  return concatBytes(parts);
}

/** prepareOrStream with every tensor whole (safetensors and llama2.c output). */
async function prepare(m: ModelWeights, src: TensorSource, dtype: FloatDType, toLayout: RopeLayout, opts: SaveOptions, allowQuant: boolean): Promise<Prepared> {
  return (await prepareOrStream(m, src, dtype, toLayout, opts, allowQuant, false)) as Prepared;
}

/**
 * One tensor's output bytes: the override if any, else the stored bytes when the dtype already
 * matches (lossless), else float32 converted to `dtype`; then rotary rows permuted. A streamed
 * override stays streamed when `allowStream` and its rows need no permutation.
 */
async function prepareOrStream(
  m: ModelWeights,
  src: TensorSource,
  dtype: FloatDType,
  toLayout: RopeLayout,
  opts: SaveOptions,
  allowQuant: boolean,
  allowStream: boolean,
): Promise<Prepared | PreparedStream> {
  let out: Prepared;
  const over = opts.tensor ? await opts.tensor(src.name, src) : null;
  const rot = isRotaryProjection(src.name);
  const c = m.config;
  const permute = !!rot && c.ropeLayout !== toLayout;
  if (over) {
    if (over.shape.join() !== src.shape.join()) {
      throw new ShapeError('shape_mismatch', 'tensor override has the wrong shape', { tensor: src.name, expected: `[${src.shape.join(', ')}]`, found: `[${over.shape.join(', ')}]` });
    }
    if ('chunks' in over) {
      if (allowStream && !permute && allowQuant) return { type: over.type, chunks: over.chunks };
      out = { type: over.type, bytes: await gather(over.chunks) };
    } else out = { type: 'type' in over ? over.type : over.dtype, bytes: storedBytes(over) };
  } else if (src.dtype === dtype || (isGgmlType(src.dtype) && !['F32', 'F16', 'BF16'].includes(src.dtype) && allowQuant)) {
    out = { type: src.dtype, bytes: storedBytes(await src.read()) };
  } else {
    out = { type: dtype, bytes: encodeFloat(await src.readF32(), dtype, src.name) };
  }
  if (!allowQuant && isGgmlType(out.type) && !['F32', 'F16', 'BF16'].includes(out.type)) {
    throw new ConfigError('unsupported', 'this output format cannot hold ggml block-quantized tensors', { tensor: src.name, found: out.type, hint: 'write GGUF, or dequantize first' });
  }
  if (rot && permute) {
    const heads = rot === 'q' ? c.nHeads : c.nKvHeads;
    out.bytes = permuteRowBytes(out.bytes, rotaryRowOrder(heads, c.headDim, c.ropeLayout, toLayout));
  }
  return out;
}

/** Writes `m` to `out` (checked, staged, verified, then put in place; see the file comment). */
export async function saveModel(m: ModelWeights, out: string, opts: SaveOptions): Promise<SaveResult> {
  if (!['gguf', 'hf', 'llama2c'].includes(opts.format)) {
    throw new ConfigError('bad_option', 'unknown output format', { field: 'format', expected: 'hf | gguf | llama2c', found: opts.format });
  }
  const inputs = [...(await modelInputFiles(m)), ...(opts.inputs ?? [])];
  return withOutput(out, { kind: opts.format === 'hf' ? 'dir' : 'file', force: opts.overwrite, inputs, command: opts.command ?? 'save' }, async (txn) => {
    const r = await writeModelFiles(m, txn.staged, opts);
    await opts.verify?.(txn.staged);
    return { ...r, files: r.files.map((f) => txn.finalPath(f)) };
  });
}

/**
 * The writer without the output checks: `out` must not exist (a file format) or be an empty
 * folder (hf). For callers that stage and put the output in place themselves.
 */
export async function writeModelFiles(m: ModelWeights, out: string, opts: SaveOptions): Promise<SaveResult> {
  switch (opts.format) {
    case 'gguf':
      return saveGguf(m, out, opts);
    case 'hf':
      return saveHf(m, out, opts);
    case 'llama2c':
      return saveLlama2c(m, out, opts);
    default:
      throw new ConfigError('bad_option', 'unknown output format', { field: 'format', expected: 'hf | gguf | llama2c', found: opts.format });
  }
}

/** A typed array's items as a plain array (Array.from walks an iterator: 3–8× slower for 128k items, measured). */
function plainArray(a: Float32Array | Int32Array): number[] {
  const out: number[] = new Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = a[i];
  return out;
}

/** The standard GGUF metadata for a config and vocabulary. */
export function ggufMetadataFor(c: ModelConfig, vocab: VocabExport | null, opts: { name?: string; fileType?: number } = {}): Map<string, GgufValue> {
  const { arch } = ggufArch(c);
  const md = new Map<string, GgufValue>();
  const k = (s: string) => archKey(arch, s);
  md.set('general.architecture', gv.str(arch));
  if (opts.name) md.set('general.name', gv.str(opts.name));
  // as llama.cpp's converter and quantizer write them: the file type and ggml's quantization version
  md.set('general.file_type', gv.u32(opts.fileType ?? 0));
  md.set('general.quantization_version', gv.u32(GGML_QUANTIZATION_VERSION));
  md.set('general.alignment', gv.u32(32));
  md.set(k(LLM.contextLength), gv.u32(c.maxSeqLen));
  md.set(k(LLM.embeddingLength), gv.u32(c.hiddenSize));
  md.set(k(LLM.blockCount), gv.u32(c.nLayers));
  md.set(k(LLM.feedForwardLength), gv.u32(c.intermediateSize));
  md.set(k(LLM.headCount), gv.u32(c.nHeads));
  md.set(k(LLM.headCountKv), gv.u32(c.nKvHeads));
  md.set(k(LLM.ropeDimensionCount), gv.u32(c.headDim));
  md.set(k(LLM.ropeFreqBase), gv.f32(c.ropeTheta));
  md.set(k(LLM.layerNormRmsEpsilon), gv.f32(c.rmsNormEps));
  md.set(k(LLM.vocabSize), gv.u32(c.vocabSize));
  if (c.headDim * c.nHeads !== c.hiddenSize) {
    md.set(k(LLM.keyLength), gv.u32(c.headDim));
    md.set(k(LLM.valueLength), gv.u32(c.headDim));
  }
  if (c.ropeScaling && c.ropeScaling.type === 'linear') {
    md.set(k(LLM.ropeScalingType), gv.str('linear'));
    md.set(k(LLM.ropeScalingFactor), gv.f32(c.ropeScaling.factor));
  }
  // llama.cpp reads llama3 scaling from a rope_freqs tensor (llama3RopeFactors); the parameters
  // themselves ride along so that GGUF → HF restores rope_scaling
  if (c.ropeScaling) md.set('bitscale.rope_scaling', gv.str(JSON.stringify(c.ropeScaling)));
  if (vocab && vocab.tokens.length < c.vocabSize) {
    // embedding rows past the tokenizer's vocabulary (Qwen pads to a multiple of 128): llama.cpp
    // wants one token per row, so pad as its converter does with unused [PAD<i>] tokens
    const have = vocab.tokens.length;
    const extra = c.vocabSize - have;
    const pad = Array.from({ length: extra }, (_, i) => `[PAD${have + i}]`);
    vocab = {
      ...vocab,
      tokens: [...vocab.tokens, ...pad],
      scores: vocab.scores ? Float32Array.from([...vocab.scores, ...new Array(extra).fill(0)]) : null,
      types: Int32Array.from([...vocab.types, ...new Array(extra).fill(TOKEN_TYPE_UNUSED)]),
    };
  }
  if (vocab) {
    md.set(TOKENIZER.model, gv.str(vocab.model));
    if (vocab.pre) md.set(TOKENIZER.pre, gv.str(vocab.pre));
    md.set(TOKENIZER.tokens, gv.arr('string', vocab.tokens));
    if (vocab.scores) md.set(TOKENIZER.scores, gv.arr('f32', plainArray(vocab.scores)));
    md.set(TOKENIZER.tokenType, gv.arr('i32', plainArray(vocab.types)));
    if (vocab.merges) md.set(TOKENIZER.merges, gv.arr('string', vocab.merges));
    // a tokenizer.json without BOS/EOS specials (our trained BPE) leaves them to config.json
    const bos = vocab.bosId ?? c.bosTokenId;
    const eos = vocab.eosId ?? c.eosTokenId;
    if (bos !== null) md.set(TOKENIZER.bosId, gv.u32(bos));
    if (eos !== null) md.set(TOKENIZER.eosId, gv.u32(eos));
    if (vocab.unkId !== null) md.set(TOKENIZER.unkId, gv.u32(vocab.unkId));
    if (vocab.padId !== null) md.set(TOKENIZER.padId, gv.u32(vocab.padId));
    md.set(TOKENIZER.addBos, gv.bool(vocab.addBos));
    md.set(TOKENIZER.addEos, gv.bool(vocab.addEos));
    if (vocab.model === 'llama') md.set(TOKENIZER.addSpacePrefix, gv.bool(vocab.addSpacePrefix));
  } else {
    // no vocabulary: keep the special ids so that a later conversion back restores the config
    if (c.bosTokenId !== null) md.set(TOKENIZER.bosId, gv.u32(c.bosTokenId));
    if (c.eosTokenId !== null) md.set(TOKENIZER.eosId, gv.u32(c.eosTokenId));
  }
  return md;
}

async function saveGguf(m: ModelWeights, out: string, opts: SaveOptions): Promise<SaveResult> {
  const dtype = opts.dtype ?? 'F32';
  const { layout } = ggufArch(m.config);
  const vocab = m.tokenizer?.exportVocab ? m.tokenizer.exportVocab() : null;
  // a GGUF input keeps its general.name (llama.cpp's quantizer copies it); others are named after the file
  const srcName = m.metadata['general.name'];
  const name = typeof srcName === 'string' ? srcName : basename(m.source.path).replace(/\.[^.]*$/, '');
  const md = ggufMetadataFor(m.config, vocab, { fileType: opts.fileType ?? FILE_TYPE[dtype], name });
  for (const [key, v] of Object.entries(opts.ggufMetadata ?? {})) md.set(key, v);
  const progress = new ProgressTracker('save', m.tensors.size, opts.onProgress, 'tensor');
  const prepared = new Map<string, Prepared | PreparedStream>();
  const entries: GgufWriteTensor[] = [];
  for (const src of m.tensors.values()) {
    const name = hfToGguf(src.name);
    if (!name) throw new ConfigError('unsupported', 'tensor has no GGUF name', { tensor: src.name });
    const want: FloatDType = src.shape.length === 1 ? 'F32' : dtype;
    const stored = isGgmlType(src.dtype) && !['F32', 'F16', 'BF16'].includes(src.dtype);
    // the header needs every type before any data: declared, stored, or (override without a
    // declaration) found by preparing the tensor now
    let type: DType | GgmlType | undefined = opts.tensorType?.(src.name, src) ?? undefined;
    if (type === undefined && opts.tensor) {
      const p = await prepareOrStream(m, src, want, layout, opts, true, true);
      prepared.set(name, p);
      type = p.type;
    }
    type ??= stored ? src.dtype : want;
    if (!isGgmlType(type)) throw new ConfigError('unsupported', 'GGUF cannot store this dtype', { tensor: src.name, found: type });
    const declared = type;
    entries.push({
      name,
      type: declared,
      shape: src.shape,
      produce: async () => {
        checkAborted(opts.signal);
        const p = prepared.get(name) ?? (await prepareOrStream(m, src, want, layout, opts, true, true));
        prepared.delete(name);
        if (p.type !== declared) throw new ConfigError('bad_option', 'tensor override returned a different type than tensorType declared', { tensor: src.name, expected: declared, found: p.type });
        progress.tick(src.name);
        return 'chunks' in p ? { chunks: p.chunks } : p.bytes;
      },
    });
  }
  if (m.config.ropeScaling?.type === 'llama3') {
    entries.push({ name: 'rope_freqs.weight', type: 'F32', shape: [m.config.headDim / 2], produce: async () => bytesOfTyped(llama3RopeFactors(m.config), 4) });
  }
  await writeGgufFile(out, md, entries, { signal: opts.signal });
  return { format: 'gguf', files: [out], tensors: entries.length };
}

async function saveHf(m: ModelWeights, out: string, opts: SaveOptions): Promise<SaveResult> {
  const dtype = opts.dtype ?? 'F32';
  const torchDtype = { F32: 'float32', F16: 'float16', BF16: 'bfloat16' }[dtype];
  const dir = out;
  await mkdir(dir, { recursive: true });
  const progress = new ProgressTracker('save', m.tensors.size, opts.onProgress, 'tensor');
  const entries = [...m.tensors.values()].map((src) => ({
    name: src.name,
    dtype: dtype as DType,
    shape: src.shape,
    produce: async () => {
      checkAborted(opts.signal);
      const p = await prepare(m, src, dtype, 'half', opts, false);
      if (p.type !== dtype) throw new ConfigError('unsupported', 'per-tensor dtype overrides are not supported for HF output', { tensor: src.name, expected: dtype, found: p.type });
      progress.tick(src.name);
      return p.bytes;
    },
  }));
  const files = [join(out, 'model.safetensors'), join(out, 'config.json'), join(out, 'generation_config.json')];
  await writeSafetensorsFile(join(dir, 'model.safetensors'), entries, { metadata: { format: 'pt' }, order: 'given', signal: opts.signal });
  const cfg = { ...m.config, ropeLayout: 'half' as const };
  await atomicWriteFile(join(dir, 'config.json'), JSON.stringify(hfConfigJson(cfg, torchDtype), null, 2) + '\n');
  for (const f of hfSideFiles(m.config, m.tokenizer)) {
    await atomicWriteFile(join(dir, f.name), f.text);
    if (f.name !== 'generation_config.json') files.push(join(out, f.name));
  }
  return { format: 'hf' as const, files, tensors: entries.length };
}

/** The text files beside a Hugging Face folder's weights: generation_config.json, then tokenizer.json + tokenizer_config.json when the tokenizer can be exported. */
export function hfSideFiles(c: ModelConfig, tok: Tokenizer | null): { name: string; text: string }[] {
  const gen = generationConfigJson({ bosTokenId: c.bosTokenId, eosTokenIds: c.eosTokenId === null ? [] : [c.eosTokenId] });
  const files = [{ name: 'generation_config.json', text: JSON.stringify(gen, null, 2) + '\n' }];
  const t = hfTokenizerFiles(tok, c.maxSeqLen);
  if (t) files.push({ name: 'tokenizer.json', text: JSON.stringify(t.tokenizer) }, { name: 'tokenizer_config.json', text: JSON.stringify(t.config, null, 2) + '\n' });
  return files;
}

/** tokenizer.json and tokenizer_config.json contents for a Hugging Face directory, or null if the tokenizer cannot be exported. */
export function hfTokenizerFiles(tok: Tokenizer | null, maxSeqLen: number): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } | null {
  // by kind, not instanceof: the class's module loads @huggingface/tokenizers, which no other save needs
  if (tok?.kind === 'hf') return { tokenizer: (tok as HfTokenizer).json, config: (tok as HfTokenizer).config };
  if (!tok?.exportVocab) return null;
  const v = tok.exportVocab();
  return v.model === 'llama' ? spmTokenizerFiles(v, maxSeqLen) : bpeTokenizerFiles(v, maxSeqLen);
}

async function saveLlama2c(m: ModelWeights, out: string, opts: SaveOptions): Promise<SaveResult> {
  const c = m.config;
  const bad = (field: string, expected: string, found: unknown) => new ConfigError('unsupported', 'llama2.c cannot represent this model', { field, expected, found });
  if (c.attentionBias) throw bad('attentionBias', 'false', true);
  if (c.qkNorm) throw bad('qkNorm', 'false', true);
  if (c.headDim * c.nHeads !== c.hiddenSize) throw bad('headDim', `${c.hiddenSize / c.nHeads}`, c.headDim);
  if (c.ropeTheta !== 10000) throw bad('ropeTheta', '10000 (run.c hard-codes it)', c.ropeTheta);
  const version = opts.llama2cVersion ?? 0;
  let groupSize: number | null = null;
  if (version === 2) {
    groupSize = opts.llama2cGroupSize ?? 64;
    // export.py halves the group size until it divides dim
    while (c.hiddenSize % groupSize !== 0) groupSize /= 2;
  }
  const header = {
    version,
    dim: c.hiddenSize,
    hiddenDim: c.intermediateSize,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads,
    vocabSize: c.vocabSize,
    seqLen: c.maxSeqLen,
    sharedClassifier: c.tiedEmbeddings,
    groupSize,
  };
  const byArray = new Map<string, TensorSource>();
  for (const src of m.tensors.values()) {
    const a = hfToLlama2c(src.name);
    if (a) byArray.set(`${a.array}/${a.layer}`, src);
  }
  await withAtomicFile(out, {}, async (sink) => {
    for await (const chunk of encodeLlama2c(header, async (array, layer) => {
      checkAborted(opts.signal);
      const src = byArray.get(`${array}/${layer}`);
      if (!src) throw new ConfigError('bad_config', 'model lacks a tensor llama2.c needs', { tensor: `${array}${layer === null ? '' : `[${layer}]`}` });
      const p = await prepare(m, src, 'F32', 'interleaved', opts, false);
      if (p.type !== 'F32') throw new ConfigError('unsupported', 'llama2.c output takes float32 tensors', { tensor: src.name, found: p.type });
      const copy = p.bytes.slice();
      return new Float32Array(copy.buffer, 0, copy.length / 4);
    })) {
      await sink.write(chunk);
    }
  });
  return { format: 'llama2c', files: [out], tensors: byArray.size };
}
