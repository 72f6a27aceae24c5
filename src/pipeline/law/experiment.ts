// `bitscale law experiment`: the trainer wired into the resumable `runLawExperiment` hook. For each
// grid point (model shape N × training tokens D × tied training precision w/a/kv) a small Llama is
// trained on the bundled Moby-Dick corpus (seeded, deterministic), then its linear weights are
// post-training quantized by round-to-nearest through quant's own codec (`fakeQuant` with the scheme
// int<P>-channel-restricted, the grid low-precision training uses too: it is idempotent, so PTQ at the
// training precision is exact, as the law's robustification term assumes) and the validation loss of
// every variant is recorded. The hook is called once per (N, D, train, post) point; the trained
// model of the last (N, D, train) is kept, so the PTQ variants of one training run share it and
// a finished run is never recomputed (the runs file is the resume state).
//
// Legend: N = non-embedding parameters, D = training tokens = steps·batch·context,
// P_post = weight bits after PTQ, δ_PTQ = loss(PTQ) − loss(no PTQ), same weights otherwise.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, FormatError } from '../../core/errors.js';
import { ProgressTracker, type ProgressFn } from '../../core/progress.js';
import { atomicWriteFile, readJsonFileSync } from '../../formats/io/file.js';
import { openWorkspace } from '../../formats/io/output.js';
import type { ModelConfig } from '../../model/config.js';
import { renderChart, type ChartSeries } from '../../report/svg.js';
import { KUMAR2024, fitLaw, predictRow, type ConstantName, type FitOptions, type FitResult, type RunRow, type TrainPrecision } from '../../scaling/index.js';
import { TrainedBpeTokenizer, trainBpe } from '../../train/bpe-trainer.js';
import { mobyDickText, tokenize, type TokenSplit } from '../../train/data.js';
import { FULL_PRECISION, weightScheme, type LowPrecision } from '../../train/lowprec.js';
import { llamaConfig, paramSpecs } from '../../train/graph.js';
import { Trainer, TRAIN_DEFAULTS, train, type TrainSettings } from '../../train/trainer.js';
import { fakeQuant } from '../../quant/index.js';
import { pointKey as pointKeyOf, runLawExperiment, type ExperimentRun, type LawGridPoint } from './law.js';
import { PRESETS } from '../train.js';
import type { QueueSettings } from '../queue/client.js';

/** A grid: shapes × token budgets × training precisions, every model evaluated at each PTQ width. */
export interface ExperimentGrid {
  name: string;
  /** shared by every shape, so losses are comparable across N */
  vocabSize: number;
  context: number;
  batch: number;
  /** Moby-Dick chapters used (the corpus is ~480k tokens at vocab 512; fewer = faster tokenizer) */
  maxChapters?: number;
  /** shape presets (src/pipeline/train.ts PRESETS), vocab/context overridden */
  presets: string[];
  /** optimizer steps per run; D = steps·batch·context */
  steps: number[];
  /** tied training bits for w/a/kv; null = float32 (high precision) */
  trainBits: (number | null)[];
  /**
   * untied training precisions, each run at every preset × steps like trainBits (a missing or null
   * width = float32): γ_a and γ_kv are only identified by runs where one width moves alone
   */
  precisions?: TrainPrecision[];
  /** PTQ weight widths evaluated on every trained model (no-PTQ is always recorded) */
  postBits: number[];
  /** extra token budgets at one N (float32 training), for δ_PTQ vs D */
  dSweep?: { preset: string; steps: number[]; postBits: number[] };
  lr?: number;
  warmupSteps?: number;
  /** validation batches per evaluation (all variants use the same tokens) */
  valBatches?: number;
  seed?: number;
}

/**
 * small: smoke test / CI, a few minutes on 2 cores. micro: what ran on the shared 2-core machine
 * (docs/scaling-laws.md). default: a few hours on 2 idle cores (3 N × 4 D × 3 precisions + D sweep).
 */
