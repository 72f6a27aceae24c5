// Fitting any subset of the law's constants to measured runs: robust non-linear least squares.
//
// Objective: Σ_i huber_δ(r_i), r_i = log L_pred(row_i) − log L_obs(row_i) (Huber on log-loss
// residuals, as Hoffmann et al. 2022 fit Chinchilla; δ = 1e-3 by default). Solver: the
// Levenberg–Marquardt of `ml-levenberg-marquardt` (mljs; pure JS, browser-safe, bounds by
// clamping) run on pseudo-residuals ρ_i = sign(r_i)·√(2·huber(r_i)), whose sum of squares is twice
// the Huber objective, so LM minimises the robust loss itself. No maintained npm package offers
// Huber + bounds directly (checked: ml-levenberg-marquardt 5.1.0 has bounds and weights but only
// squared loss; fmin 0.0.4 and optimization-js 1.5.0 have neither bounds nor robust losses and are
// unmaintained). The textbook alternative, IRLS around the same LM (Huber weights
// ω_i = min(1, δ/|r_i|)), is kept as `method: 'irls'`: it reaches the same estimates (1.4e-4
// relative) 7.7× slower (bench/law-fit.bench.ts: 29.7 s vs 3.9 s on 270 runs, 8 starts + 20
// bootstrap refits), hence the pseudo-residuals by default. The package's `weights` option is applied
// inconsistently (1/w² in its step, w² in its error measure), so it is not used.
//
// Parameterisation: positive constants are fitted as logs; A, B and C_T are fitted at reference
// scales (a = log A − α·log N_ref, N_ref the geometric mean of the runs' N; likewise B with D_ref
// and C_T with both), which decorrelates them from their exponents. Several seeded starts; the
// best Huber objective wins. Bootstrap: refit on rows resampled with replacement, percentile CIs.
import { levenbergMarquardt } from 'ml-levenberg-marquardt';
import { ConfigError, NumericError } from '../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../core/progress.js';
import { Rng } from '../core/rng.js';
import { CONSTANT_NAMES, KUMAR2024, type ConstantName, type ConstantSet, type LawConstants } from './constants.js';
import { baseLoss, deltaPtq, effectiveParams } from './law.js';
import type { RunRow } from './runs.js';

export const DEFAULT_HUBER_DELTA = 1e-3;

/** Default bounds in natural units (inclusive). */
export const DEFAULT_BOUNDS: Record<ConstantName, [number, number]> = {
  A: [1e-2, 1e9],
  alpha: [0.02, 2],
  B: [1e-2, 1e12],
  beta: [0.02, 2],
  E: [0.05, 20],
  gammaW: [0.05, 30],
  gammaA: [0.05, 30],
  gammaKv: [0.05, 30],
  CT: [1e-10, 1e6],
  gammaD: [0, 2],
  gammaN: [0, 2],
  gammaPost: [0.05, 20],
  cRobustW: [1e-3, 20],
  cRobustA: [1e-3, 20],
  cRobustKv: [1e-3, 20],
};

const LINEAR = new Set<ConstantName>(['alpha', 'beta', 'gammaD', 'gammaN']);

