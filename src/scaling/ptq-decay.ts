// The post-training term of the precision-aware law at a fixed model: for one N and D,
// δ_PTQ(P) = C_T·D^γ_D·N^(−γ_N)·e^(−P/γ_post) collapses to C·e^(−P/γ_post) (Kumar et al. 2024,
// Eq. 2; ../shared/REFERENCE.md §1.4). A sweep of one model over bit widths measures exactly this
// curve, so fitting (C, γ_post) to some widths and predicting the others checks the law's shape on
// the user's own model. The fit is ordinary least squares of ln δ on P (two parameters, closed form).

import { ConfigError } from '../core/errors.js';

export interface PtqDecayPoint {
  bits: number;
  /** measured NLL increase over the unquantized model, nats/token (must be > 0 to enter the fit) */
  delta: number;
}

export interface PtqDecayFit {
  /** δ at P = 0 (nats/token) */
  C: number;
  /** bits per e-fold of degradation */
  gammaPost: number;
  /** points that entered the fit */
  used: number;
  /** R² of the log-linear fit */
  r2: number;
}

/** δ(P) = C·e^(−P/γ_post). */
export function ptqDecay(bits: number, f: Pick<PtqDecayFit, 'C' | 'gammaPost'>): number {
  return f.C * Math.exp(-bits / f.gammaPost);
}

/**
 * Fits ln δ = ln C − P/γ_post. Points with δ ≤ 0 (noise at high precision) cannot enter a log fit
 * and are skipped. Needs at least two distinct bit widths and a decaying trend.
 */
export function fitPtqDecay(points: readonly PtqDecayPoint[]): PtqDecayFit {
  const ok = points.filter((p) => p.delta > 0 && Number.isFinite(p.delta) && Number.isFinite(p.bits));
  const widths = new Set(ok.map((p) => p.bits));
  if (widths.size < 2) {
    throw new ConfigError('bad_option', 'fitting δ_PTQ(P) needs positive degradations at two or more bit widths', { expected: '>= 2 widths', found: widths.size });
  }
  const n = ok.length;
  const mx = ok.reduce((s, p) => s + p.bits, 0) / n;
  const my = ok.reduce((s, p) => s + Math.log(p.delta), 0) / n;
  let sxx = 0;
  let sxy = 0;
  let syy = 0;
  for (const p of ok) {
    const dx = p.bits - mx;
    const dy = Math.log(p.delta) - my;
    sxx += dx * dx;
    sxy += dx * dy;
    syy += dy * dy;
  }
  const slope = sxy / sxx;
  if (!(slope < 0)) {
    throw new ConfigError('bad_option', 'measured degradation does not decrease with bits; the exponential PTQ law does not apply', { field: 'slope', expected: '< 0', found: slope });
  }
  return { C: Math.exp(my - slope * mx), gammaPost: -1 / slope, used: n, r2: syy > 0 ? (sxy * sxy) / (sxx * syy) : 1 };
}
