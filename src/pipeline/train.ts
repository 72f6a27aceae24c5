// `bitscale train`: text → byte-level BPE tokenizer → seeded batches → Llama training on
// onnxruntime (optionally in low precision) → a Hugging Face directory plus checkpoint, JSON log
// and a summary with the validation loss against a unigram baseline.

import { existsSync } from 'node:fs';
import { cp, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { BitscaleError, ConfigError } from '../core/errors.js';
import type { ProgressFn } from '../core/progress.js';
import { atomicWriteFile, readJsonFile, readJsonFileSync } from '../formats/io/file.js';
import { MANIFEST_FILE, OutputTxn } from '../formats/io/output.js';
import type { ModelConfig } from '../model/config.js';
import { TrainedBpeTokenizer, trainBpe } from '../train/bpe-trainer.js';
import { loadCorpus, tokenize, unigramLoss } from '../train/data.js';
import { writeHfModel } from '../train/save-hf.js';
import { FULL_PRECISION, type LowPrecision } from '../train/lowprec.js';
import { llamaConfig } from '../train/graph.js';
import { CHECKPOINT_FILE, train, TRAIN_DEFAULTS, type LogRecord, type TrainSettings } from '../train/trainer.js';

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

/** Upper bounds of a training config's fields (a config file is checked before anything is built). */
const SHAPE_LIMITS = { vocabSize: 1 << 20, hiddenSize: 1 << 14, intermediateSize: 1 << 16, nLayers: 256, nHeads: 1 << 10, nKvHeads: 1 << 10, context: 1 << 16 };
/** `train` runs small models in onnxruntime on the CPU; above this many parameters it refuses. */
export const MAX_TRAIN_PARAMS = 2e9;

/** A preset name, or a JSON file with either these short keys or Hugging Face config.json names. */
export function resolveModelShape(spec: string): ShapePreset {
  const p = PRESETS[spec];
  if (p) return p;
  if (!existsSync(spec)) {
    throw new ConfigError('bad_option', 'unknown model config', { field: '--config', expected: `a preset (${Object.keys(PRESETS).join(', ')}) or a JSON file`, found: spec });
  }
  const raw = readJsonFileSync(spec);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('bad_config', 'a model config file holds one JSON object', { file: spec, found: Array.isArray(raw) ? 'an array' : String(raw) });
  const j = raw as Record<string, unknown>;
  const pick = (...keys: string[]) => keys.map((k) => j[k]).find((v) => v !== undefined);
  const shape: ShapePreset = {
    vocabSize: pick('vocabSize', 'vocab_size') as number,
    hiddenSize: pick('hiddenSize', 'hidden_size') as number,
    intermediateSize: pick('intermediateSize', 'intermediate_size') as number,
    nLayers: pick('nLayers', 'num_hidden_layers') as number,
    nHeads: pick('nHeads', 'num_attention_heads') as number,
    nKvHeads: pick('nKvHeads', 'num_key_value_heads') as number | undefined,
    context: (pick('context', 'max_position_embeddings') ?? 128) as number,
  };
  for (const [k, v] of Object.entries(shape)) {
    if (k === 'nKvHeads' && v === undefined) continue;
    const max = SHAPE_LIMITS[k as keyof typeof SHAPE_LIMITS];
    if (!(Number.isInteger(v) && (v as number) > 0 && (v as number) <= max)) throw new ConfigError('bad_config', 'model config field missing or out of range', { file: spec, field: k, expected: `an integer in [1, ${max}]`, found: v });
  }
  // bounded before anything is built from it: weights [V, E] ×2, per layer 4·E² + 3·E·F
  const params = 2 * shape.vocabSize * shape.hiddenSize + shape.nLayers * (4 * shape.hiddenSize ** 2 + 3 * shape.hiddenSize * shape.intermediateSize);
  if (params > MAX_TRAIN_PARAMS) throw new ConfigError('bad_config', 'model too large for bitscale train (small models on the CPU)', { file: spec, field: 'parameters', expected: `<= ${MAX_TRAIN_PARAMS}`, found: params });
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
  /** replace an existing output folder (one bitscale wrote) */
  overwrite?: boolean;
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

/**
 * Trains into a staging folder `<out>.partial/<name>` and renames it onto `out` when the run is
 * complete (formats/io/output.ts): a failed run leaves nothing at `out`; an interrupted or
 * diverged run keeps its `.partial` folder when it holds a checkpoint, for `resume`, and any other
 * failure (a full disk, a bad file) removes it.
 */
export async function runTraining(job: TrainJob): Promise<TrainSummary> {
  const shape = { ...resolveModelShape(job.config) };
  if (job.vocabSize) shape.vocabSize = job.vocabSize;
  if (job.context) shape.context = job.context;
  if (!(Number.isInteger(shape.context) && shape.context >= 2 && shape.context <= SHAPE_LIMITS.context)) {
    throw new ConfigError('bad_option', 'context out of range', { field: '--context', expected: `an integer in [2, ${SHAPE_LIMITS.context}]`, found: shape.context });
  }
  const inputs = [...job.text.filter((t) => t !== 'moby-dick'), PRESETS[job.config] ? null : job.config];
  const txn = await OutputTxn.begin(job.out, { kind: 'dir', force: job.overwrite || job.resume, inputs, command: 'train', resumable: { adopt: !!job.resume } });
  const dir = txn.staged;
  try {
    // --resume continues in the .partial folder an interrupted run left, else from a finished run's checkpoint
    if (job.resume && !existsSync(join(dir, CHECKPOINT_FILE)) && existsSync(join(job.out, CHECKPOINT_FILE))) {
      await cp(job.out, dir, { recursive: true });
      await rm(join(dir, MANIFEST_FILE), { force: true });
    }
    const summary = await trainInto(job, shape, dir);
    await txn.commit();
    return summary;
  } catch (e) {
    const resumable = e instanceof BitscaleError && (e.code === 'interrupted' || e.code === 'diverged') && existsSync(join(dir, CHECKPOINT_FILE));
    await txn.abort({ keep: resumable });
    throw e;
  }
}

async function trainInto(job: TrainJob, shape: ShapePreset, dir: string): Promise<TrainSummary> {
  const text = loadCorpus(job.text);
  // the tokenizer is a pure function of (text, vocab size); a resumed run reloads the saved one
  const tokPath = join(dir, 'tokenizer.json');
  const tok = job.resume && existsSync(tokPath)
    ? TrainedBpeTokenizer.fromHfJson(await readJsonFile(tokPath))
    : new TrainedBpeTokenizer(trainBpe(text, { vocabSize: shape.vocabSize, signal: job.signal }));
  const split = tokenize(text, tok, job.valFraction ?? 0.05);
  const config = { ...llamaConfig(shape), bosTokenId: tok.bosId, eosTokenId: tok.eosId };
  const settings: TrainSettings = { ...TRAIN_DEFAULTS, context: shape.context, ...job.settings, lowPrecision: job.lowPrecision ?? FULL_PRECISION };
  const t0 = Date.now();
  await writeHfModelTokenizerFirst(dir, tok);
  const r = await train({ config, settings, train: split.train, val: split.val, outDir: dir, resume: job.resume, onProgress: job.onProgress, onLog: job.onLog, signal: job.signal });
  await writeHfModel({ dir, config, weights: r.effective, tokenizerJson: tok.toHfJson(), metadata: { bitscale_train: JSON.stringify({ steps: r.steps, seed: settings.seed }) } });
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
  await atomicWriteFile(join(dir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n', { overwrite: true });
  return summary;
}

async function writeHfModelTokenizerFirst(dir: string, tok: TrainedBpeTokenizer): Promise<void> {
  await atomicWriteFile(join(dir, 'tokenizer.json'), JSON.stringify(tok.toHfJson()) + '\n', { overwrite: true });
}

export { parseLpSpec } from '../train/lowprec.js';
export type { LogRecord } from '../train/trainer.js';
