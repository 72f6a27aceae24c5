// Fitting on synthetic runs generated from known constants (seeded noise and a few outliers):
// the fit must recover the constants inside its own bootstrap intervals, and those intervals must
// be narrow enough to mean something.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { KUMAR2024, withConstants, type ConstantName } from '../../src/scaling/constants.js';
import { fitLaw, huber, predictRow } from '../../src/scaling/fit.js';
import type { RunRow } from '../../src/scaling/runs.js';
import type { TrainPrecision } from '../../src/scaling/law.js';

const truth = KUMAR2024.values;
/**
 * Several constants are checked at once, so each interval is taken at the Bonferroni level
 * 1 − 0.05/k: all k then cover the truth jointly with probability ≥ 95%.
 */
const jointLevel = (k: number) => 1 - 0.05 / k;
/** multiplicative noise on the loss (σ of log-loss), about what seed-to-seed variation gives */
const NOISE = 0.003;
/** relative agreement of IRLS and pseudo-residual estimates (both stop at 1e-9 relative objective change) */
const IRLS_AGREEMENT = 2e-3;
/** noise of one evaluation of a fixed model (PTQ runs share their pretrained model's noise) */
const EVAL_NOISE = 0.0005;
/**
 * The largest relative width (hi − lo)/value a 95% interval may have on this design: scale
 * constants A and B trade off against E and the exponents, so their intervals are wide.
 */
const MAX_REL_CI_WIDTH: Partial<Record<ConstantName, number>> = { A: 1, B: 1 };
const MAX_REL_CI_WIDTH_OTHER = 0.2;

function synth(seed: number, opts: { post?: boolean; outliers?: boolean } = {}): RunRow[] {
  const rng = new Rng(seed);
  const precs: (TrainPrecision | undefined)[] = [undefined, { w: 8, a: 8, kv: 8 }, { w: 4, a: 4, kv: 4 }, { w: 3, a: 3, kv: 3 }, { w: 4 }, { a: 3 }, { kv: 2 }, { w: 6, a: 6, kv: 4 }, { w: 3, a: 8, kv: 8 }];
  const rows: RunRow[] = [];
  for (const N of [30e6, 80e6, 220e6, 600e6, 1.7e9]) {
    for (const D of [1.5e9, 4e9, 10e9, 26e9, 60e9, 150e9]) {
      if (opts.post) {
        // one pretrained model per (N, D), measured before PTQ and after PTQ to several widths:
        // the model's own noise is shared by its rows; evaluation adds a little more per row
        const modelNoise = rng.normal(0, NOISE);
        for (const postBits of [undefined, 2, 3, 4, 6]) {
          const r: RunRow = { N, D, loss: 0, ...(postBits ? { postBits } : {}) };
          r.loss = predictRow(r, truth) * Math.exp(modelNoise + rng.normal(0, EVAL_NOISE));
          rows.push(r);
        }
        continue;
      }
      for (const t of precs) {
        const r: RunRow = { N, D, loss: 0, ...(t ? { train: t } : {}) };
        r.loss = predictRow(r, truth) * Math.exp(rng.normal(0, NOISE));
        rows.push(r);
      }
    }
  }
  // outliers (a diverged run, a logging mistake): what the Huber loss is for
  if (opts.outliers) for (const i of [3, 50, 120]) rows[i].loss *= 1.15;
  return rows;
}

test('huber: quadratic inside δ, linear outside, continuous at δ', () => {
  assert.equal(huber(0.5e-3, 1e-3), 0.5 * 0.25e-6);
  assert.equal(huber(-3e-3, 1e-3), 1e-3 * (3e-3 - 0.5e-3));
  assert.ok(Math.abs(huber(1e-3 + 1e-12, 1e-3) - huber(1e-3, 1e-3)) < 1e-14);
});

test('fit recovers 8 constants of the law (base + three γ) inside their joint 95% bootstrap intervals', () => {
  const rows = synth(1, { outliers: true });
  const params: ConstantName[] = ['A', 'alpha', 'B', 'beta', 'E', 'gammaW', 'gammaA', 'gammaKv'];
  // start well away from the truth
  const start = withConstants(KUMAR2024, { A: 2000, alpha: 0.4, B: 30000, beta: 0.55, E: 2.5, gammaW: 2, gammaA: 3, gammaKv: 1.5 });
  const res = fitLaw(rows, { params, base: start, bootstrap: 100, seed: 7, holdout: { fraction: 0.2 }, level: jointLevel(params.length) });
  assert.equal(res.bootstrapOk, 100);
  for (const k of params) {
    const [lo, hi] = res.ci![k]!;
    const t = truth[k] as number;
    assert.ok(lo <= t && t <= hi, `${k}: true ${t} outside [${lo}, ${hi}] (estimate ${res.estimates[k]})`);
    assert.ok((hi - lo) / t < (MAX_REL_CI_WIDTH[k] ?? MAX_REL_CI_WIDTH_OTHER), `${k}: interval [${lo}, ${hi}] too wide to be informative`);
  }
  // the outliers leave the bulk of the fit untouched: the median residual is at the noise level
  const abs = rows.map((r) => Math.abs(Math.log(predictRow(r, res.constants.values) / r.loss))).sort((a, b) => a - b);
  assert.ok(abs[Math.floor(abs.length / 2)] < 1.5 * NOISE, `median |residual| ${abs[Math.floor(abs.length / 2)]}`);
  // held-out rows are predicted about as well as fitted ones (outliers included in both)
  assert.ok(res.heldOut && res.heldOut.n === 54 && res.heldOut.rmseLog < 3 * res.rmseLog + NOISE, JSON.stringify(res.heldOut));
  assert.equal(res.constants.provenance.gammaKv?.source, 'fit');
});