export const GRIDS: Record<string, ExperimentGrid> = {
  small: { name: 'small', vocabSize: 320, context: 32, batch: 4, maxChapters: 8, presets: ['nano', 'tiny'], steps: [30, 60], trainBits: [null, 4], postBits: [4, 3], valBatches: 4 },
  micro: {
    name: 'micro', vocabSize: 512, context: 64, batch: 8, maxChapters: 40, presets: ['nano', 'tiny'], steps: [100, 200, 400], trainBits: [null, 4], postBits: [8, 4, 3],
    dSweep: { preset: 'tiny', steps: [50, 100, 200, 400, 800], postBits: [4, 3] }, valBatches: 16,
  },
  default: {
    name: 'default', vocabSize: 1024, context: 128, batch: 8, presets: ['tiny', '0.5m', 'default'], steps: [200, 400, 800, 1600], trainBits: [null, 8, 4], postBits: [8, 4, 3],
    dSweep: { preset: '0.5m', steps: [100, 200, 400, 800, 1600, 3200], postBits: [4, 3] }, valBatches: 32,
  },
};

/** Extra shapes for the micro grid (smaller than `tiny`). */
const EXTRA_SHAPES: Record<string, (typeof PRESETS)[string]> = {
  nano: { vocabSize: 512, hiddenSize: 32, intermediateSize: 96, nLayers: 2, nHeads: 2, context: 64 },
};

function shapeOf(preset: string): (typeof PRESETS)[string] {
  const s = PRESETS[preset] ?? EXTRA_SHAPES[preset];
  if (!s) throw new ConfigError('bad_config', 'unknown shape preset in the grid', { field: 'presets', expected: [...Object.keys(PRESETS), ...Object.keys(EXTRA_SHAPES)].join(', '), found: preset });
  return s;
}

/** A grid by name (small, micro, default) or from a JSON file with ExperimentGrid fields. */
export function loadGrid(spec: string): ExperimentGrid {
  const g = GRIDS[spec];
  if (g) return g;
  if (!existsSync(spec)) throw new ConfigError('bad_option', 'unknown grid', { field: '--grid', expected: `${Object.keys(GRIDS).join(', ')} or a JSON file`, found: spec });
  const raw = readJsonFileSync(spec);
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError('bad_config', 'a grid file holds one JSON object', { file: spec, found: Array.isArray(raw) ? 'an array' : String(raw) });
  const j = raw as ExperimentGrid;
  const posInt = (v: unknown, field: string) => {
    if (!(Number.isInteger(v) && (v as number) > 0)) throw new ConfigError('bad_config', 'grid field missing or invalid', { file: spec, field, expected: 'a positive integer', found: v });
  };
  for (const k of ['vocabSize', 'context', 'batch'] as const) posInt(j[k], k);
  for (const k of ['presets', 'steps', 'trainBits', 'postBits'] as const) {
    if (!Array.isArray(j[k]) || !j[k].length) throw new ConfigError('bad_config', 'grid field missing or empty', { file: spec, field: k, expected: 'a non-empty array', found: j[k] });
  }
  j.steps.forEach((s, i) => posInt(s, `steps[${i}]`));
  j.presets.forEach(shapeOf);
  if (j.precisions !== undefined) {
    if (!Array.isArray(j.precisions)) throw new ConfigError('bad_config', 'grid field is not an array', { file: spec, field: 'precisions', expected: '[{ "w": 4 }, { "a": 4 }, …]', found: j.precisions });
    j.precisions = j.precisions.map((t, i) => untiedPrecision(t, `${spec}`, `precisions[${i}]`));
  }
  return { ...j, name: j.name ?? spec };
}

/** 'fp32', 'w/a/kv 4' (tied) or 'w4 kv8' (untied; float32 widths left out) for progress lines and charts. */
export function precisionLabel(t: TrainPrecision | undefined): string {
  if (!t || (t.w === undefined && t.a === undefined && t.kv === undefined)) return 'fp32';
  if (t.w === t.a && t.a === t.kv) return `w/a/kv ${t.w}`;
  return (['w', 'a', 'kv'] as const).filter((k) => t[k] !== undefined).map((k) => `${k}${t[k]}`).join(' ');
}

