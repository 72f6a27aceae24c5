// Perplexity, KL divergence and top-1 agreement over a token stream, with the windowing protocol
// stated exactly (README "Evaluation protocol"):
//
//   'windows' (default): the stream is the text's tokens WITHOUT BOS. Window k takes W = ctx − b
//       stream tokens starting at k·stride (b = 1 when `bos`, which prepends BOS at position 0;
//       stride defaults to W: non-overlapping). Every stream token in a window that no earlier window
//       scored is scored, from its full left context inside the window. With `bos` the first token of
//       each window is predicted from BOS alone; without it the very first stream token is never scored.
//       A last partial window is evaluated too (its graph has fewer tokens) unless `dropLast`.
//   'llamacpp': llama.cpp's `llama-perplexity`: the stream starts with BOS (when `bos`), chunks are
//       the consecutive non-overlapping ctx-token slices (a partial tail is dropped), the first token
//       of each chunk is replaced by BOS, and only the second half is scored: predictions at positions
//       ctx/2 … ctx − 2 (ctx − 1 − ⌊ctx/2⌋ tokens per chunk).
//
// Reported: mean NLL in nats/token over scored tokens, PPL = exp(mean NLL), and a 95% confidence
// interval from the standard error of the per-token NLLs (normal approximation: mean ± 1.96·sd/√n,
// exponentiated for PPL). Log-probabilities are computed in float64 from float32 logits.
// Legend: T = window tokens, V = vocab.

import { ConfigError } from '../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../core/progress.js';
import { klDivergence, logSoftmaxRow } from './divergence.js';

/** Anything that gives logits [T, V] (row t predicts token t + 1) for a token window. */
export interface LogitsModel {
  readonly vocabSize: number;
  logits(tokens: readonly number[]): Promise<Float32Array>;
  /** optional: logits [B, T, V] for B windows of equal length in one run */
  logitsBatch?(seqs: readonly (readonly number[])[]): Promise<Float32Array>;
  /**
   * optional: log p(targets[b][t] | seqs[b][0..t]) [B·T] (float64) for B windows of equal length,
   * scored by the model itself so that no logits are copied out; perplexity uses it when present
   */
  logProbs?(seqs: readonly (readonly number[])[], targets: readonly (readonly number[])[]): Promise<Float64Array>;
}

/** Windows per model run: equal-length windows are batched while B·T·V stays under 8M floats (≤ 8). */
export function defaultBatch(ctx: number, vocab: number): number {
  return Math.max(1, Math.min(8, Math.floor((1 << 23) / (ctx * vocab))));
}

/**
 * Runs `model` over `windows`, batching consecutive equal-length windows, and calls `each` with every
 * window and its logits [T, V] in order. Returns the seconds spent in the model.
 */
async function runWindows(model: LogitsModel, windows: Window[], batch: number, each: (w: Window, logits: Float32Array) => void, signal?: AbortSignal): Promise<number> {
  let seconds = 0;
  for (let i = 0; i < windows.length; ) {
    checkAborted(signal);
    let j = i + 1;
    if (model.logitsBatch) while (j < windows.length && j - i < batch && windows[j].tokens.length === windows[i].tokens.length) j++;
    const group = windows.slice(i, j);
    const t0 = performance.now();
    let logits: Float32Array;
    if (model.logitsBatch && (group.length > 1 || (i > 0 && batch > 1 && group[0].tokens.length === windows[0].tokens.length))) {
      // a short final group is padded with copies so that it reuses the full batch's graph
      const seqs = group.map((w) => w.tokens);
      while (i > 0 && seqs.length < batch) seqs.push(seqs[seqs.length - 1]);
      logits = await model.logitsBatch(seqs);
    } else {
      logits = await model.logits(group[0].tokens);
    }
    seconds += (performance.now() - t0) / 1000;
    const span = group[0].tokens.length * model.vocabSize;
    group.forEach((w, k) => each(w, logits.subarray(k * span, (k + 1) * span)));
    i = j;
  }
  return seconds;
}

/**
 * As runWindows, for a model that scores its own windows: calls `each` with every window and the
 * log-probability of its target at each row (rows that predict nothing get target 0, unread).
 */
async function runScoredWindows(model: LogitsModel, windows: Window[], batch: number, each: (w: Window, lp: Float64Array) => void, signal?: AbortSignal): Promise<number> {
  let seconds = 0;
  for (let i = 0; i < windows.length; ) {
    checkAborted(signal);
    let j = i + 1;
    while (j < windows.length && j - i < batch && windows[j].tokens.length === windows[i].tokens.length) j++;
    const group = windows.slice(i, j);
    const targets = group.map((w) => {
      const t = new Array<number>(w.tokens.length).fill(0);
      w.rows.forEach((r, k) => (t[r] = w.targets[k]));
      return t;
    });
    const t0 = performance.now();
    const lp = await model.logProbs!(group.map((w) => w.tokens), targets);
    seconds += (performance.now() - t0) / 1000;
    const T = group[0].tokens.length;
    group.forEach((w, k) => each(w, lp.subarray(k * T, (k + 1) * T)));
    i = j;
  }
  return seconds;
}

