// The trainer: forward + backward graph on onnxruntime (weights fed as inputs, gradients returned
// as outputs), AdamW on the host, deterministic from a seed, periodic validation, checkpoints with
// exact resume, progress events and a JSON-lines log.
// Weight quantization (QAT and low-precision training) happens on the host around the graph: the
// graph sees W_q and returns dL/dW_q; the host maps that to dL/dW (and dL/dα for ParetoQ) with the
// float64 reference backward of quantizers.ts. Activation/KV quantization is in the graph (lowprec.ts).
// Legend: B = batch, S = context, A = gradient-accumulation micro-batches per step.

import { appendFileSync, existsSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, NumericError } from '../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../core/progress.js';
import type { Tensor } from '../core/tensor.js';
import { gradGraph } from '../engine/autodiff.js';
import { EngineSession } from '../engine/session.js';
import type { ModelConfig } from '../model/config.js';
import { assertSameSettings, loadCheckpoint, saveCheckpoint } from './train-checkpoint.js';
import { trainBatch, valBatches, type Batch } from './data.js';
import { FULL_PRECISION, quantizeWeight, type LowPrecision } from './lowprec.js';
import { buildTrainGraph, initParams, paramSpecs, type ParamSpec } from './graph.js';
import { AdamW, clipGlobalNorm, GradAccumulator, lrAt, type Grads } from './optim.js';
import { qatWeights } from './qat.js';
import { paretoQBackward, paretoQInitAlpha, type QatBits } from './quantizers.js';

export interface QatSettings {
  bits: QatBits;
  /** BitNet b1.58 instead of ParetoQ: absmean ternary weights per tensor (bits must be 1.58) */
  bitnet: boolean;
}

export interface TrainSettings {
  batch: number;
  context: number;
  /** micro-batches accumulated per optimizer step */
  accum: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  minLrRatio: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  /** global-norm clip (0: off) */
  clip: number;
  seed: number;
  lowPrecision: LowPrecision;
  qat: QatSettings | null;
  /** validate every N steps (0: only at the end) */
  valEvery: number;
  /** at most this many validation batches */
  valBatches: number;
  /** checkpoint every N steps (0: only at the end) */
  ckptEvery: number;
  threads?: number;
}

export const TRAIN_DEFAULTS: TrainSettings = {
  batch: 8, context: 128, accum: 1, steps: 1000, lr: 3e-3, warmupSteps: 50, minLrRatio: 0.1, weightDecay: 0.1,
  beta1: 0.9, beta2: 0.95, clip: 1, seed: 0, lowPrecision: FULL_PRECISION, qat: null, valEvery: 100, valBatches: 8, ckptEvery: 0,
};

export interface LogRecord {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  tokensPerS: number;
  elapsedS: number;
  etaS: number | null;
  valLoss?: number;
}

export interface TrainInput {
  config: ModelConfig;
  settings: TrainSettings;
  train: Int32Array;
  val: Int32Array;
  /** starting weights (QAT from a pretrained model); default: seeded initialisation */
  init?: Map<string, Float32Array>;
  /** checkpoints and the JSON log go here (null: nothing written) */
  outDir?: string | null;
  /** continue from outDir/checkpoint.safetensors when it exists */
  resume?: boolean;
  onProgress?: ProgressFn;
  onLog?: (r: LogRecord) => void;
  signal?: AbortSignal;
}

export interface TrainResult {
  /** trained (latent, full-precision) parameters, QAT scales included as "<weight>.qat_alpha" */
  params: Map<string, Float32Array>;
  /** the weights exactly as the model uses them (quantized where QAT/low precision applies) */
  effective: Map<string, Float32Array>;
  history: LogRecord[];
  finalValLoss: number;
  steps: number;
}

export const ALPHA_SUFFIX = '.qat_alpha';
export const CHECKPOINT_FILE = 'checkpoint.safetensors';
export const LOG_FILE = 'train-log.jsonl';

/** Holds the sessions and state of one run; `step()` does one optimizer step. */
export class Trainer {
  readonly specs: ParamSpec[];
  readonly shapes = new Map<string, number[]>();
  params: Map<string, Float32Array>;
  opt: AdamW;
  stepDone = 0;
  private effCache: Map<string, Float32Array> | null = null;

