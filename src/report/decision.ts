// "Which file should I ship?": the noise-aware frontiers of a sweep and, for each target runtime and
// size budget, the recommended point. Pure functions over a sweep record (browser-safe: the sweep
// pipeline stores the answer in sweep.json, the report and the browser app render it).
//
// Quality is the KL divergence to the base model where every candidate has its 95% interval (it
// separates variants that perplexity cannot: the base model's own perplexity interval is wider than
// most differences between ≥ 3-bit variants), else mean NLL with its interval. Points whose intervals
// overlap are never ranked (scaling/pareto-ci.ts).

import { ConfigError } from '../core/errors.js';
import type { ShipChoice, SweepPointResult, SweepRecord } from '../eval/sweep-types.js';
import { bestWithinBudget, intervalFrontier, withinNoise, type IntervalPoint } from '../scaling/pareto-ci.js';

export type Runtime = ShipChoice['runtime'];

export interface RuntimeInfo {
  id: Runtime;
  /** 'GGUF → llama.cpp / ollama' */
  title: string;
  /** sweep point formats this runtime loads */
  formats: SweepPointResult['format'][];
  /** how to run a file of this kind (path → command), for the report */
  run: (path: string) => string;
  /** sweep flag that adds points of this kind */
  sweepFlag: string;
}

export const RUNTIMES: RuntimeInfo[] = [
  { id: 'gguf', title: 'GGUF → llama.cpp / ollama', formats: ['gguf'], run: (p) => `llama-cli -m ${p} -p "Once upon a time"   # ollama: echo "FROM ${p}" > Modelfile && ollama create my-model -f Modelfile`, sweepFlag: '--formats gguf' },
  { id: 'onnx', title: 'ONNX → onnxruntime / transformers.js', formats: ['onnx'], run: (p) => `await pipeline('text-generation', '${p}', { dtype: 'q4' })   // transformers.js, env.localModelPath set to the parent folder`, sweepFlag: '--formats onnx' },
  { id: 'safetensors', title: 'safetensors → transformers / vLLM', formats: ['safetensors', 'compressed-tensors'], run: (p) => `vllm serve ${p}   # transformers: AutoModelForCausalLM.from_pretrained("${p}")`, sweepFlag: '--formats safetensors' },
];

export interface Budget {
  /** as given, normalised: '4.5bpw', '800MB' */
  label: string;
  unit: 'bpw' | 'MB';
  value: number;
}

/** '4.5' or '4.5bpw' → bits per weight; '800MB', '1.5GB', '900kB' → file size in MB (10^6 bytes). */
export function parseBudget(s: string): Budget {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(bpw|kb|mb|gb)?\s*$/i.exec(s);
  if (!m) throw new ConfigError('bad_option', 'invalid budget', { field: '--budget', expected: 'bits per weight (4.5 or 4.5bpw) or a file size (800MB, 1.5GB)', found: s });
  const v = Number(m[1]);
  const u = (m[2] ?? 'bpw').toLowerCase();
  if (u === 'bpw') return { label: `${v}bpw`, unit: 'bpw', value: v };
  const mb = u === 'kb' ? v / 1000 : u === 'gb' ? v * 1000 : v;
  return { label: `${v}${u === 'kb' ? 'kB' : u.toUpperCase()}`, unit: 'MB', value: mb };
}

/** Default budgets: roughly llama.cpp's 2-, 3-, 4- and 8-bit families. */
export const DEFAULT_BUDGETS = ['2.5bpw', '3.5bpw', '4.5bpw', '8.5bpw'];

/** The NLL interval of a point (from its perplexity interval). */
export function nllPoint(p: SweepPointResult, size = p.bpw): IntervalPoint {
  return { id: p.id, size, value: p.nll, lo: Math.min(p.nll, Math.log(p.pplLo)), hi: Math.max(p.nll, Math.log(p.pplHi)) };
}

/** The KL interval of a point (the base model: exactly 0), or null when it was not measured. */
export function kldPoint(p: SweepPointResult, size = p.bpw): IntervalPoint | null {
  if (p.method === 'base') return { id: p.id, size, value: 0, lo: 0, hi: 0 };
  if (p.kldLo === undefined || p.kldHi === undefined || !Number.isFinite(p.kld)) return null;
  return { id: p.id, size, value: p.kld, lo: Math.min(p.kld, Math.max(0, p.kldLo)), hi: Math.max(p.kld, p.kldHi) };
}

/**
 * The variant is not measurably worse than the base model in NLL: its paired 95% interval of
 * NLL(variant) − NLL(base) reaches 0 (records without it: the two perplexity intervals overlap).
 */
export function nearBase(p: SweepPointResult, base: SweepPointResult | undefined): boolean {
  if (!base || p === base) return false;
  if (p.dnllLo !== undefined && p.dnllHi !== undefined) return p.dnllLo <= 0;
  return withinNoise(nllPoint(p), nllPoint(base));
}

