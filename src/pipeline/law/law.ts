// `bitscale law …` jobs: predict, compute-optimal precision, fit to runs, charts, and the
// scaling-experiment hook. Each returns a plain object (the CLI prints it); files are written
// atomically. The formulas live in src/scaling (browser-safe); this file adds file access.
//
// Legend: N = parameters, D = tokens, P = bit width, C = compute (FLOPs).
import { join } from 'node:path';
import { ConfigError } from '../../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../../core/progress.js';
import { atomicWriteFile, fileExists, readJsonFile, readTextFile } from '../../formats/io/file.js';
import { openWorkspace } from '../../formats/io/output.js';
import { scalingCharts, type ScalingPlotOptions } from '../../report/scaling-plots.js';
import {
  CONSTANT_NAMES,
  CONSTANT_SETS,
  KUMAR2024,
  checkRow,
  computeOptimalFixedN,
  computeOptimalSeparate,
  computeOptimalTied,
  criticalDataSize,
  fitLaw,
  parseRuns,
  parseRunsJson,
  predict,
  type ConstantName,
  type ConstantSet,
  type CostWeights,
  type FitOptions,
  type FitResult,
  type LawConstants,
  type LossPrediction,
  type RunRow,
  type TrainPrecision,
} from '../../scaling/index.js';

const REQUIRED: ConstantName[] = CONSTANT_NAMES.filter((k) => !k.startsWith('cRobust'));

/**
 * A constant set by built-in name (default 'kumar2024') or from a JSON file holding a ConstantSet,
 * the output of `bitscale law fit --out` / `--json`, or a flat object of constant values.
 */
export async function loadConstants(spec?: string): Promise<ConstantSet> {
  if (spec === undefined) return KUMAR2024;
  const builtin = CONSTANT_SETS[spec];
  if (builtin) return builtin;
  if (!(await fileExists(spec))) {
    throw new ConfigError('bad_option', 'unknown constants', { field: '--constants', expected: `a built-in set (${Object.keys(CONSTANT_SETS).join(', ')}) or a JSON file`, found: spec });
  }
  const doc = await readJsonFile<Record<string, unknown>>(spec);
  const inner = (doc.constants ?? doc) as Record<string, unknown>;
  const values = (inner.values ?? inner) as Record<string, unknown>;
  for (const k of REQUIRED) {
    if (typeof values[k] !== 'number' || !Number.isFinite(values[k])) {
      throw new ConfigError('bad_config', 'constant missing or not a finite number', { file: spec, field: k, expected: 'a finite number', found: values[k] ?? 'nothing' });
    }
  }
  const picked = Object.fromEntries(CONSTANT_NAMES.filter((k) => typeof values[k] === 'number').map((k) => [k, values[k]])) as unknown as LawConstants;
  return {
    name: typeof inner.name === 'string' ? inner.name : spec,
    citation: typeof inner.citation === 'string' ? inner.citation : `loaded from ${spec}`,
    values: picked,
    provenance: (inner.provenance as ConstantSet['provenance']) ?? {},
    fittedRange: inner.fittedRange as ConstantSet['fittedRange'],
    caveats: Array.isArray(inner.caveats) ? (inner.caveats as string[]) : [],
  };
}

export interface PredictJob {
  N: number;
  D: number;
  /** training bits for weights, activations and KV cache together; w/a/kv override it */
  trainBits?: number;
  wBits?: number;
  aBits?: number;
  kvBits?: number;
  postBits?: number;
  constants?: string;
}

export interface PredictReport extends LossPrediction {
  constants: string;
  N: number;
  D: number;
  train: TrainPrecision | null;
  postBits: number | null;
  /** critical data size for the given post-training width (null without --post-bits) */
  criticalDataSize: number | null;
}

export async function lawPredict(job: PredictJob): Promise<PredictReport> {
  const set = await loadConstants(job.constants);
  const t = job.trainBits;
  const train: TrainPrecision = { w: job.wBits ?? t, a: job.aBits ?? t, kv: job.kvBits ?? t };
  const anyTrain = train.w !== undefined || train.a !== undefined || train.kv !== undefined;
  const p = predict({ N: job.N, D: job.D, train: anyTrain ? train : undefined, postBits: job.postBits }, set);
  const crit = job.postBits === undefined ? null : criticalDataSize(job.N, job.postBits, set.values, anyTrain ? train : undefined);
  return { constants: set.name, N: job.N, D: job.D, train: anyTrain ? train : null, postBits: job.postBits ?? null, criticalDataSize: crit, ...p };
}

