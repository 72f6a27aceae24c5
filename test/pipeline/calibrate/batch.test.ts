// Calibration forward in batches (src/pipeline/calibrate/batch.ts) against the per-window block
// graph with statistics gathered in float64 by plain loops (engine/block-runner.ts + ActivationStats.add):
// same statistics within float32 tolerance and the same next-layer inputs, on GQA, biased and
// q/k-normed attention, with a last run of fewer windows; progress inside a layer, interruption,
// and the default calibration size rule.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { Rng } from '../../../src/core/rng.js';
import type { ProgressEvent } from '../../../src/core/progress.js';
import { prepareHostModel } from '../../../src/engine/host.js';
import { BlockRunner } from '../../../src/engine/block-runner.js';
import { SITES } from '../../../src/engine/decoder-block.js';
import { embedWindows, newSiteStats, runLayer } from '../../../src/pipeline/calibrate/calibrate.js';
import { CalibrationRunner, embedWindowStates, newGraphSiteStats } from '../../../src/pipeline/calibrate/batch.js';
import { calibrationSize } from '../../../src/pipeline/calibrate/windows.js';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { syntheticModel, tinyConfig } from '../../model/synthetic.js';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

/** float32 in-graph sums over ≤ 3 windows vs float64 loops, relative to the largest entry */
const STATS_REL_TOL = 1e-5;
/** the same float32 block math, batched: observed identical; allow a last-bit reordering */
const Y_ATOL = 1e-6;

const ARCHS = [
  { name: 'GQA llama', c: tinyConfig() },
  { name: 'biased q/k/v (Qwen2-style), wider', c: tinyConfig({ attentionBias: true, hiddenSize: 48, intermediateSize: 80, nHeads: 6, nKvHeads: 3 }) },
  { name: 'q/k norms (Qwen3-style), interleaved RoPE', c: tinyConfig({ qkNorm: true, ropeLayout: 'interleaved', nKvHeads: 4 }) },
];

for (const a of ARCHS) {
  test(`batched calibration = per-window calibration: ${a.name}`, async () => {
    const c = a.c;
    const host = await prepareHostModel(syntheticModel(c, 3));
    const rng = new Rng(2);
    const T = 16, W = 7;
    const wins = Array.from({ length: W }, () => Array.from({ length: T }, () => rng.int(c.vocabSize)));
    const ref = embedWindows(host, wins);
    const xs = embedWindowStates(host.tensors.get('model.embed_tokens.weight')!, c.hiddenSize, wins);
    const br = await BlockRunner.create(c, T);
    const cr = new CalibrationRunner(c, T, { windowsPerRun: 3, panelWidth: 16 }); // runs of 3, 3, 1 windows
    const get = (n: string) => host.tensors.get(n)!;
    try {
      for (let l = 0; l < c.nLayers; l++) {
        const sa = newSiteStats(host, true);
        await runLayer(br, host, l, ref, sa);
        const sb = newGraphSiteStats(c, true, 16);
        const batches: number[] = [];
        await cr.run(l, get, xs, { stats: sb, forward: false, onBatch: (d) => batches.push(d) });
        assert.deepEqual(batches, [3, 6, 7]);
        await cr.run(l, get, xs, { forward: true });
        for (const s of SITES) {
          assert.equal(sb[s].nTokens, W * T);
          const ga = sa[s].gramFull(), gb = sb[s].gramFull();
          let md = 0, mx = 0;
          for (let i = 0; i < ga.length; i++) {
            md = Math.max(md, Math.abs(ga[i] - gb[i]));
            mx = Math.max(mx, Math.abs(ga[i]));
          }
          assert.ok(md <= STATS_REL_TOL * mx, `layer ${l} ${s}: Gram ${md} of ${mx}`);
          for (const f of ['sumSq', 'sumAbs', 'maxAbs'] as const) {
            for (let i = 0; i < sa[s].k; i++) assert.ok(Math.abs(sa[s][f][i] - sb[s][f][i]) <= STATS_REL_TOL * Math.abs(sa[s][f][i]) + 1e-12, `layer ${l} ${s} ${f}[${i}]`);
          }
        }
        for (let w = 0; w < W; w++) {
          for (let i = 0; i < T * c.hiddenSize; i++) assert.ok(Math.abs(ref[w][i] - xs.data[w * T * c.hiddenSize + i]) <= Y_ATOL, `layer ${l} window ${w} y[${i}]`);
        }
      }
      // statistics and forward in one pass (float models), without Gram matrices (imatrix)
      const xs2 = embedWindowStates(host.tensors.get('model.embed_tokens.weight')!, c.hiddenSize, wins);
      const s0 = newGraphSiteStats(c, false);
      await cr.run(0, get, xs2, { stats: s0, forward: true });
      const s1 = newSiteStats(host, false);
      await runLayer(br, host, 0, embedWindows(host, wins), s1);
      assert.equal(s0.ffn_down.gram, null);
      for (let i = 0; i < s1.ffn_down.k; i++) assert.ok(Math.abs(s0.ffn_down.sumSq[i] - s1.ffn_down.sumSq[i]) <= STATS_REL_TOL * s1.ffn_down.sumSq[i]);
      const y0 = (await br.run(0, get, embedWindows(host, wins.slice(0, 1))[0], false)).y;
      for (let i = 0; i < y0.length; i++) assert.ok(Math.abs(xs2.data[i] - y0[i]) <= Y_ATOL, `one-pass y[${i}]`);
    } finally {
      await br.close();
      await cr.close();
    }
  });
}

