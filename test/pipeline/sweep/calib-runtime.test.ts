// `bitscale sweep --calib-runtime`: a sweep's calibrated points run on the runtime it names, so a
// portable sweep's GPTQ file is the one `bitscale quantize … --calib-runtime portable` writes (the
// point's recorded command, run again here), and sweep.json records the runtime. The native and
// portable runtimes give other GPTQ bytes on this model (test/pipeline/quantize/calib-runtime.test.ts),
// so a sweep that dropped the option would fail the byte comparison.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSweep } from '../../../src/pipeline/sweep/sweep.js';
import { demoEvalText } from '../../../src/pipeline/sweep/demo.js';
import { loadRecipe } from '../../../src/pipeline/quantize/recipe.js';
import type { SweepPointSpec } from '../../../src/eval/sweep-types.js';
import { cliIn } from '../../cli-run.js';
import { tempDir } from '../../helpers.js';

const MODEL = 'assets/default-model';
const skip = existsSync(join(MODEL, 'config.json')) ? false : 'assets/default-model missing';
const weights = (dir: string) => readFileSync(join(dir, 'model.safetensors'));

test('sweep --calib-runtime portable: the GPTQ point equals its recorded quantize command, sweep.json names the runtime', { skip, timeout: 300_000 }, async () => {
  const dir = tempDir('bitscale-sweep-calibrt-');
  const text = join(dir, 'eval.txt');
  writeFileSync(text, demoEvalText());
  const points: SweepPointSpec[] = [
    { id: 'base-f32', method: 'base', scheme: 'f32', bits: 32, format: 'none' },
    { id: 'gptq-int4-g128', method: 'gptq', scheme: 'int4-g128', bits: 4, format: 'safetensors' },
  ];
  const opts = { model: MODEL, text, grid: { bits: [], methods: [], formats: [] }, points, ctx: 64, maxTokens: 128, calibWindows: 2, sensitivity: false as const, verify: false };
  const r = await runSweep({ ...opts, outDir: join(dir, 'portable'), calibRuntime: 'portable' });
  assert.equal(r.record.calibRuntime, 'portable');
  const saved = JSON.parse(readFileSync(r.json, 'utf8')) as { calibRuntime: string };
  assert.equal(saved.calibRuntime, 'portable');
  const g = r.record.points.find((p) => p.id === 'gptq-int4-g128')!;
  assert.match(g.command!, / --calib-runtime portable\b/);
  // the recorded command, into another folder (the reload check does not change the bytes)
  const again = join(dir, 'again');
  const argv = g.command!.split(/\s+/).slice(1).map((a, i, xs) => (xs[i - 1] === '--out' ? again : a));
  const res = await cliIn([...argv, '--no-verify', '--quiet']);
  assert.equal(res.status, 0, res.stderr);
  assert.ok(weights(g.out!).equals(weights(again)), 'the sweep wrote the portable runtime\'s bytes');
  const manifest = JSON.parse(readFileSync(join(g.out!, 'bitscale-manifest.json'), 'utf8')) as { calibration: { runtime: string } };
  assert.equal(manifest.calibration.runtime, 'portable');

  // the same folder on the native runtime: the earlier points are not kept (the GPTQ bytes differ)
  const n = await runSweep({ ...opts, outDir: join(dir, 'portable'), calibRuntime: 'native' });
  assert.equal(n.record.calibRuntime, 'native');
  const gn = n.record.points.find((p) => p.id === 'gptq-int4-g128')!;
  assert.doesNotMatch(gn.command!, /--calib-runtime/);
  assert.ok(!weights(gn.out!).equals(weights(again)), 'measured again on the native runtime, not resumed');
});

test('sweep --calib-runtime: a recipe key; other values are refused', async () => {
  const dir = tempDir('bitscale-sweep-calibrt-');
  const f = join(dir, 'r.yaml');
  writeFileSync(f, 'sweep:\n  calib-runtime: portable\n');
  assert.equal((await loadRecipe(f, 'sweep')).values['calib-runtime'], 'portable');
  writeFileSync(f, 'sweep:\n  calib-runtime: wasm\n');
  await assert.rejects(loadRecipe(f, 'sweep'), /sweep\.calib-runtime/);
  const r = await cliIn(['sweep', MODEL, '--text', f, '--out', join(dir, 'o'), '--calib-runtime', 'wasm', '--quiet']);
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--calib-runtime/);
});
