// Sweeps through the queue (BullMQ on a real redis-server started for these tests) against the same
// sweep run locally: identical sweep.json and point files, a worker SIGKILLed mid-job, a restarted
// coordinator, a deterministic failure, inputs that differ on a worker, and Redis unreachable.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { SweepRecord } from '../../../src/eval/sweep-types.js';
import { checkedInput, executeQueueJob, mapPath } from '../../../src/pipeline/queue/exec.js';
import { GRIDS } from '../../../src/pipeline/law/experiment.js';
import { parseQueueUrl } from '../../../src/pipeline/queue/redis.js';
import { runSweep, type SweepOptions } from '../../../src/pipeline/sweep/sweep.js';
import { freePort, redisMissing, startRedis, startWorker, type WorkerProc } from './fixtures.js';
import { sharedPath, sharedSkip, tempDir } from '../../helpers.js';

const MODEL = sharedPath('models', 'stories260K', 'stories260K.bin');
const TEXT = sharedPath('data', 'tinystories-valid-excerpt.txt');
const noShared = sharedSkip('models/stories260K/stories260K.bin', 'data/tinystories-valid-excerpt.txt');
const skip = noShared || redisMissing();

/** Fields that are wall-clock measurements, not results: they differ between any two runs. */
const TIMING_FIELDS = { record: ['createdAt', 'elapsedS'], point: ['tokensPerS', 'quantizeS'] } as const;

function comparable(jsonPath: string, outDir: string): unknown {
  const r = JSON.parse(readFileSync(jsonPath, 'utf8').split(outDir).join('OUT')) as SweepRecord & Record<string, unknown>;
  for (const k of TIMING_FIELDS.record) delete r[k];
  for (const p of r.points as unknown as Record<string, unknown>[]) for (const k of TIMING_FIELDS.point) delete p[k];
  return r;
}

const sha = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex');

const BASE: Omit<SweepOptions, 'outDir'> = {
  model: MODEL,
  text: TEXT,
  grid: { bits: [4, 8], methods: ['rtn'], formats: ['gguf'] },
  ctx: 64,
  maxTokens: 256,
  verify: false,
};

test('queue URL: parsed with defaults; bad ones are typed errors naming --queue', () => {
  assert.deepEqual(parseQueueUrl('redis://example.org'), { url: 'redis://example.org', host: 'example.org', port: 6379, db: 0 });
  assert.deepEqual(parseQueueUrl('redis://:s3cret@10.0.0.2:7000/3'), { url: 'redis://:***@10.0.0.2:7000/3', host: '10.0.0.2', port: 7000, db: 3, password: 's3cret' });
  assert.throws(() => parseQueueUrl('http://x:1'), (e: Error & { code?: string }) => e.code === 'bad_option' && /--queue/.test(e.message) && /http:/.test(e.message));
  assert.throws(() => parseQueueUrl('redis://x:1/99'), /database '99'/);
  assert.throws(() => parseQueueUrl('localhost:6379'), /invalid queue URL/);
});

test('Redis unreachable: the sweep stops with an io error naming the URL, before any work', { skip: noShared }, async () => {
  const dir = tempDir('bitscale-q-down-');
  const url = `redis://127.0.0.1:${await freePort()}/0`; // nothing listens there
  await assert.rejects(runSweep({ ...BASE, outDir: dir, sensitivity: false, queue: { url } }), (e: Error & { code?: string }) => {
    assert.equal(e.code, 'io');
    assert.ok(e.message.includes(`cannot reach Redis at ${url}`), e.message);
    return true;
  });
  assert.ok(!existsSync(join(dir, 'sweep.json')), 'nothing recorded');
});

test('a worker refuses inputs whose bytes differ from the coordinator’s (sha256 checked, path mapped)', { skip: noShared }, async () => {
  const dir = tempDir('bitscale-q-hash-');
  const copy = join(dir, 'text.txt');
  copyFileSync(TEXT, copy);
  const ref = { path: '/coordinator/data/text.txt', sha256: sha(TEXT) };
  const map: [string, string][] = [['/coordinator/data', dir]];
  assert.equal(mapPath('/coordinator/data/text.txt', map), copy);
  assert.equal(mapPath('/coordinator/database/x', map), '/coordinator/database/x', 'prefixes match whole path segments');
  assert.equal(await checkedInput(ref, { pathMap: map }, '--text'), copy);
  writeFileSync(copy, readFileSync(TEXT, 'utf8') + ' one more sentence.');
  await assert.rejects(checkedInput(ref, { pathMap: map }, '--text'), (e: Error & { code?: string }) => e.code === 'mismatch' && e.message.includes(copy) && e.message.includes(ref.sha256));
  await assert.rejects(checkedInput(ref, {}, '--text'), (e: Error & { code?: string }) => e.code === 'missing_file' && e.message.includes('/coordinator/data/text.txt'));
  // a job from a coordinator of another bitscale version is refused before any work
  const job = { kind: 'law-run' as const, tool: '0.0.0-other', runId: 'x', grid: GRIDS.small, corpusSha256: '', points: [] };
  await assert.rejects(executeQueueJob(job), (e: Error & { code?: string }) => e.code === 'mismatch' && /another bitscale version/.test(e.message));
});

