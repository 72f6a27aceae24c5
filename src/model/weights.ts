// A model as the rest of bitscale sees it: a config, a tokenizer, and tensors that are read
// lazily (by offset from the file) so that large checkpoints never need to fit in memory.
// Canonical tensor names are Hugging Face's (model.layers.{i}.self_attn.q_proj.weight, …);
// see names.ts for the GGUF and llama2.c maps. Weight matrices are [out, in] row-major.

import type { DType, GgmlType } from '../core/dtype.js';
import type { QuantTensor, Tensor } from '../core/tensor.js';
import type { Tokenizer } from '../formats/tokenizer/types.js';
import type { ModelConfig } from './config.js';
import type { PackedIntCodes } from '../formats/packed-int.js';

export type SourceFormat = 'llama2c' | 'hf' | 'gguf' | 'safetensors' | 'onnx';

export interface TensorSource {
  /** canonical (Hugging Face) name */
  name: string;
  /** row-major shape in elements */
  shape: number[];
  /** element dtype, or a ggml block type for quantized GGUF tensors */
  dtype: DType | GgmlType;
  /** stored size in bytes */
  byteLength: number;
  /** set when the stored form is a packing that `dtype` (its decoded type) does not name, e.g. "GPTQ int4" */
  packing?: string;
  /** the raw stored tensor (element dtype → Tensor, block type → QuantTensor) */
  read(): Promise<Tensor | QuantTensor>;
  /** decoded to float32 (dequantized if stored quantized) */
  readF32(): Promise<Float32Array>;
  /**
   * Optional: the stored bytes (byteLength of them) into `dst`, e.g. a reused or shared buffer
   * (the streaming quantizer reads tensors straight into memory its worker threads see).
   */
  readInto?(dst: Uint8Array): Promise<void>;
  /**
   * Optional: where the stored bytes lie in a local file (byteLength of them from byte `offset`),
   * so that worker threads read their rows themselves (the streaming quantizer).
   */
  file?: { path: string; offset: number };
  /** `byteLength` stored bytes from `byteOffset` within the tensor (row reads; absent when the source cannot) */
  readRange?(byteOffset: number, byteLength: number): Promise<Uint8Array>;
  /** the integer codes of a packed int linear (GPTQ, compressed-tensors), for engines that run them as stored */
  readCodes?(): Promise<PackedIntCodes>;
}

/** The stored integer codes of a packed int linear (defined with the checkpoint formats that store them). */
export type { PackedIntCodes };

export interface ModelWeights {
  config: ModelConfig;
  tokenizer: Tokenizer | null;
  /** canonical name → lazy tensor, in a stable order (embedding, layers in order, final norm, lm_head) */
  tensors: Map<string, TensorSource>;
  /** where it came from */
  source: { format: SourceFormat; path: string };
  /** free-form metadata carried from the source (GGUF KV, safetensors __metadata__) */
  metadata: Record<string, unknown>;
  /** release file handles */
  close(): Promise<void>;
}
