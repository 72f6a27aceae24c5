// The Llama-architecture training graph: token ids and next-token targets in, mean cross-entropy
// out, every weight a named parameter (Hugging Face names and [out, in] layout, so checkpoints
// save as they are). The blocks are the engine's (engine/decoder-block.ts: attention decomposed
// into MatMul + Softmax, RoPE in the config's layout with the engine's tables, GQA); training adds
// the straight-through activation and KV quantizers at the block's hooks.
// Legend: B = batch, S = context, T = B·S tokens, E = hidden, V = vocab.

import { ConfigError } from '../core/errors.js';
import { Rng } from '../core/rng.js';
import { GraphBuilder, type Graph, type Value } from '../engine/ir.js';
import { decoderBlock, fixedAttentionInputs, type BlockHooks, type BlockWeights } from '../engine/decoder-block.js';
import type { ModelConfig } from '../model/config.js';
import { FULL_PRECISION, quantizeActivation, type LowPrecision } from './lowprec.js';

/** A small Llama config with training defaults (untied embeddings, rope θ 10000, HF rope layout). */
export function llamaConfig(c: { vocabSize: number; hiddenSize: number; intermediateSize: number; nLayers: number; nHeads: number; nKvHeads?: number; context: number }): ModelConfig {
  const cfg: ModelConfig = {
    architecture: 'llama',
    vocabSize: c.vocabSize,
    hiddenSize: c.hiddenSize,
    intermediateSize: c.intermediateSize,
    nLayers: c.nLayers,
    nHeads: c.nHeads,
    nKvHeads: c.nKvHeads ?? c.nHeads,
    headDim: c.hiddenSize / c.nHeads,
    maxSeqLen: c.context,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    ropeLayout: 'half',
    tiedEmbeddings: false,
    attentionBias: false,
    qkNorm: false,
    bosTokenId: null,
    eosTokenId: null,
  };
  checkTrainable(cfg);
  return cfg;
}

/** Throws a ConfigError naming the field if the trainer cannot build this architecture. */
export function checkTrainable(c: ModelConfig): void {
  const bad = (field: string, expected: string, found: unknown) => {
    throw new ConfigError('bad_config', 'model config not trainable here', { field, expected, found });
  };
  for (const k of ['vocabSize', 'hiddenSize', 'intermediateSize', 'nLayers', 'nHeads', 'nKvHeads', 'headDim', 'maxSeqLen'] as const) {
    if (!Number.isInteger(c[k]) || c[k] <= 0) bad(k, 'a positive integer', c[k]);
  }
  if (c.nHeads % c.nKvHeads !== 0) bad('nKvHeads', `a divisor of nHeads = ${c.nHeads}`, c.nKvHeads);
  if (c.headDim % 2 !== 0) bad('headDim', 'even (rotary pairs)', c.headDim);
  if (c.attentionBias || c.qkNorm || c.ropeScaling) bad('architecture', 'plain Llama (no biases, no qk-norm, no rope scaling)', c.architecture);
}

export interface ParamSpec {
  name: string;
  shape: number[];
  /** linear weights (quantized by QAT/low-precision training, weight-decayed) */
  linear: boolean;
}

/** Parameters in canonical order with their shapes. */
export function paramSpecs(c: ModelConfig): ParamSpec[] {
  const E = c.hiddenSize;
  const qd = c.nHeads * c.headDim;
  const kvd = c.nKvHeads * c.headDim;
  const out: ParamSpec[] = [{ name: 'model.embed_tokens.weight', shape: [c.vocabSize, E], linear: false }];
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    out.push(
      { name: `${p}input_layernorm.weight`, shape: [E], linear: false },
      { name: `${p}self_attn.q_proj.weight`, shape: [qd, E], linear: true },
      { name: `${p}self_attn.k_proj.weight`, shape: [kvd, E], linear: true },
      { name: `${p}self_attn.v_proj.weight`, shape: [kvd, E], linear: true },
      { name: `${p}self_attn.o_proj.weight`, shape: [E, qd], linear: true },
      { name: `${p}post_attention_layernorm.weight`, shape: [E], linear: false },
      { name: `${p}mlp.gate_proj.weight`, shape: [c.intermediateSize, E], linear: true },
      { name: `${p}mlp.up_proj.weight`, shape: [c.intermediateSize, E], linear: true },
      { name: `${p}mlp.down_proj.weight`, shape: [E, c.intermediateSize], linear: true },
    );
  }
  out.push({ name: 'model.norm.weight', shape: [E], linear: false });
  if (!c.tiedEmbeddings) out.push({ name: 'lm_head.weight', shape: [c.vocabSize, E], linear: false });
  return out;
}

