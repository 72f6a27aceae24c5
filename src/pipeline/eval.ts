// `bitscale eval`: load a model (and optionally a base model), apply the precision knobs, tokenize
// a text and measure perplexity (and KLD / top-1 agreement against the base) with the documented
// window protocol. Returns one plain object; the CLI prints it.

import { ConfigError } from '../core/errors.js';
import type { ProgressFn } from '../core/progress.js';
import { LlamaEngine, staticActivations, type EngineOptions } from '../engine/model.js';
import type { ActQuantSpec } from '../engine/actquant.js';
import type { WeightPath } from '../engine/host.js';
import type { LowBitMode } from '../engine/lowbit-linear.js';
import { summarizeWeightPaths } from '../engine/native-host.js';
import { compareModels, engineModel, perplexity, throughput, type WindowProtocol } from '../eval/index.js';
import { readTextFile } from '../formats/io/index.js';
import { loadModel } from '../model/load.js';
import type { ModelWeights } from '../model/weights.js';
import { formatScheme, parseScheme } from '../quant/index.js';
import type { QuantScheme } from '../quant/scheme.js';

export interface PrecisionOptions {
  /** weight scheme string (parseScheme grammar); a bare number N means int<N>-channel */
  wBits?: string;
  /** activation precision at every linear input: N (int, per-token dynamic, symmetric), 'fp16' or 'bf16' */
  aBits?: string;
  /** KV-cache precision: N (int per token and head, symmetric), 'fp16' or 'bf16' */
  kvBits?: string;
  /** run int weights in real low bit from in-memory codes (the older path; implies 'dequantized' weights otherwise) */
  lowBit?: LowBitMode;
  /** 'native' (default): weights run as stored — low-bit codes on MatMulNBits, read tensor by tensor,
   * never a float32 model; 'dequantized': every weight as float32 in memory (the reference path) */
  weightsPath?: 'native' | 'dequantized';
  /** MatMulNBits with int8 activations (accuracy level 4, as llama.cpp's kernels): faster, not exact */
  int8Matmul?: boolean;
  threads?: number;
}

