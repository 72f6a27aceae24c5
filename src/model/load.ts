// loadModel: one entry point for every model source. Detects the format from the path:
// a directory → Hugging Face (config.json + safetensors, single or sharded), or a transformers.js
// ONNX folder (config.json + onnx/model*.onnx, no safetensors), as is an .onnx file in its onnx/ folder; a .safetensors
// file → its directory; a file starting with "GGUF" → GGUF; anything else → a llama2.c
// checkpoint (legacy or versioned). Tensors are lazy (read by offset on demand); `close()`
// releases the file handles.

import { stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { IoError } from '../core/errors.js';
import type { Tokenizer } from '../formats/tokenizer/types.js';
import type { ModelWeights, SourceFormat } from './weights.js';
import { loadLlama2c, loadLlama2cTokenizer } from './load-llama2c.js';
import { loadGguf } from './load-gguf.js';
import { loadHf, loadHfTokenizer } from './load-hf.js';
import { openSource } from './source.js';
import { loadOnnxFolder, onnxFolderOf } from './load-onnx.js';

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
    const hubLike = /^[A-Za-z0-9][\w.-]*\/[\w.-]+$/.test(path);
    throw new IoError('missing_file', 'model path does not exist', {
      file: path,
      hint: hubLike ? 'the bitscale CLI downloads Hugging Face ids (org/name) into the HF cache; in the library, fetch it with fetchHubModel() first' : 'give a llama2.c checkpoint, a GGUF file, a Hugging Face folder, or a Hub id (org/name)',
    });
  }
  if (st.isDirectory()) return (await onnxFolderOf(path)) ? 'onnx' : 'hf';
  if (path.endsWith('.onnx') && (await onnxFolderOf(path))) return 'onnx';
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

export async function loadModel(path: string, opts: LoadOptions = {}): Promise<ModelWeights> {
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
  if (format === 'onnx') return loadOnnxFolder(path, { tokenizer });
  const dir = format === 'safetensors' ? dirname(path) : path;
  const m = await loadHf(dir, { tokenizer, weights: format === 'safetensors' ? path : undefined });
  return format === 'safetensors' ? { ...m, source: { format: 'safetensors', path } } : m;
}
