// Where calibration tokens come from: a text file or the built-in text, cut into seeded windows,
// or (`--calib self`): windows of text sampled from the float model itself,
// temperature 1 from BOS, one seeded stream per window (the data-free generation LLM-QAT uses,
// Liu et al. 2023). The model's own samples follow the distribution it was trained on, so the
// Hessians and activation statistics need no corpus and no download; on the models measured in
// docs/ptq-results.md they also fit better than a fixed text from another part of the corpus.
// Legend: W = windows, T = tokens per window (BOS included).

import { ConfigError } from '../../core/errors.js';
import { Rng } from '../../core/rng.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../../core/progress.js';
import type { HostModel } from '../../engine/host.js';
import type { OrtRuntime } from '../../engine/session.js';
import type { ModelConfig } from '../../model/config.js';
import { readTextFile } from '../../formats/io/index.js';
import type { Tokenizer } from '../../formats/tokenizer/types.js';
import { BUILTIN_CALIBRATION_NAME, BUILTIN_CALIBRATION_TEXT } from './text.table.js';

export interface CalibrationSource {
  /** file path, or the built-in text's name */
  name: string;
  text: string;
}

/** The calibration text from `file`, or the built-in one (documented in pipeline/calibrate/text.table.ts). */
export async function calibrationSource(file?: string): Promise<CalibrationSource> {
  if (!file) return { name: BUILTIN_CALIBRATION_NAME, text: BUILTIN_CALIBRATION_TEXT };
  return { name: file, text: await readTextFile(file, 'cannot read the calibration text') };
}

/**
 * Default calibration size, in the range the GPTQ family uses: the GPTQ paper and reference code
 * take 128 random segments of 2048 tokens; GPTQModel/AutoGPTQ and llm-compressor recommend 128 to
 * 512 samples; 128 windows of 512 tokens (65,536 tokens) is 8 tokens per input feature of
 * Llama-3.2-1B's widest linear (8192), so every Hessian has full rank, which 16 × 128 = 2,048
 * tokens did not give any layer wider than 2,048 inputs.
 */
export const DEFAULT_CALIB_WINDOWS = 128;
export const DEFAULT_CALIB_SEQ_LEN = 512;
/** Small models stop adding windows once they have this many tokens per input feature of their widest linear. */
export const CALIB_TOKENS_PER_FEATURE = 32;
/** ...but never fewer windows than this. */
export const MIN_CALIB_WINDOWS = 16;

/**
 * Windows and window length for a model: T = min(seqLen ?? 512, the model's context); W = the
 * given count, or 128 capped for small models at ⌈32·K_max / T⌉ windows (K_max = the widest
 * linear input: hidden, FFN or attention width), and at least 16. Calibration time grows with
 * W·T·parameters, so the cap keeps tiny models' runs short while their Hessians still see 32
 * samples per dimension; from about 2,048-wide FFNs up, the full 128 windows apply.
 */
export function calibrationSize(c: ModelConfig, o: { windows?: number; seqLen?: number; calibTokens?: number[][] } = {}): { windows: number; seqLen: number } {
  if (o.calibTokens) return { windows: o.calibTokens.length, seqLen: o.calibTokens[0]?.length ?? 0 };
  const seqLen = Math.min(o.seqLen ?? DEFAULT_CALIB_SEQ_LEN, c.maxSeqLen || 2048);
  if (o.windows !== undefined) return { windows: o.windows, seqLen };
  const kMax = Math.max(c.hiddenSize, c.intermediateSize, c.nHeads * c.headDim);
  const cap = Math.ceil((CALIB_TOKENS_PER_FEATURE * kMax) / seqLen);
  return { windows: Math.min(DEFAULT_CALIB_WINDOWS, Math.max(MIN_CALIB_WINDOWS, cap)), seqLen };
}

export interface WindowOptions {
  windows: number;
  seqLen: number;
  seed: number;
}

/**
 * `windows` token windows of `seqLen` tokens at seeded random offsets of the tokenized text
 * (BOS first when the tokenizer has one). Short texts are tiled (the stream repeats).
 */
export function calibrationWindows(tok: Tokenizer, text: string, o: WindowOptions): number[][] {
  if (!(o.windows >= 1) || !(o.seqLen >= 2)) {
    throw new ConfigError('bad_option', 'need at least one window of two or more tokens', { field: 'windows/seqLen', found: o });
  }
  const ids = tok.encode(text);
  if (ids.length < 2) throw new ConfigError('bad_option', 'calibration text yields fewer than two tokens', { field: 'calib', found: ids.length });
  const bos = tok.bosId;
  const body = bos === null ? o.seqLen : o.seqLen - 1;
  let stream = ids;
  while (stream.length < body + 1) stream = stream.concat(ids);
  const rng = new Rng(o.seed);
  const out: number[][] = [];
  for (let w = 0; w < o.windows; w++) {
    const start = rng.int(stream.length - body + 1);
    const win = stream.slice(start, start + body);
    out.push(bos === null ? win : [bos, ...win]);
  }
  return out;
}

/** The `--calib` value that selects self-generated calibration. */
export const SELF_CALIBRATION = 'self';
/** Sampling temperature of the generated windows (plain sampling from the model's distribution). */
export const SELF_CALIBRATION_TEMPERATURE = 1;

