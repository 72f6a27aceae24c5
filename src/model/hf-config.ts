// Hugging Face config.json ↔ ModelConfig for the Llama family: Llama 2/3 (rope_scaling
// "llama3"), Mistral, Qwen2/2.5 (q/k/v bias), Qwen3 (q/k RMSNorm, explicit head_dim), SmolLM
// (LlamaForCausalLM). Weights in a HF directory use the rotate-half rotary layout.
// Defaults follow transformers' config classes where a field is optional.

import { ConfigError } from '../core/errors.js';
import { JsonFields, type Json } from '../formats/hf/json.js';
import type { Architecture, ModelConfig, RopeScaling } from './config.js';

const ARCHS: Record<string, Architecture> = {
  LlamaForCausalLM: 'llama',
  MistralForCausalLM: 'mistral',
  Qwen2ForCausalLM: 'qwen2',
  Qwen3ForCausalLM: 'qwen3',
};
const MODEL_TYPES: Record<string, Architecture> = { llama: 'llama', mistral: 'mistral', qwen2: 'qwen2', qwen3: 'qwen3' };
const HF_CLASS: Record<Architecture, string> = { llama: 'LlamaForCausalLM', mistral: 'MistralForCausalLM', qwen2: 'Qwen2ForCausalLM', qwen3: 'Qwen3ForCausalLM' };

function architectureOf(f: JsonFields): Architecture {
  const archs = f.obj.architectures;
  const modelType = f.str('model_type');
  if (Array.isArray(archs) && archs.length > 0) {
    const a = ARCHS[String(archs[0])];
    if (a) return a;
    throw new ConfigError('unsupported', 'unsupported model architecture', {
      file: f.file,
      field: 'architectures',
      expected: Object.keys(ARCHS).join(' | '),
      found: archs[0],
    });
  }
  if (modelType && MODEL_TYPES[modelType]) return MODEL_TYPES[modelType];
  throw new ConfigError(modelType ? 'unsupported' : 'bad_config', modelType ? 'unsupported model_type' : 'config.json names no architecture', {
    file: f.file,
    field: modelType ? 'model_type' : 'architectures',
    expected: Object.keys(MODEL_TYPES).join(' | '),
    found: modelType ?? 'nothing',
  });
}

function ropeScalingOf(f: JsonFields): RopeScaling | null {
  const rs = f.obj_('rope_scaling') ?? null;
  if (!rs) return null;
  const type = rs.str('rope_type') ?? rs.str('type');
  if (!type) throw new ConfigError('bad_config', 'rope_scaling has no type', { file: f.file, field: 'rope_scaling.rope_type' });
  if (type === 'default') return null;
  const out: RopeScaling = { type, factor: rs.num('factor') };
  if (rs.has('low_freq_factor')) out.lowFreqFactor = rs.num('low_freq_factor');
  if (rs.has('high_freq_factor')) out.highFreqFactor = rs.num('high_freq_factor');
  if (rs.has('original_max_position_embeddings')) out.originalMaxPositionEmbeddings = rs.int('original_max_position_embeddings');
  if (type === 'llama3' && (out.lowFreqFactor === undefined || out.highFreqFactor === undefined || out.originalMaxPositionEmbeddings === undefined)) {
    throw new ConfigError('bad_config', 'llama3 rope scaling needs low_freq_factor, high_freq_factor and original_max_position_embeddings', { file: f.file, field: 'rope_scaling' });
  }
  return out;
}

