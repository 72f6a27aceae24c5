// One Llama-family decoder block (Llama 2/3, Mistral, Qwen2 with q/k/v bias, Qwen3 with q/k norm,
// llama2.c's interleaved RoPE rows), the only definition every graph uses: the engine's inference
// graph (engine/llama.ts: KV cache, low-bit linears, activation fake-quant), the calibration graphs
// (engine/block-runner.ts, pipeline/calibrate/batch.ts: weights as graph inputs, statistics at the
// linear inputs), the training graph (train/graph.ts: parameters, STE quantizers) and the
// transformers.js ONNX export (engine/export-hf.ts: named batch and sequence dims, a growing KV
// cache, padding masks). What differs between them is passed in: where each weight comes from
// (BlockWeights), what happens at the input of each linear and to the keys/values (BlockHooks), and
// the positions (AttentionInputs: RoPE tables gathered for runtime positions or fixed ones, the
// mask, a fixed-capacity KV cache or past keys/values to append to). model/reference.ts stays the
// independent float64 oracle.
//
// Attention is decomposed into MatMul + Softmax (training needs a gradient for every op) and keeps
// GQA without copying K/V: queries are grouped as [B, Hk, G·T, D] against keys [B, Hk, Ck, D].
// RoPE is x ⊙ cos + (x · R) ⊙ sin with a constant signed permutation R (engine/rope.ts), which
// gives the textbook products exactly in both weight layouts.
// With named dims (B, T or Ck a name, GraphBuilder<Dim>) the grouped attention runs in 5-D,
// q [B, Hk, G, T, D] against keys [B, Hk, 1, Ck, D], which needs no product of a name (G·T); sizes
// keep the 4-D form above, so static graphs are as before.
// Legend: B = sequences, T = new tokens, C = cache capacity, Ck = key slots (C with a cache, else T),
// E = hidden, F = ffn, H = query heads, Hk = KV heads, G = H / Hk, D = head dim, P = RoPE table rows.

import { ShapeError } from '../core/errors.js';
import type { ModelConfig } from '../model/config.js';
import { makeTensor, type Dim, type GraphBuilder, type Value } from './ir.js';
import { applyRopeRotate, expandedRopeTables, rotationMatrix } from './rope.js';

/** The four linear-input sites of a block. */
export const SITES = ['attn_in', 'attn_out', 'ffn_in', 'ffn_down'] as const;
export type Site = (typeof SITES)[number];

/** Which site feeds each linear of a block (names relative to `model.layers.{i}.`). */
export const LINEAR_SITE: Record<string, Site> = {
  'self_attn.q_proj': 'attn_in',
  'self_attn.k_proj': 'attn_in',
  'self_attn.v_proj': 'attn_in',
  'self_attn.o_proj': 'attn_out',
  'mlp.gate_proj': 'ffn_in',
  'mlp.up_proj': 'ffn_in',
  'mlp.down_proj': 'ffn_down',
};

/** A block's weights: [name relative to `model.layers.{i}.`, shape], in canonical order. */
export function blockWeightShapes(c: ModelConfig): [string, number[]][] {
  const E = c.hiddenSize, D = c.headDim, H = c.nHeads, Hk = c.nKvHeads, F = c.intermediateSize;
  const out: [string, number[]][] = [
    ['input_layernorm.weight', [E]],
    ['self_attn.q_proj.weight', [H * D, E]],
    ['self_attn.k_proj.weight', [Hk * D, E]],
    ['self_attn.v_proj.weight', [Hk * D, E]],
    ['self_attn.o_proj.weight', [E, H * D]],
    ['post_attention_layernorm.weight', [E]],
    ['mlp.gate_proj.weight', [F, E]],
    ['mlp.up_proj.weight', [F, E]],
    ['mlp.down_proj.weight', [E, F]],
  ];
  if (c.attentionBias) out.push(['self_attn.q_proj.bias', [H * D]], ['self_attn.k_proj.bias', [Hk * D]], ['self_attn.v_proj.bias', [Hk * D]]);
  if (c.qkNorm) out.push(['self_attn.q_norm.weight', [D]], ['self_attn.k_norm.weight', [D]]);
  return out;
}

/** Where a block's weights come from (full tensor names, `model.layers.{i}.…`). */
export interface BlockWeights<N extends Dim = number> {
  /** a float tensor used as is (norm weights, biases) */
  tensor(name: string, shape: number[]): Value<N>;
  /** x [..., K] @ Wᵀ → [..., N] for the linear weight `name` ([N, K]): a float constant, a graph input or parameter, low-bit codes */
  linear(x: Value<N>, name: string, N: number): Value<N>;
}

