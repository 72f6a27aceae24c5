// The scaling-experiment hook (pipeline/law/law.ts) with a fake trainer: every grid point is trained
// once, an interrupted run resumes without recomputing finished points, the runs file is always
// complete JSON (atomic rewrites) and is itself a valid `law fit` input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { lawFit, lawGrid, pointKey, runLawExperiment, type LawGridPoint } from '../../src/pipeline/law/law.js';
import { KUMAR2024, predictRow } from '../../src/scaling/index.js';
import { withTempDir } from '../helpers.js';

const grid = lawGrid({ N: [30e6, 110e6, 220e6], D: [1.5e9, 6e9, 26e9], trainBits: [undefined, 4, 8], postBits: [undefined, 4] });

/** The fake trainer: the law itself, deterministic, counting its calls per point. */
function fakeTrainer() {
  const calls = new Map<string, number>();
  const fn = async (p: LawGridPoint, ctx: { key: string }) => {
    calls.set(ctx.key, (calls.get(ctx.key) ?? 0) + 1);
    return { loss: predictRow({ ...p, loss: 0 }, KUMAR2024.values), extra: { fake: true } };
  };
  return { fn, calls };
}

test('grid, keys, resume after an interruption, no recomputation, no temporary files left', async () => {
  await withTempDir('bitscale-law-', async (dir) => {
    assert.equal(grid.length, 3 * 3 * 3 * 2);
    assert.equal(new Set(grid.map(pointKey)).size, grid.length, 'keys are unique per configuration');
    const runsFile = join(dir, 'runs.json');
    const t = fakeTrainer();
    // interrupt after 10 runs through the abort signal
    const ac = new AbortController();
    let n = 0;
    const stopping = async (p: LawGridPoint, ctx: { key: string }) => {
      if (++n === 10) ac.abort();
      return t.fn(p, ctx);
    };
    await assert.rejects(runLawExperiment({ grid, runsFile, trainAndEvaluate: stopping, signal: ac.signal }), /interrupted/);
    const partial = JSON.parse(readFileSync(runsFile, 'utf8')) as { runs: unknown[] };
    assert.equal(partial.runs.length, 10, 'the finished runs were kept');
    // resume: only the remaining points are trained, each exactly once overall
    const r = await runLawExperiment({ grid: [...grid, grid[0]], runsFile, trainAndEvaluate: t.fn });
    assert.equal(r.computed, grid.length - 10);
    assert.equal(r.reused, 10);
    assert.equal(r.runs.length, grid.length);
    assert.ok([...t.calls.values()].every((c) => c === 1), 'no point trained twice');
    assert.equal(t.calls.size, grid.length);
    // a third call has nothing to do
    const again = await runLawExperiment({ grid, runsFile, trainAndEvaluate: t.fn });
    assert.equal(again.computed, 0);
    assert.deepEqual(readdirSync(dir), ['runs.json'], 'atomic writes leave no temporary files');
    // the runs file feeds `law fit` directly, and fitting the law to its own predictions is exact
    const fit = await lawFit({ file: runsFile, params: ['E'], starts: 1 });
    assert.ok(Math.abs(fit.estimates.E! - KUMAR2024.values.E) < 1e-6, `E = ${fit.estimates.E}`);
  });
});

test('a callback returning a bad loss stops the experiment without writing it', async () => {
  await withTempDir('bitscale-law-', async (dir) => {
    const runsFile = join(dir, 'runs.json');
    await assert.rejects(runLawExperiment({ grid: grid.slice(0, 3), runsFile, trainAndEvaluate: async () => ({ loss: NaN }) }), /loss must be > 0/);
    assert.deepEqual(readdirSync(dir), []);
  });
});