export interface FitOptions {
  /** constants to fit (default: the base law A, α, B, β, E) */
  params?: ConstantName[];
  /** tie a constant to another, e.g. {beta: 'alpha'} or {gammaA: 'gammaW', gammaKv: 'gammaW'} */
  ties?: Partial<Record<ConstantName, ConstantName>>;
  /** starting point and the values of constants not fitted (default KUMAR2024) */
  base?: ConstantSet;
  bounds?: Partial<Record<ConstantName, [number, number]>>;
  huberDelta?: number;
  /** how the Huber loss is minimised (default 'pseudo-residual') */
  method?: RobustMethod;
  /** seeded starts (the first is `base`), default 8 */
  starts?: number;
  seed?: number;
  /** bootstrap resamples for confidence intervals (0 = none) */
  bootstrap?: number;
  /** confidence level of the intervals, default 0.95 */
  level?: number;
  /** held-out evaluation: a random fraction of rows, or the rows with the largest N */
  holdout?: { fraction: number } | 'largest-N';
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

export interface FitResult {
  constants: ConstantSet;
  params: ConstantName[];
  estimates: Partial<Record<ConstantName, number>>;
  /** percentile bootstrap intervals, when bootstrap > 0 */
  ci?: Partial<Record<ConstantName, [number, number]>>;
  /** bootstrap standard errors */
  se?: Partial<Record<ConstantName, number>>;
  bootstrapOk?: number;
  /** confidence level of `ci` */
  level: number;
  huberLoss: number;
  /** root-mean-square log-loss residual on the rows fitted */
  rmseLog: number;
  n: number;
  heldOut?: { n: number; rmseLog: number; maeLoss: number; trainN: number };
  caveats: string[];
}

/** Predicted loss for one run under constants `c` (the unified law). */
export function predictRow(r: RunRow, c: LawConstants): number {
  const L = baseLoss(effectiveParams(r.N, r.train, c), r.D, c);
  return r.postBits === undefined ? L : L + deltaPtq(r.N, r.D, r.postBits, c, r.train);
}

export function huber(r: number, delta: number): number {
  const a = Math.abs(r);
  return a <= delta ? 0.5 * r * r : delta * (a - 0.5 * delta);
}

interface Codec {
  names: ConstantName[];
  encode(c: LawConstants): number[];
  decode(theta: number[]): LawConstants;
  lo: number[];
  hi: number[];
}

function geoMean(xs: number[]): number {
  return Math.exp(xs.reduce((s, x) => s + Math.log(x), 0) / xs.length);
}

function makeCodec(names: ConstantName[], ties: Partial<Record<ConstantName, ConstantName>>, base: LawConstants, rows: RunRow[], bounds: Record<ConstantName, [number, number]>): Codec {
  const lnN = Math.log(geoMean(rows.map((r) => r.N)));
  const lnD = Math.log(geoMean(rows.map((r) => r.D)));
  const get = (c: LawConstants, k: ConstantName) => c[k] as number;
  // log-scale shift that decorrelates a scale constant from its exponents
  const shift = (k: ConstantName, c: LawConstants) =>
    k === 'A' ? -c.alpha * lnN : k === 'B' ? -c.beta * lnD : k === 'CT' ? c.gammaD * lnD - c.gammaN * lnN : 0;
  const applyTies = (c: LawConstants) => {
    for (const [k, to] of Object.entries(ties) as [ConstantName, ConstantName][]) (c as unknown as Record<string, number>)[k] = get(c, to);
    return c;
  };
  const clamp = (k: ConstantName, v: number) => Math.min(bounds[k][1], Math.max(bounds[k][0], v));
  return {
    names,
    encode(c) {
      return names.map((k) => (LINEAR.has(k) ? get(c, k) : Math.log(get(c, k)) + shift(k, c)));
    },
    decode(theta) {
      const c = { ...base };
      const rec = c as unknown as Record<string, number>;
      // exponents first: the scale constants' shifts depend on them
      names.forEach((k, i) => {
        if (LINEAR.has(k)) rec[k] = clamp(k, theta[i]);
      });
      applyTies(c);
      names.forEach((k, i) => {
        if (!LINEAR.has(k)) rec[k] = clamp(k, Math.exp(theta[i] - shift(k, c)));
      });
      return applyTies(c);
    },
    lo: names.map((k) => (LINEAR.has(k) ? bounds[k][0] : -Infinity)),
    hi: names.map((k) => (LINEAR.has(k) ? bounds[k][1] : Infinity)),
  };
}

interface Solved {
  theta: number[];
  objective: number;
}

/** One robust solve from one start: Levenberg–Marquardt on Huber pseudo-residuals. */
/**
 * How the Huber loss is handed to the least-squares solver: 'pseudo-residual' (default, see the
 * header) or 'irls' (iteratively reweighted least squares, kept as the textbook reference: same
 * minimum, about 9× slower; bench/law-fit.bench.ts measures both).
 */
export type RobustMethod = 'pseudo-residual' | 'irls';

function solve(rows: RunRow[], codec: Codec, start: number[], delta: number, method: RobustMethod = 'pseudo-residual'): Solved {
  const n = rows.length;
  const logObs = rows.map((r) => Math.log(r.loss));
  const resid = (theta: number[]) => {
    const c = codec.decode(theta);
    return rows.map((r, i) => Math.log(predictRow(r, c)) - logObs[i]);
  };
  const objective = (theta: number[]) => {
    const res = resid(theta);
    let s = 0;
    for (const x of res) s += Number.isFinite(x) ? huber(x, delta) : Infinity;
    return s;
  };
  // LM bounds: the internal (log) space is unbounded for scale constants; decode() clamps them
  const minValues = codec.lo.map((v) => (Number.isFinite(v) ? v : -1e6));
  const maxValues = codec.hi.map((v) => (Number.isFinite(v) ? v : 1e6));
  let theta = start.slice();
  let best: Solved = { theta: theta.slice(), objective: objective(theta) };
  const x = Array.from({ length: n }, (_, i) => i);
  const y = new Array<number>(n).fill(0);
  // Pseudo-residuals: each LM call minimises Σ ρ_i² with ρ_i = sign(r_i)·√(2·huber(r_i)), i.e. 2×
  // the Huber objective itself. IRLS: each call minimises Σ ω_i·r_i² with Huber weights
  // ω_i = min(1, δ/|r_i|) frozen at the call's start. Calls are chained because the package has
  // no relative stopping rule.
  for (let outer = 0; outer < (method === 'irls' ? 60 : 40); outer++) {
    const sw = method === 'irls' ? resid(theta).map((r) => Math.sqrt(Math.abs(r) <= delta || !Number.isFinite(r) ? 1 : delta / Math.abs(r))) : null;
    const fitted = levenbergMarquardt(
      { x, y },
      (p: number[]) => {
        const c = codec.decode(p);
        return (i: number) => {
          const r = Math.log(predictRow(rows[i], c)) - logObs[i];
          return sw ? sw[i] * r : Math.sign(r) * Math.sqrt(2 * huber(r, delta));
        };
      },
      { initialValues: theta, minValues, maxValues, maxIterations: 15, gradientDifference: 1e-7, centralDifference: false, errorTolerance: 1e-14, damping: 1e-3 },
    );
    theta = fitted.parameterValues;
    const obj = objective(theta);
    const improved = best.objective - obj;
    if (obj < best.objective) best = { theta: theta.slice(), objective: obj };
    if ((method !== 'irls' || outer > 2) && improved <= 1e-9 * best.objective) break;
  }
  return best;
}

function perturb(start: number[], codec: Codec, rng: Rng): number[] {
  return start.map((v, i) => {
    const k = codec.names[i];
    if (LINEAR.has(k)) return Math.min(codec.hi[i], Math.max(codec.lo[i], v * (0.6 + 0.8 * rng.next())));
    return v + (rng.next() * 2 - 1) * 1.5; // a factor of up to e^±1.5
  });
}

function fitOnce(rows: RunRow[], codec: Codec, start: number[], starts: number, delta: number, rng: Rng, method: RobustMethod): Solved {
  let best: Solved | null = null;
  for (let s = 0; s < starts; s++) {
    const init = s === 0 ? start : perturb(start, codec, rng);
    const r = solve(rows, codec, init, delta, method);
    if (!best || r.objective < best.objective) best = r;
  }
  return best!;
}

/** The N, D and bit-width ranges the runs cover (high precision counts as 16 bits). */
function dataRange(rows: RunRow[]): NonNullable<ConstantSet['fittedRange']> {
  const bits = rows.flatMap((r) => [r.train?.w, r.train?.a, r.train?.kv, r.postBits].map((b) => b ?? 16));
  const span = (xs: number[]): [number, number] => [Math.min(...xs), Math.max(...xs)];
  return { N: span(rows.map((r) => r.N)), D: span(rows.map((r) => r.D)), bits: span(bits) };
}

function rmseLog(rows: RunRow[], c: LawConstants): number {
  let s = 0;
  for (const r of rows) s += (Math.log(predictRow(r, c)) - Math.log(r.loss)) ** 2;
  return Math.sqrt(s / rows.length);
}

function quantile(sorted: number[], q: number): number {
  const pos = q * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo);
}

