// Calibration forward in batches: one decoder block (engine/decoder-block.ts, the engine's own) over
// several windows per onnxruntime run, with the statistics computed inside the graph, so that only small tensors leave it. Per linear-input
// site the graph returns Σ x², Σ |x|, max |x| ([K] each) and adds XᵀX into the site's Gram matrix
// held as upper panels (numerics/panels.ts): each panel's accumulator is fed in and written back in
// place (a preallocated output aliasing its input), one MatMul per panel, float32. The per-window
// BlockRunner (engine/block-runner.ts) is the reference this is tested against.
// Modes: statistics only (the block output is not needed, so down_proj is not applied), forward
// only (the block output y, for the next block's inputs), or both (float models: one pass).
// Legend: W = windows, B = windows per run, T = tokens per window, E = hidden, F = ffn, H = query
// heads, Hk = KV heads, G = H / Hk, D = head dim, K = a site's width, nb = Gram panel width.
// The windows' hidden states live in one array [W, T, E] (`WindowStates`); a run reads B of them
// without a copy and its outputs are copied back in place.

import { ConfigError } from '../../core/errors.js';
import { checkAborted } from '../../core/progress.js';
import type { Tensor } from '../../core/tensor.js';
import type { ModelConfig } from '../../model/config.js';
import { nameInLayer } from '../../model/names.js';
import { GraphBuilder, type Graph, type Value } from '../../engine/ir.js';
import { EngineSession, type OrtRuntime } from '../../engine/session.js';
import { UpperPanels } from '../../numerics/panels.js';
import { ActivationStats } from '../../algorithms/stats.js';
import { blockWeightShapes, decoderBlock, decoderBlockSites, fixedAttentionInputs, SITES, type AttentionInputs, type BlockWeights, type Site } from '../../engine/decoder-block.js';

/** The hidden states of W windows of T tokens, [W, T, E] row-major. */
export interface WindowStates {
  windows: number;
  tokens: number;
  hidden: number;
  data: Float32Array;
}

/** Layer 0's inputs: the embedding rows ([V, E]) of each window's tokens. */
export function embedWindowStates(emb: Float32Array, hidden: number, windows: number[][]): WindowStates {
  const T = windows[0]?.length ?? 0;
  if (windows.some((w) => w.length !== T)) throw new ConfigError('bad_option', 'calibration windows must all have the same length', { field: 'windows', expected: T });
  const data = new Float32Array(windows.length * T * hidden);
  windows.forEach((w, i) => w.forEach((t, j) => data.set(emb.subarray(t * hidden, (t + 1) * hidden), (i * T + j) * hidden)));
  return { windows: windows.length, tokens: T, hidden, data };
}

/**
 * Gram panel width of the batched graph. Each panel's operands are row ranges of Xᵀ copied by Slice
 * (Σ rows × tokens ≈ K²/(2·nb) × tokens floats per run) into fresh pages (no arena; the CLI's
 * allocator maps every block over 64 KiB): 512 wide instead of 256 took the statistics pass from
 * 1.37–1.39 to 1.13–1.18 CPU s per 512-token window at Llama-3.2-1B's widths under the CLI's
 * allocator settings (shared machine, 6 December 2026); 1,024 was no better than 512. The GPTQ
 * factor runs at the Gram's width (pipeline/quantize/layer.ts).
 */
export const GRAPH_GRAM_PANEL = 512;

/** Site statistics of one layer as the batched graph fills them (float32 Gram panels of width nb). */
export type SiteStats = Record<Site, ActivationStats>;

export function siteWidths(c: ModelConfig): Record<Site, number> {
  return { attn_in: c.hiddenSize, attn_out: c.nHeads * c.headDim, ffn_in: c.hiddenSize, ffn_down: c.intermediateSize };
}

/**
 * Empty statistics for the four sites; with `gram`, float32 panels the graph accumulates into.
 * `reuse`: earlier statistics of the same widths whose Gram panels are zeroed and taken over, so
 * that a layer loop holds one set of panels instead of allocating ~160 MiB per layer (Llama-3.2-1B)
 * and leaving the last layer's to the garbage collector.
 */
