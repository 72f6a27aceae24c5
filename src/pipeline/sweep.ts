// `bitscale sweep`: quantize one model at every (bits × method × group size × format) point,
// measure each the same way (file size, bits per weight, perplexity with its interval, KL divergence
// and top-1 agreement against the base model on the same tokens, tokens/s, quantization time), mark
// the size/quality Pareto frontier, fit the post-training scaling law to some points and check it on
// the rest, and write sweep.json / sweep.csv / report.html. Finished points are kept in sweep.json
// after each step, so an interrupted sweep resumes where it stopped.
// Legend: T = evaluation tokens, V = vocab.

import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../core/errors.js';
import { GGML_TYPES, ggmlBitsPerWeight, isGgmlType, type GgmlType } from '../core/dtype.js';
import { ProgressTracker, checkAborted, type ProgressFn } from '../core/progress.js';
import { LlamaEngine } from '../engine/model.js';
import { prepareHostModel, isLinearWeight, type HostModel } from '../engine/host.js';
import { compareModels, engineModel, perplexity, type LogitsModel, type WindowOptions } from '../eval/index.js';
import type { SensitivityRow, SweepPointResult, SweepPointSpec, SweepRecord } from '../eval/sweepTypes.js';
import { atomicWriteFile, sha256File } from '../formats/io/index.js';
import { loadModel } from '../model/load.js';
import { parameterCount } from '../model/config.js';
import { bitsPerWeight, fakeQuant, parseScheme } from '../quant/index.js';
import { renderSweepReport } from '../report/sweepReport.js';
import { DEFAULT_BUDGETS, kldPoint, markFrontiers, nllPoint, parseBudget, shipRecommendations } from '../report/decision.js';
import { bestWithinBudget, type IntervalPoint } from '../scaling/pareto-ci.js';
import { fitPtqDecay, ptqDecay } from '../scaling/ptqDecay.js';
import { TOOL_VERSION, quantizeModel } from './quantize.js';
import { runQat } from './qat.js';
import { planPoints, type SweepGrid } from './sweep-plan.js';

export interface SweepOptions {
  model: string;
  /** evaluation text */
  text: string;
  outDir: string;
  grid: SweepGrid;
  /** or an explicit list of points (overrides grid) */
  points?: SweepPointSpec[];
  ctx?: number;
  /** evaluate on at most this many text tokens (default 8192) */
  maxTokens?: number;
  calib?: string;
  /** calibration windows for GPTQ/AWQ/mixed (default: the quantizer's, 16) */
  calibWindows?: number;
  seed?: number;
  /** measure per-tensor sensitivity with this scheme (default: the lowest int width in the grid); false to skip */
  sensitivity?: string | false;
  /** the command line prefix recorded for reproduction, e.g. 'npx bitscale' */
  commandPrefix?: string;
  /** the recipe this sweep came from (recorded in sweep.json) */
  recipe?: unknown;
  /** size budgets for the "what to ship" answer: '4.5' / '4.5bpw' (bits per weight) or '800MB', '1.5GB' (default report/decision.ts DEFAULT_BUDGETS) */
  budgets?: string[];
  tokenizer?: string;
  /** training text for QAT points (files, or 'moby-dick'); required when the methods include qat */
  qatText?: string[];
  /** QAT steps per point (default 100) */
  qatSteps?: number;
  /** reload every written file in its runtime (node-llama-cpp for GGUF) and compare logits (default true) */
  verify?: boolean;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
  /** one line per finished point, for the terminal */
  log?: (line: string) => void;
}

export interface SweepOutcome {
  record: SweepRecord;
  json: string;
  csv: string;
  report: string;
}

/** Logits cached by window: the base model is evaluated once for the whole sweep. */
function cached(m: LogitsModel): LogitsModel {
  const memo = new Map<string, Float32Array>();
  return {
    vocabSize: m.vocabSize,
    async logits(tokens) {
      const key = tokens.join(',');
      let l = memo.get(key);
      if (!l) {
        l = await m.logits(tokens);
        memo.set(key, l);
      }
      return l;
    },
  };
}

