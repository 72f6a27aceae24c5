// LlamaEngine: a prepared model plus the onnxruntime sessions built for it, one per graph shape
// (cached). `forward` evaluates a whole sequence at once; `decoder` keeps a fixed-capacity KV cache
// and accepts any number of new tokens per step, giving the same logits as `forward` on the prefix.
// Legend: T = tokens, C = cache capacity, V = vocab, Hk = KV heads, D = head dim.

import { ConfigError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import type { ModelWeights } from '../model/weights.js';
import { intLimits, type ActQuantSpec } from './actquant.js';
import { intParams } from '../quant/index.js';
import { prepareHostModel, type HostModel, type PrepareOptions } from './host.js';
import { prepareNativeHost } from './native-host.js';
import { buildLlamaGraph, kvNames, type ActivationPrecision, type LlamaGraphOptions } from './llama.js';
import { EngineSession, type SessionOptions } from './session.js';

export interface EngineOptions extends PrepareOptions {
  activations?: ActivationPrecision | null;
  kvCache?: ActQuantSpec | null;
  session?: SessionOptions;
  /** MatMulNBits accuracy_level (default 0: exact fp32; 4: int8 activations, llama.cpp's kind of kernel) */
  accuracyLevel?: number;
  /** run weights as stored (native-host.ts): low-bit codes on MatMulNBits, read tensor by tensor into
   * a session weight file (`weightDir`: its parent directory), embedding rows read on demand */
  native?: boolean | { weightDir?: string; maxUnpackedFloats?: number };
  /**
   * tokens per run when scoring (`logProbs`): a longer sequence is scored in runs of about this many
   * tokens through a KV cache of its length, so that the activations of one run (attention scores
   * [H, Tc, T], FFN intermediates [Tc, F]) are those of Tc tokens, not T. Default: whole sequences
   * in one run (shorter runs cost speed on stored low-bit weights: every run dequantizes them again).
   */
  scoreChunk?: number;
  /**
   * attention computed in this many groups of KV heads, one after another (a divisor of the KV
   * heads), so that one group's scores exist at a time. Default: one group per KV head for native
   * engines over large models (weights > 64 MB), else all heads at once.
   */
  attentionGroups?: number;
}

function i64(xs: ArrayLike<number>, shape = [xs.length]): Tensor<'I64'> {
  return { dtype: 'I64', shape, data: BigInt64Array.from(Array.from(xs, (x) => BigInt(x))) };
}

/**
 * Static per-tensor int activation precision from calibrated ranges (max |x| per site, see
 * LlamaEngine.activationRanges): each site's scale is quant's restricted symmetric grid for [−amax, amax]
 * (amax on code 2^(b−1) − 1, as the in-graph absmax activation quantizers).
 */
export function staticActivations(ranges: ReadonlyMap<string, number>, bits: number): (site: string) => ActQuantSpec | null {
  intLimits(bits, true);
  return (site) => {
    const amax = ranges.get(site);
    if (amax === undefined) throw new ConfigError('bad_option', 'no calibrated range for an activation site', { field: site });
    const { scale } = intParams(-amax, amax, { bits, symmetric: true, restricted: true, rounding: 'half_even', scaleDtype: 'F32' });
    return scale > 0 ? { kind: 'int', bits, symmetric: true, granularity: 'static', scale } : null;
  };
}

/** weight bytes above which a native engine's sessions run without onnxruntime's arena and memory pattern */
const LARGE_MODEL_BYTES = 64 << 20;

export class LlamaEngine {
  private readonly sessions = new Map<string, Promise<EngineSession>>();
  /** the KV cache of chunked scoring, kept between calls (a new 32 MB cache per 1B window would pile up as garbage) */
  private scoreCache: { capacity: number; tensors: Map<string, Tensor> } | null = null;

  private constructor(
    readonly host: HostModel,
    private readonly opts: EngineOptions,
    private readonly ownsHost = false,
  ) {}

  /** Reads and prepares `weights` (validation, precision knobs) and returns an engine over it. */
  static async create(weights: ModelWeights, opts: EngineOptions = {}): Promise<LlamaEngine> {
    if (opts.native) {
      const n = typeof opts.native === 'object' ? opts.native : {};
      const host = await prepareNativeHost(weights, { ...n, weights: opts.weights, quantizeLmHead: opts.quantizeLmHead, onProgress: opts.onProgress, signal: opts.signal });
      // large models: activations allocated as produced and returned when freed (no arena, no
      // planned block), which keeps the peak near the weights (docs/engine.md, Memory)
      const big = (host.weightBytes ?? 0) > LARGE_MODEL_BYTES;
      const session = big ? { memoryArena: false, memoryPattern: false, ...opts.session } : opts.session;
      const attentionGroups = opts.attentionGroups ?? (big ? host.config.nKvHeads : undefined);
      return new LlamaEngine(host, { ...opts, session, attentionGroups }, true);
    }
    return new LlamaEngine(await prepareHostModel(weights, opts), opts);
  }

  /** An engine over an already prepared host model (shares its tensors). */
  static fromHost(host: HostModel, opts: EngineOptions = {}): LlamaEngine {
    return new LlamaEngine(host, opts);
  }

  get config() {
    return this.host.config;
  }

  /** The session for one graph shape, built on first use. */
  session(g: Omit<LlamaGraphOptions, 'activations' | 'kvCache' | 'accuracyLevel' | 'attentionGroups'>): Promise<EngineSession> {
    const key = JSON.stringify(g);
    let s = this.sessions.get(key);
    if (!s) {
      const o = this.opts;
      const graph = buildLlamaGraph(this.host, { ...g, activations: o.activations, kvCache: o.kvCache, accuracyLevel: o.accuracyLevel, attentionGroups: o.attentionGroups });
      s = EngineSession.fromGraph(graph, this.opts.session ?? {});
      this.sessions.set(key, s);
      s.catch(() => this.sessions.delete(key));
    }
    return s;
  }

  private checkTokens(tokens: ArrayLike<number>): void {
    const V = this.config.vocabSize;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new ConfigError('bad_option', 'token id out of range', { index: i, expected: `0 <= id < ${V}`, found: t });
    }
  }

  /** The token input of a graph: ids [B, T], or their embedding rows [B, T, E] when the host reads the table by rows. */
  async tokenFeeds(tokens: ArrayLike<number>, B: number, T: number): Promise<Record<string, Tensor>> {
    if (!this.host.embedRows) return { tokens: i64(tokens, [B, T]) };
    return { embeds: { dtype: 'F32', shape: [B, T, this.config.hiddenSize], data: await this.host.embedRows(tokens) } };
  }

  /** Logits [T, V] (row t predicts token t + 1) for a whole sequence starting at position `startPos`. */
  async forward(tokens: ArrayLike<number>, opts: { startPos?: number; lastOnly?: boolean } = {}): Promise<Float32Array> {
    this.checkTokens(tokens);
    const T = tokens.length;
    const start = opts.startPos ?? 0;
    const s = await this.session({ tokens: T, lastOnly: opts.lastOnly, maxPositions: start + T });
    const pos = Array.from({ length: T }, (_, t) => start + t);
    const r = await s.run({ ...(await this.tokenFeeds(tokens, 1, T)), positions: i64(pos) }, ['logits']);
    return r.logits.data as Float32Array;
  }

  /**
   * log p(targets[b][t] | seqs[b][0..t]) [B·T] in float64, for B sequences of equal length T at
   * positions 0 … T − 1, scored inside the graph (no logits leave it). Row-major like forwardBatch.
   */
  async logProbs(seqs: readonly (readonly number[])[], targets: readonly (readonly number[])[]): Promise<Float64Array> {
    const B = seqs.length;
    const T = B ? seqs[0].length : 0;
    if (!B || !T || seqs.some((x) => x.length !== T) || targets.length !== B || targets.some((x) => x.length !== T)) {
      throw new ConfigError('bad_option', 'sequences and targets must be non-empty and of one length', { field: 'seqs', found: seqs.map((x) => x.length).join(',') });
    }
    const flat = seqs.flat();
    const tflat = targets.flat();
    this.checkTokens(flat);
    this.checkTokens(tflat);
    const chunk = this.opts.scoreChunk;
    if (chunk !== undefined && (!Number.isInteger(chunk) || chunk < 1)) throw new ConfigError('bad_option', 'scoring chunk must be a positive integer', { field: 'scoreChunk', found: chunk });
    if (chunk && T > chunk) {
      const out = new Float64Array(B * T);
      for (let i = 0; i < B; i++) out.set(await this.chunkedLogProbs(seqs[i], targets[i], chunk), i * T);
      return out;
    }
    const s = await this.session({ tokens: T, batch: B, maxPositions: T, targets: true });
    const feeds = { ...(await this.tokenFeeds(flat, B, T)), positions: i64(Array.from({ length: T }, (_, t) => t)), targets: i64(tflat, [B, T]) };
    return (await s.run(feeds, ['logprobs'])).logprobs.data as Float64Array;
  }

  /**
   * logProbs of one sequence in n = ⌈T / chunk⌉ runs of Tc = ⌈T / n⌉ tokens through a KV cache of
   * n·Tc slots (one graph shape for every run: a shorter last run is padded with copies of the last
   * token, whose keys land in slots no real token sees and whose scores are dropped). The runs write
   * each layer's keys/values back into the arrays they read them from (the graph reads past_key.i
   * before it produces present_key.i), so the cache exists once.
   */
  private async chunkedLogProbs(seq: readonly number[], tg: readonly number[], chunk: number): Promise<Float64Array> {
    const T = seq.length;
    const n = Math.ceil(T / chunk);
    const Tc = Math.ceil(T / n);
    const C = n * Tc;
    const s = await this.session({ tokens: Tc, cacheCapacity: C, maxPositions: C, targets: true });
    if (this.scoreCache?.capacity !== C) this.scoreCache = { capacity: C, tensors: kvCacheTensors(this.config, C) };
    const cache = this.scoreCache.tensors;
    // slots not yet written in this sequence are masked whatever they hold; zeroed all the same
    for (const t of cache.values()) (t.data as Float32Array).fill(0);
    const into: Record<string, Tensor> = {};
    for (let i = 0; i < this.config.nLayers; i++) {
      const k = kvNames(i);
      into[k.presentK] = cache.get(k.pastK)!;
      into[k.presentV] = cache.get(k.pastV)!;
    }
    const out = new Float64Array(T);
    for (let p0 = 0; p0 < T; p0 += Tc) {
      const m = Math.min(Tc, T - p0);
      const ids = Array.from({ length: Tc }, (_, t) => seq[p0 + Math.min(t, m - 1)]);
      const tgs = Array.from({ length: Tc }, (_, t) => (t < m ? tg[p0 + t] : 0));
      const feeds: Record<string, Tensor> = { ...(await this.tokenFeeds(ids, 1, Tc)), positions: i64(Array.from({ length: Tc }, (_, t) => p0 + t)), targets: i64(tgs, [1, Tc]) };
      for (const [k, v] of cache) feeds[k] = v;
      const r = await s.run(feeds, ['logprobs', ...Object.keys(into)], into);
      out.set((r.logprobs.data as Float64Array).subarray(0, m), p0);
    }
    return out;
  }

  /**
   * Logits [B, T, V] for B sequences of equal length T evaluated in one run (all at positions
   * 0 … T − 1); row-major, so sequence i's [T, V] block starts at i·T·V.
   */
  async forwardBatch(seqs: readonly (readonly number[])[]): Promise<Float32Array> {
    const B = seqs.length;
    const T = B ? seqs[0].length : 0;
    if (!B || !T || seqs.some((x) => x.length !== T)) throw new ConfigError('bad_option', 'batched sequences must be non-empty and of equal length', { field: 'seqs', found: seqs.map((x) => x.length).join(',') });
    const flat = seqs.flat();
    this.checkTokens(flat);
    const s = await this.session({ tokens: T, batch: B, maxPositions: T });
    const r = await s.run({ ...(await this.tokenFeeds(flat, B, T)), positions: i64(Array.from({ length: T }, (_, t) => t)) }, ['logits']);
    return r.logits.data as Float32Array;
  }

  /** Max |x| at every linear input over `tokens` (calibration for static activation scales). */
  async activationRanges(tokens: ArrayLike<number>): Promise<Map<string, number>> {
    this.checkTokens(tokens);
    const T = tokens.length;
    const s = await this.session({ tokens: T, statistics: true });
    const r = await s.run({ ...(await this.tokenFeeds(tokens, 1, T)), positions: i64(Array.from({ length: T }, (_, t) => t)) });
    const out = new Map<string, number>();
    for (const [k, v] of Object.entries(r)) if (k.startsWith('amax.')) out.set(k.slice(5), Number(v.data[0]));
    return out;
  }

  /** A KV-cache decoder with room for `capacity` positions. */
  decoder(capacity: number): Decoder {
    if (!Number.isInteger(capacity) || capacity < 1) throw new ConfigError('bad_option', 'cache capacity must be a positive integer', { field: 'capacity', found: capacity });
    return new Decoder(this, capacity);
  }

  async close(): Promise<void> {
    const all = [...this.sessions.values()];
    this.sessions.clear();
    this.scoreCache = null;
    for (const s of all) await (await s).release();
    if (this.ownsHost) await this.host.release?.();
  }

  /** internal: validates tokens for the decoder */
  check(tokens: ArrayLike<number>): void {
    this.checkTokens(tokens);
  }
}

