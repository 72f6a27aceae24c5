// `bitscale worker`: argument parsing and printing only; the work is pipeline/queue/worker.ts.
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { abortSignal, numberOpt, parse, threadsOpt } from '../args.js';
import { out } from '../output.js';
import { runQueueWorker } from '../../pipeline/queue/worker.js';

export const meta: CommandMeta = {
  name: 'worker',
  summary: 'run queued sweep points and law-experiment runs (from sweep/law experiment --queue)',
  usage: `bitscale worker --queue redis://HOST:PORT[/DB] [options]

  --queue URL           the Redis server the coordinator enqueued on (sweep --queue, law experiment --queue)
  --concurrency N       jobs at once, each in its own child process (default 1)
  --threads N           onnxruntime threads for training runs (default: one per core)
  --map FROM=TO         read (and write) the coordinator's path prefix FROM at TO here; repeatable
  --stall-timeout S     seconds without a heartbeat before a job counts as lost and is queued again (default 30);
                        also how often this worker checks for such jobs
  --max-jobs N          exit after N jobs (default: run until Ctrl-C, which finishes the jobs in hand)

  Every input (model, text, calibration file) is read from shared storage at the coordinator's path
  (or its --map rewrite) and its sha256 checked against the coordinator's before the job runs.
  See docs/distributed.md.`,
};

export async function run(argv: string[]): Promise<number> {
  const p = parse(
    argv,
    {
      queue: { type: 'string' }, concurrency: { type: 'string' }, threads: { type: 'string' }, map: { type: 'string', multiple: true },
      'stall-timeout': { type: 'string' }, 'max-jobs': { type: 'string' },
    },
    meta.usage,
    { positionals: 0 },
  );
  const v = p.values as { queue?: string; concurrency?: string; threads?: string; map?: string[]; 'stall-timeout'?: string; 'max-jobs'?: string };
  if (!v.queue) throw new ConfigError('bad_option', '--queue is required', { field: '--queue', expected: 'redis://HOST:PORT[/DB]', found: 'nothing' });
  const pathMap = (v.map ?? []).map((m): [string, string] => {
    const i = m.indexOf('=');
    if (i <= 0 || i === m.length - 1) throw new ConfigError('bad_option', 'invalid value for --map', { field: '--map', expected: 'FROM=TO (absolute path prefixes)', found: m });
    return [m.slice(0, i), resolve(m.slice(i + 1))];
  });
  const threads = threadsOpt(v.threads);
  const stallS = numberOpt(v['stall-timeout'], 'stall-timeout', { min: 0.5, max: 86400 });
  const here = dirname(fileURLToPath(import.meta.url));
  const ext = import.meta.url.endsWith('.ts') ? '.ts' : '.js';
  const s = await runQueueWorker({
    url: v.queue,
    processorFile: join(here, '..', `worker-child${ext}`),
    concurrency: numberOpt(v.concurrency, 'concurrency', { integer: true, min: 1, max: 256 }),
    stallTimeoutMs: stallS === undefined ? undefined : Math.round(stallS * 1000),
    maxJobs: numberOpt(v['max-jobs'], 'max-jobs', { integer: true, min: 1 }),
    childEnv: { BITSCALE_WORKER_CONFIG: JSON.stringify({ pathMap, ...(threads ? { threads } : {}) }) },
    log: (line) => out(`[worker] ${line}`),
    signal: abortSignal(),
  });
  out(`[worker] ${s.name} stopped: ${s.completed} job${s.completed === 1 ? '' : 's'} done, ${s.failed} failed`);
  return 0;
}