async function hashPath(path: string): Promise<string> {
  const st = await stat(path);
  if (st.isFile()) return sha256File(path);
  const parts: string[] = [];
  for (const f of (await readdir(path)).sort()) {
    const p = join(path, f);
    if ((await stat(p)).isFile()) parts.push(`${f}:${await sha256File(p)}`);
  }
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

/** Bytes of a model file, or of the files directly inside a model folder. */
async function pathBytes(path: string): Promise<number> {
  const st = await stat(path);
  if (st.isFile()) return st.size;
  let n = 0;
  for (const f of await readdir(path)) {
    const s2 = await stat(join(path, f));
    if (s2.isFile()) n += s2.size;
  }
  return n;
}

async function sizeOf(files: string[]): Promise<number> {
  let n = 0;
  for (const f of files) n += (await stat(f)).size;
  return n;
}

/** Input features K of a linear weight [N, K]. */
function linearK(host: HostModel, name: string): number {
  const c = host.config;
  return /down_proj/.test(name) ? c.intermediateSize : /o_proj/.test(name) ? c.nHeads * c.headDim : c.hiddenSize;
}

/** Bits per weight of one scheme applied to every linear (the packed size of a QAT model's grid). */
function linearSchemeBpw(host: HostModel, sc: ReturnType<typeof parseScheme>): number {
  let bits = 0;
  let n = 0;
  for (const [name, w] of host.tensors) {
    if (!isLinearWeight(name)) continue;
    const k = linearK(host, name);
    bits += bitsPerWeight(sc, [w.length / k, k]) * w.length;
    n += w.length;
  }
  return n ? bits / n : 32;
}

/** Bits per weight over the quantized linears, from the per-tensor types the quantizer chose. */
function linearBpw(host: HostModel, tensors: { name: string; type: string }[]): number {
  let bits = 0;
  let n = 0;
  for (const t of tensors) {
    const w = host.tensors.get(t.name);
    if (!w) continue;
    const k = linearK(host, t.name);
    const shape = [w.length / k, k];
    const up = t.type.toUpperCase();
    // a ggml type (F16 fallbacks included), else the scheme string the quantizer used (targetLabel)
    const b = isGgmlType(up) ? ggmlBitsPerWeight(up as GgmlType) : bitsPerWeight(parseScheme(t.type), shape);
    bits += b * w.length;
    n += w.length;
  }
  return n ? bits / n : 32;
}

/** The evaluation as `bitscale eval` flags: the same text, window and token limit give the same numbers. */
function evalFlags(o: SweepOptions, ctx: number, maxTokens: number): string {
  return `--text ${o.text} --ctx ${ctx} --max-tokens ${maxTokens}${o.tokenizer ? ` --tokenizer ${o.tokenizer}` : ''}`;
}

function commandFor(o: SweepOptions, p: SweepPointSpec, out: string, ctx: number, maxTokens: number): { command: string; evalCommand: string } {
  const pre = o.commandPrefix ?? 'bitscale';
  const evalCommand = p.method === 'base' ? `${pre} eval ${o.model} ${evalFlags(o, ctx, maxTokens)}` : `${pre} eval ${out} ${evalFlags(o, ctx, maxTokens)} --base ${o.model}`;
  if (p.method === 'base') return { command: evalCommand, evalCommand };
  if (p.method === 'qat') return { command: `${pre} qat ${o.model} --bits ${p.bits} --text ${(o.qatText ?? []).join(' ')} --steps ${o.qatSteps ?? 100} --format safetensors --out ${out}`, evalCommand };
  const method = p.method === 'mixed' ? 'rtn' : p.method;
  const windows = o.calibWindows !== undefined && p.method !== 'rtn' ? ` --windows ${o.calibWindows}` : '';
  const command = `${pre} quantize ${o.model} --out ${out} --format ${p.format} --scheme ${p.scheme} --method ${method}${p.targetBpw ? ` --target-bpw ${p.targetBpw}` : ''} --seed ${o.seed ?? 0}${o.calib ? ` --calib ${o.calib}` : ''}${windows}${o.tokenizer ? ` --tokenizer ${o.tokenizer}` : ''}`;
  return { command, evalCommand };
}

function toCsv(points: SweepPointResult[]): string {
  const cols: (keyof SweepPointResult)[] = ['id', 'method', 'scheme', 'bits', 'format', 'fileBytes', 'bpw', 'nll', 'ppl', 'pplLo', 'pplHi', 'dnllLo', 'dnllHi', 'kld', 'kldLo', 'kldHi', 'top1', 'tokensPerS', 'quantizeS', 'onFrontier', 'onFrontierKld', 'predictedNll'];
  const q = (v: unknown) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v === undefined ? '' : String(v));
  return [cols.join(','), ...points.map((p) => cols.map((c) => q(p[c])).join(','))].join('\n') + '\n';
}