/** What happens at the linear inputs and to the keys/values (default: nothing). */
export interface BlockHooks<N extends Dim = number> {
  /** the value every linear of `site` sees (fake quantization, statistics outputs) */
  site?(x: Value<N>, site: Site): Value<N>;
  /** keys (after RoPE) and values [B, T, Hk, D] before attention and the cache */
  kv?(x: Value<N>): Value<N>;
}

/** Names of a layer's KV-cache inputs and outputs. */
export function kvNames(i: number): { pastK: string; pastV: string; presentK: string; presentV: string } {
  return { pastK: `past_key.${i}`, pastV: `past_value.${i}`, presentK: `present_key.${i}`, presentV: `present_value.${i}` };
}

/** The position-dependent constants every block of a graph shares. */
export interface AttentionInputs<N extends Dim = number> {
  /** RoPE tables for the T positions, [T, D] (expandedRopeTables rows), or [B, T, D] per sequence */
  cos: Value<N>;
  sin: Value<N>;
  /** the rotation R [D, D] (rotationMatrix) */
  R: Value<N>;
  /** BOOL [T, Ck] (or broadcast to [B, 1, 1, T, Ck]): key slot j is hidden from query t */
  hidden: Value<N>;
  /**
   * F32 [T, Ck]: 0 where visible, −∞ where hidden. When given (static token counts), the scores are
   * (q/√D)·kᵀ + mask instead of Where(hidden, masked, q·kᵀ/√D): onnxruntime's Add broadcasts a
   * trailing [T, Ck] at memory speed, its Where and the scale on the [.., T, Ck] scores ran several
   * times slower per element (the batched calibration graph's profile, 6 December 2026)
   */
  maskAdd?: Value<N>;
  /** the score of a hidden slot (default −∞; a finite one keeps a fully hidden row finite) */
  masked?: number;
  /** a fixed-capacity cache: new entry t goes to slot positions[t] through the one-hot [C, T]; keep [C, 1] = 1 − Σ onehot */
  cache?: { capacity: number; onehot: Value<N>; keep: Value<N> };
  /** a growing cache: the key slots of `layer` from its new keys/values [B, Hk, T, D] (past ++ new, [B, Hk, Ck, D]) */
  append?: (layer: number, k: Value<N>, v: Value<N>) => { k: Value<N>; v: Value<N> };
  /**
   * attention computed in this many groups of KV heads (a divisor of Hk; default 1, all at once),
   * each group's queries waiting for the previous group's output, so that one group's scores
   * [B, Hk/groups, G·T, Ck] exist at a time (static token counts only)
   */
  headGroups?: number;
}

/** Attention inputs for the fixed positions 0 … T−1 (calibration windows, training sequences), no cache. */
export function fixedAttentionInputs(b: GraphBuilder, c: ModelConfig, T: number): AttentionInputs {
  const D = c.headDim;
  const tab = expandedRopeTables(c, T);
  const pos = Array.from({ length: T }, (_, t) => t);
  return {
    cos: b.constant({ dtype: 'F32', shape: [T, D], data: tab.cos }, 'rope.cos'),
    sin: b.constant({ dtype: 'F32', shape: [T, D], data: tab.sin }, 'rope.sin'),
    R: b.constant({ dtype: 'F32', shape: [D, D], data: rotationMatrix(D, c.ropeLayout) }, 'rope.rotate'),
    hidden: b.less(b.constant(makeTensor('I64', [T, 1], pos)), b.constant(makeTensor('I64', [1, T], pos))),
  };
}

/** RoPE inputs for runtime positions I64 [..., T] (table rows P): cos/sin [..., T, D] and R. */
export function ropeInputs<N extends Dim>(b: GraphBuilder<N>, c: ModelConfig, positions: Value<N>, P: number): Pick<AttentionInputs<N>, 'cos' | 'sin' | 'R'> {
  const D = c.headDim;
  const tab = expandedRopeTables(c, P);
  const cos = b.gather(b.constant({ dtype: 'F32', shape: [P, D], data: tab.cos }, 'rope.cos'), positions, 0);
  const sin = b.gather(b.constant({ dtype: 'F32', shape: [P, D], data: tab.sin }, 'rope.sin'), positions, 0);
  const R = b.constant({ dtype: 'F32', shape: [D, D], data: rotationMatrix(D, c.ropeLayout) }, 'rope.rotate');
  return { cos, sin, R };
}

/**
 * Attention inputs for runtime positions I64 [T] (table rows P), with a cache of `capacity` slots
 * (slot = position) or without one (keys are the T new tokens, masked by position).
 */