  private constructor(
    readonly config: ModelConfig,
    readonly s: TrainSettings,
    private readonly trainSess: EngineSession,
    private readonly evalSess: EngineSession,
    params: Map<string, Float32Array>,
  ) {
    this.specs = paramSpecs(config);
    for (const p of this.specs) this.shapes.set(p.name, p.shape);
    for (const p of this.specs) if (p.linear && s.qat && !s.qat.bitnet) this.shapes.set(p.name + ALPHA_SUFFIX, [p.shape[0]]);
    this.params = params;
    this.opt = this.makeOpt();
  }

  private makeOpt(): AdamW {
    const info = new Map<string, { decay: boolean }>();
    for (const k of this.params.keys()) info.set(k, { decay: (this.shapes.get(k)?.length ?? 1) === 2 && !k.endsWith(ALPHA_SUFFIX) });
    return new AdamW(this.params, info, { beta1: this.s.beta1, beta2: this.s.beta2, eps: 1e-8, weightDecay: this.s.weightDecay });
  }

  static async create(config: ModelConfig, s: TrainSettings, init?: Map<string, Float32Array>): Promise<Trainer> {
    validateSettings(config, s);
    const lp: LowPrecision = s.qat?.bitnet ? { ...s.lowPrecision, activations: { bits: 8, granularity: 'token' } } : s.lowPrecision;
    const fwd = buildTrainGraph(config, s.batch, s.context, lp);
    const gg = gradGraph(fwd.graph, { stop: fwd.stop });
    const opts = { threads: s.threads };
    const trainSess = await EngineSession.fromGraph(gg, opts, { paramsAsInputs: true });
    const evalSess = await EngineSession.fromGraph(fwd.graph, opts, { paramsAsInputs: true });
    const params = new Map<string, Float32Array>();
    const start = init ?? initParams(config, s.seed);
    for (const p of paramSpecs(config)) {
      const w = start.get(p.name);
      const n = p.shape.reduce((a, d) => a * d, 1);
      if (!w || w.length !== n) throw new ConfigError('bad_config', 'initial weights do not match the config', { tensor: p.name, expected: `[${p.shape.join(', ')}]`, found: w ? w.length : 'missing' });
      params.set(p.name, Float32Array.from(w));
      if (p.linear && s.qat && !s.qat.bitnet) {
        params.set(p.name + ALPHA_SUFFIX, Float32Array.from(paretoQInitAlpha(w, p.shape[0], p.shape[1], s.qat.bits)));
      }
    }
    return new Trainer(config, s, trainSess, evalSess, params);
  }

  /** The weights as the graph sees them, through quant's codecs (cached until the next update). */
  effectiveWeights(): Map<string, Float32Array> {
    if (this.effCache) return this.effCache;
    const out = new Map<string, Float32Array>();
    const { qat, lowPrecision } = this.s;
    for (const p of this.specs) {
      const w = this.params.get(p.name) as Float32Array;
      if (!p.linear) out.set(p.name, w);
      else if (qat) out.set(p.name, qatWeights(w, p.shape, this.params.get(p.name + ALPHA_SUFFIX) ?? null, qat.bits, qat.bitnet, p.name));
      else out.set(p.name, quantizeWeight(w, p.shape, lowPrecision.weights, p.name));
    }
    this.effCache = out;
    return out;
  }

  /** Replaces a parameter's values (e.g. projected QAT scales) and drops the cached weights. */
  setParam(name: string, data: Float32Array): void {
    const p = this.params.get(name);
    if (!p || p.length !== data.length) throw new ConfigError('bad_config', 'no such parameter or wrong size', { tensor: name, expected: p?.length, found: data.length });
    p.set(data);
    this.effCache = null;
  }

  private feeds(batch: Batch): Record<string, Tensor> {
    const f: Record<string, Tensor> = {};
    for (const [k, w] of this.effectiveWeights()) f[k] = { dtype: 'F32', shape: this.shapes.get(k)!, data: w };
    f.tokens = { dtype: 'I64', shape: [batch.B, batch.S], data: BigInt64Array.from(batch.inputs, (x) => BigInt(x)) };
    f.targets = { dtype: 'I64', shape: [batch.B, batch.S], data: BigInt64Array.from(batch.targets, (x) => BigInt(x)) };
    return f;
  }

