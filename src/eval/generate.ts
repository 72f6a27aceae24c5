// Text generation on the engine's KV-cache decoder: greedy (temperature 0), temperature sampling,
// top-k and top-p (nucleus), seeded through core's Rng so the same seed gives the same tokens.
// Greedy takes the first maximum (lowest id on ties), as llama2.c's argmax does.
// Also prompt-processing and decoding throughput (tokens/s, medians over repeats).
// Legend: V = vocab.

import { ConfigError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { checkAborted, type ProgressFn, ProgressTracker } from '../core/progress.js';
import type { LlamaEngine } from '../engine/model.js';

export interface SamplingOptions {
  /** 0 = greedy (default 0) */
  temperature?: number;
  /** keep the k most likely tokens (0 or absent: all) */
  topK?: number;
  /** keep the smallest set of most likely tokens whose probability reaches p (1 or absent: all) */
  topP?: number;
  seed?: number;
}

export interface GenerateOptions extends SamplingOptions {
  /** tokens to generate at most */
  maxTokens: number;
  /** stop tokens (default: the model's EOS and BOS, as llama2.c stops on BOS) */
  stop?: number[];
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

export interface GenerateResult {
  /** generated ids (prompt excluded, stop token excluded) */
  tokens: number[];
  stoppedBy: 'stop' | 'length';
  promptSeconds: number;
  decodeSeconds: number;
}

/** Picks the next token from one row of logits. */
export function sampleToken(logits: Float32Array, o: SamplingOptions, rng: Rng): number {
  const V = logits.length;
  const temp = o.temperature ?? 0;
  if (!(temp >= 0)) throw new ConfigError('bad_option', 'temperature must be >= 0', { field: 'temperature', found: temp });
  if (temp === 0) {
    let arg = 0;
    for (let v = 1; v < V; v++) if (logits[v] > logits[arg]) arg = v;
    return arg;
  }
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, logits[v]);
  const probs = new Float64Array(V);
  let z = 0;
  for (let v = 0; v < V; v++) z += probs[v] = Math.exp((logits[v] - m) / temp);
  const order = Array.from({ length: V }, (_, v) => v).sort((a, b) => probs[b] - probs[a] || a - b);
  let keep = V;
  if (o.topK && o.topK > 0) keep = Math.min(keep, o.topK);
  if (o.topP !== undefined && o.topP < 1) {
    if (!(o.topP > 0)) throw new ConfigError('bad_option', 'top-p must be in (0, 1]', { field: 'topP', found: o.topP });
    let cum = 0;
    for (let i = 0; i < keep; i++) {
      cum += probs[order[i]] / z;
      if (cum >= o.topP) {
        keep = i + 1;
        break;
      }
    }
  }
  let mass = 0;
  for (let i = 0; i < keep; i++) mass += probs[order[i]];
  let r = rng.next() * mass;
  for (let i = 0; i < keep; i++) {
    r -= probs[order[i]];
    if (r < 0) return order[i];
  }
  return order[keep - 1];
}

/** Generates up to `maxTokens` after `prompt` (which should start with BOS where the model expects it). */
export async function generate(engine: LlamaEngine, prompt: readonly number[], o: GenerateOptions): Promise<GenerateResult> {
  if (!prompt.length) throw new ConfigError('bad_option', 'prompt must hold at least one token (e.g. BOS)', { field: 'prompt' });
  const c = engine.config;
  const capacity = Math.min(c.maxSeqLen, prompt.length + o.maxTokens);
  if (prompt.length >= capacity && o.maxTokens > 0) {
    throw new ConfigError('bad_option', 'prompt fills the model context', { field: 'prompt', expected: `< ${c.maxSeqLen} tokens`, found: prompt.length });
  }
  const stop = new Set(o.stop ?? [c.eosTokenId, c.bosTokenId].filter((x): x is number => x !== null));
  const rng = new Rng(o.seed ?? 0);
  const dec = engine.decoder(capacity);
  const out: number[] = [];
  const track = new ProgressTracker('generate', o.maxTokens, o.onProgress, 'token');
  let t0 = performance.now();
  let logits = await dec.step(prompt, { lastOnly: true });
  const promptSeconds = (performance.now() - t0) / 1000;
  t0 = performance.now();
  let stoppedBy: GenerateResult['stoppedBy'] = 'length';
  while (out.length < o.maxTokens) {
    checkAborted(o.signal);
    const next = sampleToken(logits, o, rng);
    if (stop.has(next)) {
      stoppedBy = 'stop';
      break;
    }
    out.push(next);
    track.tick();
    if (out.length >= o.maxTokens || dec.position >= capacity) break;
    logits = await dec.step([next], { lastOnly: true });
  }
  return { tokens: out, stoppedBy, promptSeconds, decodeSeconds: (performance.now() - t0) / 1000 };
}

export interface ThroughputResult {
  promptTokens: number;
  /** prompt processing (one batched forward of promptTokens), tokens/s, median */
  promptTokensPerSecond: number;
  decodeTokens: number;
  /** single-token decoding with the KV cache, tokens/s, median */
  decodeTokensPerSecond: number;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Measures prompt and decode speed on synthetic token ids (sessions are built and warmed first). */
export async function throughput(engine: LlamaEngine, o: { promptTokens: number; decodeTokens: number; repeats?: number }): Promise<ThroughputResult> {
  const V = engine.config.vocabSize;
  const rng = new Rng(1);
  const prompt = Array.from({ length: o.promptTokens }, () => rng.int(V));
  const repeats = o.repeats ?? 3;
  await engine.forward(prompt);
  const pp: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await engine.forward(prompt);
    pp.push((performance.now() - t0) / 1000);
  }
  const cap = Math.min(engine.config.maxSeqLen, 1 + o.decodeTokens);
  const tg: number[] = [];
  for (let i = 0; i <= repeats; i++) {
    const dec = engine.decoder(cap);
    const t0 = performance.now();
    for (let t = 0; t < cap; t++) await dec.step([prompt[t % prompt.length]], { lastOnly: true });
    if (i > 0) tg.push((performance.now() - t0) / 1000 / cap);
  }
  return {
    promptTokens: o.promptTokens,
    promptTokensPerSecond: o.promptTokens / median(pp),
    decodeTokens: cap,
    decodeTokensPerSecond: 1 / median(tg),
  };
}