export interface OptimalJob {
  compute: number;
  /** tied (one P for w/a/kv, default) or separate P_w, P_a, P_kv */
  mode?: 'tied' | 'separate';
  /** fix the model size and optimise only D and P */
  N?: number;
  minBits?: number;
  maxBits?: number;
  costWeights?: CostWeights;
  constants?: string;
}

export interface OptimalReport {
  constants: string;
  mode: 'tied' | 'separate' | 'fixed-N';
  compute: number;
  /** the compute-optimal bit width (tied: P*; separate: the cost-weighted mean of the three) */
  precision: number;
  precisions: { w: number; a: number; kv: number };
  N: number;
  D: number;
  nEff: number;
  loss: number;
  tokensPerParam: number;
  caveats: string[];
}

export async function lawOptimal(job: OptimalJob): Promise<OptimalReport> {
  const set = await loadConstants(job.constants);
  const search = { minBits: job.minBits, maxBits: job.maxBits, costWeights: job.costWeights };
  const mode = job.N !== undefined ? 'fixed-N' : (job.mode ?? 'tied');
  if (job.N !== undefined && job.mode === 'separate') throw new ConfigError('bad_option', 'fixed N is only supported with tied precisions', { field: '--N', hint: 'drop --separate or --N' });
  const o =
    mode === 'fixed-N' ? computeOptimalFixedN(job.compute, job.N!, set, search) : mode === 'separate' ? computeOptimalSeparate(job.compute, set, search) : computeOptimalTied(job.compute, set, search);
  return {
    constants: set.name,
    mode,
    compute: o.compute,
    precision: mode === 'separate' ? o.costBits : o.precision.w,
    precisions: o.precision,
    N: o.N,
    D: o.D,
    nEff: o.nEff,
    loss: o.loss,
    tokensPerParam: o.tokensPerParam,
    caveats: o.caveats,
  };
}

export interface FitJob extends Omit<FitOptions, 'base'> {
  /** runs file, .json or .csv */
  file: string;
  /** starting point and fixed constants (name or JSON file) */
  constants?: string;
  /** write the fitted constant set here (JSON, usable as --constants) */
  out?: string;
}

export interface FitReport extends FitResult {
  file: string;
  written: string | null;
}

export async function lawFit(job: FitJob): Promise<FitReport> {
  const text = await readTextFile(job.file, 'cannot read runs');
  const rows = parseRuns(text, job.file);
  const base = await loadConstants(job.constants);
  const { file: _f, constants: _c, out: _o, ...opts } = job;
  const r = fitLaw(rows, { ...opts, base });
  let written: string | null = null;
  if (job.out) {
    await atomicWriteFile(job.out, JSON.stringify({ constants: r.constants, estimates: r.estimates, ci: r.ci ?? null }, null, 2) + '\n', { overwrite: true, inputs: [job.file] });
    written = job.out;
  }
  return { ...r, file: job.file, written };
}

export interface PlotJob extends ScalingPlotOptions {
  out: string;
  constants?: string;
}

/** Writes loss-vs-data.svg, delta-ptq-vs-data.svg and iso-compute.svg into `out`. */
export async function lawPlot(job: PlotJob): Promise<{ files: string[]; caveats: string[] }> {
  const set = await loadConstants(job.constants);
  const { out, constants: _c, ...opts } = job;
  const charts = scalingCharts(set, opts);
  const ws = await openWorkspace(out);
  try {
    const files: string[] = [];
    for (const c of charts) {
      const f = join(out, `${c.name}.svg`);
      await atomicWriteFile(f, c.svg, { overwrite: true });
      files.push(f);
    }
    return { files, caveats: set.caveats };
  } finally {
    await ws.release();
  }
}

// ---------------------------------------------------------------------------------------------
// Scaling experiments (hook for the trainer)
//
// `runLawExperiment` trains and evaluates every point of a grid through a caller-supplied
// `trainAndEvaluate` callback and records each finished run in a JSON runs file, rewritten
// atomically after every run. A restarted experiment reads the file and never recomputes a
// finished point (points are matched by their configuration, not their order), so an
// interrupted sweep resumes where it stopped. The runs file is directly a `law fit` input.
// `bitscale law experiment` wires the trainer into this hook (src/pipeline/law/experiment.ts).
// ---------------------------------------------------------------------------------------------