  /** Loss and dL/d(effective weights) for one batch. */
  async lossAndGrads(batch: Batch): Promise<{ loss: number; grads: Grads }> {
    const out = await this.trainSess.run(this.feeds(batch));
    const grads: Grads = new Map();
    for (const p of this.specs) grads.set(p.name, out[`grad.${p.name}`].data as Float32Array);
    return { loss: (out.loss.data as Float32Array)[0], grads };
  }

  /** Maps gradients w.r.t. the quantized weights to the latent weights (and ParetoQ scales). */
  private throughQuantizers(g: Grads): Grads {
    const qat = this.s.qat;
    if (!qat || qat.bitnet) return g; // identity STEs (BitNet; absmax low-precision weights never clip)
    for (const p of this.specs) {
      if (!p.linear) continue;
      const w = this.params.get(p.name)!;
      const a = this.params.get(p.name + ALPHA_SUFFIX)!;
      const r = paretoQBackward(w, a, g.get(p.name)!, p.shape[0], p.shape[1], qat.bits);
      g.set(p.name, Float32Array.from(r.gw));
      g.set(p.name + ALPHA_SUFFIX, Float32Array.from(r.galpha));
    }
    return g;
  }

  /** One optimizer step (A micro-batches). Returns the mean loss and the pre-clip gradient norm. */
  async step(train: Int32Array): Promise<{ loss: number; gradNorm: number; lr: number }> {
    const { batch: B, context: S, accum: A, seed } = this.s;
    const acc = new GradAccumulator();
    let single: Grads | null = null; // A = 1: use the gradients as returned (the mean of one is exact)
    let lossSum = 0;
    for (let a = 0; a < A; a++) {
      const { loss, grads } = await this.lossAndGrads(trainBatch(train, B, S, seed, this.stepDone * A + a));
      if (!Number.isFinite(loss)) {
        throw new NumericError('diverged', `training loss became ${loss} at step ${this.stepDone + 1}`, {
          hint: 'the last good checkpoint is kept; lower --lr, raise --warmup or keep --clip on',
        });
      }
      lossSum += loss;
      if (A === 1) single = grads;
      else acc.add(grads);
    }
    const g = this.throughQuantizers(single ?? acc.mean());
    const gradNorm = clipGlobalNorm(g, this.s.clip);
    const lr = lrAt(this.stepDone, { lr: this.s.lr, warmupSteps: this.s.warmupSteps, totalSteps: this.s.steps, minLrRatio: this.s.minLrRatio });
    this.opt.step(g, lr);
    this.effCache = null;
    this.stepDone++;
    return { loss: lossSum / A, gradNorm, lr };
  }

  /** Mean validation NLL (nats/token) over at most `maxBatches` batches. */
  async evaluate(val: Int32Array, maxBatches = this.s.valBatches): Promise<number> {
    let nll = 0;
    let count = 0;
    for (const b of valBatches(val, this.s.batch, this.s.context, maxBatches)) {
      const out = await this.evalSess.run(this.feeds(b), ['nll_sum', 'count']);
      nll += (out.nll_sum.data as Float32Array)[0];
      count += (out.count.data as Float32Array)[0];
    }
    return nll / count;
  }

  runSettings(): Record<string, unknown> {
    const { valEvery: _v, valBatches: _b, ckptEvery: _c, threads: _t, ...rest } = this.s;
    return rest;
  }

  async save(path: string, info: Record<string, unknown> = {}): Promise<void> {
    await saveCheckpoint(path, { config: this.config, step: this.stepDone, t: this.opt.t, params: this.params, m: this.opt.m, v: this.opt.v, run: this.runSettings(), info }, this.shapes);
  }

