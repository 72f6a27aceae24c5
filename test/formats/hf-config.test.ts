// config.json → ModelConfig for the supported families, the writer's round trip, and typed
// errors that name the file and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { configFromHfJson, hfConfigJson } from '../../src/model/hf-config.js';
import { generationConfigJson, parseGenerationConfig } from '../../src/formats/hf/json.js';
import { ConfigError } from '../../src/core/errors.js';
import { parameterCount } from '../../src/model/config.js';

// Values as published in each model's config.json.
const LLAMA32_1B = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 128256, hidden_size: 2048, intermediate_size: 8192,
  num_hidden_layers: 16, num_attention_heads: 32, num_key_value_heads: 8, head_dim: 64, hidden_act: 'silu',
  max_position_embeddings: 131072, rms_norm_eps: 1e-5, rope_theta: 500000.0, tie_word_embeddings: true,
  rope_scaling: { factor: 32.0, high_freq_factor: 4.0, low_freq_factor: 1.0, original_max_position_embeddings: 8192, rope_type: 'llama3' },
  bos_token_id: 128000, eos_token_id: [128001, 128008, 128009], attention_bias: false,
};
const QWEN25_05B = {
  architectures: ['Qwen2ForCausalLM'], model_type: 'qwen2', vocab_size: 151936, hidden_size: 896, intermediate_size: 4864,
  num_hidden_layers: 24, num_attention_heads: 14, num_key_value_heads: 2, hidden_act: 'silu', max_position_embeddings: 32768,
  rms_norm_eps: 1e-6, rope_theta: 1000000.0, tie_word_embeddings: true, bos_token_id: 151643, eos_token_id: 151643,
};
const QWEN3_06B = {
  architectures: ['Qwen3ForCausalLM'], model_type: 'qwen3', vocab_size: 151936, hidden_size: 1024, intermediate_size: 3072,
  num_hidden_layers: 28, num_attention_heads: 16, num_key_value_heads: 8, head_dim: 128, hidden_act: 'silu',
  max_position_embeddings: 40960, rms_norm_eps: 1e-6, rope_theta: 1000000, tie_word_embeddings: true, attention_bias: false,
};
const MISTRAL_7B = {
  architectures: ['MistralForCausalLM'], model_type: 'mistral', vocab_size: 32000, hidden_size: 4096, intermediate_size: 14336,
  num_hidden_layers: 32, num_attention_heads: 32, num_key_value_heads: 8, hidden_act: 'silu', max_position_embeddings: 32768,
  rms_norm_eps: 1e-5, rope_theta: 10000.0, sliding_window: 4096, tie_word_embeddings: false, bos_token_id: 1, eos_token_id: 2,
};
const SMOLLM_135M = {
  architectures: ['LlamaForCausalLM'], model_type: 'llama', vocab_size: 49152, hidden_size: 576, intermediate_size: 1536,
  num_hidden_layers: 30, num_attention_heads: 9, num_key_value_heads: 3, hidden_act: 'silu', max_position_embeddings: 2048,
  rms_norm_eps: 1e-5, rope_theta: 10000.0, tie_word_embeddings: true, bos_token_id: 0, eos_token_id: 0,
};

test('Llama 3.2: GQA, llama3 rope scaling, tied embeddings, eos list', () => {
  const c = configFromHfJson(LLAMA32_1B);
  assert.equal(c.architecture, 'llama');
  assert.equal(c.nKvHeads, 8);
  assert.equal(c.headDim, 64);
  assert.equal(c.ropeTheta, 500000);
  assert.deepEqual(c.ropeScaling, { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 });
  assert.equal(c.ropeLayout, 'half');
  assert.equal(c.tiedEmbeddings, true);
  assert.equal(c.eosTokenId, 128001);
  assert.equal(parameterCount(c), 1_235_814_400); // Llama-3.2-1B's published 1.24B
});