export function positionalAttentionInputs(b: GraphBuilder, c: ModelConfig, positions: Value, P: number, capacity?: number): AttentionInputs {
  const T = positions.shape[0];
  const { cos, sin, R } = ropeInputs(b, c, positions, P);
  // key slot j is hidden from query t when position(j) > position(t)
  const C = capacity;
  const keyPos = C ? b.constant(makeTensor('I64', [1, C], Array.from({ length: C }, (_, j) => j))) : b.reshape(positions, [1, T]);
  const hidden = b.less(b.reshape(positions, [T, 1]), keyPos);
  if (!C) return { cos, sin, R, hidden };
  const slots = b.constant(makeTensor('I64', [C, 1], Array.from({ length: C }, (_, j) => j)));
  const onehot = b.cast(b.equal(slots, b.reshape(positions, [1, T])), 'F32'); // [C, T]
  const keep = b.sub(1, b.sum(onehot, 1, true)); // [C, 1]
  return { cos, sin, R, hidden, cache: { capacity: C, onehot, keep } };
}

/**
 * Decoder block `layer` on x [B, T, E] → [B, T, E]: x + attn(rmsnorm(x)), then + mlp(rmsnorm(·)).
 * With a cache (B = 1) it reads inputs past_key.i / past_value.i [Hk, C, D] and writes outputs
 * present_key.i / present_value.i.
 */
export function decoderBlock<N extends Dim>(b: GraphBuilder<N>, c: ModelConfig, layer: number, x: Value<N>, w: BlockWeights<N>, at: AttentionInputs<N>, hooks: BlockHooks<N> = {}): Value<N> {
  return block(b, c, layer, x, w, at, hooks, true)!;
}

/**
 * The block up to the last site (ffn_down) without its output: for statistics-only calibration,
 * where the block output is not needed and the down projection's weight is not fed.
 */
export function decoderBlockSites<N extends Dim>(b: GraphBuilder<N>, c: ModelConfig, layer: number, x: Value<N>, w: BlockWeights<N>, at: AttentionInputs<N>, hooks: BlockHooks<N>): void {
  block(b, c, layer, x, w, at, hooks, false);
}

