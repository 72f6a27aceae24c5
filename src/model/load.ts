// loadModel: one entry point for every model source. Detects the format from the path:
// a directory → Hugging Face (config.json + safetensors, single or sharded); a .safetensors
// file → its directory; a file starting with "GGUF" → GGUF; anything else → a llama2.c
// checkpoint (legacy or versioned). Tensors are lazy (read by offset on demand); `close()`
// releases the file handles.

import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { FormatError, IoError, NumericError } from '../core/errors.js';
import { assertFinite, firstNonFiniteElement } from '../numerics/finite.js';
import type { Tokenizer } from '../formats/tokenizer/types.js';
import type { ModelWeights, SourceFormat, TensorSource } from './weights.js';
import { loadLlama2c, loadLlama2cTokenizer } from './load-llama2c.js';
import { loadGguf } from './load-gguf.js';
import { loadHf, loadHfTokenizer } from './load-hf.js';
import { openSource } from './source.js';

export interface LoadOptions {
  /** a tokenizer file that overrides the model's own: llama2.c tokenizer.bin or tokenizer.json; null loads none */
  tokenizer?: string | null;
  /** skip detection */
  format?: SourceFormat;
}

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian

/** Guesses the format of `path` from its kind and first bytes. */
export async function detectFormat(path: string): Promise<SourceFormat> {
  let st;
  try {
    st = await stat(path);
  } catch {
    throw new IoError('missing_file', 'model path does not exist', { file: path });
  }
  if (st.isDirectory()) return 'hf';
  if (path.endsWith('.safetensors') || path.endsWith('.safetensors.index.json')) return 'safetensors';
  const src = await openSource(path);
  try {
    if (src.size >= 4) {
      const b = await src.read(0, 4);
      if (new DataView(b.buffer, b.byteOffset, 4).getUint32(0, true) === GGUF_MAGIC) return 'gguf';
    }
  } finally {
    await src.close();
  }
  return 'llama2c';
}

/** Loads a tokenizer file by kind: *.json → Hugging Face, anything else → llama2.c tokenizer.bin. */
export async function loadTokenizerFile(path: string, vocabSize?: number): Promise<Tokenizer> {
  if (path.endsWith('.json')) {
    const t = await loadHfTokenizer(path);
    if (!t) throw new IoError('missing_file', 'tokenizer file not found', { file: path });
    return t;
  }
  return loadLlama2cTokenizer(path, vocabSize);
}

/**
 * The same source with every float read checked for NaN/Inf (the error names the file, the tensor,
 * the index and the value): each command that reads weights goes through here once. Block-quantized
 * bytes (`read()` of a ggml type) are not decoded for the check; their `readF32()` is checked.
 */
function finiteChecked(src: TensorSource, file: string): TensorSource {
  return {
    name: src.name,
    shape: src.shape,
    dtype: src.dtype,
    byteLength: src.byteLength,
    ...(src.packing !== undefined ? { packing: src.packing } : {}),
    async read() {
      const t = await src.read();
      const bad = 'data' in t ? firstNonFiniteElement(t) : null;
      if (bad) throw new NumericError('non_finite', 'the weights hold a non-finite value', { file, tensor: src.name, index: bad.index, found: bad.value, hint: NON_FINITE_HINT });
      return t;
    },
    async readF32() {
      const x = await src.readF32();
      assertFinite(x, { file, tensor: src.name, hint: NON_FINITE_HINT });
      return x;
    },
  };
}

const NON_FINITE_HINT = 'the checkpoint is damaged or was saved from a diverged run; bitscale does not quantize, convert or evaluate it';

export async function loadModel(path: string, opts: LoadOptions = {}): Promise<ModelWeights> {
  const m = await loadModelUnchecked(path, opts);
  // special token ids index the embedding (GGUF files check their tokenizer keys in load-gguf.ts)
  const c = m.config;
  for (const [k, id] of [['bos_token_id', c.bosTokenId], ['eos_token_id', c.eosTokenId]] as const) {
    if (id !== null && !(Number.isSafeInteger(id) && id >= 0 && id < c.vocabSize)) {
      await m.close();
      throw new FormatError('out_of_bounds', 'special token id is outside the vocabulary', { file: path, field: k, expected: `an id in [0, ${c.vocabSize - 1}]`, found: id });
    }
  }
  return { ...m, tensors: new Map([...m.tensors].map(([k, t]) => [k, finiteChecked(t, path)])) };
}

async function loadModelUnchecked(path: string, opts: LoadOptions): Promise<ModelWeights> {
  const format = opts.format ?? (await detectFormat(path));
  if (format === 'llama2c') {
    if (typeof opts.tokenizer === 'string' && opts.tokenizer.endsWith('.json')) {
      const m = await loadLlama2c(path, { tokenizer: null });
      return { ...m, tokenizer: await loadTokenizerFile(opts.tokenizer) };
    }
    return loadLlama2c(path, { tokenizer: opts.tokenizer });
  }
  const tokenizer = opts.tokenizer === null ? null : opts.tokenizer !== undefined ? await loadTokenizerFile(opts.tokenizer) : undefined;
  if (format === 'gguf') return loadGguf(path, { tokenizer });
  const dir = format === 'safetensors' ? dirname(path) : path;
  const m = await loadHf(dir, { tokenizer, weights: format === 'safetensors' ? path : undefined });
  return format === 'safetensors' ? { ...m, source: { format: 'safetensors', path } } : m;
}
