// Sequential calibration support: one Llama-family decoder block as an engine graph whose weights
// are graph INPUTS (so one onnxruntime session serves every layer), returning the block output and
// the input of every linear layer (the matmul inputs GPTQ/AWQ/imatrix need). Built with the
// engine's IR builder and RoPE helpers; the math is the same as the engine's full graph
// (src/engine/llama.ts) for one layer, full-sequence (no KV cache).
// Legend: T = tokens per window, E = hidden, F = ffn, H = query heads, Hk = KV heads, D = head dim,
// G = H / Hk. Sites: attn_in [T, E] (q/k/v input), attn_out [T, H·D] (o_proj input),
// ffn_in [T, E] (gate/up input), ffn_down [T, F] (down_proj input).

import type { ModelConfig } from '../model/config.js';
import { GraphBuilder, makeTensor, type Graph, type Value } from './ir.js';
import { ropeTables } from './rope.js';
import { EngineSession } from './session.js';
import type { Tensor } from '../core/tensor.js';

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

/** Per-layer weights fed to the block graph: [name relative to the layer, shape]. */
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

/**
 * RoPE on x [T, Hx, D] with cos/sin [T, D/2], textbook form (kept here rather than borrowed from
 * the engine so this graph does not follow the engine's internal graph rewrites): 'interleaved'
 * rotates pairs (2i, 2i+1), 'half' rotates (i, i + D/2).
 */
export function rope(b: GraphBuilder, x: Value, cos: Value, sin: Value, layout: 'interleaved' | 'half'): Value {
  const [T, Hx, D] = x.shape;
  const Dr = D / 2;
  if (layout === 'interleaved') {
    const c = b.reshape(cos, [T, 1, Dr, 1]);
    const s = b.reshape(sin, [T, 1, Dr, 1]);
    const xp = b.reshape(x, [T, Hx, Dr, 2]);
    const x0 = b.slice(xp, [0], [1], [3]);
    const x1 = b.slice(xp, [1], [2], [3]);
    return b.reshape(b.concat([b.sub(b.mul(x0, c), b.mul(x1, s)), b.add(b.mul(x0, s), b.mul(x1, c))], 3), [T, Hx, D]);
  }
  const c = b.reshape(cos, [T, 1, Dr]);
  const s = b.reshape(sin, [T, 1, Dr]);
  const x0 = b.slice(x, [0], [Dr], [2]);
  const x1 = b.slice(x, [Dr], [D], [2]);
  return b.concat([b.sub(b.mul(x0, c), b.mul(x1, s)), b.add(b.mul(x1, c), b.mul(x0, s))], 2);
}

/** A session computing one block for windows of T tokens at positions 0..T−1. */
export class BlockRunner {
  private constructor(
    private readonly s: EngineSession,
    readonly config: ModelConfig,
    readonly tokens: number,
  ) {}

  static async create(c: ModelConfig, T: number): Promise<BlockRunner> {
    // optimisation off: onnxruntime's optimiser (even 'basic') rejects this graph, whose intermediates are
    // also outputs ("input 'vN' is not ... output of a previous node"); measured with onnxruntime-node 1.30
    return new BlockRunner(await EngineSession.fromGraph(BlockRunner.graph(c, T), { optimization: 'disabled' }), c, T);
  }