export function newGraphSiteStats(c: ModelConfig, gram: boolean, nb = GRAPH_GRAM_PANEL, reuse?: SiteStats): SiteStats {
  const K = siteWidths(c);
  const panels = (s: Site): UpperPanels => {
    const old = reuse?.[s].gram;
    if (old && old.k === K[s] && old.nb === nb && old.data instanceof Float32Array) {
      old.data.fill(0);
      return old;
    }
    return UpperPanels.zeros(K[s], nb, 'F32');
  };
  return Object.fromEntries(SITES.map((s) => [s, new ActivationStats(K[s], gram ? panels(s) : false)])) as SiteStats;
}

export type BlockMode = 'stats' | 'forward' | 'both';

export interface BatchGraphOptions {
  /** B, windows per run */
  batch: number;
  mode: BlockMode;
  /** accumulate Gram panels (statistics modes) */
  gram: boolean;
  /** nb */
  panelWidth: number;
  /** largest attention-score tensor of one head group (default MAX_SCORES_BYTES) */
  maxScoresBytes?: number;
}

function linearsUsed(c: ModelConfig, mode: BlockMode): [string, number[]][] {
  return blockWeightShapes(c).filter(([n]) => mode !== 'stats' || n !== 'mlp.down_proj.weight');
}

/**
 * The batched block graph. Inputs: x [B·T, E], the layer's weights, and per site and panel the
 * Gram accumulator `gram.{site}.{p}` [rows_p, w_p]; outputs: y [B·T, E] and/or `{site}.sumSq`,
 * `{site}.sumAbs`, `{site}.maxAbs` [K] and `gram.{site}.{p}.out` (accumulator + this batch).
 */
export function batchBlockGraph(c: ModelConfig, T: number, o: BatchGraphOptions): Graph {
  const { batch: B, mode } = o;
  const b = new GraphBuilder(`block-B${B}-T${T}-${mode}`);
  const E = c.hiddenSize, BT = B * T;
  const w = new Map(linearsUsed(c, mode).map(([n, s]) => [n, b.input(n, 'F32', s)]));
  // the weights are this graph's inputs, named relative to the layer (one session serves every layer)
  const local = (name: string) => w.get(nameInLayer(name))!;
  // x [B, T, K]·Wᵀ as one 2-D Gemm with transB: MatMul(x, Transpose(W)) copied every weight of the
  // layer once per run (the graph is not optimised), 21 % of a forward run's time (profiled)
  const weights: BlockWeights = { tensor: local, linear: (h, n, N) => b.reshape(b.gemm(b.reshape(h, [BT, h.shape[2]]), local(n), null, { transB: true }), [B, T, N]) };
  const x = b.input('x', 'F32', [BT, E]);

  const stats = mode !== 'forward';
  const site = (x3: Value, name: Site): Value => {
    if (!stats) return x3;
    const K = x3.shape[2];
    const v = b.reshape(x3, [BT, K]);
    b.output(`${name}.sumSq`, b.sum(b.mul(v, v), [0], false));
    const a = b.abs(v);
    b.output(`${name}.sumAbs`, b.sum(a, [0], false));
    b.output(`${name}.maxAbs`, b.max(a, [0], false));
    if (!o.gram) return x3;
    const vt = b.transpose(v, [1, 0]); // [K, B·T]
    const nb = o.panelWidth;
    for (let p = 0, c0 = 0; c0 < K; p++, c0 += nb) {
      const wp = Math.min(nb, K - c0), rows = c0 + wp;
      const acc = b.input(`gram.${name}.${p}`, 'F32', [rows, wp]);
      // acc + X[:, :rows]ᵀ·X[:, c0:rows] in one Gemm (β = 1, transB): both operands are row ranges of
      // Xᵀ (contiguous copies, not strided column slices of X); the output aliases acc, read before written
      // (the last panel's rows are all of Xᵀ: no Slice, which would copy it whole)
      const above = rows === K ? vt : b.slice(vt, [0], [rows], [0]);
      b.output(`gram.${name}.${p}.out`, b.gemm(above, b.slice(vt, [c0], [rows], [0]), acc, { transB: true, beta: 1 })); // [rows, w_p]
    }
    return x3;
  };

  // every window at positions 0 … T−1: the blocks' [B, T, …] layout keeps windows apart
  const x3 = b.reshape(x, [B, T, E]);
  const at = calibrationAttentionInputs(b, c, T, B, o.maxScoresBytes);
  if (mode === 'stats') decoderBlockSites(b, c, 0, x3, weights, at, { site });
  else b.output('y', b.reshape(decoderBlock(b, c, 0, x3, weights, at, { site }), [BT, E]));
  return b.build();
}