/** One entry of a grid file's `precisions`: widths 2–16 bits, at least one of them set; nulls dropped. */
function untiedPrecision(t: unknown, file: string, field: string): TrainPrecision {
  if (!t || typeof t !== 'object' || Array.isArray(t)) throw new ConfigError('bad_config', 'grid precision is not an object', { file, field, expected: '{ "w"?: bits, "a"?: bits, "kv"?: bits }', found: t });
  const out: TrainPrecision = {};
  for (const [k, v] of Object.entries(t as Record<string, unknown>)) {
    if (k !== 'w' && k !== 'a' && k !== 'kv') throw new ConfigError('bad_config', 'unknown width in a grid precision', { file, field: `${field}.${k}`, expected: 'w, a or kv', found: k });
    if (v === null) continue;
    if (!(Number.isInteger(v) && (v as number) >= 2 && (v as number) <= 16)) throw new ConfigError('bad_config', 'grid precision width out of range', { file, field: `${field}.${k}`, expected: 'an integer 2–16 or null', found: v });
    out[k] = v as number;
  }
  if (!Object.keys(out).length) throw new ConfigError('bad_config', 'grid precision sets no width (float32 runs come from trainBits: null)', { file, field, found: JSON.stringify(t) });
  return out;
}

/** The model config of a preset under the grid's shared vocabulary and context. */
export function gridConfig(grid: ExperimentGrid, preset: string): ModelConfig {
  return llamaConfig({ ...shapeOf(preset), vocabSize: grid.vocabSize, context: grid.context });
}

function totalParams(c: ModelConfig): number {
  return paramSpecs(c).reduce((a, p) => a + p.shape.reduce((x, d) => x * d, 1), 0);
}

/** Non-embedding parameters: everything but the token embedding and the LM head. */
export function nonEmbeddingParams(c: ModelConfig): number {
  return paramSpecs(c)
    .filter((p) => p.name !== 'model.embed_tokens.weight' && p.name !== 'lm_head.weight')
    .reduce((a, p) => a + p.shape.reduce((x, d) => x * d, 1), 0);
}

export interface ExperimentPlan {
  points: LawGridPoint[];
  /** N → preset */
  presetOf: Map<number, string>;
}

/** Grid points in training order (the PTQ variants of one trained model are adjacent). */
export function planGrid(grid: ExperimentGrid): ExperimentPlan {
  const presetOf = new Map<number, string>();
  const points: LawGridPoint[] = [];
  const tokPerStep = grid.batch * grid.context;
  const add = (preset: string, steps: number, t: number | null | TrainPrecision, post: number[]) => {
    const N = nonEmbeddingParams(gridConfig(grid, preset));
    const prev = presetOf.get(N);
    if (prev !== undefined && prev !== preset) throw new ConfigError('bad_config', 'two presets have the same non-embedding size', { field: 'presets', found: `${prev}, ${preset}` });
    presetOf.set(N, preset);
    const train: TrainPrecision | undefined = t === null ? undefined : typeof t === 'number' ? { w: t, a: t, kv: t } : t;
    for (const p of [undefined, ...post]) points.push({ N, D: steps * tokPerStep, ...(train ? { train } : {}), ...(p !== undefined ? { postBits: p } : {}) });
  };
  for (const preset of grid.presets) for (const s of grid.steps) for (const t of [...grid.trainBits, ...(grid.precisions ?? [])]) add(preset, s, t, grid.postBits);
  if (grid.dSweep) for (const s of grid.dSweep.steps) add(grid.dSweep.preset, s, null, grid.dSweep.postBits);
  return { points, presetOf };
}

function lowPrecisionOf(t: TrainPrecision | undefined): LowPrecision {
  if (!t) return FULL_PRECISION;
  const spec = (b: number | undefined, g: 'channel' | 'tensor') => (b === undefined ? null : { bits: b, granularity: g });
  return { weights: spec(t.w, 'channel'), activations: spec(t.a, 'tensor'), kv: spec(t.kv, 'tensor') };
}

