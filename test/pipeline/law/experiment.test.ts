// `bitscale law experiment`: real tiny training runs through the resumable hook, abort + resume,
// PTQ through the codec, and the runs file as `law fit` input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { GRIDS, dSweepTable, fitExperiment, gridConfig, lawExperiment, loadGrid, nonEmbeddingParams, planGrid, precisionLabel, ptqWeights, type ExperimentGrid } from '../../../src/pipeline/law/experiment.js';
import { lawFit, pointKey } from '../../../src/pipeline/law/law.js';
import { KUMAR2024, parseRuns, predictRow, type RunRow } from '../../../src/scaling/index.js';
import { initParams, paramSpecs } from '../../../src/train/graph.js';
import { withTempDir } from '../../helpers.js';

// A 20-step nano model on three chapters: two trained models (fp32, 4-bit w/a/kv), each at no PTQ,
// PTQ 4 and PTQ 2 bits → 6 runs.
const GRID: ExperimentGrid = {
  name: 'test', vocabSize: 320, context: 32, batch: 4, maxChapters: 3, presets: ['nano'], steps: [20], trainBits: [null, 4], postBits: [4, 2], valBatches: 4,
};
/** Losses of one evaluation, through the same float32 graph, reproduce to float rounding of the sum. */
const SAME_WEIGHTS_LOSS_TOL = 1e-6;

test('planner: D = steps·batch·context, N = non-embedding parameters, PTQ variants adjacent, sweep merged', () => {
  const cfg = gridConfig(GRID, 'nano');
  // nano: 2 layers × (4·32² attention + 3·32·96 MLP + 2·32 norms) + 32 final norm
  assert.equal(nonEmbeddingParams(cfg), 2 * (4 * 32 * 32 + 3 * 32 * 96 + 2 * 32) + 32);
  const plan = planGrid(GRID);
  assert.equal(plan.points.length, 6);
  assert.deepEqual(plan.points.map((p) => [p.D, p.train?.w ?? 'hi', p.postBits ?? 'none']), [
    [2560, 'hi', 'none'], [2560, 'hi', 4], [2560, 'hi', 2], [2560, 4, 'none'], [2560, 4, 4], [2560, 4, 2],
  ]);
  // the micro grid's sweep shares its 100/200/400-step points with the main grid: listed twice, trained once
  const micro = planGrid(GRIDS.micro);
  const keys = micro.points.map((p) => `${p.N}/${p.D}/${p.train?.w}/${p.postBits}`);
  assert.ok(keys.length > new Set(keys).size);
});

test('planner: untied precisions run at every preset × steps after the tied ones, keyed per width', () => {
  const plan = planGrid({ ...GRID, trainBits: [null], postBits: [4], precisions: [{ a: 4 }, { w: 4, kv: 8 }] });
  assert.deepEqual(plan.points.map((p) => pointKey(p).replace(/^N=\d+;D=\d+;/, '')), [
    'w=hi;a=hi;kv=hi;post=none', 'w=hi;a=hi;kv=hi;post=4',
    'w=hi;a=4;kv=hi;post=none', 'w=hi;a=4;kv=hi;post=4',
    'w=4;a=hi;kv=8;post=none', 'w=4;a=hi;kv=8;post=4',
  ]);
  assert.equal(precisionLabel({ w: 4, a: 4, kv: 4 }), 'w/a/kv 4');
  assert.equal(precisionLabel({ w: 4, kv: 8 }), 'w4 kv8');
  assert.equal(precisionLabel(undefined), 'fp32');
});

test('ptqWeights: only linear weights change, each row lands on ≤ 2^bits levels', () => {
  const cfg = gridConfig(GRID, 'nano');
  const w = initParams(cfg, 3);
  const q = ptqWeights(cfg, w, 3);
  for (const p of paramSpecs(cfg)) {
    if (!p.linear) {
      assert.equal(q.get(p.name), w.get(p.name), p.name);
      continue;
    }
    const [rows, cols] = p.shape;
    const data = q.get(p.name)!;
    assert.notDeepEqual(data, w.get(p.name));
    for (let r = 0; r < rows; r++) assert.ok(new Set(data.subarray(r * cols, (r + 1) * cols)).size <= 8, `${p.name} row ${r}`);
  }
});