test('fit recovers the PTQ constants (C_T, γ_D, γ_N, γ_post) with the base law fixed, inside joint 95% intervals', () => {
  const rows = synth(2, { post: true });
  const params: ConstantName[] = ['CT', 'gammaD', 'gammaN', 'gammaPost'];
  const start = withConstants(KUMAR2024, { CT: 0.2, gammaD: 0.4, gammaN: 0.5, gammaPost: 0.8 });
  const res = fitLaw(rows, { params, base: start, bootstrap: 80, seed: 3, level: jointLevel(params.length) });
  for (const k of params) {
    const [lo, hi] = res.ci![k]!;
    const t = truth[k] as number;
    assert.ok(lo <= t && t <= hi, `${k}: true ${t} outside [${lo}, ${hi}] (estimate ${res.estimates[k]})`);
  }
});

test('unified law: the robustification rate C_w is recovered from low-precision-trained, then quantized runs', () => {
  const truthR = { ...truth, cRobustW: 0.8 };
  const rng = new Rng(9);
  const rows: RunRow[] = [];
  for (const N of [30e6, 110e6, 600e6]) {
    for (const D of [3e9, 26e9, 150e9]) {
      for (const w of [4, 5, 6, 8]) {
        const modelNoise = rng.normal(0, NOISE);
        for (const postBits of [undefined, 2, 3]) {
          const r: RunRow = { N, D, loss: 0, train: { w }, ...(postBits ? { postBits } : {}) };
          r.loss = predictRow(r, truthR) * Math.exp(modelNoise + rng.normal(0, EVAL_NOISE));
          rows.push(r);
        }
      }
    }
  }
  const res = fitLaw(rows, { params: ['cRobustW'], bootstrap: 40, seed: 2, holdout: 'largest-N' });
  const [lo, hi] = res.ci!.cRobustW!;
  assert.ok(lo <= 0.8 && 0.8 <= hi && hi - lo < 0.2, `C_w: [${lo}, ${hi}], estimate ${res.estimates.cRobustW}`);
  // held out: the 600M models, predicted from the smaller ones
  assert.ok(res.heldOut && res.heldOut.n === 36 && res.heldOut.rmseLog < 3 * NOISE, JSON.stringify(res.heldOut));
});

test('Huber beats plain least squares when runs contain outliers; seeded fits are reproducible; IRLS agrees', () => {
  const rows = synth(4).filter((r) => !r.train);
  for (let i = 0; i < rows.length; i += 7) rows[i] = { ...rows[i], loss: rows[i].loss * 1.2 };
  const params: ConstantName[] = ['A', 'alpha', 'B', 'beta', 'E'];
  const err = (c: typeof truth) => Math.abs(c.E - truth.E) / truth.E + Math.abs(c.alpha - truth.alpha) / truth.alpha;
  const robust = fitLaw(rows, { params, seed: 1, starts: 3 });
  const ls = fitLaw(rows, { params, seed: 1, starts: 3, huberDelta: 10 }); // δ ≫ residuals: least squares
  assert.ok(err(robust.constants.values) < err(ls.constants.values) / 2, `huber ${err(robust.constants.values)} vs LS ${err(ls.constants.values)}`);
  const again = fitLaw(rows, { params, seed: 1, starts: 3 });
  assert.deepEqual(again.estimates, robust.estimates);
  // the textbook IRLS route (slow reference) reaches the same minimum
  const irls = fitLaw(rows, { params, seed: 1, starts: 3, method: 'irls' });
  assert.ok(Math.abs(irls.huberLoss / robust.huberLoss - 1) < 1e-4, `${irls.huberLoss} vs ${robust.huberLoss}`);
  for (const k of params) {
    const a = irls.estimates[k]!;
    const b = robust.estimates[k]!;
    assert.ok(Math.abs(a / b - 1) < IRLS_AGREEMENT, `${k}: IRLS ${a} vs pseudo-residual ${b}`);
  }
});

test('ties, bad options and too few runs are typed errors', () => {
  const rows = synth(5).slice(0, 40);
  const tied = fitLaw(rows, { params: ['A', 'alpha', 'B', 'E'], ties: { beta: 'alpha' }, starts: 2 });
  assert.equal(tied.estimates.beta, tied.estimates.alpha);
  assert.throws(() => fitLaw(rows, { params: ['nope' as ConstantName] }), /unknown constant/);
  assert.throws(() => fitLaw(rows, { params: ['A'], ties: { beta: 'alpha' } }), /not fitted/);
  assert.throws(() => fitLaw(rows.slice(0, 3), { params: ['A', 'alpha', 'B', 'beta', 'E'] }), /too few runs/);
  const ac = new AbortController();
  ac.abort();
  assert.throws(() => fitLaw(rows, { signal: ac.signal }), /interrupted/);
});