  /** The block graph: inputs x [T, E] and the layer's weights; outputs y and the four sites. */
  static graph(c: ModelConfig, T: number): Graph {
    const b = new GraphBuilder(`block-T${T}`);
    const E = c.hiddenSize, D = c.headDim, H = c.nHeads, Hk = c.nKvHeads, G = H / Hk;
    const w = new Map(blockWeightShapes(c).map(([n, s]) => [n, b.input(n, 'F32', s)]));
    const lin = (x: ReturnType<typeof b.input>, n: string, bias?: string) => {
      const y = b.matmul(x, b.transpose(w.get(`${n}.weight`)!, [1, 0]));
      return bias ? b.add(y, w.get(bias)!) : y;
    };
    const x = b.input('x', 'F32', [T, E]);
    const tab = ropeTables(c, T);
    const cos = b.constant({ dtype: 'F32', shape: [T, D / 2], data: tab.cos }, 'rope.cos');
    const sin = b.constant({ dtype: 'F32', shape: [T, D / 2], data: tab.sin }, 'rope.sin');
    const pos = Array.from({ length: T }, (_, t) => t);
    const hidden = b.less(b.constant(makeTensor('I64', [T, 1], pos)), b.constant(makeTensor('I64', [1, T], pos)));

    const h = b.rmsnorm(x, w.get('input_layernorm.weight')!, c.rmsNormEps);
    b.output('attn_in', h);
    const bias = (n: string) => (c.attentionBias ? `self_attn.${n}_proj.bias` : undefined);
    let q = b.reshape(lin(h, 'self_attn.q_proj', bias('q')), [T, H, D]);
    let k = b.reshape(lin(h, 'self_attn.k_proj', bias('k')), [T, Hk, D]);
    const v = b.reshape(lin(h, 'self_attn.v_proj', bias('v')), [T, Hk, D]);
    if (c.qkNorm) {
      q = b.rmsnorm(q, w.get('self_attn.q_norm.weight')!, c.rmsNormEps);
      k = b.rmsnorm(k, w.get('self_attn.k_norm.weight')!, c.rmsNormEps);
    }
    q = rope(b, q, cos, sin, c.ropeLayout);
    k = rope(b, k, cos, sin, c.ropeLayout);
    const kAll = b.transpose(k, [1, 0, 2]); // [Hk, T, D]
    const vAll = b.transpose(v, [1, 0, 2]);
    const qg = b.reshape(b.transpose(q, [1, 0, 2]), [Hk, G * T, D]);
    let scores = b.mul(b.matmul(qg, b.transpose(kAll, [0, 2, 1])), 1 / Math.sqrt(D)); // [Hk, G·T, T]
    scores = b.where(hidden, -Infinity, b.reshape(scores, [Hk, G, T, T]));
    const probs = b.reshape(b.softmax(scores, -1), [Hk, G * T, T]);
    const ctx = b.reshape(b.transpose(b.reshape(b.matmul(probs, vAll), [H, T, D]), [1, 0, 2]), [T, H * D]);
    b.output('attn_out', ctx);
    const x2 = b.add(x, lin(ctx, 'self_attn.o_proj'));
    const h2 = b.rmsnorm(x2, w.get('post_attention_layernorm.weight')!, c.rmsNormEps);
    b.output('ffn_in', h2);
    const act = b.mul(b.silu(lin(h2, 'mlp.gate_proj')), lin(h2, 'mlp.up_proj'));
    b.output('ffn_down', act);
    b.output('y', b.add(x2, lin(act, 'mlp.down_proj')));
    return b.build();
  }


  /**
   * Runs layer `layer` (weights from `get`, canonical names) on x [T, E]; returns the block output
   * and, when `capture`, the four site inputs.
   */
  async run(layer: number, get: (name: string) => Float32Array, x: Float32Array, capture: boolean): Promise<{ y: Float32Array; sites: Partial<Record<Site, Float32Array>> }> {
    const feeds: Record<string, Tensor> = { x: { dtype: 'F32', shape: [this.tokens, this.config.hiddenSize], data: x } };
    for (const [n, shape] of blockWeightShapes(this.config)) feeds[n] = { dtype: 'F32', shape, data: get(`model.layers.${layer}.${n}`) };
    const outs = capture ? ['y', ...SITES] : ['y'];
    const r = await this.s.run(feeds, outs);
    const sites: Partial<Record<Site, Float32Array>> = {};
    if (capture) for (const s of SITES) sites[s] = r[s].data as Float32Array;
    return { y: r.y.data as Float32Array, sites };
  }

  async close(): Promise<void> {
    await this.s.release();
  }
}