export interface EvalOptions extends PrecisionOptions {
  model: string;
  text: string;
  ctx?: number;
  protocol?: WindowProtocol;
  stride?: number;
  /** evaluate at most this many windows */
  maxWindows?: number;
  /** text tokens to use at most (after tokenization) */
  maxTokens?: number;
  base?: string;
  tokenizer?: string;
  /** also measure prompt-processing (ctx tokens) and KV-cache decoding (64 tokens) speed */
  speed?: boolean;
  /** text for calibrating static activation scales (--a-bits N-static); default: the first window of `text` */
  calib?: string;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

export interface EvalReport {
  model: string;
  text: string;
  protocol: WindowProtocol;
  ctx: number;
  weights: string | null;
  activations: string | null;
  kvCache: string | null;
  ppl: number;
  nll: number;
  nllStderr: number;
  pplCi95: [number, number];
  tokens: number;
  windows: number;
  tokensPerSecond: number;
  /** how the weights ran: 'native' or 'dequantized', the matmul arithmetic, and per stored form which path */
  weightsPath: { mode: 'native' | 'dequantized'; matmul: 'fp32 (exact)' | 'int8 activations'; summary: string[]; tensors: WeightPath[] };
  speed?: { promptTokensPerSecond: number; decodeTokensPerSecond: number };
  base?: { model: string; ppl: number; nll: number; kld: number; kldCi95: [number, number]; kldMax: number; top1Agreement: number; deltaNll: number; deltaNllCi95: [number, number] };
}

export function parseWeightScheme(s: string): QuantScheme {
  return /^\d+$/.test(s) ? parseScheme(`int${s}-channel`) : parseScheme(s);
}

/** '8' → int8 per token (dynamic, symmetric); 'fp16' / 'bf16' / 'fp8-e4m3' → a float cast; 'fp8-token' → scaled FP8. */
export function parseActSpec(s: string | undefined, flag: string): ActQuantSpec | null {
  if (s === undefined || s === '' || s === '32' || s === 'fp32') return null;
  if (s === 'fp16' || s === '16f') return { kind: 'float', format: 'F16' };
  if (s === 'bf16') return { kind: 'float', format: 'BF16' };
  const f8 = /^fp8(?:-(e4m3|e5m2))?(?:-(token|tensor))?$/.exec(s);
  if (f8) return { kind: 'float', format: f8[1] === 'e5m2' ? 'F8_E5M2' : 'F8_E4M3', granularity: (f8[2] as 'token' | 'tensor' | undefined) ?? null };
  const m = /^(\d+)(-asym)?(-tensor)?$/.exec(s);
  if (!m) throw new ConfigError('bad_option', `invalid value for --${flag}`, { field: `--${flag}`, expected: 'N, N-asym, N-tensor, fp16, bf16, fp8[-e4m3|-e5m2][-token|-tensor]', found: s });
  const bits = Number(m[1]);
  if (bits < 2 || bits > 16) throw new ConfigError('bad_option', `invalid value for --${flag}`, { field: `--${flag}`, expected: 'bits in 2..16', found: s });
  return { kind: 'int', bits, symmetric: !m[2], granularity: m[3] ? 'tensor' : 'token' };
}

function describeAct(a: EngineOptions['activations'] | undefined): string | null {
  if (!a) return null;
  if (typeof a === 'function') return 'per-site';
  if (a.kind === 'float') return a.granularity ? `${a.format}-${a.granularity}` : a.format;
  return `int${a.bits}${a.symmetric ? '' : '-asym'}-${a.granularity}`;
}

export function engineOptions(p: PrecisionOptions, onProgress?: ProgressFn, signal?: AbortSignal): EngineOptions {
  return {
    weights: p.wBits ? parseWeightScheme(p.wBits) : null,
    activations: parseActSpec(p.aBits, 'a-bits'),
    kvCache: parseActSpec(p.kvBits, 'kv-bits'),
    lowBit: p.lowBit ?? null,
    native: !p.lowBit && p.weightsPath !== 'dequantized',
    accuracyLevel: p.int8Matmul ? 4 : 0,
    session: p.threads ? { threads: p.threads } : {},
    onProgress,
    signal,
  };
}

/** The weights-path part of a report. */
export function describeWeights(engine: LlamaEngine, eo: EngineOptions): EvalReport['weightsPath'] {
  const tensors = engine.host.weightPaths ?? [];
  return {
    mode: eo.native ? 'native' : 'dequantized',
    matmul: eo.accuracyLevel === 4 ? 'int8 activations' : 'fp32 (exact)',
    summary: eo.native ? summarizeWeightPaths(tensors) : ['every weight as float32 in memory (dequantized reference path)'],
    tensors,
  };
}

async function load(path: string, tokenizer?: string): Promise<ModelWeights> {
  return loadModel(path, tokenizer ? { tokenizer } : {});
}

async function readText(path: string): Promise<string> {
  return readTextFile(path, 'cannot read the text file');
}

export async function runEval(o: EvalOptions): Promise<EvalReport> {
  const text = await readText(o.text);
  const w = await load(o.model, o.tokenizer);
  try {
    if (!w.tokenizer) throw new ConfigError('bad_option', 'the model has no tokenizer; evaluation needs one', { file: o.model, hint: 'pass --tokenizer FILE' });
    const c = w.config;
    const ctx = o.ctx ?? Math.min(512, c.maxSeqLen);
    if (ctx > c.maxSeqLen) throw new ConfigError('bad_option', 'context longer than the model supports', { field: '--ctx', expected: `<= ${c.maxSeqLen}`, found: ctx });
    let ids = w.tokenizer.encode(text, { bos: false });
    if (o.maxTokens) ids = ids.slice(0, o.maxTokens);
    const staticBits = /^(\d+)-static$/.exec(o.aBits ?? '');
    const eo = engineOptions({ ...o, aBits: staticBits ? undefined : o.aBits }, o.onProgress, o.signal);
    // the engine that owns the prepared weights; calibrated variants share them and are closed first
    const owner = await LlamaEngine.create(w, eo);
    let engine = owner;
    if (staticBits) {
      // static per-tensor scales: max |x| per linear input on one calibration window of the float model
      const calIds = o.calib ? w.tokenizer.encode(await readText(o.calib), { bos: false }) : ids;
      const cal = [...(c.bosTokenId !== null ? [c.bosTokenId] : []), ...calIds].slice(0, ctx);
      const float = LlamaEngine.fromHost(owner.host, { session: eo.session, accuracyLevel: eo.accuracyLevel });
      const ranges = await float.activationRanges(cal);
      await float.close();
      engine = LlamaEngine.fromHost(owner.host, { ...eo, activations: staticActivations(ranges, Number(staticBits[1])) });
    }
    const win = { ctx, protocol: o.protocol, stride: o.stride, bosId: c.bosTokenId, maxWindows: o.maxWindows, onProgress: o.onProgress, signal: o.signal };
    try {
      const r = await perplexity(engineModel(engine), ids, win);
      const report: EvalReport = {
        model: o.model,
        text: o.text,
        protocol: r.protocol,
        ctx,
        weights: eo.weights ? formatScheme(eo.weights as QuantScheme) : null,
        activations: staticBits ? `int${staticBits[1]}-static` : describeAct(eo.activations),
        kvCache: describeAct(eo.kvCache),
        ppl: r.ppl,
        nll: r.nll,
        nllStderr: r.nllStderr,
        pplCi95: r.pplCi95,
        tokens: r.count,
        windows: r.windows,
        tokensPerSecond: r.tokensPerSecond,
        weightsPath: describeWeights(owner, eo),
      };
      if (o.speed) {
        const t = await throughput(engine, { promptTokens: ctx, decodeTokens: Math.min(64, c.maxSeqLen - 1) });
        report.speed = { promptTokensPerSecond: t.promptTokensPerSecond, decodeTokensPerSecond: t.decodeTokensPerSecond };
      }
      if (o.base) {
        const bw = await load(o.base, o.tokenizer);
        try {
          if (bw.config.vocabSize !== c.vocabSize) throw new ConfigError('bad_option', 'base model has a different vocabulary', { file: o.base, field: 'vocabSize', expected: c.vocabSize, found: bw.config.vocabSize });
          const be = await LlamaEngine.create(bw, { session: eo.session, native: eo.native, accuracyLevel: eo.accuracyLevel });
          try {
            const k = await compareModels(engineModel(be), engineModel(engine), ids, win);
            report.base = { model: o.base, ppl: k.base.ppl, nll: k.base.nll, kld: k.kld, kldCi95: k.kldCi95, kldMax: k.kldMax, top1Agreement: k.top1Agreement, deltaNll: k.deltaNll, deltaNllCi95: k.deltaNllCi95 };
          } finally {
            await be.close();
          }
        } finally {
          await bw.close();
        }
      }
      return report;
    } finally {
      if (engine !== owner) await engine.close();
      await owner.close();
    }
  } finally {
    await w.close();
  }
}
