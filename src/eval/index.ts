// Evaluation harness: perplexity (two documented window protocols), KL divergence and top-1
// agreement against a base model, generation and throughput.
import type { LlamaEngine } from '../engine/model.js';
import type { LogitsModel } from './perplexity.js';

export * from './perplexity.js';
export * from './generate.js';

/** The engine as a LogitsModel (full-sequence evaluation, one cached session per window length). */
export function engineModel(engine: LlamaEngine): LogitsModel {
  return { vocabSize: engine.config.vocabSize, logits: (tokens) => engine.forward(tokens) };
}