export type WindowProtocol = 'windows' | 'llamacpp';

export interface WindowOptions {
  ctx: number;
  protocol?: WindowProtocol;
  /** 'windows' only: tokens between window starts (default: ctx − (bos ? 1 : 0)) */
  stride?: number;
  /** prepend (windows) or substitute (llamacpp) BOS; requires bosId. Default true when bosId is given */
  bos?: boolean;
  bosId?: number | null;
  /** evaluate at most this many windows */
  maxWindows?: number;
  /** 'windows' only: skip a final window shorter than the others */
  dropLast?: boolean;
}

/** One model evaluation: `tokens` to feed, and which rows predict which targets. */
export interface Window {
  tokens: number[];
  /** row index r predicts targets[i] (token tokens[r + 1]) */
  rows: number[];
  targets: number[];
}

/** The windows a protocol produces over `ids` (text tokens without BOS). */
export function makeWindows(ids: readonly number[], o: WindowOptions): Window[] {
  const protocol = o.protocol ?? 'windows';
  const bos = o.bos ?? (o.bosId !== null && o.bosId !== undefined);
  if (bos && (o.bosId === null || o.bosId === undefined)) throw new ConfigError('bad_option', 'BOS requested but the model has no BOS token', { field: 'bos' });
  const ctx = o.ctx;
  if (!Number.isInteger(ctx) || ctx < 2) throw new ConfigError('bad_option', 'context length must be an integer >= 2', { field: 'ctx', found: ctx });
  const out: Window[] = [];
  const max = o.maxWindows ?? Infinity;
  if (protocol === 'llamacpp') {
    const stream = bos ? [o.bosId!, ...ids] : [...ids];
    const first = Math.floor(ctx / 2);
    for (let k = 0; (k + 1) * ctx <= stream.length && out.length < max; k++) {
      const tokens = stream.slice(k * ctx, (k + 1) * ctx);
      if (bos) tokens[0] = o.bosId!;
      const rows: number[] = [];
      const targets: number[] = [];
      for (let r = first; r < ctx - 1; r++) {
        rows.push(r);
        targets.push(tokens[r + 1]);
      }
      out.push({ tokens, rows, targets });
    }
    return out;
  }
  const b = bos ? 1 : 0;
  const W = ctx - b;
  const stride = o.stride ?? W;
  if (!Number.isInteger(stride) || stride < 1 || stride > W) throw new ConfigError('bad_option', 'stride must be an integer in [1, window]', { field: 'stride', expected: `1..${W}`, found: stride });
  let scoredUpTo = bos ? 0 : 1; // stream index of the first token not yet scored
  for (let start = 0; start < ids.length && out.length < max; start += stride) {
    const end = Math.min(ids.length, start + W);
    if (o.dropLast && end - start < W && out.length > 0) break;
    const tokens = bos ? [o.bosId!, ...ids.slice(start, end)] : ids.slice(start, end);
    const rows: number[] = [];
    const targets: number[] = [];
    for (let s = Math.max(scoredUpTo, start + (bos ? 0 : 1)); s < end; s++) {
      rows.push(s - start + b - 1);
      targets.push(ids[s]);
    }
    scoredUpTo = Math.max(scoredUpTo, end);
    if (rows.length) out.push({ tokens, rows, targets });
    if (end === ids.length) break;
  }
  return out;
}

/** log-softmax of one row, in float64: returns (logit[target] − logsumexp) */
export function logProb(logits: Float32Array, row: number, V: number, target: number): number {
  const o = row * V;
  let m = -Infinity;
  for (let v = 0; v < V; v++) if (logits[o + v] > m) m = logits[o + v];
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - m);
  return logits[o + target] - m - Math.log(s);
}

export interface MeanCi {
  mean: number;
  /** standard error of the mean */
  stderr: number;
  ci95: [number, number];
}

export function meanCi(xs: ArrayLike<number>): MeanCi {
  const n = xs.length;
  let s = 0;
  for (let i = 0; i < n; i++) s += xs[i];
  const mean = n ? s / n : NaN;
  let v = 0;
  for (let i = 0; i < n; i++) v += (xs[i] - mean) ** 2;
  const stderr = n > 1 ? Math.sqrt(v / (n - 1) / n) : NaN;
  return { mean, stderr, ci95: [mean - 1.96 * stderr, mean + 1.96 * stderr] };
}

export interface PerplexityResult {
  /** mean negative log-likelihood, nats per scored token */
  nll: number;
  ppl: number;
  nllStderr: number;
  nllCi95: [number, number];
  pplCi95: [number, number];
  /** scored tokens */
  count: number;
  windows: number;
  /** tokens fed to the model (all windows) and the wall time spent in the model */
  tokensEvaluated: number;
  seconds: number;
  tokensPerSecond: number;
  /** per scored token, in stream order */
  tokenNll: Float64Array;
  protocol: WindowProtocol;
  ctx: number;
}