  async restore(path: string): Promise<void> {
    const c = await loadCheckpoint(path);
    assertSameSettings('model config', path, this.config as unknown as Record<string, unknown>, c.config as unknown as Record<string, unknown>);
    assertSameSettings('run settings', path, this.runSettings(), c.run);
    for (const [k, p] of this.params) {
      const src = c.params.get(k);
      if (!src || src.length !== p.length) throw new ConfigError('bad_config', 'checkpoint tensor missing or of another size', { file: path, tensor: k, expected: p.length, found: src?.length ?? 'missing' });
      p.set(src);
      this.opt.m.get(k)!.set(c.m.get(k) ?? new Float32Array(p.length));
      this.opt.v.get(k)!.set(c.v.get(k) ?? new Float32Array(p.length));
    }
    this.opt.t = c.t;
    this.stepDone = c.step;
    this.effCache = null;
  }

  async release(): Promise<void> {
    await this.trainSess.release();
    await this.evalSess.release();
  }
}

function validateSettings(c: ModelConfig, s: TrainSettings): void {
  const pos = (k: keyof TrainSettings, v: number, integer = true) => {
    if (!(v > 0) || (integer && !Number.isInteger(v))) throw new ConfigError('bad_option', 'training setting out of range', { field: k, expected: integer ? 'a positive integer' : 'a positive number', found: v });
  };
  pos('batch', s.batch);
  pos('context', s.context);
  pos('accum', s.accum);
  pos('steps', s.steps);
  pos('lr', s.lr, false);
  if (s.context > c.maxSeqLen) throw new ConfigError('bad_option', 'context longer than the model config allows', { field: 'context', expected: `<= ${c.maxSeqLen}`, found: s.context });
  if (s.qat?.bitnet && s.qat.bits !== 1.58) throw new ConfigError('bad_option', 'BitNet QAT is ternary', { field: 'bits', expected: 1.58, found: s.qat.bits });
}

/** Trains (or resumes) a model; writes checkpoints and a JSON log under outDir when given. */
export async function train(input: TrainInput): Promise<TrainResult> {
  const { settings: s, outDir } = input;
  const tr = await Trainer.create(input.config, s, input.init);
  try {
    // fail early with the data error rather than after compiling nothing useful
    trainBatch(input.train, s.batch, s.context, s.seed, 0);
    valBatches(input.val, s.batch, s.context, 1);
    const ckpt = outDir ? join(outDir, CHECKPOINT_FILE) : null;
    if (outDir) mkdirSync(outDir, { recursive: true });
    if (ckpt && input.resume && existsSync(ckpt)) await tr.restore(ckpt);
    const history: LogRecord[] = [];
    const tokPerStep = s.batch * s.context * s.accum;
    const progress = new ProgressTracker('train', s.steps, input.onProgress, 'step');
    progress.tick(undefined, tr.stepDone);
    const t0 = Date.now();
    const first = tr.stepDone;
    let lastVal = NaN;
    while (tr.stepDone < s.steps) {
      checkAborted(input.signal);
      const r = await tr.step(input.train);
      const elapsedS = (Date.now() - t0) / 1000;
      const done = tr.stepDone - first;
      const rec: LogRecord = {
        step: tr.stepDone, loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, tokens: tr.stepDone * tokPerStep,
        tokensPerS: (done * tokPerStep) / Math.max(elapsedS, 1e-9), elapsedS, etaS: (elapsedS / done) * (s.steps - tr.stepDone),
      };
      const last = tr.stepDone === s.steps;
      if (last || (s.valEvery > 0 && tr.stepDone % s.valEvery === 0)) rec.valLoss = lastVal = await tr.evaluate(input.val);
      history.push(rec);
      input.onLog?.(rec);
      if (outDir) appendFileSync(join(outDir, LOG_FILE), JSON.stringify(rec) + '\n');
      progress.tick(`loss ${r.loss.toFixed(4)}${rec.valLoss !== undefined ? ` val ${rec.valLoss.toFixed(4)}` : ''} | ${Math.round(rec.tokensPerS)} tok/s`);
      if (ckpt && (last || (s.ckptEvery > 0 && tr.stepDone % s.ckptEvery === 0))) await tr.save(ckpt, { loss: r.loss, valLoss: rec.valLoss });
    }
    if (Number.isNaN(lastVal)) lastVal = await tr.evaluate(input.val);
    return { params: tr.params, effective: new Map(tr.effectiveWeights()), history, finalValLoss: lastVal, steps: tr.stepDone };
  } finally {
    await tr.release();
  }
}
