// Well-known GGUF metadata keys (names as llama.cpp reads them). `{arch}` keys are built with
// archKey(arch, suffix), e.g. archKey('llama', LLM.blockCount) → 'llama.block_count'.

export const GENERAL = {
  architecture: 'general.architecture',
  quantizationVersion: 'general.quantization_version',
  alignment: 'general.alignment',
  name: 'general.name',
  author: 'general.author',
  version: 'general.version',
  description: 'general.description',
  license: 'general.license',
  url: 'general.url',
  sourceUrl: 'general.source.url',
  fileType: 'general.file_type',
  sizeLabel: 'general.size_label',
  basename: 'general.basename',
  finetune: 'general.finetune',
} as const;

/** Suffixes of `{arch}.*` keys. */
export const LLM = {
  contextLength: 'context_length',
  embeddingLength: 'embedding_length',
  blockCount: 'block_count',
  feedForwardLength: 'feed_forward_length',
  vocabSize: 'vocab_size',
  headCount: 'attention.head_count',
  headCountKv: 'attention.head_count_kv',
  keyLength: 'attention.key_length',
  valueLength: 'attention.value_length',
  layerNormEpsilon: 'attention.layer_norm_epsilon',
  layerNormRmsEpsilon: 'attention.layer_norm_rms_epsilon',
  ropeDimensionCount: 'rope.dimension_count',
  ropeFreqBase: 'rope.freq_base',
  ropeScalingType: 'rope.scaling.type',
  ropeScalingFactor: 'rope.scaling.factor',
  ropeScalingOriginalContextLength: 'rope.scaling.original_context_length',
  tieWordEmbeddings: 'tie_word_embeddings',
} as const;

export function archKey(arch: string, suffix: string): string {
  return `${arch}.${suffix}`;
}

export const TOKENIZER = {
  model: 'tokenizer.ggml.model',
  pre: 'tokenizer.ggml.pre',
  tokens: 'tokenizer.ggml.tokens',
  scores: 'tokenizer.ggml.scores',
  tokenType: 'tokenizer.ggml.token_type',
  merges: 'tokenizer.ggml.merges',
  bosId: 'tokenizer.ggml.bos_token_id',
  eosId: 'tokenizer.ggml.eos_token_id',
  unkId: 'tokenizer.ggml.unknown_token_id',
  padId: 'tokenizer.ggml.padding_token_id',
  sepId: 'tokenizer.ggml.seperator_token_id',
  addBos: 'tokenizer.ggml.add_bos_token',
  addEos: 'tokenizer.ggml.add_eos_token',
  addSpacePrefix: 'tokenizer.ggml.add_space_prefix',
  chatTemplate: 'tokenizer.chat_template',
  hfJson: 'tokenizer.huggingface.json',
} as const;

/** ggml token types (tokenizer.ggml.token_type values). */
export const TOKEN_TYPE = {
  normal: 1,
  unknown: 2,
  control: 3,
  userDefined: 4,
  unused: 5,
  byte: 6,
} as const;

/** Default alignment of the tensor data block and of each tensor in it. */
export const GGUF_DEFAULT_ALIGNMENT = 32;