function resolveOptions(rows: RunRow[], o: FitOptions) {
  const params = o.params ?? ['A', 'alpha', 'B', 'beta', 'E'];
  const ties = o.ties ?? {};
  for (const k of [...params, ...Object.keys(ties), ...Object.values(ties)] as ConstantName[]) {
    if (!CONSTANT_NAMES.includes(k)) throw new ConfigError('bad_option', `unknown constant '${k}'`, { field: 'params', expected: CONSTANT_NAMES.join(', '), found: k });
  }
  for (const [k, to] of Object.entries(ties) as [ConstantName, ConstantName][]) {
    if (params.includes(k)) throw new ConfigError('bad_option', `'${k}' is tied to '${to}' and cannot also be fitted`, { field: 'ties', found: k });
    if (!params.includes(to)) throw new ConfigError('bad_option', `'${k}' is tied to '${to}', which is not fitted`, { field: 'ties', found: to });
  }
  if (new Set(params).size !== params.length || params.length === 0) throw new ConfigError('bad_option', 'params must be a non-empty list of distinct constants', { field: 'params', found: params });
  if (rows.length < params.length + 1) throw new ConfigError('bad_option', 'too few runs for the constants fitted', { field: 'runs', expected: `at least ${params.length + 1}`, found: rows.length });
  const base = o.base ?? KUMAR2024;
  const values = { ...base.values };
  for (const k of params) {
    if (values[k] === undefined) (values as unknown as Record<string, number>)[k] = 1; // e.g. C_x, unknown in the paper
  }
  const bounds = { ...DEFAULT_BOUNDS, ...(o.bounds ?? {}) };
  const delta = o.huberDelta ?? DEFAULT_HUBER_DELTA;
  if (!(delta > 0)) throw new ConfigError('bad_option', 'huberDelta must be > 0', { field: 'huberDelta', expected: '> 0', found: delta });
  return { params, ties, base, values, bounds, delta, method: o.method ?? 'pseudo-residual', starts: Math.max(1, o.starts ?? 8), seed: o.seed ?? 0, level: o.level ?? 0.95 };
}