export async function runSweep(o: SweepOptions): Promise<SweepOutcome> {
  const t0 = Date.now();
  const seed = o.seed ?? 0;
  const budgets = o.budgets ?? DEFAULT_BUDGETS;
  budgets.forEach(parseBudget); // a bad budget fails before any work
  const outDir = o.outDir; // kept as given (relative paths keep recorded commands portable)
  await mkdir(join(outDir, 'points'), { recursive: true });
  const jsonPath = join(outDir, 'sweep.json');
  let text: string;
  try {
    text = await readFile(o.text, 'utf8');
  } catch {
    throw new ConfigError('bad_option', 'cannot read the evaluation text', { file: o.text, field: '--text' });
  }
  const weights = await loadModel(o.model, o.tokenizer ? { tokenizer: o.tokenizer } : {});
  let baseEngine: LlamaEngine | null = null;
  try {
    if (!weights.tokenizer) throw new ConfigError('bad_option', 'the model has no tokenizer; the sweep needs one to read the text', { file: o.model, field: '--tokenizer' });
    const c = weights.config;
    const ctx = Math.min(o.ctx ?? 256, c.maxSeqLen);
    const maxTokens = o.maxTokens ?? 8192;
    const ids = weights.tokenizer.encode(text, { bos: false }).slice(0, maxTokens);
    if (ids.length < ctx) throw new ConfigError('bad_option', 'evaluation text shorter than one window', { file: o.text, expected: `>= ${ctx} tokens`, found: ids.length });
    const win: WindowOptions = { ctx, protocol: 'windows', bosId: c.bosTokenId };
    const [modelSha, textSha] = [await hashPath(o.model), await sha256File(o.text)];
    const specs = o.points ?? planPoints(c, o.grid);

    // resume: keep finished points of an identical earlier run
    const done = new Map<string, SweepPointResult>();
    try {
      const prev = JSON.parse(await readFile(jsonPath, 'utf8')) as SweepRecord;
      if (prev.model.sha256 === modelSha && prev.text.sha256 === textSha && prev.seed === seed && prev.text.tokens === ids.length && (prev.text.ctx ?? ctx) === ctx) {
        // points from a version that did not measure the KL interval are measured again
        for (const p of prev.points) if (p.kldLo !== undefined || p.method === 'base') done.set(p.id, p);
      }
    } catch {
      /* no earlier run */
    }

    const baseHost = await prepareHostModel(weights);
    baseEngine = LlamaEngine.fromHost(baseHost);
    const baseModel = cached(engineModel(baseEngine));
    const record: SweepRecord = {
      tool: { name: 'bitscale', version: TOOL_VERSION },
      createdAt: new Date().toISOString(),
      model: { path: o.model, sha256: modelSha, parameters: parameterCount(c), description: `${c.architecture}, ${c.nLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}`, bytes: await pathBytes(o.model) },
      text: { path: o.text, sha256: textSha, tokens: ids.length, protocol: `non-overlapping windows of ${ctx} (BOS + ${ctx - 1} text tokens), every text token scored once`, ctx, maxTokens },
      seed,
      points: [],
      sensitivity: [],
      budgets: [...budgets],
      ...(o.recipe !== undefined ? { recipe: o.recipe } : {}),
      elapsedS: 0,
    };
    const save = async () => {
      record.elapsedS = (Date.now() - t0) / 1000;
      await atomicWriteFile(jsonPath, JSON.stringify(record, null, 2) + '\n', { overwrite: true });
    };

    const track = new ProgressTracker('sweep', specs.length, o.onProgress, 'point');
    for (const spec of specs) {
      checkAborted(o.signal);
      const ext = spec.format === 'gguf' ? '.gguf' : '';
      const out = join(outDir, 'points', spec.id + ext);
      const prev = done.get(spec.id);
      if (prev) {
        record.points.push({ ...prev, ...commandFor(o, spec, out, ctx, maxTokens), ...(spec.method === 'base' ? {} : { out }) });
        track.tick(`${spec.id} (kept from the earlier run)`);
        continue;
      }
      const r = await runPoint(o, spec, out, baseHost, baseModel, ids, win, seed);
      Object.assign(r, commandFor(o, spec, out, ctx, maxTokens), spec.method === 'base' ? {} : { out });
      record.points.push(r);
      o.log?.(`${spec.id.padEnd(22)} ${r.bpw.toFixed(2).padStart(6)} bpw  PPL ${r.ppl.toFixed(3).padStart(8)}  KLD ${r.kld.toFixed(4)}  top-1 ${(100 * r.top1).toFixed(1)}%`);
      await save();
      track.tick(spec.id);
    }

    markFrontiers(record.points);
    record.recommendations = shipRecommendations(record.points, budgets);
    record.law = lawPanel(record.points);
    if (o.sensitivity !== false) {
      const sScheme = o.sensitivity ?? sensitivityScheme(specs);
      if (sScheme) record.sensitivity = await sensitivity(baseHost, baseModel, ids, win, sScheme, o);
    }
    await save();
    const csvPath = join(outDir, 'sweep.csv');
    await atomicWriteFile(csvPath, toCsv(record.points), { overwrite: true });
    const reportPath = join(outDir, 'report.html');
    await atomicWriteFile(reportPath, renderSweepReport(record), { overwrite: true });
    return { record, json: jsonPath, csv: csvPath, report: reportPath };
  } finally {
    await baseEngine?.close();
    await weights.close();
  }
}