/** Largest attention-score tensor [B, h, G·T, T] the calibration graph makes at once (bytes of float32). */
export const MAX_SCORES_BYTES = 16 << 20;

/**
 * KV-head groups whose attention runs one after another: the fewest that keep each group's
 * scores (and the masked copy and the softmax made from them) within MAX_SCORES_BYTES. The graph
 * runs without onnxruntime's arena, so every intermediate is a malloc; glibc maps each one above its
 * mmap threshold (at most 32 MiB) afresh and its pages fault in again on every run. At
 * Llama-3.2-1B's widths the scores of one 512-token window are 33.5 MB (8 KV heads × 4 queries
 * each × 512 × 512): as two groups of 16.8 MB, the statistics pass without Gram matrices went from
 * 0.51 to 0.30 CPU s per window and from ≈ 17,000 to a few hundred page faults (7 December 2026,
 * shared machine; docs/gptq-performance.md).
 */
export function attentionHeadGroups(c: ModelConfig, B: number, T: number, maxBytes = MAX_SCORES_BYTES): number {
  const Hk = c.nKvHeads, G = c.nHeads / c.nKvHeads;
  for (let g = 1; g <= Hk; g++) if (Hk % g === 0 && B * (Hk / g) * G * T * T * 4 <= maxBytes) return g;
  return Hk;
}

/** fixedAttentionInputs plus the additive causal mask [T, T] (0 on and below the diagonal, −∞ above). */
function calibrationAttentionInputs(b: GraphBuilder, c: ModelConfig, T: number, B: number, maxScoresBytes?: number): AttentionInputs {
  const mask = new Float32Array(T * T);
  for (let t = 0; t < T; t++) mask.fill(-Infinity, t * T + t + 1, (t + 1) * T);
  return { ...fixedAttentionInputs(b, c, T), maskAdd: b.constant({ dtype: 'F32', shape: [T, T], data: mask }, 'attention.mask'), headGroups: attentionHeadGroups(c, B, T, maxScoresBytes) };
}

export interface CalibrationRunnerOptions {
  /** B; default: as many windows as fit in `tokensPerRun` tokens */
  windowsPerRun?: number;
  /**
   * tokens per run when windowsPerRun is not given (default 512: the GEMMs already run at full speed
   * (measured: the same CPU time per window as 1,024), and the run's intermediates, which dominate the
   * quantizer's peak memory beyond the block and the windows, stay ~150 MB at Llama-3.2-1B's widths)
   */
  tokensPerRun?: number;
  /** the onnxruntime that runs the block graph (default 'native'; engine/session.ts) */
  runtime?: OrtRuntime;
  /** Gram panel width (default GRAPH_GRAM_PANEL) */
  panelWidth?: number;
}

export interface LayerRunOptions {
  /** statistics to add to (float32 Gram panels of the runner's width, when they have a Gram matrix) */
  stats?: SiteStats | null;
  /** replace the windows' states by the block's outputs */
  forward: boolean;
  signal?: AbortSignal;
  /** after each run: (windows done, windows in all) */
  onBatch?: (done: number, total: number) => void;
}

/** Sessions of the batched block graph for one model and window length, opened as needed. */
export class CalibrationRunner {
  private readonly sessions = new Map<string, Promise<EngineSession>>();
  readonly windowsPerRun: number;
  readonly panelWidth: number;
  readonly runtime: OrtRuntime;

  constructor(
    readonly config: ModelConfig,
    readonly tokens: number,
    o: CalibrationRunnerOptions = {},
  ) {
    this.windowsPerRun = Math.max(1, o.windowsPerRun ?? Math.floor((o.tokensPerRun ?? 512) / tokens));
    this.panelWidth = o.panelWidth ?? GRAPH_GRAM_PANEL;
    this.runtime = o.runtime ?? 'native';
  }