export interface EvalRunOptions extends WindowOptions {
  /** windows per model run (default: defaultBatch) */
  batch?: number;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

/** Perplexity of `model` over `ids` under the given window protocol. */
export async function perplexity(model: LogitsModel, ids: readonly number[], o: EvalRunOptions): Promise<PerplexityResult> {
  const windows = makeWindows(ids, o);
  if (!windows.length) throw new ConfigError('bad_option', 'text too short for one evaluation window', { field: 'ctx', expected: `at least ${o.ctx} tokens`, found: ids.length });
  const V = model.vocabSize;
  const nlls: number[] = [];
  const track = new ProgressTracker('eval', windows.length, o.onProgress, 'window');
  let fed = 0;
  const batch = o.batch ?? defaultBatch(o.ctx, V);
  const seconds = model.logProbs
    ? await runScoredWindows(model, windows, batch, (w, lp) => {
        fed += w.tokens.length;
        for (const r of w.rows) nlls.push(-lp[r]);
        track.tick(`ppl ${Math.exp(meanCi(nlls).mean).toFixed(4)}`);
      }, o.signal)
    : await runWindows(model, windows, batch, (w, logits) => {
        fed += w.tokens.length;
        w.rows.forEach((r, i) => nlls.push(-logProb(logits, r, V, w.targets[i])));
        track.tick(`ppl ${Math.exp(meanCi(nlls).mean).toFixed(4)}`);
      }, o.signal);
  const s = meanCi(nlls);
  return {
    nll: s.mean,
    ppl: Math.exp(s.mean),
    nllStderr: s.stderr,
    nllCi95: s.ci95,
    pplCi95: [Math.exp(s.ci95[0]), Math.exp(s.ci95[1])],
    count: nlls.length,
    windows: windows.length,
    tokensEvaluated: fed,
    seconds,
    tokensPerSecond: fed / seconds,
    tokenNll: Float64Array.from(nlls),
    protocol: o.protocol ?? 'windows',
    ctx: o.ctx,
  };
}

export interface CompareResult {
  base: { nll: number; ppl: number };
  test: { nll: number; ppl: number };
  /** mean KL(P_base ‖ P_test) per scored token, nats, with its 95% interval */
  kld: number;
  kldCi95: [number, number];
  /** largest per-token KL divergence */
  kldMax: number;
  /** fraction of scored tokens where both models' argmax agree */
  top1Agreement: number;
  /** mean NLL(test) − NLL(base) */
  deltaNll: number;
  /** 95% interval of deltaNll from the per-token differences (paired: both models scored the same tokens) */
  deltaNllCi95: [number, number];
  count: number;
}

/** KL divergence and top-1 agreement of `test` against `base` on the same windows and tokens. */
export async function compareModels(base: LogitsModel, test: LogitsModel, ids: readonly number[], o: EvalRunOptions): Promise<CompareResult> {
  if (base.vocabSize !== test.vocabSize) throw new ConfigError('bad_option', 'models have different vocabularies', { field: 'vocabSize', expected: base.vocabSize, found: test.vocabSize });
  const windows = makeWindows(ids, o);
  if (!windows.length) throw new ConfigError('bad_option', 'text too short for one evaluation window', { field: 'ctx', found: ids.length });
  const V = base.vocabSize;
  const klds: number[] = [];
  const nb: number[] = [];
  const nt: number[] = [];
  let agree = 0;
  const track = new ProgressTracker('compare', windows.length, o.onProgress, 'window');
  const p = new Float64Array(V);
  const q = new Float64Array(V);
  // the base model's logits for a batch are kept while the test model runs on the same windows
  const batch = o.batch ?? defaultBatch(o.ctx, V);
  for (let i = 0; i < windows.length; i += batch) {
    const group = windows.slice(i, i + batch);
    const baseLogits: Float32Array[] = [];
    await runWindows(base, group, batch, (_w, l) => baseLogits.push(l.slice()), o.signal);
    let g = 0;
    await runWindows(test, group, batch, (w, lt) => {
      const lb = baseLogits[g++];
      w.rows.forEach((r, j) => {
        const pb = logSoftmaxRow(lb, r, V, p);
        const pt = logSoftmaxRow(lt, r, V, q);
        klds.push(Math.max(0, klDivergence(p, q)));
        nb.push(-p[w.targets[j]]);
        nt.push(-q[w.targets[j]]);
        if (pb === pt) agree++;
      });
      track.tick();
    }, o.signal);
  }
  const k = meanCi(klds);
  const mb = meanCi(nb).mean;
  const mt = meanCi(nt).mean;
  const d = meanCi(nt.map((x, i) => x - nb[i]));
  return {
    base: { nll: mb, ppl: Math.exp(mb) },
    test: { nll: mt, ppl: Math.exp(mt) },
    kld: k.mean,
    kldCi95: k.ci95,
    kldMax: klds.reduce((a, b) => Math.max(a, b), 0),
    top1Agreement: agree / klds.length,
    deltaNll: mt - mb,
    deltaNllCi95: d.ci95,
    count: klds.length,
  };
}
