// A real redis-server for the queue tests: its own instance on a free localhost port, in a
// temporary directory, with persistence off; stopped (and its directory removed) by `stop()`.
// Where redis-server is not installed the tests skip with a message; under CI=true that is a
// failure instead (.ci/run installs Debian's redis-server).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseQueueUrl, probeRedis } from '../../src/pipeline/queue-redis.js';

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
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-redis-'));
  const port = await freePort();
  const proc: ChildProcess = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir], { stdio: 'ignore' });
  const url = `redis://127.0.0.1:${port}/0`;
  const stop = async () => {
    if (proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once('exit', r));
      proc.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
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