/** Fits `params` to the runs; optionally bootstrap intervals and a held-out error. */
export function fitLaw(rows: RunRow[], o: FitOptions = {}): FitResult {
  const opt = resolveOptions(rows, o);
  const rng = new Rng(opt.seed);
  const codec = makeCodec(opt.params, opt.ties, opt.values, rows, opt.bounds);
  const start = codec.encode(opt.values);
  const boots = Math.max(0, Math.floor(o.bootstrap ?? 0));
  const holdRows = o.holdout ? 1 : 0;
  const progress = new ProgressTracker('fit', 1 + holdRows + boots, o.onProgress, 'fit');

  checkAborted(o.signal);
  const best = fitOnce(rows, codec, start, opt.starts, opt.delta, rng.fork(), opt.method);
  if (!Number.isFinite(best.objective)) throw new NumericError('diverged', 'the fit produced non-finite losses', { hint: 'check the runs and the bounds' });
  const c = codec.decode(best.theta);
  progress.tick('point estimate');

  const estimates: Partial<Record<ConstantName, number>> = {};
  for (const k of opt.params) estimates[k] = c[k];
  for (const k of Object.keys(opt.ties) as ConstantName[]) estimates[k] = c[k];
  const shown = Object.keys(estimates) as ConstantName[];
  const result: FitResult = {
    constants: {
      name: 'fit',
      citation: `fitted by bitscale to ${rows.length} runs (other constants from ${opt.base.name})`,
      values: c,
      provenance: {
        ...opt.base.provenance,
        ...Object.fromEntries(shown.map((k) => [k, { source: 'fit', citation: `fitted to ${rows.length} runs` }])),
      },
      fittedRange: dataRange(rows),
      caveats: [],
    },
    params: opt.params,
    estimates,
    level: opt.level,
    huberLoss: best.objective,
    rmseLog: rmseLog(rows, c),
    n: rows.length,
    caveats: [],
  };

  if (o.holdout) {
    checkAborted(o.signal);
    let test: RunRow[];
    let train: RunRow[];
    if (o.holdout === 'largest-N') {
      const maxN = Math.max(...rows.map((r) => r.N));
      test = rows.filter((r) => r.N === maxN);
      train = rows.filter((r) => r.N !== maxN);
    } else {
      const f = o.holdout.fraction;
      if (!(f > 0 && f < 1)) throw new ConfigError('bad_option', 'holdout fraction must be in (0, 1)', { field: 'holdout', expected: '(0, 1)', found: f });
      const idx = rng.fork().shuffle(rows.map((_, i) => i)) as number[];
      const k = Math.max(1, Math.round(f * rows.length));
      test = idx.slice(0, k).map((i) => rows[i]);
      train = idx.slice(k).map((i) => rows[i]);
    }
    if (train.length < opt.params.length + 1 || !test.length) {
      result.caveats.push('held-out error skipped: too few runs left to fit after holding some out');
    } else {
      const hc = makeCodec(opt.params, opt.ties, opt.values, train, opt.bounds);
      const h = fitOnce(train, hc, hc.encode(opt.values), opt.starts, opt.delta, rng.fork(), opt.method);
      const ch = hc.decode(h.theta);
      const mae = test.reduce((s, r) => s + Math.abs(predictRow(r, ch) - r.loss), 0) / test.length;
      result.heldOut = { n: test.length, rmseLog: rmseLog(test, ch), maeLoss: mae, trainN: train.length };
    }
    progress.tick('held-out');
  }

  if (boots > 0) {
    const draws: Record<string, number[]> = Object.fromEntries(shown.map((k) => [k, []]));
    const brng = rng.fork();
    let ok = 0;
    for (let b = 0; b < boots; b++) {
      checkAborted(o.signal);
      const sample = rows.map(() => rows[brng.int(rows.length)]);
      // refit from the point estimate (one start): the bootstrap measures sampling spread
      const bc = makeCodec(opt.params, opt.ties, c, sample, opt.bounds);
      const r = solve(sample, bc, bc.encode(c), opt.delta, opt.method);
      if (Number.isFinite(r.objective)) {
        const cb = bc.decode(r.theta);
        for (const k of shown) draws[k].push(cb[k] as number);
        ok++;
      }
      progress.tick(`bootstrap ${b + 1}`);
    }
    const a = (1 - opt.level) / 2;
    result.ci = {};
    result.se = {};
    for (const k of shown) {
      const s = draws[k].slice().sort((x, y) => x - y);
      if (!s.length) continue;
      result.ci[k] = [quantile(s, a), quantile(s, 1 - a)];
      const m = s.reduce((p, q) => p + q, 0) / s.length;
      result.se[k] = Math.sqrt(s.reduce((p, q) => p + (q - m) ** 2, 0) / Math.max(1, s.length - 1));
    }
    result.bootstrapOk = ok;
    if (ok < boots) result.caveats.push(`${boots - ok} of ${boots} bootstrap refits failed and were dropped`);
  }
  for (const k of shown) {
    const [lo, hi] = opt.bounds[k];
    const v = c[k] as number;
    if (Math.abs(v - lo) <= 1e-6 * Math.max(1, Math.abs(lo)) || Math.abs(v - hi) <= 1e-6 * Math.max(1, Math.abs(hi))) {
      result.caveats.push(`${k} = ${v} is at its bound [${lo}, ${hi}]: the data may not identify it`);
    }
  }
  result.constants.caveats = [...result.caveats];
  return result;
}
