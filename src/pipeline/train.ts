// `bitscale train`: text → byte-level BPE tokenizer → seeded batches → Llama training on
// onnxruntime (optionally in low precision) → a Hugging Face directory plus checkpoint, JSON log
// and a summary with the validation loss against a unigram baseline.

import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import type { ProgressFn } from '../core/progress.js';
import { atomicWriteFile } from '../formats/io/file.js';
import type { ModelConfig } from '../model/config.js';
import { BpeTokenizer, trainBpe } from '../train/bpe.js';
import { loadCorpus, tokenize, unigramLoss } from '../train/data.js';
import { writeHfModel } from '../train/export.js';
import { FULL_PRECISION, type LowPrecision } from '../train/lowprec.js';
import { llamaConfig } from '../train/model.js';
import { train, TRAIN_DEFAULTS, type LogRecord, type TrainSettings } from '../train/trainer.js';

type ShapePreset = { vocabSize: number; hiddenSize: number; intermediateSize: number; nLayers: number; nHeads: number; nKvHeads?: number; context: number };

/** Named model shapes (parameter counts with untied embeddings). */
export const PRESETS: Record<string, ShapePreset> = {
  /** ≈ 0.1M: tests */
  tiny: { vocabSize: 512, hiddenSize: 64, intermediateSize: 192, nLayers: 2, nHeads: 2, context: 64 },
  /** ≈ 0.5M */
  '0.5m': { vocabSize: 1024, hiddenSize: 96, intermediateSize: 256, nLayers: 3, nHeads: 3, context: 128 },
  /** ≈ 1.1M: the built-in default model */
  default: { vocabSize: 1024, hiddenSize: 128, intermediateSize: 384, nLayers: 4, nHeads: 4, context: 128 },
  /** ≈ 2M */
  '2m': { vocabSize: 1024, hiddenSize: 192, intermediateSize: 512, nLayers: 4, nHeads: 6, context: 128 },
  /** ≈ 8M */
  '8m': { vocabSize: 2048, hiddenSize: 320, intermediateSize: 864, nLayers: 6, nHeads: 5, context: 128 },
};

/** A preset name, or a JSON file with either these short keys or Hugging Face config.json names. */
export function resolveModelShape(spec: string): ShapePreset {
  const p = PRESETS[spec];
  if (p) return p;
  if (!existsSync(spec)) {
    throw new ConfigError('bad_option', 'unknown model config', { field: '--config', expected: `a preset (${Object.keys(PRESETS).join(', ')}) or a JSON file`, found: spec });
  }
  const j = JSON.parse(readFileSync(spec, 'utf8')) as Record<string, number>;
  const pick = (...keys: string[]) => keys.map((k) => j[k]).find((v) => v !== undefined);
  const shape: ShapePreset = {
    vocabSize: pick('vocabSize', 'vocab_size') as number,
    hiddenSize: pick('hiddenSize', 'hidden_size') as number,
    intermediateSize: pick('intermediateSize', 'intermediate_size') as number,
    nLayers: pick('nLayers', 'num_hidden_layers') as number,
    nHeads: pick('nHeads', 'num_attention_heads') as number,
    nKvHeads: pick('nKvHeads', 'num_key_value_heads'),
    context: (pick('context', 'max_position_embeddings') ?? 128) as number,
  };
  for (const [k, v] of Object.entries(shape)) {
    if (k !== 'nKvHeads' && !(Number.isInteger(v) && (v as number) > 0)) throw new ConfigError('bad_config', 'model config field missing or invalid', { file: spec, field: k, expected: 'a positive integer', found: v });
  }
  return shape;
}

export interface TrainJob {
  /** preset name or JSON file */
  config: string;
  /** text files, or ['moby-dick'] for the bundled corpus */
  text: string[];
  out: string;
  /** overrides of the preset's vocabulary size and context */
  vocabSize?: number;
  context?: number;
  valFraction?: number;
  settings?: Partial<TrainSettings>;
  lowPrecision?: LowPrecision;
  resume?: boolean;
  onProgress?: ProgressFn;
  onLog?: (r: LogRecord) => void;
  signal?: AbortSignal;
}

export interface TrainSummary {
  config: ModelConfig;
  parameters: number;
  trainTokens: number;
  valTokens: number;
  steps: number;
  finalValLoss: number;
  unigramValLoss: number;
  tokensPerS: number;
  elapsedS: number;
}

export async function runTraining(job: TrainJob): Promise<TrainSummary> {
  const shape = { ...resolveModelShape(job.config) };
  if (job.vocabSize) shape.vocabSize = job.vocabSize;
  if (job.context) shape.context = job.context;
  const text = loadCorpus(job.text);
  // the tokenizer is a pure function of (text, vocab size); a resumed run reloads the saved one
  const tokPath = join(job.out, 'tokenizer.json');
  const tok = job.resume && existsSync(tokPath)
    ? BpeTokenizer.fromHfJson(JSON.parse(readFileSync(tokPath, 'utf8')))
    : new BpeTokenizer(trainBpe(text, { vocabSize: shape.vocabSize, signal: job.signal }));
  const split = tokenize(text, tok, job.valFraction ?? 0.05);
  const config = { ...llamaConfig(shape), bosTokenId: tok.bosId, eosTokenId: tok.eosId };
  const settings: TrainSettings = { ...TRAIN_DEFAULTS, context: shape.context, ...job.settings, lowPrecision: job.lowPrecision ?? FULL_PRECISION };
  const t0 = Date.now();
  await writeHfModelTokenizerFirst(job.out, tok);
  const r = await train({ config, settings, train: split.train, val: split.val, outDir: job.out, resume: job.resume, onProgress: job.onProgress, onLog: job.onLog, signal: job.signal });
  await writeHfModel({ dir: job.out, config, weights: r.effective, tokenizerJson: tok.toHfJson(), metadata: { bitscale_train: JSON.stringify({ steps: r.steps, seed: settings.seed }) } });
  const last = r.history[r.history.length - 1];
  const summary: TrainSummary = {
    config,
    parameters: [...r.effective.values()].reduce((a, w) => a + w.length, 0),
    trainTokens: split.train.length,
    valTokens: split.val.length,
    steps: r.steps,
    finalValLoss: r.finalValLoss,
    unigramValLoss: unigramLoss(split.train, split.val, tok.vocabSize),
    tokensPerS: last?.tokensPerS ?? 0,
    elapsedS: (Date.now() - t0) / 1000,
  };
  await atomicWriteFile(join(job.out, 'summary.json'), JSON.stringify(summary, null, 2) + '\n', { overwrite: true });
  return summary;
}

async function writeHfModelTokenizerFirst(dir: string, tok: BpeTokenizer): Promise<void> {
  const { mkdirSync } = await import('node:fs');
  mkdirSync(dir, { recursive: true });
  await atomicWriteFile(join(dir, 'tokenizer.json'), JSON.stringify(tok.toHfJson()) + '\n', { overwrite: true });
}

export { parseLpSpec } from '../train/lowprec.js';
export type { LogRecord } from '../train/trainer.js';
