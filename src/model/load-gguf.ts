// GGUF files as ModelWeights: hyper-parameters from `{arch}.*` metadata, tensors renamed to the
// canonical names (names.ts) and read lazily, the embedded vocabulary as a Tokenizer.
// Rotary layout: llama.cpp's converter permutes Llama/Mistral q/k rows to the interleaved layout
// (LLAMA_ROPE_TYPE_NORM); Qwen2/Qwen3 keep Hugging Face's rotate-half rows (NEOX), so the config
// says which one this ModelWeights holds.

import { ConfigError, FormatError } from '../core/errors.js';
import { TOKENIZER, archKey, LLM, type GgufFile } from '../formats/gguf/index.js';
import { openGgufFile } from '../formats/io/index.js';
import { tokenizerFromVocab, TOKEN_TYPE, type VocabExport } from '../formats/tokenizer/index.js';
import type { Tokenizer } from '../formats/tokenizer/types.js';
import type { Architecture, ModelConfig, RopeScaling } from './config.js';
import { canonicalTensors, checkLayerCount, ggufToHf } from './names.js';
import { lazyTensor } from './tensor-source.js';
import type { ModelWeights, TensorSource } from './weights.js';

const GGUF_ARCHS: Record<string, Architecture> = { llama: 'llama', mistral: 'mistral', qwen2: 'qwen2', qwen3: 'qwen3' };

function num(g: GgufFile, key: string, fallback?: number): number {
  const v = g.get(key);
  if (v === undefined) {
    if (fallback !== undefined) return fallback;
    throw new FormatError('bad_header', 'missing GGUF metadata key', { file: g.name, field: key });
  }
  const x = typeof v === 'bigint' ? Number(v) : v;
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new FormatError('bad_header', 'GGUF metadata key is not a number', { file: g.name, field: key, found: String(v) });
  return x;
}

/** The shortest decimal that rounds to the same float32 (GGUF stores 1e-5 as 9.99999974e-6). */
export function shortestF32(x: number): number {
  if (Math.fround(x) !== x) return x;
  for (let p = 1; p <= 9; p++) {
    const y = Number(x.toPrecision(p));
    if (Math.fround(y) === x) return y;
  }
  return x;
}

/** The embedded vocabulary, or null when the file has none. */
export function ggufVocab(g: GgufFile): VocabExport | null {
  const model = g.get(TOKENIZER.model);
  if (model === undefined) return null;
  if (model !== 'llama' && model !== 'gpt2') {
    throw new ConfigError('unsupported', 'unsupported GGUF tokenizer model', { file: g.name, field: TOKENIZER.model, expected: 'llama | gpt2', found: model });
  }
  const tokens = g.get(TOKENIZER.tokens);
  if (!Array.isArray(tokens)) throw new FormatError('bad_header', 'GGUF vocabulary has no token list', { file: g.name, field: TOKENIZER.tokens });
  const scores = g.get(TOKENIZER.scores) as number[] | undefined;
  const types = g.get(TOKENIZER.tokenType) as number[] | undefined;
  const merges = g.get(TOKENIZER.merges) as string[] | undefined;
  for (const [arr, key] of [[scores, TOKENIZER.scores], [types, TOKENIZER.tokenType]] as const) {
    if (arr !== undefined && arr.length !== tokens.length) {
      throw new FormatError('bad_header', 'GGUF vocabulary arrays differ in length', { file: g.name, field: key, expected: tokens.length, found: arr.length });
    }
  }
  const id = (k: string) => {
    const v = g.get(k);
    return v === undefined ? null : Number(v);
  };
  const flag = (k: string, d: boolean) => {
    const v = g.get(k);
    return typeof v === 'boolean' ? v : d;
  };
  return {
    model,
    tokens: tokens as string[],
    scores: scores ? Float32Array.from(scores) : model === 'llama' ? new Float32Array(tokens.length) : null,
    types: types ? Int32Array.from(types) : new Int32Array(tokens.length).fill(TOKEN_TYPE.NORMAL),
    merges: merges ?? null,
    bosId: id(TOKENIZER.bosId),
    eosId: id(TOKENIZER.eosId),
    unkId: id(TOKENIZER.unkId),
    padId: id(TOKENIZER.padId),
    addBos: flag(TOKENIZER.addBos, model === 'llama'),
    addEos: flag(TOKENIZER.addEos, false),
    addSpacePrefix: flag(TOKENIZER.addSpacePrefix, model === 'llama'),
    pre: (g.get(TOKENIZER.pre) as string | undefined) ?? null,
  };
}

/**
 * BOS/EOS/UNK/PAD ids must index the vocabulary (an out-of-range BOS used to pass every check and
 * fail deep in the engine, after the output was written).
 */
function checkTokenIds(g: GgufFile, c: ModelConfig, vocab: VocabExport | null): void {
  const n = vocab ? vocab.tokens.length : c.vocabSize;
  for (const key of [TOKENIZER.bosId, TOKENIZER.eosId, TOKENIZER.unkId, TOKENIZER.padId]) {
    const v = g.get(key);
    if (v === undefined) continue;
    const id = Number(v);
    if (!(Number.isSafeInteger(id) && id >= 0 && id < n)) {
      throw new FormatError('out_of_bounds', 'special token id is outside the vocabulary', { file: g.name, field: key, expected: `an id in [0, ${n - 1}]`, found: typeof v === 'bigint' ? v.toString() : (v as number) });
    }
  }
}

function optId(g: GgufFile, key: string): number | null {
  const v = g.get(key);
  return v === undefined ? null : Number(v);
}

