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
import { bestWithinBudgets, paretoFrontier } from '../scaling/pareto.js';
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
  /** calibration windows for GPTQ/AWQ/mixed (default: the quantizer's, calibrationSize in calibrate-windows.ts) */
  calibWindows?: number;
  seed?: number;
  /** measure per-tensor sensitivity with this scheme (default: the lowest int width in the grid); false to skip */
  sensitivity?: string | false;
  /** the command line prefix recorded for reproduction, e.g. 'npx bitscale' */
  commandPrefix?: string;
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
    let b: number;
    if (isGgmlType(up)) b = ggmlBitsPerWeight(up as GgmlType);
    else {
      const m = /^int(\d)-(\d+)(-asym)?$/.exec(t.type);
      b = m ? bitsPerWeight(parseScheme(`int${m[1]}-g${m[2]}${m[3] ?? ''}`), shape) : 32;
    }
    bits += b * w.length;
    n += w.length;
  }
  return n ? bits / n : 32;
}

function commandFor(o: SweepOptions, p: SweepPointSpec, out: string): string {
  const pre = o.commandPrefix ?? 'bitscale';
  if (p.method === 'qat') return `${pre} qat ${o.model} --bits ${p.bits} --text ${(o.qatText ?? []).join(' ')} --steps ${o.qatSteps ?? 100} --format safetensors --out ${out}`;
  if (p.method === 'base') return `${pre} eval ${o.model} --text ${o.text} --ctx ${o.ctx ?? 256}`;
  const method = p.method === 'mixed' ? 'rtn' : p.method;
  const fmt = p.format;
  return `${pre} quantize ${o.model} --out ${out} --format ${fmt} --scheme ${p.scheme} --method ${method}${p.targetBpw ? ` --target-bpw ${p.targetBpw}` : ''} --seed ${o.seed ?? 0}${o.calib ? ` --calib ${o.calib}` : ''}`;
}

function toCsv(points: SweepPointResult[]): string {
  const cols: (keyof SweepPointResult)[] = ['id', 'method', 'scheme', 'bits', 'format', 'fileBytes', 'bpw', 'nll', 'ppl', 'pplLo', 'pplHi', 'kld', 'top1', 'tokensPerS', 'quantizeS', 'onFrontier', 'predictedNll'];
  const q = (v: unknown) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v === undefined ? '' : String(v));
  return [cols.join(','), ...points.map((p) => cols.map((c) => q(p[c])).join(','))].join('\n') + '\n';
}

export async function runSweep(o: SweepOptions): Promise<SweepOutcome> {
  const t0 = Date.now();
  const seed = o.seed ?? 0;
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
    const ids = weights.tokenizer.encode(text, { bos: false }).slice(0, o.maxTokens ?? 8192);
    if (ids.length < ctx) throw new ConfigError('bad_option', 'evaluation text shorter than one window', { file: o.text, expected: `>= ${ctx} tokens`, found: ids.length });
    const win: WindowOptions = { ctx, protocol: 'windows', bosId: c.bosTokenId };
    const [modelSha, textSha] = [await hashPath(o.model), await sha256File(o.text)];
    const specs = o.points ?? planPoints(c, o.grid);

    // resume: keep finished points of an identical earlier run
    const done = new Map<string, SweepPointResult>();
    try {
      const prev = JSON.parse(await readFile(jsonPath, 'utf8')) as SweepRecord;
      if (prev.model.sha256 === modelSha && prev.text.sha256 === textSha && prev.seed === seed && prev.text.tokens === ids.length) {
        for (const p of prev.points) done.set(p.id, p);
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
      model: { path: o.model, sha256: modelSha, parameters: parameterCount(c), description: `${c.architecture}, ${c.nLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}` },
      text: { path: o.text, sha256: textSha, tokens: ids.length, protocol: `non-overlapping windows of ${ctx} (BOS + ${ctx - 1} text tokens), every text token scored once` },
      seed,
      points: [],
      sensitivity: [],
      elapsedS: 0,
    };
    const save = async () => {
      record.elapsedS = (Date.now() - t0) / 1000;
      await atomicWriteFile(jsonPath, JSON.stringify(record, null, 2) + '\n', { overwrite: true });
    };

    const track = new ProgressTracker('sweep', specs.length, o.onProgress, 'point');
    for (const spec of specs) {
      checkAborted(o.signal);
      const prev = done.get(spec.id);
      if (prev) {
        record.points.push(prev);
        track.tick(`${spec.id} (kept from the earlier run)`);
        continue;
      }
      const ext = spec.format === 'gguf' ? '.gguf' : '';
      const out = join(outDir, 'points', spec.id + ext);
      const r = await runPoint(o, spec, out, baseHost, baseModel, ids, win, seed);
      r.command = commandFor(o, spec, out);
      record.points.push(r);
      o.log?.(`${spec.id.padEnd(22)} ${r.bpw.toFixed(2).padStart(6)} bpw  PPL ${r.ppl.toFixed(3).padStart(8)}  KLD ${r.kld.toFixed(4)}  top-1 ${(100 * r.top1).toFixed(1)}%`);
      await save();
      track.tick(spec.id);
    }

    const front = new Set(paretoFrontier(record.points.map((p) => ({ id: p.id, bits: p.bits, size: p.bpw, quality: p.nll })), 'lower').map((p) => p.id));
    for (const p of record.points) p.onFrontier = front.has(p.id);
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
      format: spec.format === 'gguf' ? 'gguf' : spec.format === 'fakequant' ? 'fakequant' : 'safetensors',
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

/** The best measured point within each bits-per-weight budget (lower NLL is better). */
export function sweepBudgets(points: SweepPointResult[], budgets: number[]): { budget: number; best: SweepPointResult | null }[] {
  const qp = points.map((p) => ({ ...p, size: p.bpw, quality: p.nll }));
  return bestWithinBudgets(qp, budgets, 'lower').map((b) => ({ budget: b.budget, best: b.best ? (points.find((p) => p.id === b.best!.id) ?? null) : null }));
}
