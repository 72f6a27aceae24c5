// In-memory ModelWeights with seeded random tensors, for engine and eval tests.
import { Rng } from '../../src/core/rng.js';
import type { Tensor } from '../../src/core/tensor.js';
import type { ModelConfig } from '../../src/model/config.js';
import type { ModelWeights, TensorSource } from '../../src/model/weights.js';
import { expectedTensors } from '../../src/engine/host.js';
import type { Graph, Node } from '../../src/engine/ir.js';

export function tinyConfig(over: Partial<ModelConfig> = {}): ModelConfig {
  return {
    architecture: 'llama',
    vocabSize: 96,
    hiddenSize: 64,
    intermediateSize: 96,
    nLayers: 2,
    nHeads: 4,
    nKvHeads: 2,
    headDim: 16,
    maxSeqLen: 128,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    ropeLayout: 'interleaved',
    tiedEmbeddings: false,
    attentionBias: false,
    qkNorm: false,
    bosTokenId: 1,
    eosTokenId: 2,
    ...over,
  };
}

export function memorySource(name: string, shape: number[], data: Float32Array): TensorSource {
  return {
    name,
    shape,
    dtype: 'F32',
    byteLength: data.byteLength,
    read: async (): Promise<Tensor> => ({ dtype: 'F32', shape, data }),
    readF32: async () => data,
  };
}

/** Random weights for `c`: norms near 1, matrices N(0, 1/√K). */
export function randomWeights(c: ModelConfig, seed = 1): ModelWeights {
  const rng = new Rng(seed);
  const tensors = new Map<string, TensorSource>();
  for (const e of expectedTensors(c)) {
    const n = e.shape.reduce((a, b) => a * b, 1);
    const d = new Float32Array(n);
    const isNorm = e.shape.length === 1 && !e.name.endsWith('.bias');
    const std = e.shape.length === 2 ? 1 / Math.sqrt(e.shape[1]) : 0.1;
    for (let i = 0; i < n; i++) d[i] = isNorm ? 1 + 0.1 * rng.normal() : e.name.includes('embed') ? rng.normal() : std * rng.normal();
    tensors.set(e.name, memorySource(e.name, e.shape, d));
  }
  return { config: c, tokenizer: null, tensors, source: { format: 'safetensors', path: '<memory>' }, metadata: {}, close: async () => {} };
}

export function randomTokens(n: number, vocab: number, seed = 3): number[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, () => rng.int(vocab));
}

/**
 * For each node of `op` in the graph, how many other `op` nodes it depends on (transitively),
 * sorted: [0, 1, …, n − 1] means the n nodes run as one chain, each after all the ones before it.
 */
export function chainDepths(g: Graph, op: string): number[] {
  const byNode = new Map(g.nodes.map((n) => [n.id, n]));
  const ancestors = (n: Node, seen = new Set<number>()): Set<number> => {
    for (const v of n.inputs) {
      const p = g.producers.get(v.id);
      if (p && !seen.has(p.id)) {
        seen.add(p.id);
        ancestors(p, seen);
      }
    }
    return seen;
  };
  return g.nodes
    .filter((n) => n.op === op)
    .map((n) => [...ancestors(n)].filter((id) => byNode.get(id)!.op === op).length)
    .sort((a, b) => a - b);
}
