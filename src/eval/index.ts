// Evaluation harness: perplexity (two documented window protocols), KL divergence and top-1
// agreement against a base model, generation and throughput.
import type { LlamaEngine } from '../engine/model.js';
import type { LogitsModel } from './perplexity.js';

export * from './perplexity.js';
export * from './generate.js';

/**
 * The engine as a LogitsModel. A window shorter than the longest one seen so far is padded at the end
 * (causal attention: padding never changes the earlier rows) so that one session serves every window.
 */
export function engineModel(engine: LlamaEngine): LogitsModel {
  let longest = 0;
  const V = engine.config.vocabSize;
  return {
    vocabSize: V,
    logits: async (tokens) => {
      const T = tokens.length;
      if (T >= longest) {
        longest = T;
        return engine.forward(tokens);
      }
      const padded = [...tokens, ...new Array<number>(longest - T).fill(tokens[T - 1])];
      return (await engine.forward(padded)).subarray(0, T * V);
    },
    logitsBatch: (seqs) => {
      longest = Math.max(longest, seqs[0].length);
      return engine.forwardBatch(seqs);
    },
  };
}
