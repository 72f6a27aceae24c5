// `law experiment --queue` on this machine: the grid trained by 1 worker process (onnxruntime's
// default threads, then 1 thread) and by 2 worker processes (1 thread each, so two fill the 2
// cores), through a redis-server the benchmark starts on a free port. Prints wall time, the speed-up of 2 workers over 1, the
// coordinator's CPU per job, and the per-job time a worker slot spent not computing (queue pickup,
// worker start, recording): (wall × workers − Σ job compute) / jobs.
// DIST_GRID=small|micro|default|FILE (default micro); DIST_LOCAL=1 also runs the grid in-process
// (no queue) as the baseline of the 1-worker run.
// Usage: npm run bench distributed
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { lawExperiment, loadGrid, planGrid } from '../src/pipeline/law/experiment.js';
import { runLawExperimentRemote } from '../src/pipeline/queue/law-remote.js';
import { redisMissing, startRedis, startWorker } from '../test/pipeline/queue/fixtures.js';
import { fmt } from './util.js';

interface Run {
  label: string;
  wallS: number;
  jobs: number;
  computeS: number;
  coordCpuMsPerJob: number;
  idlePerJobS: number;
}

export default async function (): Promise<void> {
  const missing = redisMissing();
  if (missing) {
    console.log(missing);
    return;
  }
  const grid = loadGrid(process.env.DIST_GRID ?? 'micro');
  const plan = planGrid(grid).points;
  console.log(`grid ${grid.name}: ${plan.length} runs; the machine is shared, so compare the rows of one run only`);
  const results: Run[] = [];
  if (process.env.DIST_LOCAL === '1') {
    const dir = mkdtempSync(join(tmpdir(), 'bitscale-dist-local-'));
    try {
      const t0 = Date.now();
      await lawExperiment({ grid, out: dir });
      results.push({ label: 'in-process (no queue)', wallS: (Date.now() - t0) / 1000, jobs: 0, computeS: 0, coordCpuMsPerJob: 0, idlePerJobS: 0 });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  for (const [n, threads] of [[1, 0], [1, 1], [2, 1]]) {
    const redis = await startRedis();
    const dir = mkdtempSync(join(tmpdir(), 'bitscale-dist-'));
    const workers = Array.from({ length: n }, () => startWorker(redis.url, ...(threads ? ['--threads', String(threads)] : []), '--stall-timeout', '30'));
    try {
      const cpu0 = process.cpuUsage();
      const t0 = Date.now();
      const r = await runLawExperimentRemote({ grid, plan, runsFile: join(dir, 'runs.json'), queue: { url: redis.url } });
      const wallS = (Date.now() - t0) / 1000;
      const cpu = process.cpuUsage(cpu0);
      const jobs = r.timings.length;
      const computeS = r.timings.reduce((a, t) => a + (t.finishedAt - t.startedAt) / 1000, 0);
      results.push({ label: `${n} worker${n > 1 ? 's' : ''}, ${threads ? `${threads} thread` : 'default threads'}`, wallS, jobs, computeS, coordCpuMsPerJob: (cpu.user + cpu.system) / 1000 / jobs, idlePerJobS: (wallS * n - computeS) / jobs });
    } finally {
      for (const w of workers) w.kill();
      await redis.stop();
      rmSync(dir, { recursive: true, force: true });
    }
  }
  for (const r of results) {
    console.log(
      r.jobs
        ? `  ${r.label.padEnd(30)} wall ${fmt(r.wallS)} s, ${r.jobs} jobs, compute ${fmt(r.computeS)} s, coordinator CPU ${fmt(r.coordCpuMsPerJob)} ms/job, worker slot idle ${fmt(r.idlePerJobS, 2)} s/job`
        : `  ${r.label.padEnd(30)} wall ${fmt(r.wallS)} s`,
    );
  }
  const [oneDefault, oneThread, two] = results.filter((r) => r.jobs > 0);
  console.log(`  speed-up of 2 workers over 1 (1 thread each): ${fmt(oneThread.wallS / two.wallS, 2)}x; over 1 worker with default threads: ${fmt(oneDefault.wallS / two.wallS, 2)}x`);
  const local = results.find((r) => r.jobs === 0);
  if (local) console.log(`  1 worker (default threads) vs in-process: ${fmt(oneDefault.wallS - local.wallS)} s more, ${fmt((oneDefault.wallS - local.wallS) / oneDefault.jobs, 2)} s per job`);
}
