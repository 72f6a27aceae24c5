// `bitscale sweep`: quantize one model at every (bits × method × group size × format) point,
// measure each the same way (file size, bits per weight, perplexity with its interval, KL divergence
// and top-1 agreement against the base model on the same tokens, tokens/s, quantization time), mark
// the size/quality Pareto frontier, fit the post-training scaling law to some points and check it on
// the rest, and write sweep.json / sweep.csv / report.html. Finished points are kept in sweep.json
// after each step, so an interrupted sweep resumes where it stopped. Points run here, one after the
// other (pipeline/sweep/point.ts), or with `queue` as jobs on `bitscale worker` processes (sweep-remote.ts).
// Legend: T = evaluation tokens, V = vocab.

import { mkdir, readFile, readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { IoError } from '../../core/errors.js';
import { ProgressTracker, checkAborted, type ProgressFn } from '../../core/progress.js';
import type { SweepPointResult, SweepPointSpec, SweepRecord } from '../../eval/sweep-types.js';
import { atomicWriteFile, openWorkspace } from '../../formats/io/index.js';
import { parameterCount } from '../../model/config.js';
import { renderSweepReport } from '../../report/sweep-report.js';
import { DEFAULT_BUDGETS, kldPoint, markFrontiers, nllPoint, parseBudget, shipRecommendations } from '../../report/decision.js';
import { bestWithinBudget, type IntervalPoint } from '../../scaling/pareto-ci.js';
import { fitPtqDecay, ptqDecay } from '../../scaling/ptq-decay.js';
import { TOOL_VERSION } from '../quantize/quantize.js';
import { planPoints, type SweepGrid } from './plan.js';
import { openSweepBase, readSweepInputs, runSweepPoint, sensitivityScheme, sweepSensitivity, type SweepBase, type SweepInputs, type SweepPointSettings } from './point.js';
import type { QueueSettings, RemoteJobTiming } from '../queue/client.js';

export interface SweepOptions extends SweepPointSettings {
  outDir: string;
  grid: SweepGrid;
  /** or an explicit list of points (overrides grid) */
  points?: SweepPointSpec[];
  /** measure per-tensor sensitivity with this scheme (default: the lowest int width in the grid); false to skip */
  sensitivity?: string | false;
  /** the command line prefix recorded for reproduction, e.g. 'npx bitscale' */
  commandPrefix?: string;
  /** the recipe this sweep came from (recorded in sweep.json) */
  recipe?: unknown;
  /** size budgets for the "what to ship" answer: '4.5' / '4.5bpw' (bits per weight) or '800MB', '1.5GB' (default report/decision.ts DEFAULT_BUDGETS) */
  budgets?: string[];
  /** run every point as a job on this queue (redis://HOST:PORT[/DB]) instead of in this process */
  queue?: QueueSettings;
  onProgress?: ProgressFn;
  /** one line per finished point, for the terminal */
  log?: (line: string) => void;
}

export interface SweepOutcome {
  record: SweepRecord;
  json: string;
  csv: string;
  report: string;
  /** with --queue: when each job was queued, started, finished and recorded */
  timings?: RemoteJobTiming[];
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
  // the runtime changes the bytes of calibrated points only; named whenever it is not the default
  const runtime = o.calibRuntime === 'portable' ? ' --calib-runtime portable' : '';
  const command = `${pre} quantize ${o.model} --out ${out} --format ${p.format} --scheme ${p.scheme} --method ${method}${p.targetBpw ? ` --target-bpw ${p.targetBpw}` : ''} --seed ${o.seed ?? 0}${o.calib ? ` --calib ${o.calib}` : ''}${windows}${runtime}${o.tokenizer ? ` --tokenizer ${o.tokenizer}` : ''}`;
  return { command, evalCommand };
}

function toCsv(points: SweepPointResult[]): string {
  const cols: (keyof SweepPointResult)[] = ['id', 'method', 'scheme', 'bits', 'format', 'fileBytes', 'bpw', 'nll', 'ppl', 'pplLo', 'pplHi', 'dnllLo', 'dnllHi', 'kld', 'kldLo', 'kldHi', 'top1', 'tokensPerS', 'quantizeS', 'onFrontier', 'onFrontierKld', 'predictedNll'];
  const q = (v: unknown) => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : v === undefined ? '' : String(v));
  return [cols.join(','), ...points.map((p) => cols.map((c) => q(p[c])).join(','))].join('\n') + '\n';
}

/** The path a point's file is written to. */
export function pointOut(outDir: string, spec: SweepPointSpec): string {
  return join(outDir, 'points', spec.id + (spec.format === 'gguf' ? '.gguf' : ''));
}

export function pointLine(r: SweepPointResult): string {
  return `${r.id.padEnd(22)} ${r.bpw.toFixed(2).padStart(6)} bpw  PPL ${r.ppl.toFixed(3).padStart(8)}  KLD ${r.kld.toFixed(4)}  top-1 ${(100 * r.top1).toFixed(1)}%`;
}

