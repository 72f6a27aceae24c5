// The report's "reproduce" commands reproduce its numbers: a small sweep on the embedded model, then
// every point's recorded eval command is run through the CLI (in process, --json) on the file the
// sweep wrote, and its perplexity, KL divergence and top-1 agreement are compared with the record.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runSweep } from '../../../src/pipeline/sweep/sweep.js';
import { demoEvalText } from '../../../src/pipeline/sweep/demo.js';
import type { SweepPointSpec } from '../../../src/eval/sweep-types.js';
import { cliIn } from '../../cli-run.js';
import { tempDir } from '../../helpers.js';

const MODEL = 'assets/default-model';
/** Relative difference allowed between the sweep's numbers and `bitscale eval` on the written file:
 * the same weights and tokens through the same engine graph; only onnxruntime's summation order may differ. */
const REPRODUCE_RTOL = 1e-6;

/** The CLI in this process (test/cli-run.ts), its status as `code`. */
async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await cliIn(argv);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A recorded command line split into argv (paths here have no spaces). */
const argvOf = (cmd: string) => cmd.split(/\s+/).slice(1);

test('each point\'s recorded eval command measures the numbers the sweep reported', { skip: existsSync(join(MODEL, 'config.json')) ? false : 'assets/default-model missing', timeout: 180_000 }, async () => {
  const dir = tempDir('bitscale-repro-');
  const points: SweepPointSpec[] = [
    { id: 'base-f32', method: 'base', scheme: 'f32', bits: 32, format: 'none' },
    { id: 'rtn-q4_0', method: 'rtn', scheme: 'q4_0', bits: 4, format: 'gguf' },
    { id: 'rtn-int4-g128', method: 'rtn', scheme: 'int4-g128', bits: 4, format: 'safetensors' },
    { id: 'rtn-int3-g128', method: 'rtn', scheme: 'int3-g128', bits: 3, format: 'fakequant' },
    // the transformers.js folder: eval reads it back through the ONNX reader (model/load-onnx.ts)
    { id: 'rtn-int4-g128-onnx', method: 'rtn', scheme: 'int4-g128', bits: 4, format: 'onnx' },
  ];
  const text = join(dir, 'eval.txt');
  writeFileSync(text, demoEvalText());
  const r = await runSweep({ model: MODEL, text, outDir: dir, grid: { bits: [], methods: [], formats: [] }, points, ctx: 64, maxTokens: 384, calibWindows: 2, sensitivity: false, verify: false });
  for (const p of r.record.points) {
    assert.ok(p.evalCommand, `${p.id} has an eval command`);
    assert.match(p.evalCommand, /--max-tokens 384/);
    const res = await cli([...argvOf(p.evalCommand), '--json', '--quiet']);
    assert.equal(res.code, 0, `${p.id}: ${p.evalCommand}`);
    const e = JSON.parse(res.stdout) as { ppl: number; tokens: number; base?: { kld: number; top1Agreement: number } };
    const close = (a: number, b: number) => Math.abs(a - b) <= REPRODUCE_RTOL * Math.max(Math.abs(a), Math.abs(b), 1e-12);
    assert.ok(close(e.ppl, p.ppl), `${p.id}: eval PPL ${e.ppl} vs sweep ${p.ppl}`);
    if (p.method !== 'base') {
      assert.ok(e.base, `${p.id}: eval compared against the base model`);
      assert.ok(close(e.base.kld, p.kld), `${p.id}: eval KLD ${e.base.kld} vs sweep ${p.kld}`);
      assert.equal(e.base.top1Agreement, p.top1, `${p.id}: top-1`);
    }
  }
  // the base command is the eval command (its numbers are the eval's)
  const base = r.record.points.find((p) => p.method === 'base')!;
  assert.equal(base.command, base.evalCommand);
});
