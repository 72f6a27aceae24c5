// A size/quality Pareto frontier that respects measurement noise. Each point's quality is a mean
// with a 95% interval [lo, hi]; two points whose intervals overlap are not ranked against each
// other. Pure functions (browser-safe), used by the sweep and its report.
//
// Rules (lower quality values are better: NLL, KL divergence):
//  - a is clearly better than b when a.hi < b.lo (the intervals do not overlap);
//  - a dominates b when a is no larger and clearly better, or when a is strictly smaller and the
//    two are indistinguishable (a bigger file is only worth it when it is measurably better);
//  - the frontier is every point nothing dominates. Along it, each larger point is clearly better
//    than every smaller one; points of equal size on it are ties (overlapping intervals).
// A point only dominates points of at least its size, and at equal size only clearly worse ones, so
// the relation has no cycles and the frontier of a non-empty set is never empty.
import { ConfigError } from '../core/errors.js';

export interface IntervalPoint {
  id: string;
  /** size in any unit (bits per weight, bytes) */
  size: number;
  /** point estimate and its 95% interval, lower is better */
  value: number;
  lo: number;
  hi: number;
}

export interface IntervalFrontier {
  /** ids on the frontier, by size then value */
  frontier: string[];
  /** for each id off the frontier: the id of a frontier point that dominates it */
  dominatedBy: Map<string, string>;
  /** for each frontier id: every other point whose interval overlaps its own (equivalent within noise) */
  ties: Map<string, string[]>;
}

function check(points: readonly IntervalPoint[]): void {
  const seen = new Set<string>();
  points.forEach((p, i) => {
    if (seen.has(p.id)) throw new ConfigError('bad_option', 'duplicate point id', { field: 'id', index: i, expected: 'unique ids', found: p.id });
    seen.add(p.id);
    for (const k of ['size', 'value', 'lo', 'hi'] as const) {
      if (!Number.isFinite(p[k])) throw new ConfigError('bad_option', `point ${k} must be finite`, { field: k, index: i, expected: 'a finite number', found: p[k] });
    }
    if (!(p.lo <= p.value && p.value <= p.hi)) throw new ConfigError('bad_option', 'interval must contain the value', { field: 'lo/hi', index: i, expected: `lo ≤ ${p.value} ≤ hi`, found: `[${p.lo}, ${p.hi}]` });
  });
}

/** a is measurably better than b: a's interval lies entirely below b's. */
export function clearlyBetter(a: Pick<IntervalPoint, 'lo' | 'hi'>, b: Pick<IntervalPoint, 'lo' | 'hi'>): boolean {
  return a.hi < b.lo;
}

/** Neither is measurably better than the other. */
export function withinNoise(a: Pick<IntervalPoint, 'lo' | 'hi'>, b: Pick<IntervalPoint, 'lo' | 'hi'>): boolean {
  return !clearlyBetter(a, b) && !clearlyBetter(b, a);
}

/** a dominates b (see the file comment). */
export function dominates(a: IntervalPoint, b: IntervalPoint): boolean {
  if (a.size > b.size) return false;
  if (clearlyBetter(a, b)) return true;
  return a.size < b.size && withinNoise(a, b);
}

/**
 * The noise-aware frontier. O(n²) over points, which a sweep (tens of points) can afford; the
 * direct definition is the implementation, so it needs no slower reference.
 */
export function intervalFrontier(points: readonly IntervalPoint[]): IntervalFrontier {
  check(points);
  const order = [...points].sort((a, b) => a.size - b.size || a.value - b.value || (a.id < b.id ? -1 : 1));
  const frontier = order.filter((p) => !order.some((q) => q !== p && dominates(q, p)));
  const onFront = new Set(frontier.map((p) => p.id));
  const dominatedBy = new Map<string, string>();
  for (const p of order) {
    if (onFront.has(p.id)) continue;
    // the largest frontier point that dominates p names the reason best (the nearest in size)
    const by = [...frontier].reverse().find((f) => dominates(f, p)) ?? order.find((q) => q !== p && dominates(q, p))!;
    dominatedBy.set(p.id, by.id);
  }
  const ties = new Map<string, string[]>();
  for (const f of frontier) {
    ties.set(f.id, order.filter((q) => q !== f && withinNoise(q, f)).map((q) => q.id));
  }
  return { frontier: frontier.map((p) => p.id), dominatedBy, ties };
}

/**
 * The recommendation for one size budget: the largest frontier point within it (each larger
 * frontier point is measurably better than the smaller ones), with the points of equal or smaller
 * size that are indistinguishable from it. null when nothing fits.
 */
export function bestWithinBudget(points: readonly IntervalPoint[], budget: number): { best: IntervalPoint; equivalent: IntervalPoint[] } | null {
  const fits = points.filter((p) => p.size <= budget);
  if (!fits.length) return null;
  const f = intervalFrontier(fits);
  const byId = new Map(fits.map((p) => [p.id, p]));
  const last = byId.get(f.frontier[f.frontier.length - 1])!;
  // a same-size tie on the frontier: prefer the lower point estimate (but call the others equivalent)
  const sameSize = f.frontier.map((id) => byId.get(id)!).filter((p) => p.size === last.size);
  const best = sameSize.sort((a, b) => a.value - b.value)[0];
  const equivalent = fits.filter((q) => q !== best && withinNoise(q, best)).sort((a, b) => a.size - b.size || a.value - b.value);
  return { best, equivalent };
}