/** Round-to-nearest PTQ of every linear weight [out, in] onto int<bits>-channel-restricted through the codec. */
export function ptqWeights(config: ModelConfig, weights: Map<string, Float32Array>, bits: number): Map<string, Float32Array> {
  const out = new Map(weights);
  for (const p of paramSpecs(config)) if (p.linear) out.set(p.name, fakeQuant(weights.get(p.name)!, p.shape, weightScheme({ bits, granularity: 'channel' }), { name: p.name }));
  return out;
}

export interface LawExperimentJob {
  grid: ExperimentGrid;
  /** directory for runs.json, runs.csv, the fit and the chart */
  out: string;
  /** constants fitted at the end (default: see defaultFitParams) */
  fitParams?: ConstantName[];
  threads?: number;
  onProgress?: ProgressFn;
  /** called after each computed run (the CLI prints a line) */
  onRun?: (key: string, loss: number, extra: Record<string, unknown>) => void;
  signal?: AbortSignal;
  /** queue messages (jobs queued, failures, lost workers) */
  log?: (line: string) => void;
  /** run every training run as a job on this queue (redis://HOST:PORT[/DB]) instead of in this process */
  queue?: QueueSettings;
}

export interface DSweepRow {
  D: number;
  base: number;
  post: Record<number, number>;
  delta: Record<number, number>;
}

export interface LawExperimentReport {
  grid: string;
  runsFile: string;
  csvFile: string;
  chartFile: string | null;
  runs: ExperimentRun[];
  computed: number;
  reused: number;
  fit: FitResult | null;
  /** δ_PTQ vs D at the sweep's N (float32 training) */
  dSweep: { N: number; rows: DSweepRow[] } | null;
  /** measured vs predicted by the fitted law, per run */
  residuals: { key: string; measured: number; predicted: number }[];
}

/**
 * What micro-scale data can determine: the base law with β tied to α (the paper's choice), one γ
 * for w/a/kv together while training is tied (separate γ_w, γ_a, γ_kv once the runs include untied
 * precisions, grid `precisions`), and C_T, γ_D, γ_post for δ_PTQ. γ_N stays at the paper's
 * value: two or three sizes cannot separate it from C_T. Needs ≥ 2 N, ≥ 2 D and ≥ 2 post widths.
 */
export const DEFAULT_FIT_PARAMS: ConstantName[] = ['A', 'alpha', 'B', 'E', 'gammaW', 'CT', 'gammaD', 'gammaPost'];

export function fitExperiment(rows: RunRow[], params: ConstantName[] = DEFAULT_FIT_PARAMS, extra: Partial<FitOptions> = {}): FitResult {
  const hasLow = rows.some((r) => r.train);
  const hasPost = rows.some((r) => r.postBits !== undefined);
  const usable = params.filter((k) => (hasLow || !k.startsWith('gamma') || ['gammaD', 'gammaN', 'gammaPost'].includes(k)) && (hasPost || !['CT', 'gammaD', 'gammaN', 'gammaPost'].includes(k)));
  const untied = rows.some((r) => r.train && !(r.train.w === r.train.a && r.train.a === r.train.kv));
  const ties: FitOptions['ties'] = {};
  if (usable.includes('alpha')) ties.beta = 'alpha';
  if (usable.includes('gammaW')) {
    if (!untied) Object.assign(ties, { gammaA: 'gammaW', gammaKv: 'gammaW' });
    else for (const k of ['gammaA', 'gammaKv'] as const) if (!usable.includes(k)) usable.push(k);
  }
  return fitLaw(rows, { params: usable, ties, base: KUMAR2024, starts: 8, seed: 0, holdout: { fraction: 0.25 }, ...extra });
}

