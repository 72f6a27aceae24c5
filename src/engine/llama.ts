// Llama-family decoder graphs (Llama 2/3, Mistral, Qwen2 with q/k/v bias, Qwen3 with q/k norm,
// llama2.c checkpoints) built from IR primitives. Two shapes of graph:
//   full:   tokens [B, T], positions [T] → logits [B, T, V] (or [B, 1, V] with lastOnly); causal mask from positions
//   cached: (B = 1) the same plus past_key.i / past_value.i [Hk, C, D] → present_key.i / present_value.i, a
//           fixed-capacity KV cache: the new keys are written into slots `positions` (slot = position)
//           with a one-hot matmul, so every shape stays static and one session serves every step.
// The blocks are engine/decoder-block.ts's (the one block definition); this file adds the embedding,
// the positions, the weight paths (float, stored, low-bit), the activation sites and the head.
// Legend: B = sequences per run, T = new tokens, C = cache capacity, V = vocab, E = hidden.

import { ConfigError } from '../core/errors.js';
import { GraphBuilder, type Graph, type Value } from './ir.js';
import { decoderBlock, positionalAttentionInputs, type BlockWeights } from './decoder-block.js';
import { nbitsLinearGraph, nbitsValues, type NBitsConstants, type NBitsValues } from './nbits-graph.js';
import { after, partedTargetLogProbs, type HeadPart } from './head-score.js';
import { fakeQuantActivation, type AbsmaxActSpec, type ActQuantSpec } from './actquant.js';
import type { HostModel } from './host.js';
import { lowBitLinear } from './lowbit-linear.js';

export interface LlamaGraphOptions {
  /** T: tokens per run */
  tokens: number;
  /** B: sequences per run (full graphs only; default 1). All share the same positions. */
  batch?: number;
  /** C: KV-cache capacity; omit for a full-sequence graph without cache */
  cacheCapacity?: number;
  /** return logits for the last token only */
  lastOnly?: boolean;
  /** precision of every linear layer's input (per-token dynamic, per-tensor static, or a float cast),
   * or a choice per site (`<layer>.attn_in`, `<layer>.attn_out`, `<layer>.ffn_in`, `<layer>.ffn_down`, `lm_head`) */
  activations?: ActivationPrecision | null;
  /** precision of the keys and values stored in the cache (per token and head) */
  kvCache?: ActQuantSpec | null;
  /** rows of the RoPE table (positions must stay below it); default C or T */
  maxPositions?: number;
  /** MatMulNBits accuracy_level (0 = exact fp32 dequantization) */
  accuracyLevel?: number;
  /** attention in this many KV-head groups, one after another (AttentionInputs.headGroups; default 1) */
  attentionGroups?: number;
  /** add outputs `amax.<site>` (max |x| at each linear input) for calibrating static scales */
  statistics?: boolean;
  /** score instead of returning logits: input `targets` I64 [B, T], output `logprobs` F64 [B, T] =
   * log softmax(logits[b, t])[targets[b, t]], the head evaluated in row chunks so that at most
   * ~64 MB of logits exist at a time */
  targets?: boolean;
}

export type ActivationPrecision = ActQuantSpec | ((site: string) => ActQuantSpec | AbsmaxActSpec | null);

export { kvNames } from './decoder-block.js';

class Builder {
  readonly b: GraphBuilder;
  private readonly params = new Map<string, Value>();
  constructor(
    private readonly m: HostModel,
    private readonly o: LlamaGraphOptions,
  ) {
    this.b = new GraphBuilder(`${m.config.architecture}-T${o.tokens}${o.cacheCapacity ? `-C${o.cacheCapacity}` : ''}`);
  }

  /** one set of graph constants per stored weight, however often it is applied */
  private readonly storedValues = new Map<string, unknown>();
  stored<T>(name: string, make: () => T): T {
    if (!this.storedValues.has(name)) this.storedValues.set(name, make());
    return this.storedValues.get(name) as T;
  }

  param(name: string, shape: number[]): Value {
    let v = this.params.get(name);
    if (!v) {
      const data = this.m.tensors.get(name);
      if (!data) throw new ConfigError('bad_config', 'tensor missing from the prepared model', { tensor: name });
      v = this.b.param(name, { dtype: 'F32', shape, data });
      this.params.set(name, v);
    }
    return v;
  }

