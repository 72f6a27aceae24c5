// `bitscale eval` and `bitscale generate` end to end (a child process, as users run them).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { SHARED, sharedSkip } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin', 'data/tinystories-valid-excerpt.txt', 'golden/stories260K/greedy-256.txt');
const MODEL = resolve(SHARED, 'models/stories260K/stories260K.bin');
const TEXT = resolve(SHARED, 'data/tinystories-valid-excerpt.txt');
/** golden mean NLL printed with 6 decimals */
const NLL_ATOL = 1e-5;

function cli(args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
}

test('eval --json: one object whose nll is llama2.c\'s on the first 512 tokens', { skip }, () => {
  const r = cli(['eval', MODEL, '--text', TEXT, '--ctx', '512', '--max-windows', '1', '--json']);
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim()) as { ppl: number; nll: number; tokens: number };
  assert.equal(o.tokens, 511);
  assert.ok(Math.abs(o.nll - 1.635487) < NLL_ATOL, `nll ${o.nll}`);
  assert.ok(Math.abs(o.ppl - Math.exp(o.nll)) < 1e-9);
});

test('eval with precision knobs and --base reports KLD; a bad option exits 2 naming the flag', { skip }, () => {
  const r = cli(['eval', MODEL, '--text', TEXT, '--ctx', '128', '--max-windows', '2', '--w-bits', 'int4-channel', '--a-bits', '8', '--kv-bits', '8', '--base', MODEL, '--json']);
  assert.equal(r.status, 0, r.stderr);
  const o = JSON.parse(r.stdout.trim()) as { ppl: number; weights: string; base: { ppl: number; kld: number; top1Agreement: number } };
  assert.equal(o.weights, 'int4-channel');
  assert.ok(o.base.kld > 0 && o.base.kld < 1, `kld ${o.base.kld}`);
  assert.ok(o.base.top1Agreement > 0.5 && o.base.top1Agreement < 1);
  assert.ok(o.ppl > o.base.ppl);
  const bad = cli(['eval', MODEL, '--text', TEXT, '--ctx', 'x']);
  assert.equal(bad.status, 2);
  assert.match(bad.stderr, /--ctx/);
  const missing = cli(['eval', resolve(SHARED, 'models/nope.bin'), '--text', TEXT]);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /missing_file/);
});

test('generate: greedy from BOS starts llama2.c\'s text; the same seed gives the same sample', { skip }, () => {
  // the full 256 tokens are checked in test/engine/stories260k.test.ts; here the first 64
  const g = cli(['generate', MODEL, '-n', '64']);
  assert.equal(g.status, 0, g.stderr);
  const want = readFileSync(resolve(SHARED, 'golden/stories260K/greedy-256.txt'), 'utf8');
  const got = g.stdout.replace(/\n$/, '');
  assert.ok(got.length > 100 && want.startsWith(got), got);
  const a = cli(['generate', MODEL, '--prompt', 'Once upon a time', '-n', '30', '--temp', '0.9', '--top-p', '0.9', '--seed', '5']);
  const b = cli(['generate', MODEL, '--prompt', 'Once upon a time', '-n', '30', '--temp', '0.9', '--top-p', '0.9', '--seed', '5']);
  assert.equal(a.status, 0, a.stderr);
  assert.equal(a.stdout, b.stdout);
  assert.ok(a.stdout.startsWith('Once upon a time'));
});