export function isSelfCalibration(calib: string | undefined): boolean {
  return calib === SELF_CALIBRATION;
}

/** Seed of window `w`'s sampler: a fixed mix of the run seed and the window index. */
function windowSeed(seed: number, w: number): number {
  return (Math.imul(seed + 1, 0x9e3779b1) ^ Math.imul(w + 1, 0x85ebca77)) >>> 0;
}

/**
 * W windows of T tokens sampled from `host`'s float model: BOS, then T − 1 tokens drawn at
 * temperature 1 with no stop token (an end-of-text token is kept and generation goes on, so every
 * window is full). Same host, seed and sizes give the same windows.
 */
export async function selfCalibrationWindows(host: HostModel, o: WindowOptions & { onProgress?: ProgressFn; signal?: AbortSignal; runtime?: OrtRuntime }): Promise<number[][]> {
  if (!(o.windows >= 1) || !(o.seqLen >= 2)) {
    throw new ConfigError('bad_option', 'need at least one window of two or more tokens', { field: 'windows/seqLen', found: { windows: o.windows, seqLen: o.seqLen } });
  }
  const bos = host.config.bosTokenId;
  if (bos === null || bos === undefined) {
    throw new ConfigError('bad_option', 'self-generated calibration starts each window at BOS, and the model has no BOS token', { field: '--calib', found: SELF_CALIBRATION, hint: 'pass a calibration text file instead' });
  }
  // the engine (onnxruntime) only for generated windows: the other paths start without it
  const [{ LlamaEngine }, { generate }] = await Promise.all([import('../../engine/model.js'), import('../../eval/generate.js')]);
  const engine = LlamaEngine.fromHost(host, { session: { runtime: o.runtime ?? 'native' } });
  const track = new ProgressTracker('calibrate (self-generated)', o.windows, o.onProgress, 'window');
  const out: number[][] = [];
  try {
    for (let w = 0; w < o.windows; w++) {
      checkAborted(o.signal);
      const r = await generate(engine, [bos], { maxTokens: o.seqLen - 1, temperature: SELF_CALIBRATION_TEMPERATURE, seed: windowSeed(o.seed, w), stop: [], signal: o.signal });
      out.push([bos, ...r.tokens]);
      track.tick();
    }
  } finally {
    await engine.close();
  }
  return out;
}

export interface ResolvedCalibration {
  /** file path, built-in text name, or a description of the generated windows */
  source: string;
  /** the calibration windows */
  windows: number[][];
  /** `n` held-out windows drawn the same way with another seed (for verification) */
  heldOut: (n: number, seed: number) => Promise<number[][]>;
}

/** Calibration windows from `calib`: a text file, the built-in text (undefined) or 'self'. */
export async function resolveCalibration(
  calib: string | undefined,
  tok: Tokenizer,
  host: HostModel,
  /** runtime: the onnxruntime that samples self-generated windows (engine/session.ts) */
  o: WindowOptions & { onProgress?: ProgressFn; signal?: AbortSignal; tokens?: number[][]; runtime?: OrtRuntime },
): Promise<ResolvedCalibration> {
  if (o.tokens) return givenWindows(o.tokens, host.config.vocabSize, calib);
  if (isSelfCalibration(calib)) {
    const windows = await selfCalibrationWindows(host, o);
    return {
      source: `self-generated (temperature ${SELF_CALIBRATION_TEMPERATURE}, from BOS)`,
      windows,
      heldOut: (n, seed) => selfCalibrationWindows(host, { windows: n, seqLen: o.seqLen, seed, signal: o.signal, runtime: o.runtime }),
    };
  }
  const text = await calibrationSource(calib);
  return {
    source: text.name,
    windows: calibrationWindows(tok, text.text, o),
    heldOut: async (n, seed) => calibrationWindows(tok, text.text, { windows: n, seqLen: o.seqLen, seed }),
  };
}

/**
 * Calibration windows given as token ids (a caller with its own data, or a model whose vocabulary
 * cannot encode text): checked to be W ≥ 1 windows of one length T ≥ 2 with ids below the
 * vocabulary size. There are no held-out windows; verification reuses the first given ones.
 */
function givenWindows(tokens: number[][], vocab: number, calib: string | undefined): ResolvedCalibration {
  if (calib !== undefined) throw new ConfigError('bad_option', 'give calibration text or token ids, not both', { field: '--calib', found: calib });
  const T = tokens[0]?.length ?? 0;
  if (!(T >= 2)) throw new ConfigError('bad_option', 'need at least one window of two or more tokens', { field: 'calibTokens', found: { windows: tokens.length, tokens: T } });
  tokens.forEach((w, i) => {
    if (w.length !== T) throw new ConfigError('bad_option', 'calibration windows must all have the same length', { field: 'calibTokens', index: i, expected: T, found: w.length });
    const bad = w.findIndex((t) => !Number.isInteger(t) || t < 0 || t >= vocab);
    if (bad >= 0) throw new ConfigError('bad_option', 'calibration token id outside the vocabulary', { field: 'calibTokens', index: i, expected: `an integer in [0, ${vocab})`, found: w[bad] });
  });
  return {
    source: `token ids given by the caller (${tokens.length} windows of ${T})`,
    windows: tokens,
    heldOut: async (n) => tokens.slice(0, n),
  };
}