export function dSweepTable(grid: ExperimentGrid, runs: ExperimentRun[]): { N: number; rows: DSweepRow[] } | null {
  if (!grid.dSweep) return null;
  const N = nonEmbeddingParams(gridConfig(grid, grid.dSweep.preset));
  const at = runs.filter((r) => r.N === N && !r.train);
  const Ds = [...new Set(at.map((r) => r.D))].sort((a, b) => a - b);
  const rows: DSweepRow[] = [];
  for (const D of Ds) {
    const base = at.find((r) => r.D === D && r.postBits === undefined)?.loss;
    if (base === undefined) continue;
    const post: Record<number, number> = {};
    const delta: Record<number, number> = {};
    for (const b of grid.dSweep.postBits) {
      const l = at.find((r) => r.D === D && r.postBits === b)?.loss;
      if (l !== undefined) {
        post[b] = l;
        delta[b] = l - base;
      }
    }
    rows.push({ D, base, post, delta });
  }
  return { N, rows };
}

/** Rows for `law fit` as CSV (empty cells = high precision / no PTQ). */
export function runsCsv(runs: readonly ExperimentRun[]): string {
  const c = (v: number | undefined) => (v === undefined ? '' : String(v));
  const lines = ['N,D,w,a,kv,post,loss,preset,steps,train_s'];
  for (const r of runs) {
    const x = r.extra ?? {};
    lines.push([r.N, r.D, c(r.train?.w), c(r.train?.a), c(r.train?.kv), c(r.postBits), r.loss.toFixed(6), String(x.preset ?? ''), String(x.steps ?? ''), String(x.trainS ?? '')].join(','));
  }
  return lines.join('\n') + '\n';
}

function predictedVsMeasuredSvg(residuals: { key: string; measured: number; predicted: number }[], runs: ExperimentRun[]): string {
  const groups = new Map<string, ChartSeries>();
  residuals.forEach((r, i) => {
    const run = runs[i];
    const id = `train ${precisionLabel(run.train)}, ${run.postBits === undefined ? 'no PTQ' : `PTQ ${run.postBits}b`}`;
    if (!groups.has(id)) groups.set(id, { id: id.replace(/[^a-z0-9]+/gi, '-'), label: id, points: [], line: false, markers: true });
    groups.get(id)!.points.push({ x: r.measured, y: r.predicted, label: r.key });
  });
  const all = residuals.flatMap((r) => [r.measured, r.predicted]);
  const lo = Math.min(...all);
  const hi = Math.max(...all);
  const diag: ChartSeries = { id: 'diagonal', label: 'predicted = measured', points: [{ x: lo, y: lo }, { x: hi, y: hi }], line: true, markers: false, dash: '4 3' };
  return renderChart({ id: 'law-experiment', title: 'Fitted law: predicted vs measured validation loss', subtitle: 'nats/token, micro-scale Moby-Dick runs', x: { label: 'measured loss', min: lo, max: hi }, y: { label: 'predicted loss', min: lo, max: hi }, series: [diag, ...groups.values()] });
}

/** The tokenized corpus of a grid (BPE trained on the same chapters): deterministic, so every process gets the same ids. */
export function gridCorpus(grid: ExperimentGrid, signal?: AbortSignal): TokenSplit {
  const text = mobyDickText(grid.maxChapters ?? Infinity);
  const tok = new TrainedBpeTokenizer(trainBpe(text, { vocabSize: grid.vocabSize, signal }));
  return tokenize(text, tok, 0.05);
}

/** sha256 of the corpus text a grid trains on (a worker checks it matches the coordinator's). */
export function gridCorpusSha256(grid: ExperimentGrid): string {
  return createHash('sha256').update(mobyDickText(grid.maxChapters ?? Infinity)).digest('hex');
}

/** The key of the training run behind a grid point (its PTQ variants share it). */
export const trainedKey = (p: LawGridPoint) => `N=${p.N};D=${p.D};w=${p.train?.w};a=${p.train?.a};kv=${p.train?.kv}`;

export interface LawRunExtra extends Record<string, unknown> {
  preset: string;
  steps: number;
  trainS: number;
  trainValLoss: number;
}

/**
 * Trains and evaluates grid points one at a time, keeping the last trained model so the PTQ
 * variants of one training run share it. The local experiment and a queue worker both measure
 * points through this class, so a run measured remotely is the run measured locally.
 */