  /** x [..., K] @ Wᵀ, in float or in real low bit */
  linear(x: Value, name: string, N: number): Value {
    const b = this.b;
    const K = x.shape[x.shape.length - 1];
    const lb = this.m.lowBit.get(name);
    const st = this.m.stored?.get(name);
    let y: Value;
    if (st?.kind === 'nbits') {
      const vals = this.nbitsParts(name, st.parts);
      const outs = vals.map((v) => nbitsLinearGraph(b, x, v, this.o.accuracyLevel ?? 0));
      y = outs.length === 1 ? outs[0] : b.concat(outs, x.shape.length - 1);
    }
    else if (st) y = b.matmul(x, this.stored(name, () => b.constant(st.wT, name))); // stored transposed [K, N]
    else if (lb) y = lowBitLinear(b, name, x, lb.q, lb.mode, this.o.accuracyLevel ?? 0, lb.floatZeros);
    else y = b.matmul(x, b.transpose(this.param(name, [N, K]), [1, 0]));
    return y;
  }

  private nbitsParts(name: string, parts: readonly NBitsConstants[]): NBitsValues[] {
    return this.stored(name, () => parts.map((c, i) => nbitsValues(this.b, parts.length > 1 ? `${name}.part${i}` : name, c)));
  }

  /** a weight stored on its codes in several row parts, as parts to apply one at a time (else null) */
  rowParts(name: string): HeadPart[] | null {
    const st = this.m.stored?.get(name);
    if (st?.kind !== 'nbits' || st.parts.length < 2) return null;
    return this.nbitsParts(name, st.parts).map((v, i) => ({ rows: st.parts[i].N, apply: (h: Value) => nbitsLinearGraph(this.b, h, v, this.o.accuracyLevel ?? 0) }));
  }

  actIn(x: Value, site: string): Value {
    if (this.o.statistics) this.b.output(`amax.${site}`, this.b.max(this.b.abs(x), x.shape.map((_, i) => i), false));
    const a = this.o.activations ?? null;
    return fakeQuantActivation(this.b, x, typeof a === 'function' ? a(site) : a);
  }
}

/** Builds the decoder graph for `m` with static shapes from `o`. */
export function buildLlamaGraph(m: HostModel, o: LlamaGraphOptions): Graph {
  const c = m.config;
  const T = o.tokens;
  const B = o.batch ?? 1;
  const C = o.cacheCapacity;
  if (!Number.isInteger(B) || B < 1 || (C && B !== 1)) throw new ConfigError('bad_option', 'batch must be a positive integer (1 with a KV cache)', { field: 'batch', found: B });
  if (!Number.isInteger(T) || T < 1) throw new ConfigError('bad_option', 'token count must be a positive integer', { field: 'tokens', found: T });
  if (C !== undefined && (!Number.isInteger(C) || C < T)) throw new ConfigError('bad_option', 'cache capacity must be an integer >= tokens per run', { field: 'cacheCapacity', expected: `>= ${T}`, found: C });
  const E = c.hiddenSize;
  const V = c.vocabSize;
  const P = o.maxPositions ?? C ?? T;
  const L = new Builder(m, o);
  const b = L.b;

  // the embedding rows come from the host when it reads the table by rows (native weights)
  const hostEmbeds = m.embedRows !== undefined;
  const positions = b.input('positions', 'I64', [T]);
  const embed = hostEmbeds ? null : L.param('model.embed_tokens.weight', [V, E]);
  let x = embed ? b.gather(embed, b.input('tokens', 'I64', [B, T]), 0) : b.input('embeds', 'F32', [B, T, E]); // [B, T, E]

  const at = { ...positionalAttentionInputs(b, c, positions, P, C), headGroups: o.attentionGroups };
  const weights: BlockWeights = { tensor: (n, shape) => L.param(n, shape), linear: (h, n, N) => L.linear(h, n, N) };
  for (let i = 0; i < c.nLayers; i++) {
    const kv = (v: Value) => fakeQuantActivation(b, v, o.kvCache ?? null);
    x = decoderBlock(b, c, i, x, weights, at, { site: (v, s) => L.actIn(v, `${i}.${s}`), kv });
  }
  if (o.lastOnly && T > 1) x = b.slice(x, [T - 1], [T], [1]);
  const xf = L.actIn(b.rmsnorm(x, L.param('model.norm.weight', [E]), c.rmsNormEps), 'lm_head');
  const headName = c.tiedEmbeddings ? 'model.embed_tokens.weight' : 'lm_head.weight';
  const head = (h: Value) => (embed && c.tiedEmbeddings ? b.matmul(h, b.transpose(embed, [1, 0])) : L.linear(h, headName, V));
  // a head stored in row parts is scored part by part (head-score.ts), the others in logits chunks
  const headParts = embed && c.tiedEmbeddings ? null : L.rowParts(headName);
  if (o.targets) {
    const targets = b.input('targets', 'I64', [B, xf.shape[1]]);
    b.output('logprobs', headParts ? partedTargetLogProbs(b, xf, headParts, targets) : targetLogProbs(b, xf, head, targets, V));
  }
  else b.output('logits', head(xf));
  return b.build();
}

