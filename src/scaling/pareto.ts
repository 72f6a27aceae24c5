// Size/quality Pareto frontier and the best bit width per size budget (ParetoQ-style comparison,
// Liu et al. 2025, ../shared/REFERENCE.md §2.3). Pure functions over measured points, reused by
// sweeps and reports.
//
// A point is one measured variant: its bit width, its size (any unit, e.g. bytes or params·bits)
// and a quality score, where higher is better ('higher', e.g. accuracy) or lower is better
// ('lower', e.g. perplexity or loss).
import { ConfigError } from '../core/errors.js';

export interface QualityPoint {
  id?: string;
  bits: number;
  size: number;
  quality: number;
}

export type QualityDirection = 'higher' | 'lower';

function check(points: readonly QualityPoint[]): void {
  points.forEach((p, i) => {
    for (const k of ['bits', 'size', 'quality'] as const) {
      if (!Number.isFinite(p[k])) throw new ConfigError('bad_option', `point ${k} must be finite`, { field: k, index: i, expected: 'a finite number', found: p[k] });
    }
    if (!(p.size > 0)) throw new ConfigError('bad_option', 'point size must be > 0', { field: 'size', index: i, expected: '> 0', found: p.size });
  });
}

/** true when a is at least as good as b (quality) */
function atLeast(a: number, b: number, dir: QualityDirection): boolean {
  return dir === 'higher' ? a >= b : a <= b;
}

/**
 * The points no other point dominates (no smaller-or-equal size with better-or-equal quality,
 * one strictly), sorted by size. Ties (equal size and quality) keep the first given.
 * O(n log n): sort by size, then quality best-first, and keep strict improvements.
 */
export function paretoFrontier<T extends QualityPoint>(points: readonly T[], dir: QualityDirection = 'higher'): T[] {
  check(points);
  const order = points
    .map((p, i) => ({ p, i }))
    .sort((x, y) => x.p.size - y.p.size || (dir === 'higher' ? y.p.quality - x.p.quality : x.p.quality - y.p.quality) || x.i - y.i);
  const out: T[] = [];
  for (const { p } of order) {
    const last = out[out.length - 1];
    if (!last || !atLeast(last.quality, p.quality, dir)) out.push(p);
  }
  return out;
}

/** Slow reference for tests: the O(n²) definition of dominance. */
export function paretoFrontierSlow<T extends QualityPoint>(points: readonly T[], dir: QualityDirection = 'higher'): T[] {
  const dominated = (p: T, i: number) =>
    points.some((q, j) => {
      if (j === i) return false;
      const noWorse = q.size <= p.size && atLeast(q.quality, p.quality, dir);
      const strictly = q.size < p.size || q.quality !== p.quality;
      return noWorse && (strictly || j < i);
    });
  return points.filter((p, i) => !dominated(p, i)).sort((a, b) => a.size - b.size);
}

export interface BudgetChoice<T extends QualityPoint> {
  budget: number;
  /** the best point whose size fits the budget, or null when none fits */
  best: T | null;
}

/** For each size budget, the best measured point with size ≤ budget (its `bits` is the answer). */
export function bestWithinBudgets<T extends QualityPoint>(points: readonly T[], budgets: readonly number[], dir: QualityDirection = 'higher'): BudgetChoice<T>[] {
  const front = paretoFrontier(points, dir);
  return budgets.map((budget) => {
    let best: T | null = null;
    for (const p of front) if (p.size <= budget) best = p; // the frontier improves with size
    return { budget, best };
  });
}

export interface BitsAtSize {
  size: number;
  /** the bit width whose quality curve is best at this size, or null outside every curve */
  bits: number | null;
  quality: number | null;
  /** every bit width's interpolated quality at this size (where its curve covers it) */
  byBits: { bits: number; quality: number }[];
}

/**
 * ParetoQ's comparison: each bit width traces a quality-vs-size curve over model sizes; at a given
 * size, which bit width is best? Quality is interpolated linearly in log(size) between a bit
 * width's measured points and never extrapolated beyond them.
 */
export function bestBitsAtSizes(points: readonly QualityPoint[], sizes: readonly number[], dir: QualityDirection = 'higher'): BitsAtSize[] {
  check(points);
  const curves = new Map<number, QualityPoint[]>();
  for (const p of points) curves.set(p.bits, [...(curves.get(p.bits) ?? []), p]);
  for (const c of curves.values()) c.sort((a, b) => a.size - b.size);
  const bitsList = [...curves.keys()].sort((a, b) => a - b);
  return sizes.map((size) => {
    const byBits: { bits: number; quality: number }[] = [];
    for (const b of bitsList) {
      const q = interpLog(curves.get(b)!, size);
      if (q !== null) byBits.push({ bits: b, quality: q });
    }
    let best: { bits: number; quality: number } | null = null;
    for (const e of byBits) if (!best || (dir === 'higher' ? e.quality > best.quality : e.quality < best.quality)) best = e;
    return { size, bits: best?.bits ?? null, quality: best?.quality ?? null, byBits };
  });
}

function interpLog(curve: QualityPoint[], size: number): number | null {
  if (size < curve[0].size || size > curve[curve.length - 1].size) return null;
  for (let i = 0; i < curve.length; i++) {
    if (curve[i].size === size) return curve[i].quality;
    if (i > 0 && curve[i].size > size) {
      const a = curve[i - 1];
      const b = curve[i];
      const t = (Math.log(size) - Math.log(a.size)) / (Math.log(b.size) - Math.log(a.size));
      return a.quality + t * (b.quality - a.quality);
    }
  }
  return null;
}
