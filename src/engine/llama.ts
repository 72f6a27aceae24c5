// Llama-family decoder graphs (Llama 2/3, Mistral, Qwen2 with q/k/v bias, Qwen3 with q/k norm,
// llama2.c checkpoints) built from IR primitives. Two shapes of graph:
//   full:   tokens [B, T], positions [T] → logits [B, T, V] (or [B, 1, V] with lastOnly); causal mask from positions
//   cached: (B = 1) the same plus past_key.i / past_value.i [Hk, C, D] → present_key.i / present_value.i, a
//           fixed-capacity KV cache: the new keys are written into slots `positions` (slot = position)
//           with a one-hot matmul, so every shape stays static and one session serves every step.
// Attention keeps GQA without copying K/V: queries are grouped as [Hk, G·T, D] against [Hk, C, D].
// Legend: B = sequences per run, T = new tokens, C = cache capacity, V = vocab, E = hidden, F = ffn, H = query heads,
// Hk = KV heads, G = H / Hk, D = head dim, Dr = D / 2.

import { ConfigError } from '../core/errors.js';
import { makeTensor, GraphBuilder, type Graph, type Value } from './ir.js';
import { nbitsLinearGraph, nbitsValues, type NBitsConstants, type NBitsValues } from './nbits-graph.js';
import { partedTargetLogProbs, type HeadPart } from './head-score.js';
import { fakeQuantActivation, type AbsmaxActSpec, type ActQuantSpec } from './actquant.js';
import type { HostModel } from './host.js';
import { lowBitLinear } from './lowbit.js';
import { applyRopeRotate, expandedRopeTables, rotationMatrix } from './rope.js';

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
  /** add outputs `amax.<site>` (max |x| at each linear input) for calibrating static scales */
  statistics?: boolean;
  /** score instead of returning logits: input `targets` I64 [B, T], output `logprobs` F64 [B, T] =
   * log softmax(logits[b, t])[targets[b, t]], the head evaluated in row chunks so that at most
   * ~64 MB of logits exist at a time */
  targets?: boolean;
}

export type ActivationPrecision = ActQuantSpec | ((site: string) => ActQuantSpec | AbsmaxActSpec | null);

