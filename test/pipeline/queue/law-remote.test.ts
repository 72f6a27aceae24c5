// `law experiment --queue`: a tiny grid trained by two worker processes writes the runs.json a
// local run writes (losses bit for bit; `trainS` is the one timing field), and the CLI side of the
// queue: `bitscale worker` flags and its error when Redis is not there.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { lawExperiment, type ExperimentGrid } from '../../../src/pipeline/law/experiment.js';
import { freePort, redisMissing, startRedis, startWorker } from './fixtures.js';
import { tempDir } from '../../helpers.js';

const skip = redisMissing();

// two trained models (fp32, 4-bit w/a/kv), each at no PTQ and PTQ 4 bits → 4 runs, 2 jobs
const GRID: ExperimentGrid = {
  name: 'test-queue', vocabSize: 320, context: 32, batch: 4, maxChapters: 3, presets: ['nano'], steps: [10], trainBits: [null, 4], postBits: [4], valBatches: 2,
};

function runsWithoutTimings(dir: string): unknown {
  const j = JSON.parse(readFileSync(join(dir, 'runs.json'), 'utf8')) as { runs: { extra?: Record<string, unknown> }[] };
  for (const r of j.runs) delete r.extra?.trainS;
  return j;
}

test('law experiment over two worker processes writes the local runs.json (losses bit for bit)', { skip, timeout: 240_000 }, async () => {
  const redis = await startRedis();
  const local = tempDir('bitscale-lawq-local-');
  const remote = tempDir('bitscale-lawq-remote-');
  const workers = [startWorker(redis.url, '--threads', '1'), startWorker(redis.url, '--threads', '1')];
  try {
    const a = await lawExperiment({ grid: GRID, out: local });
    const b = await lawExperiment({ grid: GRID, out: remote, queue: { url: redis.url } });
    assert.equal(b.computed, 4);
    assert.deepEqual(runsWithoutTimings(remote), runsWithoutTimings(local));
    // a second coordinator run finds everything recorded: nothing is queued, nothing recomputed
    const c = await lawExperiment({ grid: GRID, out: remote, queue: { url: redis.url } });
    assert.equal(c.computed, 0);
    assert.equal(c.reused, 4);
    assert.deepEqual(c.runs.map((r) => r.loss), a.runs.map((r) => r.loss));
    assert.equal(workers.filter((w) => /: done in/.test(w.output())).length, 2, 'both workers trained one model each');
  } finally {
    for (const w of workers) w.kill();
    await redis.stop();
  }
});

test('bitscale worker: --queue is required; an unreachable Redis exits 1 naming the URL', async () => {
  const cli = (...args: string[]) => spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
  const none = cli('worker');
  assert.equal(none.status, 2);
  assert.match(none.stderr, /--queue is required/);
  const url = `redis://127.0.0.1:${await freePort()}/0`;
  const down = cli('worker', '--queue', url);
  assert.equal(down.status, 1, down.stderr);
  assert.match(down.stderr, new RegExp(`error \\[io\\]: cannot reach Redis at ${url.replace(/[/.]/g, '\\$&')}`));
  assert.match(cli('worker', '--queue', url, '--map', 'nothing').stderr, /invalid value for --map/);
});

test('BullMQ and ioredis are loaded only with --queue: dynamic imports, in queue/redis.ts', () => {
  const files: string[] = [];
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(join(d, e.name));
      else if (e.name.endsWith('.ts')) files.push(join(d, e.name));
    }
  };
  walk('src');
  const queueModules = /\/queue\/[a-z-]+\.js['"]/;
  for (const f of files) {
    const src = readFileSync(f, 'utf8');
    const rel = relative('src', f);
    for (const pkg of ['bullmq', 'ioredis']) {
      const found = [...src.matchAll(new RegExp(`(import\\s[^;]*?from\\s+|import\\(\\s*)['"]${pkg}['"]`, 'g'))].map((m) => m[0]);
      if (rel === join('pipeline', 'queue', 'redis.ts')) assert.ok(found.length > 0 && found.every((x) => x.startsWith('import(')), `queue-redis imports ${pkg} dynamically (and as a type): ${found.join(', ')}`);
      else assert.deepEqual(found, [], `${rel} imports ${pkg}`);
    }
    // outside the queue modules (and the worker command), queue code is imported for types or on demand
    if (/^(pipeline\/queue\/|cli\/(worker-child|commands\/worker))/.test(rel)) continue;
    for (const m of src.matchAll(/(?:^|\n)\s*import\s+(type\s+)?[^;]*?from\s+['"]([^'"]+)['"]/g)) {
      if (queueModules.test(`'${m[2]}'`)) assert.ok(m[1], `${rel} imports ${m[2]} at load time`);
    }
  }
});