function block<N extends Dim>(b: GraphBuilder<N>, c: ModelConfig, layer: number, x: Value<N>, w: BlockWeights<N>, at: AttentionInputs<N>, hooks: BlockHooks<N>, output: boolean): Value<N> | null {
  const [B, T] = x.shape;
  const E = c.hiddenSize, H = c.nHeads, Hk = c.nKvHeads, G = H / Hk, D = c.headDim, F = c.intermediateSize;
  const p = `model.layers.${layer}.`;
  const site = (v: Value<N>, s: Site) => (hooks.site ? hooks.site(v, s) : v);
  const kvq = (v: Value<N>) => (hooks.kv ? hooks.kv(v) : v);
  const linear = (h: Value<N>, name: string, n: number, bias: boolean) => {
    const y = w.linear(h, `${p}${name}.weight`, n);
    return bias ? b.add(y, w.tensor(`${p}${name}.bias`, [n])) : y;
  };

  const h = site(b.rmsnorm(x, w.tensor(`${p}input_layernorm.weight`, [E]), c.rmsNormEps), 'attn_in');
  let q = b.reshape(linear(h, 'self_attn.q_proj', H * D, c.attentionBias), [B, T, H, D]);
  let k = b.reshape(linear(h, 'self_attn.k_proj', Hk * D, c.attentionBias), [B, T, Hk, D]);
  let v = b.reshape(linear(h, 'self_attn.v_proj', Hk * D, c.attentionBias), [B, T, Hk, D]);
  if (c.qkNorm) {
    q = b.rmsnorm(q, w.tensor(`${p}self_attn.q_norm.weight`, [D]), c.rmsNormEps);
    k = b.rmsnorm(k, w.tensor(`${p}self_attn.k_norm.weight`, [D]), c.rmsNormEps);
  }
  q = applyRopeRotate(b, q, at.cos, at.sin, at.R);
  k = applyRopeRotate(b, k, at.cos, at.sin, at.R);
  k = kvq(k);
  v = kvq(v);
  let kAll = b.transpose(k, [0, 2, 1, 3]); // [B, Hk, T, D]
  let vAll = b.transpose(v, [0, 2, 1, 3]);
  if (at.append) ({ k: kAll, v: vAll } = at.append(layer, kAll, vAll));
  else if (at.cache) {
    if (typeof T !== 'number') throw new ShapeError('shape_mismatch', 'a fixed-capacity cache needs a known token count', { found: String(T) });
    const { capacity: C, onehot, keep } = at.cache;
    const n = kvNames(layer);
    const pastK = b.input(n.pastK, 'F32', [Hk, C, D]);
    const pastV = b.input(n.pastV, 'F32', [Hk, C, D]);
    const presentK = b.add(b.mul(pastK, keep), b.matmul(onehot, b.reshape(kAll, [Hk, T, D]))); // [Hk, C, D]
    const presentV = b.add(b.mul(pastV, keep), b.matmul(onehot, b.reshape(vAll, [Hk, T, D])));
    b.output(n.presentK, presentK);
    b.output(n.presentV, presentV);
    kAll = b.reshape(presentK, [1, Hk, C, D]);
    vAll = b.reshape(presentV, [1, Hk, C, D]);
  }
  const Ck = kAll.shape[2];
  const masked = at.masked ?? -Infinity;
  let ctx: Value<N>;
  if (typeof T === 'number') {
    // queries of KV head j are heads j·G … j·G + G − 1
    const qg = b.reshape(b.transpose(q, [0, 2, 1, 3]), [B, Hk, G * T, D]);
    // qh [B, h, G·T, D] against keys/values [B, h, Ck, D] → [B, h, G·T, D]
    const attend = (qh: Value<N>, kh: Value<N>, vh: Value<N>, h: number): Value<N> => {
      let scores: Value<N>;
      if (at.maskAdd) scores = b.add(b.reshape(b.matmul(b.mul(qh, 1 / Math.sqrt(D)), b.transpose(kh, [0, 1, 3, 2])), [B, h, G, T, Ck]), at.maskAdd);
      else {
        scores = b.mul(b.matmul(qh, b.transpose(kh, [0, 1, 3, 2])), 1 / Math.sqrt(D)); // [B, h, G·T, Ck]
        scores = b.where(at.hidden, masked, b.reshape(scores, [B, h, G, T, Ck]));
      }
      return b.matmul(b.reshape(b.softmax(scores, -1), [B, h, G * T, Ck]), vh);
    };
    const groups = at.headGroups ?? 1;
    if (!Number.isInteger(groups) || groups < 1 || Hk % groups) throw new ShapeError('shape_mismatch', 'attention head groups must divide the KV heads', { field: 'headGroups', expected: `a divisor of ${Hk}`, found: groups });
    let o: Value<N>;
    if (groups === 1) o = attend(qg, kAll, vAll, Hk);
    else {
      // onnxruntime runs ready nodes in its own order: without the chain every group's scores could
      // be computed before any is reduced; with it, a group's queries are +0 after the previous
      // group's output (Less(·, −∞) is false for every value, NaN included)
      const h = Hk / groups;
      const outs: Value<N>[] = [];
      for (let g = 0; g < groups; g++) {
        const cut = (v: Value<N>) => b.slice(v, [g * h], [(g + 1) * h], [1]);
        let qh = cut(qg);
        if (outs.length) qh = b.add(qh, b.cast(b.less(b.max(outs[outs.length - 1], [0, 1, 2, 3], true), -Infinity), 'F32'));
        outs.push(attend(qh, cut(kAll), cut(vAll), h));
      }
      o = b.concat(outs, 1);
    }
    ctx = b.reshape(b.transpose(b.reshape(o, [B, H, T, D]), [0, 2, 1, 3]), [B, T, H * D]);
  } else {
    // the same products in 5-D: q [B, Hk, G, T, D] against keys [B, Hk, 1, Ck, D]
    const q5 = b.transpose(b.reshape(q, [B, T, Hk, G, D]), [0, 2, 3, 1, 4]);
    const kT5 = b.reshape(b.transpose(kAll, [0, 1, 3, 2]), [B, Hk, 1, D, Ck]);
    let scores = b.mul(b.matmul(q5, kT5), 1 / Math.sqrt(D)); // [B, Hk, G, T, Ck]
    scores = b.where(at.hidden, masked, scores);
    const ctx5 = b.matmul(b.softmax(scores, -1), b.reshape(vAll, [B, Hk, 1, Ck, D])); // [B, Hk, G, T, D]
    ctx = b.reshape(b.transpose(ctx5, [0, 3, 1, 2, 4]), [B, T, H * D]);
  }
  const x2 = b.add(x, linear(site(ctx, 'attn_out'), 'self_attn.o_proj', E, false));

  const h2 = site(b.rmsnorm(x2, w.tensor(`${p}post_attention_layernorm.weight`, [E]), c.rmsNormEps), 'ffn_in');
  const gate = linear(h2, 'mlp.gate_proj', F, false);
  const up = linear(h2, 'mlp.up_proj', F, false);
  const act = site(b.mul(b.silu(gate), up), 'ffn_down');
  return output ? b.add(x2, linear(act, 'mlp.down_proj', E, false)) : null;
}