/** An empty KV cache of `capacity` slots: past_key.i / past_value.i [Hk, C, D] zeros per layer. */
function kvCacheTensors(c: LlamaEngine['config'], capacity: number): Map<string, Tensor> {
  const cache = new Map<string, Tensor>();
  for (let i = 0; i < c.nLayers; i++) {
    const n = kvNames(i);
    const shape = [c.nKvHeads, capacity, c.headDim];
    cache.set(n.pastK, { dtype: 'F32', shape, data: new Float32Array(shape[0] * shape[1] * shape[2]) });
    cache.set(n.pastV, { dtype: 'F32', shape, data: new Float32Array(shape[0] * shape[1] * shape[2]) });
  }
  return cache;
}

/** Incremental decoding: `step(tokens)` appends tokens at the next positions and returns their logits. */
export class Decoder {
  private cache: Map<string, Tensor> = new Map();
  /** number of positions filled */
  position = 0;

  constructor(
    private readonly engine: LlamaEngine,
    readonly capacity: number,
  ) {
    this.reset();
  }

  reset(): void {
    this.cache = kvCacheTensors(this.engine.config, this.capacity);
    this.position = 0;
  }

  /** Logits [T, V] for the new tokens (or [1, V] with lastOnly). */
  async step(tokens: ArrayLike<number>, opts: { lastOnly?: boolean } = {}): Promise<Float32Array> {
    this.engine.check(tokens);
    const T = tokens.length;
    if (this.position + T > this.capacity) {
      throw new ConfigError('bad_option', 'KV cache is full', { field: 'capacity', expected: `<= ${this.capacity} positions`, found: this.position + T });
    }
    const s = await this.engine.session({ tokens: T, cacheCapacity: this.capacity, lastOnly: opts.lastOnly });
    const feeds: Record<string, Tensor> = {
      ...(await this.engine.tokenFeeds(tokens, 1, T)),
      positions: i64(Array.from({ length: T }, (_, t) => this.position + t)),
    };
    for (const [k, v] of this.cache) feeds[k] = v;
    const r = await s.run(feeds);
    for (let i = 0; i < this.engine.config.nLayers; i++) {
      const n = kvNames(i);
      this.cache.set(n.pastK, r[n.presentK]);
      this.cache.set(n.pastV, r[n.presentV]);
    }
    this.position += T;
    return r.logits.data as Float32Array;
  }
}
