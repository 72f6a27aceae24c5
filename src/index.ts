// bitscale's library entry point. Re-exports the public API layer by layer.
export * from './core/index.js';
export * from './numerics/float16.js';
export * from './numerics/round.js';
export type { ModelConfig, RopeLayout, RopeScaling, Architecture } from './model/config.js';
export type { ModelWeights, TensorSource } from './model/weights.js';
export type { Tokenizer, EncodeOptions } from './formats/tokenizer/types.js';
export * from './formats/bytes.js';
export * from './formats/safetensors/index.js';
export * from './formats/gguf/index.js';
export * from './formats/io/index.js';
