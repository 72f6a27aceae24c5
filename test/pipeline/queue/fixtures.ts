// Fixtures for the queue tests. A real redis-server: its own instance on a free localhost port, in a
// temporary directory (test/helpers.ts tempDir, removed after the test), with persistence off; stopped by `stop()`. And
// `bitscale worker` processes, each in its own process group so a kill takes its job children too.
// Where redis-server is not installed the tests skip with a message; under CI=true that is a
// failure instead (.ci/run installs Debian's redis-server).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { parseQueueUrl, probeRedis } from '../../../src/pipeline/queue/redis.js';
import { tempDir } from '../../helpers.js';

function redisBinary(): string | null {
  const r = spawnSync('redis-server', ['--version'], { encoding: 'utf8' });
  return r.status === 0 ? 'redis-server' : null;
}

/** false when redis-server can run here; otherwise the skip message (throws under CI=true). */
export function redisMissing(): string | false {
  if (redisBinary()) return false;
  const why = 'redis-server not found (Debian: apt-get install redis-server); queue tests skipped';
  if (process.env.CI === 'true') throw new Error(`${why}, but CI=true: .ci/run must install it`);
  return why;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface RedisInstance {
  url: string;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisInstance> {
  const dir = tempDir('bitscale-redis-');
  const port = await freePort();
  const proc: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}/0`;
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
  };
  for (let i = 0; ; i++) {
    try {
      await probeRedis(parseQueueUrl(url), 500);
      return { url, stop };
    } catch (e) {
      if (i >= 50) {
        await stop();
        throw e;
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

export interface WorkerProc {
  proc: ChildProcess;
  output: () => string;
  /** resolves when a line matching `re` has been printed */
  waitFor: (re: RegExp, ms?: number) => Promise<void>;
  kill: (signal?: NodeJS.Signals) => void;
}

/** A `bitscale worker` process (its own process group, so a kill takes its job children too). */
export function startWorker(url: string, ...extra: string[]): WorkerProc {
  const proc = spawn(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'worker', '--queue', url, '--stall-timeout', '2', ...extra], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  const waiters: { re: RegExp; resolve: () => void }[] = [];
  const onData = (b: Buffer) => {
    text += b.toString();
    for (const w of waiters.splice(0)) (w.re.test(text) ? w.resolve : () => waiters.push(w))();
  };
  proc.stdout!.on('data', onData);
  proc.stderr!.on('data', onData);
  return {
    proc,
    output: () => text,
    waitFor: (re, ms = 60_000) =>
      new Promise<void>((res, rej) => {
        if (re.test(text)) return res();
        const t = setTimeout(() => rej(new Error(`worker never printed ${re}; it printed:\n${text}`)), ms);
        waiters.push({ re, resolve: () => (clearTimeout(t), res()) });
      }),
    kill: (signal = 'SIGKILL') => {
      try {
        if (proc.exitCode === null && proc.signalCode === null) process.kill(-proc.pid!, signal);
      } catch {
        /* already gone */
      }
    },
  };
}
