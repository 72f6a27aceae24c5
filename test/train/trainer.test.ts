import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { ConfigError, NumericError, BitscaleError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { interpret } from '../../src/engine/interp.js';
import type { Graph } from '../../src/engine/ir.js';
import { buildTrainGraph, initParams, llamaConfig, paramSpecs } from '../../src/train/graph.js';
import { loadCheckpoint } from '../../src/train/train-checkpoint.js';
import { CHECKPOINT_FILE, train, Trainer, TRAIN_DEFAULTS, type TrainSettings } from '../../src/train/trainer.js';
import { trainBatch } from '../../src/train/data.js';
import { withTempDir } from '../helpers.js';

/** whole-model gradients: onnxruntime float32 vs float64 central differences of the reference forward */
const MODEL_GRAD_TOL = 2e-3;
const H = 1e-4;

const cfg = llamaConfig({ vocabSize: 32, hiddenSize: 16, intermediateSize: 24, nLayers: 2, nHeads: 4, nKvHeads: 2, context: 8 });
const stream = (n: number, seed: number) => {
  const r = new Rng(seed);
  // a learnable stream: mostly t+1 mod V with some noise
  const out = new Int32Array(n);
  for (let i = 1; i < n; i++) out[i] = r.next() < 0.8 ? (out[i - 1] + 1) % 32 : r.int(32);
  return out;
};
const base: TrainSettings = { ...TRAIN_DEFAULTS, batch: 2, context: 8, steps: 6, lr: 1e-2, warmupSteps: 2, valEvery: 0, valBatches: 2, threads: 1 };

function withParams(g: Graph, vals: Map<string, Float64Array>): Graph {
  const constants = new Map(g.constants);
  for (const [id, name] of g.params) constants.set(id, { dtype: 'F32', shape: [...g.constants.get(id)!.shape], data: vals.get(name) as never });
  const outputs = g.outputs.map((o) => ({ ...o, value: { ...o.value, dtype: 'F64' as const } }));
  return { ...g, constants, outputs };
}

test('tiny Llama (GQA, RoPE, SwiGLU): every parameter gradient matches central differences', async () => {
  const params = initParams(cfg, 5);
  // larger weights than the default init so that the gradients are far from zero
  for (const [k, w] of params) if (!k.includes('norm')) for (let i = 0; i < w.length; i++) w[i] *= 10;
  const tg = buildTrainGraph(cfg, 1, 8, undefined, params);
  const batch = trainBatch(stream(200, 1), 1, 8, 0, 0);
  const feeds = {
    tokens: { dtype: 'I64' as const, shape: [1, 8], data: BigInt64Array.from(batch.inputs, BigInt) },
    targets: { dtype: 'I64' as const, shape: [1, 8], data: BigInt64Array.from(batch.targets, BigInt) },
  };
  const tr = await Trainer.create(cfg, { ...base, batch: 1 }, params);
  const { grads } = await tr.lossAndGrads(batch);
  await tr.release();
  const vals = new Map([...params].map(([k, w]) => [k, Float64Array.from(w)]));
  const lossAt = () => (interpret(withParams(tg.graph, vals), feeds, { roundF32: false }).loss.data as Float64Array)[0];
  const rng = new Rng(9);
  let checked = 0;
  for (const p of paramSpecs(cfg)) {
    const w = vals.get(p.name)!;
    for (let k = 0; k < 3; k++) {
      const i = rng.int(w.length);
      const w0 = w[i];
      w[i] = w0 + H;
      const lp = lossAt();
      w[i] = w0 - H;
      const lm = lossAt();
      w[i] = w0;
      const fd = (lp - lm) / (2 * H);
      const g = grads.get(p.name)![i];
      assert.ok(Math.abs(g - fd) <= MODEL_GRAD_TOL * (Math.abs(fd) + 1e-2), `${p.name}[${i}]: onnxruntime ${g} vs FD ${fd}`);
      checked++;
    }
  }
  assert.equal(checked, paramSpecs(cfg).length * 3);
});

test('exact resume: k steps + checkpoint + k steps equals 2k steps bit for bit', async () => {
  await withTempDir('bitscale-train-', async (dir) => {
    const data = stream(400, 2);
    const val = stream(100, 3);
    const full = await train({ config: cfg, settings: base, train: data, val, outDir: join(dir, 'a') });
    const ac = new AbortController();
    await assert.rejects(
      train({ config: cfg, settings: { ...base, ckptEvery: 3 }, train: data, val, outDir: join(dir, 'b'), signal: ac.signal, onLog: (r) => r.step === 3 && ac.abort() }),
      (e: unknown) => e instanceof BitscaleError && e.code === 'interrupted',
    );
    assert.equal((await loadCheckpoint(join(dir, 'b', CHECKPOINT_FILE))).step, 3);
    const resumed = await train({ config: cfg, settings: { ...base, ckptEvery: 3 }, train: data, val, outDir: join(dir, 'b'), resume: true });
    assert.equal(resumed.history[0].step, 4);
    for (const [k, w] of full.params) assert.deepEqual(resumed.params.get(k), w, k);
    assert.ok(full.history[5].loss < full.history[0].loss, 'loss goes down');
    // another config cannot resume this checkpoint
    const other = llamaConfig({ vocabSize: 32, hiddenSize: 16, intermediateSize: 32, nLayers: 2, nHeads: 4, nKvHeads: 2, context: 8 });
    await assert.rejects(
      train({ config: other, settings: base, train: data, val, outDir: join(dir, 'b'), resume: true }),
      (e: unknown) => e instanceof ConfigError && e.context.field === 'intermediateSize' && /different model config/.test(e.message),
    );
  });
});

test('clear errors: corpus smaller than one batch; NaN loss stops and keeps the last good checkpoint', async () => {
  await assert.rejects(
    train({ config: cfg, settings: base, train: Int32Array.from([1, 2, 3]), val: stream(100, 3) }),
    (e: unknown) => e instanceof ConfigError && /smaller than one batch/.test(e.message),
  );
  await withTempDir('bitscale-train-', async (dir) => {
    let failedAt = 0;
    await assert.rejects(
      train({ config: cfg, settings: { ...base, lr: 1e30, warmupSteps: 0, clip: 0, ckptEvery: 1 }, train: stream(400, 2), val: stream(100, 3), outDir: dir }),
      (e: unknown) => {
        failedAt = Number(/at step (\d+)/.exec((e as Error).message)?.[1]);
        return e instanceof NumericError && e.code === 'diverged' && failedAt > 1;
      },
    );
    assert.ok(existsSync(join(dir, CHECKPOINT_FILE)));
    const kept = await loadCheckpoint(join(dir, CHECKPOINT_FILE));
    assert.equal(kept.step, failedAt - 1, 'the checkpoint of the last finite step is kept');
  });
});
