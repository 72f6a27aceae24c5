// loadModel: one entry point for every model source. Detects the format from the path:
// a directory → Hugging Face (config.json + safetensors, single or sharded), or a transformers.js
// ONNX folder (config.json + onnx/model*.onnx, no safetensors), as is an .onnx file in its onnx/ folder; a .safetensors
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
import { openSource } from './source.js';
import { tracePhase } from '../core/phase-trace.js';
// Hugging Face and ONNX loading (tokenizers, protobuf) are imported when such a model is loaded:
// a GGUF or llama2.c run starts without them
const hf = () => import('./load-hf.js');
const onnx = () => import('./load-onnx.js');

export interface LoadOptions {
  /** a tokenizer file that overrides the model's own: llama2.c tokenizer.bin or tokenizer.json; null loads none */
  tokenizer?: string | null;
  /** skip detection */
  format?: SourceFormat;
}

const GGUF_MAGIC = 0x46554747; // "GGUF" little-endian

/** Names by extension, for messages when the content says otherwise. */
function formatByName(path: string): SourceFormat | null {
  if (/\.gguf$/i.test(path)) return 'gguf';
  if (/\.safetensors$|\.safetensors\.index\.json$/i.test(path)) return 'safetensors';
  return null;
}

/**
 * The format of `path`, chosen by content: a folder → Hugging Face; the GGUF magic → GGUF; a
 * safetensors header (u64 length, then '{') → safetensors; anything else → llama2.c. A file whose
 * name promises another format than its bytes (an empty `.gguf`, a flipped magic) is refused
 * naming both, instead of being parsed as a llama2.c header.
 */
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
  if (st.isDirectory()) return (await (await onnx()).onnxFolderOf(path)) ? 'onnx' : 'hf';
  if (path.endsWith('.onnx') && (await (await onnx()).onnxFolderOf(path))) return 'onnx';
  if (path.endsWith('.safetensors.index.json')) return 'safetensors';
  const src = await openSource(path);
  let head: Uint8Array;
  try {
    head = src.size > 0 ? await src.read(0, Math.min(9, src.size)) : new Uint8Array(0);
  } finally {
    await src.close();
  }
  const named = formatByName(path);
  if (head.length === 0) throw new FormatError('truncated', 'the model file is empty', { file: path, expected: named ? `a ${named === 'gguf' ? 'GGUF' : 'safetensors'} file` : 'a model file', found: '0 bytes' });
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const byContent: SourceFormat | null =
    head.length >= 4 && dv.getUint32(0, true) === GGUF_MAGIC ? 'gguf' : head.length >= 9 && head[8] === 0x7b && dv.getBigUint64(0, true) < BigInt(src.size) ? 'safetensors' : null;
  if (byContent) return byContent;
  // a damaged .safetensors gets the safetensors reader's own, more precise, error
  if (named === 'safetensors') return 'safetensors';
  if (named) {
    const hex = Array.from(head.subarray(0, 4), (b) => b.toString(16).padStart(2, '0')).join(' ');
    throw new FormatError('bad_magic', `the file is named ${named === 'gguf' ? '.gguf' : '.safetensors'} but does not start like one`, {
      file: path,
      offset: 0,
      expected: named === 'gguf' ? "the GGUF magic 47 47 55 46 ('GGUF')" : "a u64 header length, then '{'",
      found: hex,
      hint: 'the file is damaged or mislabelled (an interrupted download?)',
    });
  }
  return 'llama2c';
}

/** Loads a tokenizer file by kind: *.json → Hugging Face, anything else → llama2.c tokenizer.bin. */
export async function loadTokenizerFile(path: string, vocabSize?: number): Promise<Tokenizer> {
  if (path.endsWith('.json')) {
    const t = await (await hf()).loadHfTokenizer(path);
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
    // raw stored bytes pass through unchecked: their readers decode and check them (the streaming
    // quantizer names a NaN's tensor itself); the decoded reads below are checked here
    ...(src.readInto ? { readInto: (dst: Uint8Array) => src.readInto!(dst) } : {}),
    ...(src.readRange ? { readRange: (off: number, len: number) => src.readRange!(off, len) } : {}),
    ...(src.readCodes ? { readCodes: () => src.readCodes!() } : {}),
    ...(src.file ? { file: src.file } : {}),
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
  tracePhase(`model: loaded ${m.source.format}`);
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
  if (format === 'onnx') return (await onnx()).loadOnnxFolder(path, { tokenizer });
  const dir = format === 'safetensors' ? dirname(path) : path;
  const m = await (await hf()).loadHf(dir, { tokenizer, weights: format === 'safetensors' ? path : undefined });
  return format === 'safetensors' ? { ...m, source: { format: 'safetensors', path } } : m;
}
