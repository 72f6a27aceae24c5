// `bitscale generate`: load a model, apply the precision knobs, and sample text from a prompt.

import { ConfigError } from '../core/errors.js';
import type { ProgressFn } from '../core/progress.js';
import { LlamaEngine } from '../engine/model.js';
import { generate } from '../eval/generate.js';
import { loadModel } from '../model/load.js';
import { engineOptions, type PrecisionOptions } from './eval.js';

export interface GenerateRunOptions extends PrecisionOptions {
  model: string;
  prompt?: string;
  maxTokens?: number;
  temperature?: number;
  topK?: number;
  topP?: number;
  seed?: number;
  tokenizer?: string;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

export interface GenerateReport {
  text: string;
  promptTokens: number;
  generatedTokens: number;
  stoppedBy: 'stop' | 'length';
  promptTokensPerSecond: number;
  decodeTokensPerSecond: number;
}

export async function runGenerate(o: GenerateRunOptions): Promise<GenerateReport> {
  const w = await loadModel(o.model, o.tokenizer ? { tokenizer: o.tokenizer } : {});
  try {
    const tok = w.tokenizer;
    if (!tok) throw new ConfigError('bad_option', 'the model has no tokenizer; generation needs one', { file: o.model, hint: 'pass --tokenizer FILE' });
    const bos = w.config.bosTokenId ?? tok.bosId;
    const prompt = o.prompt ? tok.encode(o.prompt, { bos: bos !== null }) : bos !== null ? [bos] : [];
    if (!prompt.length) throw new ConfigError('bad_option', 'empty prompt and the model has no BOS token', { field: '--prompt' });
    const engine = await LlamaEngine.create(w, engineOptions(o, undefined, o.signal));
    try {
      const r = await generate(engine, prompt, {
        maxTokens: o.maxTokens ?? 256,
        temperature: o.temperature ?? 0,
        topK: o.topK,
        topP: o.topP,
        seed: o.seed ?? 0,
        onProgress: o.onProgress,
        signal: o.signal,
      });
      return {
        text: tok.decode([...prompt, ...r.tokens]),
        promptTokens: prompt.length,
        generatedTokens: r.tokens.length,
        stoppedBy: r.stoppedBy,
        promptTokensPerSecond: prompt.length / r.promptSeconds,
        decodeTokensPerSecond: r.tokens.length / Math.max(1e-9, r.decodeSeconds),
      };
    } finally {
      await engine.close();
    }
  } finally {
    await w.close();
  }
}
