// In-memory ModelWeights with seeded random tensors, for format tests that need architectures
// no shared checkpoint has (Qwen2 biases, Qwen3 q/k norms, Llama 3 RoPE scaling).
import { Rng } from '../../src/core/rng.js';
import type { ModelConfig } from '../../src/model/config.js';
import { canonicalTensors } from '../../src/model/names.js';
import type { ModelWeights, TensorSource } from '../../src/model/weights.js';
import type { Tokenizer } from '../../src/formats/tokenizer/types.js';

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    architecture: 'llama', vocabSize: 64, hiddenSize: 32, intermediateSize: 64, nLayers: 2, nHeads: 4, nKvHeads: 2, headDim: 8,
    maxSeqLen: 128, rmsNormEps: 1e-6, ropeTheta: 10000, ropeScaling: null, ropeLayout: 'half', tiedEmbeddings: false,
    attentionBias: false, qkNorm: false, bosTokenId: 1, eosTokenId: 2, ...over,
  };
}

export function syntheticModel(config: ModelConfig, seed = 1, tokenizer: Tokenizer | null = null): ModelWeights {
  const rng = new Rng(seed);
  const tensors = new Map<string, TensorSource>();
  for (const { name, shape } of canonicalTensors(config)) {
    const data = rng.fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), 0, 0.05);
    tensors.set(name, {
      name, shape, dtype: 'F32', byteLength: data.byteLength,
      read: async () => ({ dtype: 'F32', shape: [...shape], data: data.slice() }),
      readF32: async () => data.slice(),
    });
  }
  return { config, tokenizer, tensors, source: { format: 'hf', path: '<memory>' }, metadata: {}, close: async () => undefined };
}
