// Generated Llama-shaped checkpoints at real sizes (Llama-3.2-1B, Llama-3.1-8B), written tensor by
// tensor so that a 5 GB file never sits in memory, with a synthetic SentencePiece vocabulary that
// llama.cpp loads (3 control tokens, 256 byte tokens, then "▁t<i>" pieces). The weights are seeded
// uniform noise (±0.02) and the norms ones: right for speed and memory measurements, meaningless
// for quality ones. Token ids are fed directly; the tokenizer cannot encode text.
// Legend: E = hidden, F = FFN width, L = layers, V = vocab.

import { stat } from 'node:fs/promises';
import type { ModelConfig } from '../src/model/config.js';
import { saveModel, type FloatDType } from '../src/model/save.js';
import type { Tokenizer } from '../src/formats/tokenizer/types.js';
import type { VocabExport } from '../src/formats/tokenizer/vocab.js';
import type { QuantTensor } from '../src/core/tensor.js';
import { quantizeGgml } from '../src/quant/ggml/index.js';
import { generatedModel } from './util.js';

const LLAMA3_BASE: Omit<ModelConfig, 'vocabSize' | 'hiddenSize' | 'intermediateSize' | 'nLayers' | 'nHeads' | 'nKvHeads' | 'headDim' | 'tiedEmbeddings'> = {
  architecture: 'llama', maxSeqLen: 2048, rmsNormEps: 1e-5, ropeTheta: 500000, ropeScaling: null, ropeLayout: 'half',
  attentionBias: false, qkNorm: false, bosTokenId: 1, eosTokenId: 2,
};

/** Shapes of the real models (vocab 128,256); `layers`/`vocab` shrink them for smaller runs. */
export const SHAPES = {
  /** Llama-3.2-1B: E 2048, F 8192, 16 layers, 32/8 heads, tied embeddings (1.24 B parameters) */
  'llama-3.2-1b': { ...LLAMA3_BASE, vocabSize: 128256, hiddenSize: 2048, intermediateSize: 8192, nLayers: 16, nHeads: 32, nKvHeads: 8, headDim: 64, tiedEmbeddings: true },
  /** Llama-3.1-8B: E 4096, F 14336, 32 layers, 32/8 heads, untied (8.03 B parameters) */
  'llama-3.1-8b': { ...LLAMA3_BASE, vocabSize: 128256, hiddenSize: 4096, intermediateSize: 14336, nLayers: 32, nHeads: 32, nKvHeads: 8, headDim: 128, tiedEmbeddings: false },
} satisfies Record<string, ModelConfig>;
export type ShapeName = keyof typeof SHAPES;

export function shapeConfig(name: ShapeName, over: Partial<ModelConfig> = {}): ModelConfig {
  return { ...SHAPES[name], ...over };
}

/** A vocabulary of `v` tokens in GGUF "llama" (SentencePiece) form that llama.cpp accepts. */
export function syntheticSpmVocab(v: number): VocabExport {
  const tokens: string[] = ['<unk>', '<s>', '</s>'];
  for (let b = 0; b < 256; b++) tokens.push(`<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`);
  for (let i = tokens.length; i < v; i++) tokens.push(`▁t${i}`);
  // GGUF token types: 2 unknown, 3 control, 6 byte, 1 normal
  const types = Int32Array.from(tokens, (_, i) => (i === 0 ? 2 : i < 3 ? 3 : i < 259 ? 6 : 1));
  const scores = Float32Array.from(tokens, (_, i) => (i < 259 ? 0 : -i));
  return { model: 'llama', tokens, scores, types, merges: null, bosId: 1, eosId: 2, unkId: 0, padId: null, addBos: true, addEos: false, addSpacePrefix: true, pre: null };
}

function syntheticTokenizer(v: number): Tokenizer {
  const vocab = syntheticSpmVocab(v);
  return {
    kind: 'spm', vocabSize: v, bosId: 1, eosId: 2, unkId: 0,
    encode: () => {
      throw new Error('the synthetic benchmark vocabulary cannot encode text; feed token ids');
    },
    decode: (ids) => ids.map((i) => vocab.tokens[i]).join(''),
    tokenPiece: (id) => vocab.tokens[id],
    exportVocab: () => vocab,
  };
}

/**
 * Writes a generated GGUF of config `c` to `path` (F32 or F16 weight matrices, norms F32), one
 * tensor in memory at a time. Returns the file size in bytes.
 */
export async function writeGeneratedGguf(path: string, c: ModelConfig, dtype: FloatDType = 'F32'): Promise<number> {
  const m = { ...generatedModel(c, { storage: dtype === 'F16' ? 'F16' : 'F32' }), tokenizer: syntheticTokenizer(c.vocabSize) };
  await saveModel(m, path, { format: 'gguf', dtype, overwrite: true });
  return (await stat(path)).size;
}

/** Q4_K block: d, dmin (f16), 12 bytes of 6-bit scales/mins, then 128 bytes of 4-bit codes */
const Q4K_BLOCK = 144;
const Q4K_CODES = 16;

/**
 * Writes a generated GGUF of config `c` with every 2-D tensor in Q4_K (norms F32), without a float
 * file first: the first tensor of each shape is generated and quantized by the Q4_K codec (the
 * WebAssembly kernel), and every later tensor of that shape reuses its scales with its 4-bit codes
 * XORed by a stream seeded per tensor — valid Q4_K blocks, distinct bytes per tensor (onnxruntime
 * would share byte-identical initializers), one codec pass per shape instead of per tensor (an 8B
 * model quantized tensor by tensor takes over half an hour on two loaded cores). For speed and
 * memory measurements only. general.file_type 14 (llama.cpp's Q4_K_S name; every matrix Q4_K as
 * with --pure). Returns the file size in bytes.
 */
export async function writeGeneratedQ4K(path: string, c: ModelConfig, onTensor?: (name: string) => void): Promise<number> {
  const m = { ...generatedModel(c), tokenizer: syntheticTokenizer(c.vocabSize) };
  const byShape = new Map<string, Uint8Array>();
  let seed = 0;
  await saveModel(m, path, {
    format: 'gguf',
    overwrite: true,
    fileType: 14,
    tensorType: (_n, src) => (src.shape.length === 2 ? 'Q4_K' : undefined),
    tensor: async (n, src): Promise<QuantTensor | null> => {
      if (src.shape.length !== 2) return null;
      const [N, K] = src.shape;
      const key = `${N}x${K}`;
      let first = byShape.get(key);
      onTensor?.(n);
      if (!first) {
        first = quantizeGgml('Q4_K', await src.readF32(), N, K);
        byShape.set(key, first);
        return { type: 'Q4_K', shape: src.shape, bytes: first };
      }
      const bytes = first.slice();
      let x = (++seed * 2654435761) >>> 0 || 1;
      for (let o = 0; o < bytes.length; o += Q4K_BLOCK) {
        for (let j = o + Q4K_CODES; j < o + Q4K_BLOCK; j += 4) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          bytes[j] ^= x;
          bytes[j + 1] ^= x >>> 8;
          bytes[j + 2] ^= x >>> 16;
          bytes[j + 3] ^= x >>> 24;
        }
      }
      return { type: 'Q4_K', shape: src.shape, bytes };
    },
  });
  return (await stat(path)).size;
}

/** Random token ids in [259, V) (past the control and byte tokens), seeded. */
export function syntheticTokens(n: number, v: number, seed = 1): number[] {
  let s = seed >>> 0 || 1;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    out.push(259 + (s % (v - 259)));
  }
  return out;
}