async function runPoint(
  o: SweepOptions,
  spec: SweepPointSpec,
  out: string,
  baseHost: HostModel,
  baseModel: LogitsModel,
  ids: number[],
  win: WindowOptions,
  seed: number,
): Promise<SweepPointResult> {
  const t0 = Date.now();
  let host: HostModel = baseHost;
  let fileBytes = 0;
  let bpw = 32;
  if (spec.method === 'qat') {
    if (!o.qatText?.length) throw new ConfigError('bad_option', 'QAT points need a training text', { field: '--qat-text', hint: 'e.g. --qat-text moby-dick or a text file' });
    const qs = await runQat({ model: o.model, bits: spec.bits, text: o.qatText, steps: o.qatSteps ?? 100, format: 'safetensors', out, overwrite: true, signal: o.signal });
    const back = await loadModel(out);
    try {
      host = await prepareHostModel(back);
    } finally {
      await back.close();
    }
    // the QAT checkpoint is GPTQ-packed (2-bit SEQ in a 3-bit container: see docs/training.md)
    fileBytes = await sizeOf(qs.files);
    const sc = parseScheme(spec.scheme);
    bpw = linearSchemeBpw(host, sc);
  } else if (spec.method !== 'base') {
    const rep = await quantizeModel({
      model: o.model,
      out,
      format: spec.format === 'gguf' || spec.format === 'fakequant' || spec.format === 'onnx' || spec.format === 'compressed-tensors' ? spec.format : 'safetensors',
      scheme: spec.scheme,
      method: spec.method === 'mixed' ? 'rtn' : (spec.method as 'rtn' | 'gptq' | 'awq'),
      targetBpw: spec.targetBpw,
      calib: o.calib,
      windows: o.calibWindows,
      seed,
      tokenizer: o.tokenizer,
      overwrite: true,
      keepHost: true,
      verify: o.verify ?? true,
      signal: o.signal,
    });
    if (rep.host) host = rep.host;
    else {
      // no in-memory model came back: evaluate the written file itself
      const back = await loadModel(out, o.tokenizer ? { tokenizer: o.tokenizer } : {});
      try {
        host = await prepareHostModel(back);
      } finally {
        await back.close();
      }
    }
    // a fake-quant float file says nothing about the packed size: report none rather than a misleading one
    fileBytes = spec.format === 'fakequant' ? 0 : await sizeOf(rep.files);
    bpw = linearBpw(host, rep.tensors);
  } else {
    fileBytes = 0;
  }
  const quantizeS = (Date.now() - t0) / 1000;
  const engine = spec.method === 'base' ? null : LlamaEngine.fromHost(host);
  try {
    const test = engine ? cached(engineModel(engine)) : baseModel;
    const t1 = Date.now();
    const ppl = await perplexity(test, ids, win);
    const evalS = (Date.now() - t1) / 1000;
    const cmp = engine ? await compareModels(baseModel, test, ids, win) : null;
    return {
      ...spec,
      fileBytes,
      bpw,
      nll: ppl.nll,
      ppl: ppl.ppl,
      pplLo: ppl.pplCi95[0],
      pplHi: ppl.pplCi95[1],
      kld: cmp ? cmp.kld : 0,
      kldLo: cmp ? cmp.kldCi95[0] : 0,
      kldHi: cmp ? cmp.kldCi95[1] : 0,
      dnllLo: cmp ? cmp.deltaNllCi95[0] : 0,
      dnllHi: cmp ? cmp.deltaNllCi95[1] : 0,
      top1: cmp ? cmp.top1Agreement : 1,
      tokensPerS: ppl.count / Math.max(evalS, 1e-9),
      quantizeS,
      onFrontier: false,
      command: '',
    };
  } finally {
    await engine?.close();
  }
}