test('fitExperiment fits only what the rows determine', () => {
  const c = KUMAR2024.values;
  const rows: RunRow[] = [];
  for (const N of [3e7, 6e7, 1.2e8]) for (const D of [1e9, 3e9, 1e10]) rows.push({ N, D, loss: predictRow({ N, D, loss: 0 }, c) * 1.01 });
  const r = fitExperiment(rows, undefined, { holdout: undefined, starts: 2 });
  assert.deepEqual(r.params, ['A', 'alpha', 'B', 'E']); // no low-precision or PTQ rows: no γ, no δ_PTQ constants
  assert.ok(r.rmseLog < 1e-3, `rmse ${r.rmseLog}`);
});

test('fitExperiment: one γ for tied training, separate γ_w, γ_a, γ_kv once a width moves alone', () => {
  // rows from the law with γ's far from the published ones; the fit must find each of them
  const truth = { ...KUMAR2024.values, gammaW: 1.5, gammaA: 4, gammaKv: 0.5 };
  const tied: RunRow[] = [];
  const untied: RunRow[] = [];
  for (const N of [3e7, 1.2e8]) for (const D of [1e9, 1e10]) {
    const add = (to: RunRow[], train?: RunRow['train']) => to.push({ N, D, ...(train ? { train } : {}), loss: predictRow({ N, D, ...(train ? { train } : {}), loss: 0 }, truth) });
    for (const t of [undefined, { w: 4, a: 4, kv: 4 }, { w: 3, a: 3, kv: 3 }]) {
      add(tied, t);
      add(untied, t);
    }
    for (const t of [{ w: 3 }, { a: 3 }, { kv: 3 }, { w: 4 }, { a: 4 }, { kv: 4 }]) add(untied, t);
  }
  const opts = { holdout: undefined, starts: 4 };
  assert.deepEqual(fitExperiment(tied, ['gammaW'], opts).params, ['gammaW']);
  const r = fitExperiment(untied, ['gammaW'], opts);
  assert.deepEqual(r.params, ['gammaW', 'gammaA', 'gammaKv']);
  // exact rows from the law itself: the fit returns the constants that made them
  const FIT_REL_TOL = 1e-3;
  for (const k of ['gammaW', 'gammaA', 'gammaKv'] as const) assert.ok(Math.abs(r.constants.values[k] / truth[k] - 1) < FIT_REL_TOL, `${k}: ${r.constants.values[k]} vs ${truth[k]}`);
});