  private session(B: number, mode: BlockMode, gram: boolean): Promise<EngineSession> {
    const key = `${B}:${mode}:${gram}`;
    let s = this.sessions.get(key);
    if (!s) {
      // optimisation off: onnxruntime's optimiser rejects graphs whose intermediates are also outputs
      // (see engine/block-runner.ts); no memory arena, so a run's intermediates are returned after it,
      // and no memory pattern, which would allocate every intermediate of the plan in one block that
      // stays (each freed when its last reader is done instead)
      s = EngineSession.fromGraph(batchBlockGraph(this.config, this.tokens, { batch: B, mode, gram, panelWidth: this.panelWidth }), { optimization: 'disabled', memoryArena: false, memoryPattern: false, runtime: this.runtime });
      this.sessions.set(key, s);
    }
    return s;
  }

  /** Runs layer `layer` (weights from `get`, canonical names) over every window of `xs`. */
  async run(layer: number, get: (name: string) => Float32Array, xs: WindowStates, o: LayerRunOptions): Promise<void> {
    const c = this.config, T = this.tokens, E = c.hiddenSize;
    if (xs.tokens !== T || xs.hidden !== E) throw new ConfigError('internal', 'window states do not match the runner', { expected: [T, E], found: [xs.tokens, xs.hidden] });
    const stats = o.stats ?? null;
    const mode: BlockMode = stats ? (o.forward ? 'both' : 'stats') : 'forward';
    if (mode === 'forward' && !o.forward) return;
    const gram = !!stats && SITES.every((s) => stats[s].gram !== null);
    if (gram) {
      for (const s of SITES) {
        const g = stats![s].gram!;
        if (!(g.data instanceof Float32Array) || g.nb !== this.panelWidth) throw new ConfigError('internal', 'site statistics need float32 Gram panels of the runner width', { field: s, expected: this.panelWidth, found: g.nb });
      }
    }
    const weights = linearsUsed(c, mode).map(([n, shape]) => [n, { dtype: 'F32' as const, shape, data: get(`model.layers.${layer}.${n}`) }] as const);
    const y = o.forward ? new Float32Array(this.windowsPerRun * T * E) : null;
    for (let w0 = 0; w0 < xs.windows; w0 += this.windowsPerRun) {
      checkAborted(o.signal);
      const B = Math.min(this.windowsPerRun, xs.windows - w0);
      const s = await this.session(B, mode, gram);
      const feeds: Record<string, Tensor> = { x: { dtype: 'F32', shape: [B * T, E], data: xs.data.subarray(w0 * T * E, (w0 + B) * T * E) } };
      for (const [n, t] of weights) feeds[n] = t;
      const into: Record<string, Tensor> = {};
      const outs: string[] = [];
      if (y) {
        outs.push('y');
        into.y = { dtype: 'F32', shape: [B * T, E], data: y.subarray(0, B * T * E) };
      }
      if (stats) {
        for (const site of SITES) {
          outs.push(`${site}.sumSq`, `${site}.sumAbs`, `${site}.maxAbs`);
          const g = stats[site].gram;
          if (!gram || !g) continue;
          for (let p = 0; p < g.count; p++) {
            const acc: Tensor = { dtype: 'F32', shape: [g.rows(p), g.width(p)], data: g.panel(p) as Float32Array };
            feeds[`gram.${site}.${p}`] = acc;
            into[`gram.${site}.${p}.out`] = acc;
            outs.push(`gram.${site}.${p}.out`);
          }
        }
      }
      const r = await s.run(feeds, outs, into);
      if (stats) {
        for (const site of SITES) stats[site].mergeSums(r[`${site}.sumSq`].data as Float32Array, r[`${site}.sumAbs`].data as Float32Array, r[`${site}.maxAbs`].data as Float32Array, B * T);
      }
      if (y) xs.data.set(y.subarray(0, B * T * E), w0 * T * E);
      o.onBatch?.(w0 + B, xs.windows);
    }
  }

  async close(): Promise<void> {
    for (const s of this.sessions.values()) await (await s).release();
    this.sessions.clear();
  }
}