export interface LawGridPoint {
  N: number;
  D: number;
  train?: TrainPrecision;
  postBits?: number;
}

export interface TrainAndEvaluateResult {
  /** validation loss, nats/token */
  loss: number;
  /** anything else worth keeping (wall time, perplexity, checkpoint path) */
  extra?: Record<string, unknown>;
}

export type TrainAndEvaluate = (point: LawGridPoint, ctx: { key: string; signal?: AbortSignal }) => Promise<TrainAndEvaluateResult>;

export interface ExperimentJob {
  grid: LawGridPoint[];
  runsFile: string;
  trainAndEvaluate: TrainAndEvaluate;
  /** fit these options to all finished runs at the end (skipped when absent) */
  fit?: FitOptions;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

export interface ExperimentRun extends RunRow {
  key: string;
  extra?: Record<string, unknown>;
}

export interface ExperimentResult {
  runs: ExperimentRun[];
  computed: number;
  reused: number;
  fit?: FitResult;
}

/** A stable key for a grid point: equal configurations give equal keys. */
export function pointKey(p: LawGridPoint): string {
  const b = (v: number | undefined) => (v === undefined ? 'hi' : String(v));
  return `N=${p.N};D=${p.D};w=${b(p.train?.w)};a=${b(p.train?.a)};kv=${b(p.train?.kv)};post=${p.postBits === undefined ? 'none' : p.postBits}`;
}

/** The Cartesian grid N × D × tied training bits × post-training bits (undefined = high precision / no PTQ). */
export function lawGrid(g: { N: number[]; D: number[]; trainBits?: (number | undefined)[]; postBits?: (number | undefined)[] }): LawGridPoint[] {
  const out: LawGridPoint[] = [];
  for (const N of g.N) {
    for (const D of g.D) {
      for (const t of g.trainBits ?? [undefined]) {
        for (const post of g.postBits ?? [undefined]) {
          const p: LawGridPoint = { N, D };
          if (t !== undefined) p.train = { w: t, a: t, kv: t };
          if (post !== undefined) p.postBits = post;
          out.push(p);
        }
      }
    }
  }
  return out;
}

/** The runs recorded so far in a runs file (none when it does not exist). */
export async function readRunsFile(path: string): Promise<ExperimentRun[]> {
  if (!(await fileExists(path))) return [];
  const text = await readTextFile(path, 'cannot read runs');
  const rows = parseRunsJson(text, path);
  const raw = (JSON.parse(text) as { runs: { key?: string; extra?: Record<string, unknown> }[] }).runs;
  return rows.map((r, i) => ({ ...r, key: raw[i].key ?? pointKey(r), ...(raw[i].extra ? { extra: raw[i].extra } : {}) }));
}

export async function runLawExperiment(job: ExperimentJob): Promise<ExperimentResult> {
  const runs = await readRunsFile(job.runsFile);
  const done = new Set(runs.map((r) => r.key));
  const seen = new Set<string>();
  const todo = job.grid.filter((p) => {
    const k = pointKey(p);
    if (seen.has(k)) return false; // a grid listing a point twice trains it once
    seen.add(k);
    return !done.has(k);
  });
  const progress = new ProgressTracker('law-experiment', todo.length, job.onProgress, 'run');
  let computed = 0;
  for (const p of todo) {
    checkAborted(job.signal);
    const key = pointKey(p);
    const r = await job.trainAndEvaluate(p, { key, signal: job.signal });
    const row: ExperimentRun = { N: p.N, D: p.D, loss: r.loss, key, ...(p.train ? { train: p.train } : {}), ...(p.postBits !== undefined ? { postBits: p.postBits } : {}), ...(r.extra ? { extra: r.extra } : {}) };
    checkRow(row, job.runsFile, runs.length); // a callback returning a bad loss stops here, nothing written
    runs.push(row);
    await atomicWriteFile(job.runsFile, JSON.stringify({ version: 1, runs }, null, 1) + '\n', { overwrite: true });
    computed++;
    progress.tick(key);
  }
  const result: ExperimentResult = { runs, computed, reused: seen.size - todo.length };
  if (job.fit) result.fit = fitLaw(runs, job.fit);
  return result;
}
