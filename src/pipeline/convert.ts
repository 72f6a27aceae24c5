// `convert`: one model format to another through ModelWeights (llama2.c → HF / GGUF, HF ↔ GGUF,
// any → llama2.c). Lossless by default: weight matrices keep their stored float dtype unless
// `dtype` asks otherwise, and the rotary Q/K rows are permuted exactly (row moves, no arithmetic).
// The output is written atomically and never replaces an input.

import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { ConfigError, IoError, NumericError } from '../core/errors.js';
import type { ProgressFn } from '../core/progress.js';
import { atomicWriteFile } from '../formats/io/index.js';
import { encodeLlama2cVocab } from '../formats/llama2c/tokenizer-bin.js';
import { llama2cVocabFromSpm } from '../formats/tokenizer/vocab.js';
import { loadModel } from '../model/load.js';
import { saveModel, type FloatDType, type SaveFormat } from '../model/save.js';
import type { ModelWeights } from '../model/weights.js';

export interface ConvertOptions {
  /** output format; default from the output name: *.gguf → gguf, *.bin → llama2c, else hf */
  to?: SaveFormat;
  /** weight dtype; default: the source's float dtype (F32 for quantized or mixed sources) */
  dtype?: FloatDType;
  /** tokenizer file for sources without one beside them (llama2.c) or to replace theirs */
  tokenizer?: string;
  overwrite?: boolean;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

export interface ConvertResult {
  input: string;
  output: string;
  from: string;
  to: SaveFormat;
  dtype: FloatDType;
  tensors: number;
  files: string[];
  seconds: number;
}

export function formatFromOutput(out: string): SaveFormat {
  if (out.endsWith('.gguf')) return 'gguf';
  if (out.endsWith('.bin')) return 'llama2c';
  return 'hf';
}

/** The source's weight-matrix dtype when it is one float type, else F32. */
export function sourceFloatDType(m: ModelWeights): FloatDType {
  const kinds = new Set([...m.tensors.values()].filter((t) => t.shape.length === 2).map((t) => String(t.dtype)));
  const only = kinds.size === 1 ? [...kinds][0] : 'F32';
  return only === 'F16' || only === 'BF16' ? only : 'F32';
}

/** The staged output reads back with our own reader: the same config and the same tensors and shapes. */
async function verifyConverted(m: ModelWeights, staged: string, to: SaveFormat): Promise<void> {
  const back = await loadModel(staged, { tokenizer: null, format: to === 'hf' ? 'hf' : to === 'gguf' ? 'gguf' : 'llama2c' });
  try {
    for (const k of ['vocabSize', 'hiddenSize', 'intermediateSize', 'nLayers', 'nHeads', 'nKvHeads'] as const) {
      if (back.config[k] !== m.config[k]) throw new NumericError('mismatch', 'the converted model reads back with another config', { file: staged, field: k, expected: m.config[k], found: back.config[k] });
    }
    for (const [name, t] of m.tensors) {
      const b = back.tensors.get(name);
      if (!b || b.shape.join() !== t.shape.join()) throw new NumericError('mismatch', 'the converted model reads back without a tensor', { file: staged, tensor: name, expected: `[${t.shape.join(', ')}]`, found: b ? `[${b.shape.join(', ')}]` : 'absent' });
    }
  } finally {
    await back.close();
  }
}

export async function convertModel(input: string, output: string, opts: ConvertOptions = {}): Promise<ConvertResult> {
  const t0 = Date.now();
  if (resolve(input) === resolve(output)) {
    throw new IoError('would_overwrite_input', 'the output path is the input', { file: output, hint: 'choose a different output path' });
  }
  const to = opts.to ?? formatFromOutput(output);
  if (!['hf', 'gguf', 'llama2c'].includes(to)) throw new ConfigError('bad_option', 'unknown output format', { field: '--to', expected: 'hf | gguf | llama2c', found: to });
  const m = await loadModel(input, { tokenizer: opts.tokenizer });
  try {
    if (to === 'llama2c' && opts.dtype && opts.dtype !== 'F32') {
      throw new ConfigError('bad_option', 'llama2.c checkpoints hold float32 only', { field: '--dtype', expected: 'f32', found: opts.dtype.toLowerCase() });
    }
    const dtype = to === 'llama2c' ? 'F32' : (opts.dtype ?? sourceFloatDType(m));
    const r = await saveModel(m, output, {
      format: to,
      dtype,
      overwrite: opts.overwrite,
      inputs: [opts.tokenizer],
      command: 'convert',
      signal: opts.signal,
      onProgress: opts.onProgress,
      verify: (staged) => verifyConverted(m, staged, to),
    });
    const files = [...r.files];
    // run.c needs the vocabulary as tokenizer.bin; put tok<V>.bin beside the checkpoint
    if (to === 'llama2c' && m.tokenizer?.exportVocab) {
      const v = m.tokenizer.exportVocab();
      const tokPath = join(dirname(output), `tok${v.tokens.length}.bin`);
      if (v.model === 'llama' && !existsSync(tokPath) && !existsSync(join(dirname(output), 'tokenizer.bin'))) {
        await atomicWriteFile(tokPath, encodeLlama2cVocab(llama2cVocabFromSpm(v)));
        files.push(tokPath);
      }
    }
    return { input, output, from: m.source.format, to, dtype, tensors: r.tensors, files, seconds: (Date.now() - t0) / 1000 };
  } finally {
    await m.close();
  }
}
