// loadModel: one entry point for every model source. Detects the format from the path:
// a directory → Hugging Face (config.json + safetensors, single or sharded); a file starting
// with "GGUF" → GGUF; anything else → a llama2.c checkpoint (legacy or versioned).
// Tensors are lazy (read by offset on demand); `close()` releases the file handles.

import { stat } from 'node:fs/promises';
import { IoError } from '../core/errors.js';
import type { ModelWeights, SourceFormat } from './weights.js';
import { loadLlama2c } from './load-llama2c.js';
import { openSource } from './source.js';

export interface LoadOptions {
  /** tokenizer file (llama2.c tokenizer.bin, or a tokenizer.json); null loads none */
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
  if (path.endsWith('.safetensors')) return 'safetensors';
  const src = await openSource(path);
  try {
    if (src.size >= 4) {
      const b = await src.read(0, 4);
      if (new DataView(b.buffer).getUint32(0, true) === GGUF_MAGIC) return 'gguf';
    }
  } finally {
    await src.close();
  }
  return 'llama2c';
}

export async function loadModel(path: string, opts: LoadOptions = {}): Promise<ModelWeights> {
  const format = opts.format ?? (await detectFormat(path));
  switch (format) {
    case 'llama2c':
      return loadLlama2c(path, { tokenizer: opts.tokenizer });
    default:
      throw new IoError('io', `loading ${format} models is not implemented yet`, { file: path });
  }
}