/** Sets `onFrontier` (bpw vs NLL) and `onFrontierKld` (bpw vs KL divergence) with the noise-aware rule. */
export function markFrontiers(points: SweepPointResult[]): void {
  const usable = points.filter((p) => Number.isFinite(p.nll) && Number.isFinite(p.pplLo) && Number.isFinite(p.pplHi));
  const fn = new Set(usable.length ? intervalFrontier(usable.map((p) => nllPoint(p))).frontier : []);
  const kp = points.map((p) => kldPoint(p)).filter((x): x is IntervalPoint => x !== null);
  const fk = new Set(kp.length ? intervalFrontier(kp).frontier : []);
  for (const p of points) {
    p.onFrontier = fn.has(p.id);
    p.onFrontierKld = fk.has(p.id);
  }
}

/** Size of a point under a budget's unit (MB of the written files; null when none were written). */
function sizeIn(p: SweepPointResult, unit: Budget['unit']): number | null {
  if (unit === 'bpw') return p.bpw;
  return p.fileBytes > 0 ? p.fileBytes / 1e6 : null;
}

/**
 * For each runtime: the recommended point within each budget, the best measured point (budget
 * 'none'), and the smallest point whose perplexity is within noise of the float model ('float-ppl').
 */
export function shipRecommendations(points: SweepPointResult[], budgetStrings: readonly string[] = DEFAULT_BUDGETS): ShipChoice[] {
  const budgets = budgetStrings.map(parseBudget);
  const base = points.find((p) => p.method === 'base');
  const out: ShipChoice[] = [];
  for (const rt of RUNTIMES) {
    const cands = points.filter((p) => rt.formats.includes(p.format) && p.method !== 'base' && Number.isFinite(p.nll));
    if (!cands.length) {
      out.push({ runtime: rt.id, budget: 'none', pointId: null, metric: 'kld', equivalent: [], note: `no ${rt.id} point in this sweep (add ${rt.sweepFlag})` });
      continue;
    }
    const kl = cands.map((p) => kldPoint(p));
    const metric: ShipChoice['metric'] = kl.every((x) => x !== null) ? 'kld' : 'nll';
    const quality = (p: SweepPointResult, size: number): IntervalPoint => (metric === 'kld' ? { ...kldPoint(p)!, size } : nllPoint(p, size));
    const choose = (label: string, unit: Budget['unit'], limit: number): ShipChoice => {
      const qs = cands.flatMap((p) => {
        const s = sizeIn(p, unit);
        return s === null ? [] : [quality(p, s)];
      });
      const pick = bestWithinBudget(qs, limit);
      if (!pick) {
        const smallest = qs.reduce((a, b) => (b.size < a.size ? b : a), qs[0]);
        return { runtime: rt.id, budget: label, pointId: null, metric, equivalent: [], note: smallest ? `nothing fits; the smallest is ${smallest.id} (${fmtSize(smallest.size, unit)})` : 'no point has a file size' };
      }
      return { runtime: rt.id, budget: label, pointId: pick.best.id, metric, equivalent: pick.equivalent.map((q) => q.id) };
    };
    for (const b of budgets) out.push(choose(b.label, b.unit, b.value));
    out.push(choose('none', 'bpw', Infinity));
    if (base) {
      const near = cands.filter((p) => nearBase(p, base)).sort((a, b) => a.bpw - b.bpw || a.nll - b.nll);
      out.push(
        near.length
          ? { runtime: rt.id, budget: 'float-ppl', pointId: near[0].id, metric: 'nll', equivalent: near.slice(1).filter((p) => p.bpw === near[0].bpw).map((p) => p.id) }
          : { runtime: rt.id, budget: 'float-ppl', pointId: null, metric: 'nll', equivalent: [], note: 'every point is measurably worse than the float model (paired NLL difference)' },
      );
    }
  }
  return out;
}

function fmtSize(v: number, unit: Budget['unit']): string {
  return unit === 'bpw' ? `${v.toFixed(2)} bpw` : `${v.toFixed(3)} MB`;
}

/** Groups of points whose intervals overlap (for "within noise" notes): connected components of the overlap relation. */
export function noiseGroups(points: SweepPointResult[], metric: 'kld' | 'nll'): string[][] {
  const ivs = points.map((p) => (metric === 'kld' ? kldPoint(p) : nllPoint(p))).filter((x): x is IntervalPoint => x !== null);
  const groups: string[][] = [];
  const seen = new Set<string>();
  for (const a of ivs) {
    if (seen.has(a.id)) continue;
    const g = [a];
    seen.add(a.id);
    for (let i = 0; i < g.length; i++) {
      for (const b of ivs) {
        if (seen.has(b.id) || !withinNoise(g[i], b)) continue;
        seen.add(b.id);
        g.push(b);
      }
    }
    if (g.length > 1) groups.push(g.sort((x, y) => x.size - y.size || x.value - y.value).map((x) => x.id));
  }
  return groups;
}

/** The record's recommendations, computed from its points when the record predates them. */
export function recommendationsOf(r: SweepRecord): ShipChoice[] {
  return r.recommendations ?? shipRecommendations(r.points, r.budgets ?? DEFAULT_BUDGETS);
}