/** Parses a config.json object. `file` names it in errors. */
export function configFromHfJson(obj: unknown, file = 'config.json'): ModelConfig {
  const f = new JsonFields(obj as Json, file);
  const architecture = architectureOf(f);
  const act = f.str('hidden_act') ?? f.str('hidden_activation');
  if (act !== null && act !== 'silu' && act !== 'swish') {
    throw new ConfigError('unsupported', 'only SiLU (SwiGLU) feed-forward activations are supported', { file, field: 'hidden_act', expected: 'silu', found: act });
  }
  const hiddenSize = f.int('hidden_size');
  const nHeads = f.int('num_attention_heads');
  const nKvHeads = f.int('num_key_value_heads', { fallback: nHeads });
  if (nHeads % nKvHeads !== 0) {
    throw new ConfigError('bad_config', 'query heads must be a multiple of KV heads', { file, field: 'num_key_value_heads', expected: `a divisor of ${nHeads}`, found: nKvHeads });
  }
  const explicitHeadDim = f.has('head_dim') ? f.int('head_dim') : null;
  if (explicitHeadDim === null && hiddenSize % nHeads !== 0) {
    throw new ConfigError('bad_config', 'hidden_size is not a multiple of num_attention_heads and head_dim is absent', { file, field: 'head_dim', expected: 'an integer', found: 'missing' });
  }
  const headDim = explicitHeadDim ?? hiddenSize / nHeads;
  // newer transformers move rope_theta into rope_parameters
  const ropeParams = f.obj_('rope_parameters');
  const ropeTheta = f.has('rope_theta') ? f.num('rope_theta') : ropeParams?.has('rope_theta') ? ropeParams.num('rope_theta') : 10000;
  return {
    architecture,
    vocabSize: f.int('vocab_size'),
    hiddenSize,
    intermediateSize: f.int('intermediate_size'),
    nLayers: f.int('num_hidden_layers'),
    nHeads,
    nKvHeads,
    headDim,
    maxSeqLen: f.int('max_position_embeddings', { fallback: 2048 }),
    rmsNormEps: f.num('rms_norm_eps', 1e-6),
    ropeTheta,
    ropeScaling: ropeScalingOf(f) ?? (ropeParams && ropeParams.str('rope_type') && ropeParams.str('rope_type') !== 'default' ? ropeScalingOf(new JsonFields({ rope_scaling: ropeParams.obj }, file)) : null),
    ropeLayout: 'half',
    tiedEmbeddings: f.bool('tie_word_embeddings', false),
    // Qwen2 always has q/k/v bias; Llama/Mistral/Qwen3 only when attention_bias says so
    attentionBias: architecture === 'qwen2' ? true : f.bool('attention_bias', false),
    qkNorm: architecture === 'qwen3',
    bosTokenId: f.tokenId('bos_token_id'),
    eosTokenId: f.tokenId('eos_token_id'),
  };
}

/** config.json for a ModelConfig (weights must be in the rotate-half layout when written). */
export function hfConfigJson(c: ModelConfig, dtype = 'float32'): Json {
  const out: Json = {
    architectures: [HF_CLASS[c.architecture]],
    model_type: c.architecture,
    vocab_size: c.vocabSize,
    hidden_size: c.hiddenSize,
    intermediate_size: c.intermediateSize,
    num_hidden_layers: c.nLayers,
    num_attention_heads: c.nHeads,
    num_key_value_heads: c.nKvHeads,
    head_dim: c.headDim,
    hidden_act: 'silu',
    max_position_embeddings: c.maxSeqLen,
    rms_norm_eps: c.rmsNormEps,
    rope_theta: c.ropeTheta,
    rope_scaling: c.ropeScaling
      ? {
          rope_type: c.ropeScaling.type,
          factor: c.ropeScaling.factor,
          ...(c.ropeScaling.lowFreqFactor !== undefined ? { low_freq_factor: c.ropeScaling.lowFreqFactor } : {}),
          ...(c.ropeScaling.highFreqFactor !== undefined ? { high_freq_factor: c.ropeScaling.highFreqFactor } : {}),
          ...(c.ropeScaling.originalMaxPositionEmbeddings !== undefined ? { original_max_position_embeddings: c.ropeScaling.originalMaxPositionEmbeddings } : {}),
        }
      : null,
    tie_word_embeddings: c.tiedEmbeddings,
    attention_bias: c.attentionBias,
    bos_token_id: c.bosTokenId,
    eos_token_id: c.eosTokenId,
    torch_dtype: dtype,
    use_cache: true,
  };
  if (c.architecture === 'llama') out.mlp_bias = false;
  return out;
}