test('tiny grid end to end: abort after one run, resume recomputes nothing finished, runs file fits', async () => {
  await withTempDir('bitscale-lawx-', async (dir) => {
    const ac = new AbortController();
    const first: { key: string; loss: number }[] = [];
    await assert.rejects(
      lawExperiment({ grid: GRID, out: dir, signal: ac.signal, onRun: (key, loss) => (first.push({ key, loss }), ac.abort()) }),
      (e: Error & { code?: string }) => e.code === 'interrupted',
    );
    assert.equal(first.length, 1);
    const saved = JSON.parse(readFileSync(join(dir, 'runs.json'), 'utf8')) as { runs: { key: string; loss: number }[] };
    assert.deepEqual(saved.runs.map((r) => [r.key, r.loss]), [[first[0].key, first[0].loss]]);

    const computedKeys: string[] = [];
    const r = await lawExperiment({ grid: GRID, out: dir, onRun: (key) => computedKeys.push(key) });
    assert.equal(r.reused, 1);
    assert.equal(r.computed, 5);
    assert.ok(!computedKeys.includes(first[0].key), 'a finished run was recomputed');
    assert.equal(r.runs.length, 6);
    assert.equal(r.runs[0].loss, first[0].loss);
    for (const run of r.runs) assert.ok(run.loss > 2 && run.loss < Math.log(GRID.vocabSize) + 0.5, `${run.key}: ${run.loss}`);
    // the evaluator sees exactly the trained weights: no-PTQ loss = the trainer's own final validation loss
    for (const run of r.runs.filter((x) => x.postBits === undefined)) {
      assert.ok(Math.abs(run.loss - (run.extra!.trainValLoss as number)) <= SAME_WEIGHTS_LOSS_TOL, run.key);
    }
    // retraining after the abort is deterministic: the 4-bit PTQ variant's model equals the first one
    assert.ok(Math.abs((r.runs[1].extra!.trainValLoss as number) - first[0].loss) <= SAME_WEIGHTS_LOSS_TOL);
    // weights trained on the 4-bit per-channel grid are already on it: PTQ to 4 bits changes nothing
    const lp = r.runs.filter((x) => x.train?.w === 4);
    assert.ok(Math.abs(lp[1].loss - lp[0].loss) <= SAME_WEIGHTS_LOSS_TOL, `${lp[1].loss} vs ${lp[0].loss}`);
    // 2-bit RTN of an fp32-trained model is a real perturbation
    assert.notEqual(r.runs[2].loss, r.runs[0].loss);
    assert.equal(r.fit, null); // one N, one D: nothing to fit
    assert.equal(dSweepTable(GRID, r.runs), null);

    // third call: everything reused, nothing trained
    const again = await lawExperiment({ grid: GRID, out: dir, onRun: () => assert.fail('recomputed') });
    assert.equal(again.computed, 0);
    assert.equal(again.reused, 6);

    // both files are valid `law fit` input and agree
    const csvRows = parseRuns(readFileSync(join(dir, 'runs.csv'), 'utf8'), 'runs.csv');
    const jsonRows = parseRuns(readFileSync(join(dir, 'runs.json'), 'utf8'), 'runs.json');
    assert.deepEqual(csvRows.map((x) => [x.N, x.D, x.train?.w, x.postBits]), jsonRows.map((x) => [x.N, x.D, x.train?.w, x.postBits]));
    csvRows.forEach((x, i) => assert.ok(Math.abs(x.loss - jsonRows[i].loss) < 1e-6));
    const fit = await lawFit({ file: join(dir, 'runs.csv'), params: ['E'], starts: 1 });
    assert.equal(fit.n, 6);
    assert.ok(Number.isFinite(fit.estimates.E!));
  });
});

test('loadGrid: built-in names, a JSON file, and typed errors naming the field', async () => {
  assert.equal(loadGrid('small').name, 'small');
  assert.throws(() => loadGrid('nope'), (e: Error & { code?: string; context?: { field?: string } }) => e.code === 'bad_option' && e.context?.field === '--grid');
  await withTempDir('bitscale-lawx-grid-', async (dir) => {
    const f = join(dir, 'g.json');
    writeFileSync(f, JSON.stringify({ ...GRID, steps: [10, 0] }));
    assert.throws(() => loadGrid(f), (e: Error & { context?: { field?: string; file?: string } }) => e.context?.field === 'steps[1]' && e.context.file === f);
    writeFileSync(f, JSON.stringify({ ...GRID, presets: ['huge'] }));
    assert.throws(() => loadGrid(f), /unknown shape preset/);
    writeFileSync(f, JSON.stringify(GRID));
    assert.deepEqual(loadGrid(f), GRID);
    writeFileSync(f, JSON.stringify({ ...GRID, precisions: [{ a: 4, kv: null }] }));
    assert.deepEqual(loadGrid(f).precisions, [{ a: 4 }]);
    for (const [bad, field] of [[[{ a: 1 }], 'precisions[0].a'], [[{ w: 4 }, { x: 4 }], 'precisions[1].x'], [[{ kv: null }], 'precisions[0]'], [{ a: 4 }, 'precisions']] as const) {
      writeFileSync(f, JSON.stringify({ ...GRID, precisions: bad }));
      assert.throws(() => loadGrid(f), (e: Error & { code?: string; context?: { field?: string; file?: string } }) => e.code === 'bad_config' && e.context?.field === field && e.context.file === f, JSON.stringify(bad));
    }
  });
});