function ropeScalingOf(g: GgufFile, factorKey: string, scalingType: unknown): RopeScaling | null {
  const saved = g.get('bitscale.rope_scaling');
  if (typeof saved === 'string') {
    try {
      return JSON.parse(saved) as RopeScaling;
    } catch {
      throw new FormatError('bad_header', 'bitscale.rope_scaling is not JSON', { file: g.name, field: 'bitscale.rope_scaling', found: saved.slice(0, 80) });
    }
  }
  if (typeof scalingType === 'string' && scalingType !== 'none') return { type: scalingType, factor: num(g, factorKey, 1) };
  return null;
}

export function ggufConfig(g: GgufFile, vocab: VocabExport | null): ModelConfig {
  const archName = g.get('general.architecture');
  const architecture = typeof archName === 'string' ? GGUF_ARCHS[archName] : undefined;
  if (!architecture) {
    throw new ConfigError('unsupported', 'unsupported GGUF architecture', { file: g.name, field: 'general.architecture', expected: Object.keys(GGUF_ARCHS).join(' | '), found: archName ?? 'missing' });
  }
  const k = (s: string) => archKey(archName as string, s);
  const E = num(g, k(LLM.embeddingLength));
  const H = num(g, k(LLM.headCount));
  const emb = g.has('token_embd.weight') ? g.info('token_embd.weight').shape[0] : undefined;
  const scalingType = g.get(k(LLM.ropeScalingType));
  return {
    architecture,
    vocabSize: num(g, k(LLM.vocabSize), vocab?.tokens.length ?? emb),
    hiddenSize: E,
    intermediateSize: num(g, k(LLM.feedForwardLength)),
    nLayers: num(g, k(LLM.blockCount)),
    nHeads: H,
    nKvHeads: num(g, k(LLM.headCountKv), H),
    headDim: num(g, k(LLM.keyLength), E / H),
    maxSeqLen: num(g, k(LLM.contextLength), 2048),
    rmsNormEps: shortestF32(num(g, k(LLM.layerNormRmsEpsilon), 1e-5)),
    ropeTheta: shortestF32(num(g, k(LLM.ropeFreqBase), 10000)),
    ropeScaling: ropeScalingOf(g, k(LLM.ropeScalingFactor), scalingType),
    ropeLayout: architecture === 'qwen2' || architecture === 'qwen3' ? 'half' : 'interleaved',
    tiedEmbeddings: !g.has('output.weight'),
    attentionBias: g.has('blk.0.attn_q.bias'),
    qkNorm: g.has('blk.0.attn_q_norm.weight'),
    bosTokenId: vocab?.bosId ?? optId(g, TOKENIZER.bosId),
    eosTokenId: vocab?.eosId ?? optId(g, TOKENIZER.eosId),
  };
}

/** Metadata as plain values; long arrays (the vocabulary) are summarised. */
export function ggufMetadataSummary(g: GgufFile): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key of g.metadata.keys()) {
    const v = g.get(key);
    out[key] = Array.isArray(v) && v.length > 16 ? `[${v.length} items]` : typeof v === 'bigint' ? Number(v) : v;
  }
  return out;
}

export async function loadGguf(path: string, opts: { tokenizer?: Tokenizer | null } = {}): Promise<ModelWeights> {
  const g = await openGgufFile(path);
  try {
    const vocab = ggufVocab(g);
    const config = ggufConfig(g, vocab);
    checkLayerCount(config.nLayers, g.tensors.length, path, archKey(String(g.get('general.architecture')), LLM.blockCount));
    checkTokenIds(g, config, vocab);
    const byName = new Map<string, TensorSource>();
    const extras: { name: string; shape: number[]; dtype: string; bytes: number }[] = [];
    for (const t of g.tensors) {
      const name = ggufToHf(t.name);
      if (name === null) {
        extras.push({ name: t.name, shape: t.shape, dtype: t.type, bytes: t.byteLength }); // e.g. rope_freqs.weight (llama3 scaling factors)
        continue;
      }
      const range = (off: number, len: number) => {
        if (!(off >= 0 && len >= 0 && off + len <= t.byteLength)) throw new FormatError('out_of_bounds', 'range read outside the tensor', { file: path, tensor: t.name, expected: `within ${t.byteLength} bytes`, found: `${off} + ${len}` });
        return g.source.read(t.absoluteOffset + off, len);
      };
      const file = g.source.filePath !== undefined ? { path: g.source.filePath, offset: t.absoluteOffset } : undefined;
      byName.set(name, lazyTensor(name, t.shape, t.type, t.byteLength, () => g.readBytes(t.name), (dst) => g.readBytesInto(t.name, dst), range, file));
    }
    const tensors = new Map<string, TensorSource>();
    for (const { name, shape } of canonicalTensors(config)) {
      const t = byName.get(name);
      if (!t) throw new FormatError('missing_tensor', 'GGUF file lacks a tensor its metadata implies', { file: path, tensor: name, expected: `shape [${shape.join(', ')}]` });
      if (t.shape.join() !== shape.join()) {
        throw new FormatError('shape_mismatch', 'tensor shape does not match the GGUF metadata', { file: path, tensor: name, expected: `[${shape.join(', ')}]`, found: `[${t.shape.join(', ')}]` });
      }
      tensors.set(name, t);
    }
    const metadata = ggufMetadataSummary(g);
    if (extras.length) metadata['bitscale.unmapped_tensors'] = extras;
    return {
      config,
      tokenizer: opts.tokenizer !== undefined ? opts.tokenizer : vocab ? tokenizerFromVocab(vocab) : null,
      tensors,
      source: { format: 'gguf', path },
      metadata,
      close: () => g.close(),
    };
  } catch (e) {
    await g.close();
    throw e;
  }
}