test('Qwen2.5 has q/k/v bias; Qwen3 has q/k norm and an explicit head_dim', () => {
  const q2 = configFromHfJson(QWEN25_05B);
  assert.equal(q2.attentionBias, true);
  assert.equal(q2.headDim, 64);
  assert.equal(parameterCount(q2), 494_032_768); // Qwen2.5-0.5B: 0.49B
  const q3 = configFromHfJson(QWEN3_06B);
  assert.equal(q3.qkNorm, true);
  assert.equal(q3.attentionBias, false);
  assert.equal(q3.headDim, 128);
  assert.equal(q3.nHeads * q3.headDim, 2048); // ≠ hidden_size 1024
  assert.equal(parameterCount(q3), 596_049_920); // Qwen3-0.6B: 0.6B
});

test('Mistral and SmolLM parse; defaults for absent fields', () => {
  const m = configFromHfJson(MISTRAL_7B);
  assert.equal(m.architecture, 'mistral');
  assert.equal(m.tiedEmbeddings, false);
  assert.equal(parameterCount(m), 7_241_732_096);
  const s = configFromHfJson(SMOLLM_135M);
  assert.equal(s.architecture, 'llama');
  assert.equal(s.headDim, 64);
  assert.equal(parameterCount(s), 134_515_008);
  const minimal = configFromHfJson({ model_type: 'llama', vocab_size: 10, hidden_size: 8, intermediate_size: 16, num_hidden_layers: 1, num_attention_heads: 2 });
  assert.equal(minimal.nKvHeads, 2);
  assert.equal(minimal.ropeTheta, 10000);
  assert.equal(minimal.rmsNormEps, 1e-6);
});

test('hfConfigJson round-trips through configFromHfJson', () => {
  for (const j of [LLAMA32_1B, QWEN25_05B, QWEN3_06B, MISTRAL_7B, SMOLLM_135M]) {
    const c = configFromHfJson(j);
    assert.deepEqual(configFromHfJson(JSON.parse(JSON.stringify(hfConfigJson(c)))), c);
  }
});

test('unknown architecture and missing or bad fields are ConfigErrors naming file and field', () => {
  const is = (code: string, field: string) => (e: unknown) => e instanceof ConfigError && e.code === code && e.context.field === field && e.context.file === 'x/config.json';
  assert.throws(() => configFromHfJson({ ...LLAMA32_1B, architectures: ['GPT2LMHeadModel'] }, 'x/config.json'), is('unsupported', 'architectures'));
  assert.throws(() => configFromHfJson({ ...LLAMA32_1B, architectures: undefined, model_type: 'gemma' }, 'x/config.json'), is('unsupported', 'model_type'));
  const { hidden_size: _, ...noHidden } = LLAMA32_1B;
  assert.throws(() => configFromHfJson(noHidden, 'x/config.json'), is('bad_config', 'hidden_size'));
  assert.throws(() => configFromHfJson({ ...LLAMA32_1B, num_key_value_heads: 7 }, 'x/config.json'), is('bad_config', 'num_key_value_heads'));
  assert.throws(() => configFromHfJson({ ...LLAMA32_1B, vocab_size: '12' }, 'x/config.json'), is('bad_config', 'vocab_size'));
  assert.throws(() => configFromHfJson({ ...LLAMA32_1B, hidden_act: 'gelu' }, 'x/config.json'), is('unsupported', 'hidden_act'));
  assert.throws(() => configFromHfJson([], 'x/config.json'), (e: unknown) => e instanceof ConfigError && e.code === 'bad_config');
});

test('generation_config.json parses eos lists and writes back', () => {
  const g = parseGenerationConfig({ bos_token_id: 128000, eos_token_id: [128001, 128009], do_sample: true, temperature: 0.6, top_p: 0.9 });
  assert.deepEqual(g.eosTokenIds, [128001, 128009]);
  assert.deepEqual(parseGenerationConfig(generationConfigJson(g)), g);
  assert.throws(() => parseGenerationConfig({ eos_token_id: ['x'] }, 'gen.json'), (e: unknown) => e instanceof ConfigError && e.context.field === 'eos_token_id');
});