test('micro sweep over two worker processes equals the local sweep.json and files, bit for bit', { skip, timeout: 240_000 }, async () => {
  const redis = await startRedis();
  const local = tempDir('bitscale-q-local-');
  const remote = tempDir('bitscale-q-remote-');
  const workers = [startWorker(redis.url), startWorker(redis.url)];
  try {
    const a = await runSweep({ ...BASE, outDir: local });
    const b = await runSweep({ ...BASE, outDir: remote, queue: { url: redis.url } });
    assert.deepEqual(b.record.points.map((p) => p.id), ['base-f32', 'rtn-q4_0', 'rtn-q8_0']);
    assert.ok(b.record.sensitivity.length > 0, 'the sensitivity scan ran as a job');
    assert.deepEqual(comparable(b.json, remote), comparable(a.json, local));
    for (const f of ['rtn-q4_0.gguf', 'rtn-q8_0.gguf']) assert.equal(sha(join(remote, 'points', f)), sha(join(local, 'points', f)), f);
    // the jobs really ran on the workers, spread over both
    const names = new Set(b.timings!.map((t) => t.worker));
    assert.equal(b.timings!.length, 4);
    assert.ok(names.size === 2, `workers used: ${[...names].join(', ')}`);
  } finally {
    for (const w of workers) w.kill();
    await redis.stop();
  }
});

test('a worker SIGKILLed mid-job: the job runs again on another worker after the stall timeout; every point once', { skip, timeout: 240_000 }, async () => {
  const redis = await startRedis();
  const dir = tempDir('bitscale-q-kill-');
  const doomed = startWorker(redis.url);
  let survivor: WorkerProc | null = null;
  try {
    const logs: string[] = [];
    const sweep = runSweep({ ...BASE, outDir: dir, sensitivity: false, grid: { bits: [8], methods: ['rtn'], formats: ['gguf'] }, queue: { url: redis.url }, log: (l) => logs.push(l) });
    await doomed.waitFor(/: started/);
    doomed.kill('SIGKILL');
    survivor = startWorker(redis.url);
    const r = await sweep;
    assert.deepEqual(r.record.points.map((p) => p.id), ['base-f32', 'rtn-q8_0']);
    const json = JSON.parse(readFileSync(r.json, 'utf8')) as SweepRecord;
    assert.equal(new Set(json.points.map((p) => p.id)).size, json.points.length, 'a point recorded twice');
    // both jobs finished on the survivor, one of them after the doomed worker had started it
    assert.deepEqual(new Set(r.timings!.map((t) => t.worker)).size, 1);
    assert.match(survivor.output(), /: started/);
    assert.ok(logs.some((l) => /stopped answering/.test(l)), `no stall reported; coordinator said:\n${logs.join('\n')}`);
  } finally {
    doomed.kill();
    survivor?.kill();
    await redis.stop();
  }
});

test('a restarted coordinator resumes: finished points are kept, the rest are collected, none recomputed', { skip, timeout: 240_000 }, async () => {
  const redis = await startRedis();
  const dir = tempDir('bitscale-q-resume-');
  const worker = startWorker(redis.url);
  try {
    const opts = { ...BASE, outDir: dir, sensitivity: false as const, queue: { url: redis.url } };
    const ac = new AbortController();
    let first = '';
    await assert.rejects(
      runSweep({ ...opts, signal: ac.signal, log: (l) => !l.startsWith('queued') && ((first ||= l), ac.abort()) }),
      (e: Error & { code?: string }) => e.code === 'interrupted',
    );
    const saved = JSON.parse(readFileSync(join(dir, 'sweep.json'), 'utf8')) as SweepRecord;
    assert.equal(saved.points.length, 1, first);
    const kept = saved.points[0];
    const keptFile = join(dir, 'points', kept.id + (kept.format === 'gguf' ? '.gguf' : ''));
    const keptMtime = kept.method === 'base' ? 0 : statSync(keptFile).mtimeMs;
    // the worker goes on while no coordinator runs; the next one collects and records the rest
    const r = await runSweep(opts);
    assert.deepEqual(r.record.points.map((p) => p.id), ['base-f32', 'rtn-q4_0', 'rtn-q8_0']);
    const again = r.record.points.find((p) => p.id === kept.id)!;
    const measured = (p: typeof kept) => [p.nll, p.ppl, p.kld, p.top1, p.bpw, p.fileBytes, p.quantizeS, p.tokensPerS];
    assert.deepEqual(measured(again), measured(kept), 'the kept point (timings included) is the one recorded first');
    assert.ok(!r.timings!.some((t) => t.id.endsWith(kept.id)), 'a finished point was queued again');
    if (kept.method !== 'base') assert.equal(statSync(keptFile).mtimeMs, keptMtime, 'a finished point was recomputed');
  } finally {
    worker.kill();
    await redis.stop();
  }
});

test('a job that fails deterministically fails once with its typed error', { skip, timeout: 120_000 }, async () => {
  const redis = await startRedis();
  const dir = tempDir('bitscale-q-fail-');
  const worker = startWorker(redis.url);
  try {
    // a QAT point without a training text: the worker's quantizer refuses it (bad_option)
    const points = [{ id: 'qat-2bit', method: 'qat' as const, scheme: 'seq2', bits: 2, format: 'fakequant' as const }];
    await assert.rejects(runSweep({ ...BASE, outDir: dir, points, sensitivity: false, queue: { url: redis.url } }), (e: Error & { code?: string; context?: { field?: string } }) => {
      assert.equal(e.code, 'bad_option');
      assert.equal(e.context?.field, '--qat-text');
      assert.match(e.message, /QAT points need a training text/);
      return true;
    });
    await worker.waitFor(/qat-2bit: failed/);
    await new Promise((r) => setTimeout(r, 3000)); // a retry would have started by now
    assert.equal(worker.output().match(/qat-2bit: started/g)?.length, 1, worker.output());
  } finally {
    worker.kill();
    await redis.stop();
  }
});
