// Every command's --json output: one object carrying the tool's name and version and the command,
// validated against its schema (src/cli/json-schemas.ts), on real runs of each command on the
// embedded model; and the schema files in docs/json/ are the ones the schemas generate.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { JSON_SCHEMAS, schemaFiles, type JsonCommand } from '../../src/cli/json-schemas.js';
import { demoEvalText } from '../../src/pipeline/sweep/demo.js';
import { TOOL_VERSION } from '../../src/pipeline/quantize/quantize.js';
import { cliIn } from '../cli-run.js';
import { tempDir } from '../helpers.js';

const MODEL = 'assets/default-model';

async function json(argv: string[]): Promise<unknown> {
  const r = await cliIn([...argv, '--json']);
  assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  const lines = r.stdout.trim().split('\n');
  assert.equal(lines.length, 1, `${argv.join(' ')}: one JSON line`);
  return JSON.parse(lines[0]);
}

function check(name: JsonCommand, v: unknown): void {
  const r = JSON_SCHEMAS[name].safeParse(v);
  assert.ok(r.success, `${name}: ${r.success ? '' : JSON.stringify(r.error.issues.slice(0, 3))}`);
  const o = v as { tool: { name: string; version: string } };
  assert.deepEqual(o.tool, { name: 'bitscale', version: TOOL_VERSION });
}

test('docs/json holds the schemas the code generates (npx tsx scripts/json-schemas.ts)', () => {
  const want = schemaFiles();
  const have = readdirSync(join('docs', 'json')).sort();
  assert.deepEqual(have, Object.keys(want).sort());
  for (const [f, text] of Object.entries(want)) assert.equal(readFileSync(join('docs', 'json', f), 'utf8'), text, `docs/json/${f} is stale`);
  // every command documented in docs/json-output.md
  const doc = readFileSync(join('docs', 'json-output.md'), 'utf8');
  for (const name of Object.keys(JSON_SCHEMAS)) assert.ok(doc.includes(`json/${name}.schema.json`), `docs/json-output.md lists ${name}`);
});

test('each command\'s --json output validates against its schema and names the tool and version', { skip: existsSync(join(MODEL, 'config.json')) ? false : 'no default model', timeout: 240_000 }, async () => {
  const dir = tempDir('bitscale-json-');
  const text = join(dir, 'eval.txt');
  writeFileSync(text, demoEvalText());
  check('quantize', await json(['quantize', MODEL, '--out', join(dir, 'q.gguf'), '--scheme', 'q4_0', '--no-verify']));
  check('quantize', await json(['quantize', MODEL, '--out', join(dir, 'g'), '--scheme', 'int4-g128']));
  check('quantize-variants', await json(['quantize', MODEL, '--out', join(dir, 'onnx'), '--variants', 'fp32']));
  check('eval', await json(['eval', join(dir, 'q.gguf'), '--text', text, '--ctx', '64', '--max-tokens', '256', '--base', MODEL, '--quiet']));
  check('inspect', await json(['inspect', join(dir, 'g')]));
  check('convert', await json(['convert', MODEL, join(dir, 'c.gguf'), '--quiet']));
  check('generate', await json(['generate', MODEL, '--prompt', 'Call me', '-n', '4']));
  check('sweep', await json(['sweep', MODEL, '--text', text, '--bits', '8', '--methods', 'rtn', '--formats', 'gguf', '--ctx', '64', '--max-tokens', '256', '--no-sensitivity', '--no-verify', '--out', join(dir, 'sweep')]));
  check('law-predict', await json(['law', 'predict', '--N', '1e9', '--D', '2e10', '--post-bits', '4']));
  check('law-optimal', await json(['law', 'optimal', '--compute', '1e21']));
  check('law-fit', await json(['law', 'fit', join('docs', 'scaling-laws-runs.csv')]));
  check('law-plot', await json(['law', 'plot', '--out', join(dir, 'plots')]));
  const grid = join(dir, 'grid.json');
  writeFileSync(grid, JSON.stringify({ name: 'json-test', vocabSize: 320, context: 32, batch: 4, maxChapters: 3, presets: ['nano'], steps: [4], trainBits: [null], postBits: [4], valBatches: 2 }));
  check('law-experiment', await json(['law', 'experiment', '--out', join(dir, 'law'), '--grid', grid]));
});
