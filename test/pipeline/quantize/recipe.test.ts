// Recipes for quantize and sweep: YAML or JSON, validated against the schema before any work
// (errors name the file and the field path), command-line flags override them, and the output's
// manifest (quantize) or sweep.json (sweep) records them.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadRecipe } from '../../../src/pipeline/quantize/recipe.js';
import { demoEvalText } from '../../../src/pipeline/sweep/demo.js';
import { cliIn } from '../../cli-run.js';
import { tempDir } from '../../helpers.js';

const MODEL = 'assets/default-model';

/** The CLI in this process (test/cli-run.ts), its status as `code`. */
async function cli(argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const r = await cliIn(argv);
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('a quantize recipe runs the command; flags override it; the manifest records it', { skip: existsSync(join(MODEL, 'config.json')) ? false : 'no default model' }, async () => {
  const dir = tempDir('bitscale-recipe-');
  const yaml = join(dir, 'q4.yaml');
  writeFileSync(yaml, `# stored with the model\nbitscale: 1\nquantize:\n  model: ${MODEL}\n  out: ${join(dir, 'r.gguf')}\n  scheme: q4_0\n  method: rtn\n  verify: false\n`);
  const a = await cli(['quantize', '--recipe', yaml, '--json', '--quiet']);
  assert.equal(a.code, 0, a.stderr);
  const man = JSON.parse(readFileSync(join(dir, 'r.gguf.manifest.json'), 'utf8'));
  assert.equal(man.recipe.path, yaml);
  assert.equal(man.recipe.quantize.scheme, 'q4_0');
  assert.match(man.recipe.sha256, /^[0-9a-f]{64}$/);
  assert.equal(man.settings.scheme, 'q4_0');
  // the command line wins over the recipe
  const b = await cli(['quantize', '--recipe', yaml, '--scheme', 'q8_0', '--out', join(dir, 'o.gguf'), '--json', '--quiet']);
  assert.equal(b.code, 0, b.stderr);
  assert.equal(JSON.parse(readFileSync(join(dir, 'o.gguf.manifest.json'), 'utf8')).settings.scheme, 'q8_0');
  // JSON is accepted too (YAML is a superset)
  const json = join(dir, 'q.json');
  writeFileSync(json, JSON.stringify({ quantize: { model: MODEL, out: join(dir, 'j.gguf'), scheme: 'q4_0', verify: false } }));
  assert.equal((await cli(['quantize', '--recipe', json, '--quiet'])).code, 0);
  assert.ok(existsSync(join(dir, 'j.gguf')));
});

test('recipe errors name the file and the field, before any work', async () => {
  const dir = tempDir('bitscale-recipe-bad-');
  const cases: [string, RegExp, string][] = [
    ['quantize:\n  windowz: 8\n', /recipe field quantize\.windowz: unknown key/, 'quantize.windowz'],
    ['quantize:\n  windows: many\n', /recipe field quantize\.windows:/, 'quantize.windows'],
    ['quantize:\n  method: hqq\n', /recipe field quantize\.method:/, 'quantize.method'],
    ['quantise:\n  scheme: q4_0\n', /recipe field quantise: unknown key/, 'quantise'],
    ['sweep:\n  bits: [7]\n', /recipe field sweep\.bits/, 'sweep.bits'],
    ['quantize: [unclosed\n', /not valid YAML or JSON/, ''],
  ];
  for (const [i, [text, msg, field]] of cases.entries()) {
    const f = join(dir, `bad${i}.yaml`);
    writeFileSync(f, text);
    const r = await cli(['quantize', '--recipe', f, '--out', join(dir, 'never.gguf')]);
    assert.equal(r.code, 1, text);
    assert.match(r.stderr, msg, text);
    assert.ok(r.stderr.includes(f), `the file is named: ${r.stderr}`);
    if (field) assert.ok(r.stderr.includes(`field ${field}`), `field ${field}: ${r.stderr}`);
    assert.ok(!existsSync(join(dir, 'never.gguf')));
  }
  const missing = await cli(['quantize', '--recipe', join(dir, 'nope.yaml')]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /cannot read the recipe/);
});

test('a sweep recipe: lists and switches map onto the flags; sweep.json records it', { skip: existsSync(join(MODEL, 'config.json')) ? false : 'no default model', timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-recipe-sweep-');
  const text = join(dir, 'eval.txt');
  writeFileSync(text, demoEvalText());
  const f = join(dir, 'sweep.yaml');
  writeFileSync(f, `sweep:\n  model: ${MODEL}\n  text: ${text}\n  bits: [8]\n  methods: rtn\n  formats: [gguf]\n  budget: [4.5, 2MB]\n  ctx: 64\n  max-tokens: 256\n  sensitivity: false\n  verify: false\n  out: ${join(dir, 'out')}\n`);
  const rec = await loadRecipe(f, 'sweep');
  assert.deepEqual(rec.values, { model: MODEL, text, bits: '8', methods: 'rtn', formats: 'gguf', budget: '4.5,2MB', ctx: '64', 'max-tokens': '256', 'no-sensitivity': true, 'no-verify': true, out: join(dir, 'out') });
  const r = await cli(['sweep', '--recipe', f, '--quiet']);
  assert.equal(r.code, 0, r.stderr);
  const s = JSON.parse(readFileSync(join(dir, 'out', 'sweep.json'), 'utf8'));
  assert.deepEqual(s.points.map((p: { id: string }) => p.id), ['base-f32', 'rtn-q8_0']);
  assert.deepEqual(s.budgets, ['4.5', '2MB']);
  assert.equal(s.recipe.sweep.ctx, 64);
});
