// Evaluation harness: perplexity (two documented window protocols), KL divergence and top-1
// agreement against a base model, generation and throughput.
import type { LlamaEngine } from '../engine/model.js';
import type { LogitsModel } from './perplexity.js';

export * from './perplexity.js';
export * from './generate.js';

/**
 * The engine as a LogitsModel. A window shorter than the longest one seen so far is padded at the end
 * (causal attention: padding never changes the earlier rows) so that one session serves every window.
 * Perplexity is scored inside the graph (logProbs) unless `scoreInGraph` is false.
 */
export function engineModel(engine: LlamaEngine, opts: { scoreInGraph?: boolean } = {}): LogitsModel {
  let longest = 0;
  let longestScored = 0;
  const V = engine.config.vocabSize;
  const pad = (x: readonly number[], to: number, fill: number) => (x.length < to ? [...x, ...new Array<number>(to - x.length).fill(fill)] : [...x]);
  const logProbs = async (seqs: readonly (readonly number[])[], targets: readonly (readonly number[])[]): Promise<Float64Array> => {
    const T = seqs[0].length;
    if (T >= longestScored || seqs.length > 1) {
      longestScored = Math.max(longestScored, T);
      return engine.logProbs(seqs, targets);
    }
    const L = longestScored;
    const lp = await engine.logProbs([pad(seqs[0], L, seqs[0][T - 1])], [pad(targets[0], L, 0)]);
    return lp.subarray(0, T);
  };
  return {
    ...(opts.scoreInGraph === false ? {} : { logProbs }),
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