export async function runSweep(o: SweepOptions): Promise<SweepOutcome> {
  const t0 = Date.now();
  const seed = o.seed ?? 0;
  const calibRuntime = o.calibRuntime ?? 'native';
  const budgets = o.budgets ?? DEFAULT_BUDGETS;
  budgets.forEach(parseBudget); // a bad budget fails before any work
  const outDir = o.outDir; // kept as given (relative paths keep recorded commands portable)
  // the folder is added to, never replaced; locked so that two sweeps never interleave there
  const ws = await openWorkspace(outDir);
  let inputs: SweepInputs | null = null;
  let base: SweepBase | null = null;
  let timings: RemoteJobTiming[] | undefined;
  try {
    await mkdir(join(outDir, 'points'), { recursive: true }).catch((e: unknown) => {
      throw new IoError('io', `cannot create the points folder: ${(e as Error).message}`, { file: join(outDir, 'points') });
    });
    const jsonPath = join(outDir, 'sweep.json');
    inputs = await readSweepInputs(o);
    const { weights, ids, win, modelSha, textSha } = inputs;
    const c = weights.config;
    const ctx = win.ctx;
    const maxTokens = o.maxTokens ?? 8192;
    const specs = o.points ?? planPoints(c, o.grid);

    // resume: keep finished points of an identical earlier run
    const done = new Map<string, SweepPointResult>();
    try {
      const prev = JSON.parse(await readFile(jsonPath, 'utf8')) as SweepRecord;
      if (prev.model.sha256 === modelSha && prev.text.sha256 === textSha && prev.seed === seed && (prev.calibRuntime ?? 'native') === calibRuntime && prev.text.tokens === ids.length && (prev.text.ctx ?? ctx) === ctx) {
        // points from a version that did not measure the KL interval are measured again
        for (const p of prev.points) if (p.kldLo !== undefined || p.method === 'base') done.set(p.id, p);
      }
    } catch {
      /* no earlier run */
    }

    const record: SweepRecord = {
      tool: { name: 'bitscale', version: TOOL_VERSION },
      createdAt: new Date().toISOString(),
      model: { path: o.model, sha256: modelSha, parameters: parameterCount(c), description: `${c.architecture}, ${c.nLayers} layers, hidden ${c.hiddenSize}, vocab ${c.vocabSize}`, bytes: await pathBytes(o.model) },
      text: { path: o.text, sha256: textSha, tokens: ids.length, protocol: `non-overlapping windows of ${ctx} (BOS + ${ctx - 1} text tokens), every text token scored once`, ctx, maxTokens },
      seed,
      calibRuntime,
      points: [],
      sensitivity: [],
      budgets: [...budgets],
      ...(o.recipe !== undefined ? { recipe: o.recipe } : {}),
      elapsedS: 0,
    };
    // points in plan order whatever order they finish in, so a queued sweep writes what a local one does
    // kept points get this run's commands and paths (they depend on --out and the evaluation flags)
    const withCommands = (spec: SweepPointSpec, r: SweepPointResult): SweepPointResult => {
      const out = pointOut(outDir, spec);
      return Object.assign(r, commandFor(o, spec, out, ctx, maxTokens), spec.method === 'base' ? {} : { out });
    };
    for (const spec of specs) if (done.has(spec.id)) withCommands(spec, done.get(spec.id)!);
    const save = async () => {
      record.points = specs.filter((s) => done.has(s.id)).map((s) => done.get(s.id)!);
      record.elapsedS = (Date.now() - t0) / 1000;
      await atomicWriteFile(jsonPath, JSON.stringify(record, null, 2) + '\n', { overwrite: true });
    };
    const finish = async (spec: SweepPointSpec, r: SweepPointResult) => {
      if (done.has(spec.id)) return; // a point is recorded once
      done.set(spec.id, withCommands(spec, r));
      o.log?.(pointLine(r));
      await save();
    };
    const todo = specs.filter((s) => !done.has(s.id));
    const sScheme = o.sensitivity === false ? null : (o.sensitivity ?? sensitivityScheme(specs));

    if (o.queue) {
      const { runSweepRemote } = await import('../queue/sweep-remote.js');
      const r = await runSweepRemote(o, { inputs, todo, sensitivityScheme: sScheme, onPoint: finish });
      record.sensitivity = r.sensitivity;
      timings = r.timings;
    } else {
      base = await openSweepBase(inputs);
      const track = new ProgressTracker('sweep', specs.length, o.onProgress, 'point');
      for (const spec of specs) {
        checkAborted(o.signal);
        if (!todo.includes(spec)) {
          track.tick(`${spec.id} (kept from the earlier run)`);
          continue;
        }
        await finish(spec, await runSweepPoint(o, spec, pointOut(outDir, spec), inputs, base));
        track.tick(spec.id);
      }
      if (sScheme) record.sensitivity = await sweepSensitivity(inputs, base, sScheme, o);
    }

    record.points = specs.filter((s) => done.has(s.id)).map((s) => done.get(s.id)!);
    markFrontiers(record.points);
    record.recommendations = shipRecommendations(record.points, budgets);
    record.law = lawPanel(record.points);
    await save();
    const csvPath = join(outDir, 'sweep.csv');
    await atomicWriteFile(csvPath, toCsv(record.points), { overwrite: true });
    const reportPath = join(outDir, 'report.html');
    await atomicWriteFile(reportPath, renderSweepReport(record), { overwrite: true });
    return { record, json: jsonPath, csv: csvPath, report: reportPath, ...(timings ? { timings } : {}) };
  } finally {
    await base?.engine.close();
    await inputs?.weights.close();
    await ws.release();
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

export type { SweepMethod, SweepFormat, SweepGrid } from './plan.js';
export type { ShipChoice } from '../../eval/sweep-types.js';

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