export function kvNames(i: number): { pastK: string; pastV: string; presentK: string; presentV: string } {
  return { pastK: `past_key.${i}`, pastV: `past_value.${i}`, presentK: `present_key.${i}`, presentV: `present_value.${i}` };
}

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

  /** x [T, K] @ Wᵀ (+ bias), in float or in real low bit */
  linear(x: Value, name: string, N: number, bias?: string): Value {
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
    if (bias) y = b.add(y, this.param(bias, [N]));
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
  const H = c.nHeads;
  const Hk = c.nKvHeads;
  const G = H / Hk;
  const D = c.headDim;
  const V = c.vocabSize;
  const F = c.intermediateSize;
  const P = o.maxPositions ?? C ?? T;
  const L = new Builder(m, o);
  const b = L.b;

  // the embedding rows come from the host when it reads the table by rows (native weights)
  const hostEmbeds = m.embedRows !== undefined;
  const positions = b.input('positions', 'I64', [T]);
  const embed = hostEmbeds ? null : L.param('model.embed_tokens.weight', [V, E]);
  let x = embed ? b.gather(embed, b.input('tokens', 'I64', [B, T]), 0) : b.input('embeds', 'F32', [B, T, E]); // [B, T, E]

  const tab = expandedRopeTables(c, P);
  const cos = b.gather(b.constant({ dtype: 'F32', shape: [P, D], data: tab.cos }, 'rope.cos'), positions, 0); // [T, D]
  const sin = b.gather(b.constant({ dtype: 'F32', shape: [P, D], data: tab.sin }, 'rope.sin'), positions, 0);
  const R = b.constant({ dtype: 'F32', shape: [D, D], data: rotationMatrix(D, c.ropeLayout) }, 'rope.rotate');

  // mask [T, Ck]: key slot j is hidden from query t when position(j) > position(t)
  const keyPos = C ? b.constant(makeTensor('I64', [1, C], Array.from({ length: C }, (_, j) => j))) : b.reshape(positions, [1, T]);
  const hidden = b.less(b.reshape(positions, [T, 1]), keyPos);
  // one-hot [C, T] writing new entry t into slot positions[t]
  let onehot: Value | null = null;
  let keep: Value | null = null;
  if (C) {
    const slots = b.constant(makeTensor('I64', [C, 1], Array.from({ length: C }, (_, j) => j)));
    onehot = b.cast(b.equal(slots, b.reshape(positions, [1, T])), 'F32');
    keep = b.sub(1, b.sum(onehot, 1, true)); // [C, 1]
  }
  const invSqrtD = 1 / Math.sqrt(D);

  for (let i = 0; i < c.nLayers; i++) {
    const p = `model.layers.${i}.`;
    const h = L.actIn(b.rmsnorm(x, L.param(`${p}input_layernorm.weight`, [E]), c.rmsNormEps), `${i}.attn_in`);
    const bias = (n: string) => (c.attentionBias ? `${p}self_attn.${n}_proj.bias` : undefined);
    let q = b.reshape(L.linear(h, `${p}self_attn.q_proj.weight`, H * D, bias('q')), [B, T, H, D]);
    let k = b.reshape(L.linear(h, `${p}self_attn.k_proj.weight`, Hk * D, bias('k')), [B, T, Hk, D]);
    let v = b.reshape(L.linear(h, `${p}self_attn.v_proj.weight`, Hk * D, bias('v')), [B, T, Hk, D]);
    if (c.qkNorm) {
      q = b.rmsnorm(q, L.param(`${p}self_attn.q_norm.weight`, [D]), c.rmsNormEps);
      k = b.rmsnorm(k, L.param(`${p}self_attn.k_norm.weight`, [D]), c.rmsNormEps);
    }
    q = applyRopeRotate(b, q, cos, sin, R);
    k = applyRopeRotate(b, k, cos, sin, R);
    k = fakeQuantActivation(b, k, o.kvCache ?? null);
    v = fakeQuantActivation(b, v, o.kvCache ?? null);
    let kAll = b.transpose(k, [0, 2, 1, 3]); // [B, Hk, T, D]
    let vAll = b.transpose(v, [0, 2, 1, 3]);
    if (C) {
      const n = kvNames(i);
      const pastK = b.input(n.pastK, 'F32', [Hk, C, D]);
      const pastV = b.input(n.pastV, 'F32', [Hk, C, D]);
      const presentK = b.add(b.mul(pastK, keep!), b.matmul(onehot!, b.reshape(kAll, [Hk, T, D]))); // [Hk, C, D]
      const presentV = b.add(b.mul(pastV, keep!), b.matmul(onehot!, b.reshape(vAll, [Hk, T, D])));
      b.output(n.presentK, presentK);
      b.output(n.presentV, presentV);
      kAll = b.reshape(presentK, [1, Hk, C, D]);
      vAll = b.reshape(presentV, [1, Hk, C, D]);
    }
    const Ck = kAll.shape[2];
    // queries of KV head j are heads j·G … j·G + G − 1
    const qg = b.reshape(b.transpose(q, [0, 2, 1, 3]), [B, Hk, G * T, D]);
    let scores = b.mul(b.matmul(qg, b.transpose(kAll, [0, 1, 3, 2])), invSqrtD); // [B, Hk, G·T, Ck]
    scores = b.where(hidden, -Infinity, b.reshape(scores, [B, Hk, G, T, Ck]));
    const probs = b.reshape(b.softmax(scores, -1), [B, Hk, G * T, Ck]);
    const ctx = b.reshape(b.transpose(b.reshape(b.matmul(probs, vAll), [B, H, T, D]), [0, 2, 1, 3]), [B, T, H * D]);
    const attn = L.linear(L.actIn(ctx, `${i}.attn_out`), `${p}self_attn.o_proj.weight`, E);
    x = b.add(x, attn);

    const h2 = L.actIn(b.rmsnorm(x, L.param(`${p}post_attention_layernorm.weight`, [E]), c.rmsNormEps), `${i}.ffn_in`);
    const gate = L.linear(h2, `${p}mlp.gate_proj.weight`, F);
    const up = L.linear(h2, `${p}mlp.up_proj.weight`, F);
    const act = L.actIn(b.mul(b.silu(gate), up), `${i}.ffn_down`);
    x = b.add(x, L.linear(act, `${p}mlp.down_proj.weight`, E));
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

/** logits rows per head chunk: about 4M floats (16 MB) of logits at a time */
export function headChunkRows(batch: number, vocab: number): number {
  return Math.max(1, Math.floor((1 << 22) / (batch * vocab)));
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
 * partial sums), in an order that lets onnxruntime reuse the logits buffer for the exp.
 */
function targetLogProbs(b: GraphBuilder, xf: Value, head: (h: Value) => Value, targets: Value, V: number): Value {
  const [B, Tq] = xf.shape;
  const rows = headChunkRows(B, V);
  const f = innerSumLength(V);
  const parts: Value[] = [];
  for (let t0 = 0; t0 < Tq; t0 += rows) {
    const t1 = Math.min(Tq, t0 + rows);
    const Tc = t1 - t0;
    const h = Tq > rows ? b.slice(xf, [t0], [t1], [1]) : xf;
    const tg = Tq > rows ? b.slice(targets, [t0], [t1], [1]) : targets;
    const logits = head(h); // [B, Tc, V]
    const picked = b.cast(b.gatherElements(logits, b.reshape(tg, [B, Tc, 1]), 2), 'F64'); // [B, Tc, 1]
    const max = b.max(logits, 2, true); // [B, Tc, 1]
    const e = b.exp(b.sub(logits, max));
    const partial = b.sum(b.reshape(e, [B, Tc, V / f, f]), 3, false); // [B, Tc, V/f]
    const lse = b.add(b.cast(max, 'F64'), b.log(b.sum(b.cast(partial, 'F64'), 2, true))); // [B, Tc, 1]
    parts.push(b.reshape(b.sub(picked, lse), [B, Tc]));
  }
  return parts.length === 1 ? parts[0] : b.concat(parts, 1);
}
