// Sequential calibration support: one Llama-family decoder block as an engine graph whose weights
// are graph INPUTS (so one onnxruntime session serves every layer), returning the block output and
// the input of every linear layer (the matmul inputs GPTQ/AWQ/imatrix need). The block is the
// engine's (engine/decoder-block.ts) at positions 0 … T−1, without a cache.
// Legend: T = tokens per window, E = hidden, F = ffn, H = query heads, Hk = KV heads, D = head dim,
// G = H / Hk. Sites: attn_in [T, E] (q/k/v input), attn_out [T, H·D] (o_proj input),
// ffn_in [T, E] (gate/up input), ffn_down [T, F] (down_proj input).

import type { ModelConfig } from '../model/config.js';
import { nameInLayer } from '../model/names.js';
import { GraphBuilder, type Graph, type Value } from './ir.js';
import { blockWeightShapes, decoderBlock, fixedAttentionInputs, SITES, type BlockWeights, type Site } from './decoder-block.js';
import { EngineSession } from './session.js';
import type { Tensor } from '../core/tensor.js';


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
    const w = new Map(blockWeightShapes(c).map(([n, s]) => [n, b.input(n, 'F32', s)]));
    // the weights are this graph's inputs, named relative to the layer (one session serves every layer)
    const local = (name: string) => w.get(nameInLayer(name))!;
    const weights: BlockWeights = { tensor: local, linear: (h, n) => b.matmul(h, b.transpose(local(n), [1, 0])) };
    const x = b.input('x', 'F32', [T, c.hiddenSize]);
    const site = (v: Value, s: Site) => {
      b.output(s, v);
      return v;
    };
    const y = decoderBlock(b, c, 0, b.reshape(x, [1, T, c.hiddenSize]), weights, fixedAttentionInputs(b, c, T), { site });
    b.output('y', y);
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