/** logits rows per head chunk: about `chunkFloats` (default 4M floats, 16 MB) of logits at a time */
export function headChunkRows(batch: number, vocab: number, chunkFloats = 1 << 22): number {
  return Math.max(1, Math.floor(chunkFloats / (batch * vocab)));
}

/** Largest divisor of `n` that is at most 512 (the inner length of the two-level exp sum). */
function innerSumLength(n: number): number {
  for (let f = Math.min(512, n); f > 1; f--) if (n % f === 0) return f;
  return 1;
}

/**
 * log softmax(head(xf))[targets] [B, Tq] in float64, the head applied to row chunks so that one
 * chunk's logits exist at a time. Per chunk: the target logit (GatherElements) is taken first, then
 * log Σ exp(l − max) with the exp summed in two levels (float32 over ≤ 512 values, float64 over the
 * partial sums), in an order that lets onnxruntime reuse the logits buffer for the exp. Each chunk's
 * head input waits for the previous chunk's result (head-score.ts `after`): onnxruntime runs nodes
 * in readiness order, and every chunk's matmul depends only on `xf`, so unchained all chunks' logits
 * were computed first and held at once (16 chunks of [32, 128256] at 512 tokens: 263 MB).
 */
export function targetLogProbs(b: GraphBuilder, xf: Value, head: (h: Value) => Value, targets: Value, V: number, chunkFloats = 1 << 22): Value {
  const [B, Tq] = xf.shape;
  const rows = headChunkRows(B, V, chunkFloats);
  const f = innerSumLength(V);
  const parts: Value[] = [];
  let prev: Value | null = null; // [B, 1, 1]: the previous chunk's results, reduced
  for (let t0 = 0; t0 < Tq; t0 += rows) {
    const t1 = Math.min(Tq, t0 + rows);
    const Tc = t1 - t0;
    const h = Tq > rows ? b.slice(xf, [t0], [t1], [1]) : xf;
    const tg = Tq > rows ? b.slice(targets, [t0], [t1], [1]) : targets;
    const logits = head(prev ? after(b, h, prev) : h); // [B, Tc, V]
    const picked = b.cast(b.gatherElements(logits, b.reshape(tg, [B, Tc, 1]), 2), 'F64'); // [B, Tc, 1]
    const max = b.max(logits, 2, true); // [B, Tc, 1]
    const e = b.exp(b.sub(logits, max));
    const partial = b.sum(b.reshape(e, [B, Tc, V / f, f]), 3, false); // [B, Tc, V/f]
    const lse = b.add(b.cast(max, 'F64'), b.log(b.sum(b.cast(partial, 'F64'), 2, true))); // [B, Tc, 1]
    const lp = b.sub(picked, lse); // [B, Tc, 1]: after both readers of the logits
    parts.push(b.reshape(lp, [B, Tc]));
    if (t1 < Tq) prev = b.max(b.cast(lp, 'F32'), 1, true);
  }
  return parts.length === 1 ? parts[0] : b.concat(parts, 1);
}
