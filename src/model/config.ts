// The architecture description every layer shares. Built from config.json, GGUF metadata or a
// llama2.c header; the engine builds graphs from it, converters write it back out.
// Legend: E = hidden size (dim), F = feed-forward size, H = query heads, Hk = KV heads, D = head dim.

/** Which rows of wq/wk hold which rotary pair. */
export type RopeLayout =
  /** pairs (2i, 2i+1) rotate together: llama2.c, Meta's original checkpoints, GGUF llama */
  | 'interleaved'
  /** pairs (i, i + D/2) rotate together ("rotate_half"): Hugging Face transformers */
  | 'half';

export interface RopeScaling {
  /** 'llama3' | 'linear' | 'dynamic' | 'yarn' … as config.json names it */
  type: string;
  factor: number;
  lowFreqFactor?: number;
  highFreqFactor?: number;
  originalMaxPositionEmbeddings?: number;
}

export type Architecture = 'llama' | 'mistral' | 'qwen2' | 'qwen3';

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  /** E */
  hiddenSize: number;
  /** F */
  intermediateSize: number;
  nLayers: number;
  /** H */
  nHeads: number;
  /** Hk (GQA when < H) */
  nKvHeads: number;
  /** D (usually E / H; Qwen3 may differ) */
  headDim: number;
  maxSeqLen: number;
  rmsNormEps: number;
  ropeTheta: number;
  ropeScaling: RopeScaling | null;
  /** layout of the q/k projection rows in the weights as stored in this ModelWeights */
  ropeLayout: RopeLayout;
  /** lm_head shares the token embedding */
  tiedEmbeddings: boolean;
  /** q/k/v projections carry a bias (Qwen2) */
  attentionBias: boolean;
  /** RMSNorm on q and k per head before RoPE (Qwen3) */
  qkNorm: boolean;
  bosTokenId: number | null;
  eosTokenId: number | null;
}

/** Parameter count implied by a config (embeddings and lm_head counted once when tied). */
export function parameterCount(c: ModelConfig): number {
  const E = c.hiddenSize;
  const q = c.nHeads * c.headDim;
  const kv = c.nKvHeads * c.headDim;
  let perLayer = E * q + 2 * E * kv + q * E + 3 * E * c.intermediateSize + 2 * E;
  if (c.attentionBias) perLayer += q + 2 * kv;
  if (c.qkNorm) perLayer += 2 * c.headDim;
  const emb = c.vocabSize * E;
  return emb + (c.tiedEmbeddings ? 0 : emb) + c.nLayers * perLayer + E;
}