/** GPT-2-style initialisation: N(0, 0.02²), residual output projections scaled by 1/√(2L), norms 1. */
export function initParams(c: ModelConfig, seed: number): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  for (const p of paramSpecs(c)) {
    const n = p.shape.reduce((a, d) => a * d, 1);
    if (p.shape.length === 1) out.set(p.name, new Float32Array(n).fill(1));
    else {
      const resid = /o_proj|down_proj/.test(p.name);
      out.set(p.name, rng.fillNormal(new Float32Array(n), 0, resid ? 0.02 / Math.sqrt(2 * c.nLayers) : 0.02));
    }
  }
  return out;
}

export interface TrainGraph {
  graph: Graph;
  /** stop-gradient value ids (STEs, the log-sum-exp shift) */
  stop: Set<number>;
}

/**
 * Builds the forward graph: inputs `tokens`, `targets` (I64 [B, S]; target −1 = ignored), outputs
 * `loss` (mean NLL over counted targets), `nll_sum` and `count`. Weights are parameters; pass
 * `values` to give them data (else zeros: the trainer feeds them as inputs anyway); `logits: true`
 * adds the output `logits` [B·S, V] (off in training: it would copy B·S·V floats per step).
 */
export function buildTrainGraph(
  c: ModelConfig,
  B: number,
  S: number,
  lp: LowPrecision = FULL_PRECISION,
  values?: Map<string, Float32Array>,
  opts: { logits?: boolean } = {},
): TrainGraph {
  checkTrainable(c);
  if (S > c.maxSeqLen) throw new ConfigError('bad_config', 'context longer than the model supports', { field: 'context', expected: `<= ${c.maxSeqLen}`, found: S });
  const b = new GraphBuilder('llama_train');
  const stop = new Set<number>();
  const P = new Map<string, Value>();
  for (const p of paramSpecs(c)) {
    const n = p.shape.reduce((a, d) => a * d, 1);
    P.set(p.name, b.param(p.name, { dtype: 'F32', shape: p.shape, data: values?.get(p.name) ?? new Float32Array(n) }));
  }
  const W = (n: string) => P.get(n) as Value;
  const E = c.hiddenSize;
  const T = B * S;
  const tokens = b.input('tokens', 'I64', [B, S]);
  const targets = b.input('targets', 'I64', [B, S]);
  const weights: BlockWeights = { tensor: W, linear: (h, n) => b.matmul(h, b.transpose(W(n), [1, 0])) };
  const hooks: BlockHooks = {
    site: (h) => quantizeActivation(b, h, lp.activations, stop),
    kv: (h) => quantizeActivation(b, h, lp.kv, stop),
  };
  // the engine's block, tables and rotation, so a llama2.c model (interleaved rows) trains as it runs
  const at = fixedAttentionInputs(b, c, S);

  let x = b.gather(W('model.embed_tokens.weight'), tokens); // [B, S, E]
  for (let l = 0; l < c.nLayers; l++) x = decoderBlock(b, c, l, x, weights, at, hooks);
  const xf = b.reshape(b.rmsnorm(x, W('model.norm.weight'), c.rmsNormEps), [T, E]);
  const head = c.tiedEmbeddings ? W('model.embed_tokens.weight') : W('lm_head.weight');
  const logits = b.matmul(xf, b.transpose(head, [1, 0])); // [T, V] (the LM head stays full precision)
  const { nllSum, count } = crossEntropy(b, logits, b.reshape(targets, [T, 1]), stop);
  b.output('loss', b.div(nllSum, b.maximum(count, 1)));
  b.output('nll_sum', nllSum);
  b.output('count', count);
  if (opts.logits) b.output('logits', logits); // [T, V], for tests against the reference forward
  return { graph: b.build(), stop };
}

/** Σ over counted rows of logsumexp(logits) − logits[target]; targets < 0 are not counted. */
function crossEntropy(b: GraphBuilder, logits: Value, targets: Value, stop: Set<number>): { nllSum: Value; count: Value } {
  const V = logits.shape[1];
  const m = b.identity(b.max(logits, 1, true)); // the shift cancels in the gradient: stop it
  stop.add(m.id);
  const lse = b.add(b.log(b.sum(b.exp(b.sub(logits, m)), 1, true)), m); // [T, 1]
  const arange = b.constant({ dtype: 'I64', shape: [1, V], data: BigInt64Array.from({ length: V }, (_, i) => BigInt(i)) });
  const onehot = b.cast(b.equal(targets, arange), 'F32'); // [T, V]; a −1 target matches nothing
  const picked = b.sum(b.mul(logits, onehot), 1, true);
  const valid = b.cast(b.less(b.scalar(-1, 'I64'), targets), 'F32'); // [T, 1]
  return { nllSum: b.sum(b.mul(b.sub(lse, picked), valid), [0, 1], false), count: b.sum(valid, [0, 1], false) };
}