export class LawRunner {
  private readonly presetOf: Map<number, string>;
  private cached: { key: string; config: ModelConfig; weights: Map<string, Float32Array>; evaluator: Trainer; trainS: number; trainLoss: number } | null = null;

  constructor(
    private readonly grid: ExperimentGrid,
    private readonly opts: { data: () => TokenSplit; threads?: number; signal?: AbortSignal; onTrainStep?: (p: LawGridPoint, done: number, total: number) => void },
  ) {
    this.presetOf = planGrid(grid).presetOf;
  }

  async evaluate(p: LawGridPoint): Promise<{ loss: number; extra: LawRunExtra }> {
    const { grid } = this;
    const preset = this.presetOf.get(p.N);
    if (preset === undefined) throw new ConfigError('bad_config', 'grid point has a size no preset of the grid gives', { field: 'N', expected: [...this.presetOf.keys()].join(', '), found: p.N });
    const steps = p.D / (grid.batch * grid.context);
    if (this.cached?.key !== trainedKey(p)) {
      await this.release();
      const d = this.opts.data();
      const config = gridConfig(grid, preset);
      const lowPrecision = lowPrecisionOf(p.train);
      const settings: TrainSettings = {
        ...TRAIN_DEFAULTS, batch: grid.batch, context: grid.context, steps, lr: grid.lr ?? TRAIN_DEFAULTS.lr,
        warmupSteps: Math.min(grid.warmupSteps ?? TRAIN_DEFAULTS.warmupSteps, Math.max(1, Math.floor(steps / 5))),
        seed: grid.seed ?? 0, lowPrecision, valEvery: 0, valBatches: grid.valBatches ?? 8, ckptEvery: 0, threads: this.opts.threads,
      };
      const t0 = Date.now();
      const onTrain: ProgressFn = (e) => this.opts.onTrainStep?.(p, e.done, e.total);
      const r = await train({ config, settings, train: d.train, val: d.val, outDir: null, onProgress: onTrain, signal: this.opts.signal });
      const trainS = (Date.now() - t0) / 1000;
      // evaluation keeps the trained activation/KV precision; weights are fed exactly (PTQ or not)
      const evaluator = await Trainer.create(config, { ...settings, lowPrecision: { ...lowPrecision, weights: null } }, r.effective);
      this.cached = { key: trainedKey(p), config, weights: r.effective, evaluator, trainS, trainLoss: r.finalValLoss };
    }
    const c = this.cached!;
    const w = p.postBits === undefined ? c.weights : ptqWeights(c.config, c.weights, p.postBits);
    for (const s of paramSpecs(c.config)) if (s.linear) c.evaluator.setParam(s.name, w.get(s.name)!);
    const loss = await c.evaluator.evaluate(this.opts.data().val);
    return { loss, extra: { preset, steps, trainS: Math.round(c.trainS * 10) / 10, trainValLoss: c.trainLoss } };
  }

  async release(): Promise<void> {
    if (this.cached) await this.cached.evaluator.release();
    this.cached = null;
  }
}

/** Runs (or resumes) the grid, then fits the law and writes runs.json, runs.csv, fit.json and an SVG. */
export async function lawExperiment(job: LawExperimentJob): Promise<LawExperimentReport> {
  const { grid } = job;
  const ws = await openWorkspace(job.out);
  try {
    return await experimentIn(job, grid);
  } finally {
    await ws.release();
  }
}

/** The runs file's entries, or a typed error when it is not `{ "runs": [ … ] }`. */
function runsOf(j: unknown, file: string): { key?: string }[] {
  const runs = j && typeof j === 'object' && !Array.isArray(j) ? (j as { runs?: unknown }).runs : undefined;
  if (!Array.isArray(runs)) throw new FormatError('bad_header', 'not a runs file', { file, field: 'runs', expected: '{ "runs": [ … ] }', found: Array.isArray(j) ? 'an array' : typeof j, hint: 'move the file away to start the experiment afresh' });
  return runs.filter((r): r is { key?: string } => !!r && typeof r === 'object');
}

