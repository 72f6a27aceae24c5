// Scaling-law fit time (src/scaling/fit.ts): Levenberg–Marquardt on Huber pseudo-residuals (the
// default) vs the textbook IRLS wrapper around the same LM, on the same 270 synthetic runs and
// 8 constants, measured in the same run. Also reports how far apart their estimates are.
// Usage: npm run bench law-fit
import { Rng } from '../src/core/rng.js';
import { KUMAR2024, withConstants, type ConstantName } from '../src/scaling/constants.js';
import { fitLaw, predictRow, type RobustMethod } from '../src/scaling/fit.js';
import type { TrainPrecision } from '../src/scaling/law.js';
import type { RunRow } from '../src/scaling/runs.js';
import { fmt, timeMs } from './util.js';

function runs(): RunRow[] {
  const rng = new Rng(1);
  const precs: (TrainPrecision | undefined)[] = [undefined, { w: 8, a: 8, kv: 8 }, { w: 4, a: 4, kv: 4 }, { w: 3, a: 3, kv: 3 }, { w: 4 }, { a: 3 }, { kv: 2 }, { w: 6, a: 6, kv: 4 }, { w: 3, a: 8, kv: 8 }];
  const rows: RunRow[] = [];
  for (const N of [30e6, 80e6, 220e6, 600e6, 1.7e9]) {
    for (const D of [1.5e9, 4e9, 10e9, 26e9, 60e9, 150e9]) {
      for (const t of precs) {
        const r: RunRow = { N, D, loss: 0, ...(t ? { train: t } : {}) };
        r.loss = predictRow(r, KUMAR2024.values) * Math.exp(rng.normal(0, 0.003));
        rows.push(r);
      }
    }
  }
  for (const i of [3, 50, 120]) rows[i].loss *= 1.15;
  return rows;
}

export default async function (): Promise<void> {
  const rows = runs();
  const params: ConstantName[] = ['A', 'alpha', 'B', 'beta', 'E', 'gammaW', 'gammaA', 'gammaKv'];
  const base = withConstants(KUMAR2024, { A: 2000, alpha: 0.4, B: 30000, beta: 0.55, E: 2.5, gammaW: 2, gammaA: 3, gammaKv: 1.5 });
  const est: Record<string, Partial<Record<ConstantName, number>>> = {};
  const t: Record<string, number> = {};
  for (const method of ['pseudo-residual', 'irls'] as RobustMethod[]) {
    t[method] = await timeMs(() => {
      est[method] = fitLaw(rows, { params, base, method, bootstrap: 20, seed: 7 }).estimates;
    }, 3, 0);
  }
  const maxRel = Math.max(...params.map((k) => Math.abs(est.irls[k]! / est['pseudo-residual'][k]! - 1)));
  console.log(`fit of 8 constants to ${rows.length} runs, 8 starts + 20 bootstrap refits (median of 3):`);
  console.log(`  pseudo-residual LM ${fmt(t['pseudo-residual'])} ms, IRLS LM ${fmt(t.irls)} ms: IRLS/pseudo = ${fmt(t.irls / t['pseudo-residual'], 2)}x`);
  console.log(`  largest relative difference between their estimates: ${maxRel.toExponential(2)}`);
}