/** Fit δ_PTQ(P) = C·e^(−P/γ) on the RTN points at ≥ 3 bits and predict every RTN point (2 bits unseen). */
function lawPanel(points: SweepPointResult[]): SweepRecord['law'] {
  const base = points.find((p) => p.method === 'base');
  const rtn = points.filter((p) => p.method === 'rtn' && p.bits >= 2 && p.bits <= 8);
  if (!base || rtn.length < 2) return undefined;
  const seen = rtn.filter((p) => p.bits >= 3);
  const caveats: string[] = [];
  let fit;
  try {
    fit = fitPtqDecay(seen.map((p) => ({ bits: p.bpw, delta: p.nll - base.nll })));
  } catch (e) {
    return { description: 'δ_PTQ(P) = C·e^(−P/γ_post) at fixed N and D (Kumar et al. 2024, Eq. 2)', fitted: {}, maeNll: null, caveats: [(e as Error).message] };
  }
  let err = 0;
  for (const p of rtn) {
    p.predictedNll = base.nll + ptqDecay(p.bpw, fit);
    err += Math.abs(p.predictedNll - p.nll);
  }
  if (fit.used < 3) caveats.push(`only ${fit.used} points entered the fit; the constants are barely determined`);
  caveats.push('fitted on RTN points at 3 bits and above (bits measured as bits per weight, scales included); points below 3 bits are predictions, not fits');
  return {
    description: `Post-training degradation δ_PTQ(P) = C·e^(−P/γ_post) at this model's fixed N and D (Kumar et al. 2024, Eq. 2), fitted to ${fit.used} RTN points (R² ${fit.r2.toFixed(3)})`,
    fitted: { C: fit.C, gammaPost: fit.gammaPost },
    maeNll: err / rtn.length,
    caveats,
  };
}

function sensitivityScheme(specs: SweepPointSpec[]): string | null {
  const ints = specs.filter((s) => /^int\d-(g\d+|channel)$/.test(s.scheme)).sort((a, b) => a.bits - b.bits);
  if (ints.length) return ints[0].scheme;
  const gg = specs.find((s) => s.format === 'gguf');
  return gg ? gg.scheme : null;
}

/** ΔNLL when one linear tensor alone is RTN-quantized with `scheme` (on the first windows of the text). */
async function sensitivity(baseHost: HostModel, baseModel: LogitsModel, ids: number[], win: WindowOptions, scheme: string, o: SweepOptions): Promise<SensitivityRow[]> {
  const sc = parseScheme(scheme);
  const few = { ...win, maxWindows: 2 };
  const base = await perplexity(baseModel, ids, few);
  const names = [...baseHost.tensors.keys()].filter(isLinearWeight);
  const track = new ProgressTracker('sensitivity', names.length, o.onProgress, 'tensor');
  const rows: SensitivityRow[] = [];
  for (const name of names) {
    checkAborted(o.signal);
    const w = baseHost.tensors.get(name) as Float32Array;
    const k = linearK(baseHost, name);
    const shape = [w.length / k, k];
    if (sc.kind === 'ggml' && k % GGML_TYPES[sc.type].blockSize !== 0) continue;
    const wq = fakeQuant(w, shape, sc, { name });
    let num = 0;
    let den = 0;
    for (let i = 0; i < w.length; i++) {
      num += (w[i] - wq[i]) ** 2;
      den += w[i] * w[i];
    }
    const tensors = new Map(baseHost.tensors);
    tensors.set(name, wq);
    const e = LlamaEngine.fromHost({ ...baseHost, tensors });
    try {
      const r = await perplexity(engineModel(e), ids, few);
      rows.push({ tensor: name, scheme, deltaNll: r.nll - base.nll, relErr: den > 0 ? num / den : 0 });
    } finally {
      await e.close();
    }
    track.tick(name);
  }
  return rows;
}

export type { SweepMethod, SweepFormat, SweepGrid } from './sweep-plan.js';
export type { ShipChoice } from '../eval/sweepTypes.js';

/**
 * The best measured point within each bits-per-weight budget: ranked on KL divergence when every
 * point has its interval (else mean NLL), never preferring a larger point whose interval overlaps
 * a smaller one's (scaling/pareto-ci.ts).
 */
export function sweepBudgets(points: SweepPointResult[], budgets: number[]): { budget: number; best: SweepPointResult | null }[] {
  const kl = points.map((p) => kldPoint(p));
  const qs = kl.every((x) => x !== null) ? (kl as IntervalPoint[]) : points.map((p) => nllPoint(p));
  return budgets.map((budget) => {
    const pick = bestWithinBudget(qs, budget);
    return { budget, best: pick ? (points.find((p) => p.id === pick.best.id) ?? null) : null };
  });
}
