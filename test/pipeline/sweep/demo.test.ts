// The README's main job on the embedded model, in its quick form: every point is measured, the
// 8-bit points are closer to the float model than the 4-bit ones, and the report is written.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultModelDir, runDemo, DEMO_POINTS } from '../../../src/pipeline/sweep/demo.js';
import { tempDir } from '../../helpers.js';

test('the demo grid covers 2, 3, 4 and 8 bits with RTN, GPTQ and AWQ in GGUF and safetensors', () => {
  const ids = DEMO_POINTS.map((p) => p.id);
  for (const b of [2, 3, 4, 8]) assert.ok(DEMO_POINTS.some((p) => p.bits === b), `${b} bits`);
  for (const m of ['rtn', 'gptq', 'awq']) assert.ok(DEMO_POINTS.some((p) => p.method === m), m);
  assert.ok(ids.includes('base-f32') && ids.includes('rtn-q4_0') && ids.includes('gptq-int2-g128'));
  assert.equal(new Set(ids).size, ids.length);
});

test('bitscale demo --quick on the embedded model', { skip: existsSync(join(defaultModelDir(), 'config.json')) ? false : 'assets/default-model missing' }, async () => {
  const dir = tempDir('bitscale-demo-');
  const r = await runDemo({ outDir: dir, quick: true });
  const by = new Map(r.record.points.map((p) => [p.id, p]));
  assert.deepEqual([...by.keys()].sort(), ['base-f32', 'rtn-int4-g128', 'rtn-int4-g128-onnx', 'rtn-int8-g128', 'rtn-q4_0', 'rtn-q8_0']);
  // the transformers.js folder holds the same codes as the GPTQ-packed safetensors; only the float
  // tensors differ (float32 in the ONNX graph, float16 in the GPTQ folder)
  assert.ok(Math.abs(by.get('rtn-int4-g128-onnx')!.nll - by.get('rtn-int4-g128')!.nll) < 1e-3);
  assert.ok(Math.abs(by.get('rtn-int4-g128-onnx')!.kld - by.get('rtn-int4-g128')!.kld) < 1e-3);
  // one recommendation per runtime, each a file of that kind
  for (const rt of ['gguf', 'onnx', 'safetensors'] as const) {
    const c = r.record.recommendations!.find((x) => x.runtime === rt && x.budget === 'none')!;
    assert.ok(c.pointId, `${rt}: ${c.note}`);
    assert.equal(by.get(c.pointId)!.format, rt);
  }
  for (const p of r.record.points) {
    assert.ok(Number.isFinite(p.nll) && p.nll > 0 && p.ppl > 1, `${p.id} nll ${p.nll}`);
    if (p.method !== 'base') assert.ok(p.fileBytes > 0, `${p.id} has a file`);
  }
  assert.ok(by.get('rtn-q8_0')!.kld < by.get('rtn-q4_0')!.kld);
  assert.ok(by.get('rtn-int8-g128')!.kld < by.get('rtn-int4-g128')!.kld);
  assert.ok(r.record.points.some((p) => p.onFrontier));
  assert.ok(r.report.endsWith('.html') && existsSync(r.report));
  assert.match(readFileSync(r.report, 'utf8'), /id="frontier-chart"/);
});