async function experimentIn(job: LawExperimentJob, grid: ExperimentGrid): Promise<LawExperimentReport> {
  const runsFile = join(job.out, 'runs.json');
  const plan = planGrid(grid);
  let data: TokenSplit | null = null; // tokenized lazily: a fully finished grid needs no tokenizer
  const getData = () => (data ??= gridCorpus(grid, job.signal));
  // progress in per-mille of the remaining training work, a step weighted by the model's size
  // (PTQ evaluations are cheap next to training), so the ETA does not jump at each PTQ variant
  const doneKeys = new Set<string>();
  if (existsSync(runsFile)) for (const r of runsOf(readJsonFileSync(runsFile), runsFile)) if (r.key) doneKeys.add(r.key);
  const work = new Map<string, number>();
  for (const p of plan.points) if (!doneKeys.has(pointKeyOf(p))) work.set(trainedKey(p), (p.D / (grid.batch * grid.context)) * totalParams(gridConfig(grid, plan.presetOf.get(p.N)!)));
  const totalWork = [...work.values()].reduce((a, b) => a + b, 0);
  const PERMILLE = 1000;
  const tracker = new ProgressTracker('law-experiment', PERMILLE, job.onProgress);
  let shown = 0;
  let workDone = 0;
  const trained = new Set<string>();
  const runner = new LawRunner(grid, {
    data: getData,
    threads: job.threads,
    signal: job.signal,
    onTrainStep: (p, done, total) => {
      const perStep = (work.get(trainedKey(p)) ?? 0) / total;
      const now = Math.floor((PERMILLE * (workDone + done * perStep)) / Math.max(totalWork, 1));
      if (now > shown) tracker.tick(`${plan.presetOf.get(p.N)} D=${p.D} ${precisionLabel(p.train)}: step ${done}/${total}`, now - shown);
      shown = Math.max(shown, now);
      if (done === total && !trained.has(trainedKey(p))) {
        trained.add(trainedKey(p));
        workDone += total * perStep;
      }
    },
  });
  try {
    const result = job.queue
      ? await (await import('../queue/law-remote.js')).runLawExperimentRemote({ grid, plan: plan.points, runsFile, queue: job.queue, onProgress: job.onProgress, onRun: job.onRun, log: job.log, signal: job.signal })
      : await runLawExperiment({
          grid: plan.points,
          runsFile,
          signal: job.signal,
          trainAndEvaluate: async (p) => {
            const r = await runner.evaluate(p);
            job.onRun?.(pointKeyOf(p), r.loss, r.extra);
            return r;
          },
        });
    await runner.release();
    const csvFile = join(job.out, 'runs.csv');
    await atomicWriteFile(csvFile, runsCsv(result.runs), { overwrite: true });
    let fit: FitResult | null = null;
    let residuals: LawExperimentReport['residuals'] = [];
    let chartFile: string | null = null;
    const Ns = new Set(result.runs.map((r) => r.N));
    const Ds = new Set(result.runs.map((r) => r.D));
    if (Ns.size >= 2 && Ds.size >= 2 && result.runs.length >= 8) {
      fit = fitExperiment(result.runs, job.fitParams, { signal: job.signal });
      residuals = result.runs.map((r) => ({ key: r.key, measured: r.loss, predicted: predictRow(r, fit!.constants.values) }));
      await atomicWriteFile(join(job.out, 'fit.json'), JSON.stringify({ constants: fit.constants, estimates: fit.estimates, heldOut: fit.heldOut ?? null }, null, 2) + '\n', { overwrite: true });
      chartFile = join(job.out, 'predicted-vs-measured.svg');
      await atomicWriteFile(chartFile, predictedVsMeasuredSvg(residuals, result.runs), { overwrite: true });
    }
    return { grid: grid.name, runsFile, csvFile, chartFile, runs: result.runs, computed: result.computed, reused: result.reused, fit, dSweep: dSweepTable(grid, result.runs), residuals };
  } finally {
    await runner.release();
  }
}