test('default calibration: 128 windows of 512 tokens, capped for small models at 32 tokens per input feature', () => {
  const l1b = tinyConfig({ hiddenSize: 2048, intermediateSize: 8192, nHeads: 32, nKvHeads: 8, headDim: 64, maxSeqLen: 131072 });
  assert.deepEqual(calibrationSize(l1b), { windows: 128, seqLen: 512 });
  // the bundled default model: 128-token context, widest input 384 → ⌈32·384/128⌉ = 96 windows
  assert.deepEqual(calibrationSize(tinyConfig({ hiddenSize: 128, intermediateSize: 384, nHeads: 4, nKvHeads: 4, headDim: 32, maxSeqLen: 128 })), { windows: 96, seqLen: 128 });
  // tiny models never go below 16 windows; explicit settings win
  assert.deepEqual(calibrationSize(tinyConfig({ maxSeqLen: 512 })), { windows: 16, seqLen: 512 });
  assert.deepEqual(calibrationSize(l1b, { windows: 4, seqLen: 64 }), { windows: 4, seqLen: 64 });
});

test('GPTQ reports progress inside each layer (tensors, column blocks, ETA) and stops when interrupted', { timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-cb-'));
  try {
    const events: ProgressEvent[] = [];
    const model = resolve('assets/default-model');
    await quantizeModel({ model, out: join(dir, 'q.gguf'), format: 'gguf', scheme: 'q4_0', method: 'gptq', windows: 4, seqLen: 32, verify: false, onProgress: (e) => events.push(e) });
    const inLayer = events.filter((e) => e.task === 'quantize layer 2/4');
    assert.ok(inLayer.some((e) => /^calibration statistics: windows \d+\/4$/.test(e.detail ?? '')), 'calibration runs reported');
    for (const lin of ['self_attn.q_proj', 'self_attn.o_proj', 'mlp.up_proj', 'mlp.down_proj']) {
      assert.ok(inLayer.some((e) => e.detail?.startsWith(`${lin} [`) && /columns \d+\/\d+$/.test(e.detail)), `${lin} column blocks reported`);
    }
    assert.ok(inLayer.some((e) => /next layer's inputs/.test(e.detail ?? '')));
    const pct = inLayer.map((e) => e.done);
    assert.deepEqual(pct, [...pct].sort((x, y) => x - y), 'work done only grows');
    assert.equal(inLayer.at(-1)!.done, 100);
    assert.ok(inLayer.slice(1).every((e) => e.etaS !== null && e.etaS >= 0), 'an ETA once work is done');

    const ac = new AbortController();
    let seen = 0;
    await assert.rejects(
      quantizeModel({
        model, out: join(dir, 'x.gguf'), format: 'gguf', scheme: 'q4_0', method: 'gptq', windows: 4, seqLen: 32, verify: false, signal: ac.signal,
        onProgress: (e) => {
          if (/columns/.test(e.detail ?? '') && ++seen === 3) ac.abort();
        },
      }),
      { code: 'interrupted' },
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('calibration windows given as token ids: used as given, checked', { timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-ct-'));
  try {
    const model = resolve('assets/default-model');
    const rng = new Rng(5);
    const calibTokens = Array.from({ length: 3 }, () => Array.from({ length: 24 }, () => rng.int(1023)));
    const out = join(dir, 'q.gguf');
    const r = await quantizeModel({ model, out, format: 'gguf', scheme: 'q4_0', method: 'gptq', calibTokens, verify: false });
    const man = JSON.parse(readFileSync(r.manifest, 'utf8'));
    assert.deepEqual([man.calibration.windows, man.calibration.seqLen], [3, 24]);
    assert.match(man.calibration.source, /token ids given by the caller \(3 windows of 24\)/);
    const bad = [calibTokens[0], calibTokens[1].slice(0, 10)];
    await assert.rejects(quantizeModel({ model, out, format: 'gguf', scheme: 'q4_0', method: 'gptq', calibTokens: bad, verify: false, overwrite: true }), { code: 'bad_option' });
    await assert.rejects(quantizeModel({ model, out, format: 'gguf', scheme: 'q4_0', method: 'gptq', calibTokens: [[1, 5000]], verify: false, overwrite: true }), { code: 'bad_option' });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
