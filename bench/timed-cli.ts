// The built CLI as a child process, timed the way a user's shell would see it: wall time from
// spawn to exit, and CPU seconds and peak RSS from /usr/bin/time where it exists (null otherwise).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

export interface TimedRun {
  seconds: number;
  cpu: number | null;
  rssMb: number | null;
}

/**
 * Runs `node dist/cli/main.js ...args`; rejects with its stderr on a non-zero exit (`what` names it).
 * `cpus` (a taskset list such as "0" or "0-1") confines the whole process, every thread of it, to
 * those cores: "one core" then means one core of work in total, hashing and writing included.
 */
export function runTimedCli(args: string[], what: string, env: NodeJS.ProcessEnv = process.env, cpus?: string): Promise<TimedRun> {
  const full = [resolve('dist/cli/main.js'), ...args];
  const timeBin = existsSync('/usr/bin/time') ? '/usr/bin/time' : null;
  const node = cpus ? ['taskset', '-c', cpus, process.execPath] : [process.execPath];
  const [cmd, argv] = timeBin ? [timeBin, ['-f', 'BITSCALE_RSS_KB=%M CPU=%U+%S', ...node, ...full]] : [node[0], [...node.slice(1), ...full]];
  return new Promise((res, rej) => {
    const t0 = performance.now();
    const p = spawn(cmd, argv, { stdio: ['ignore', 'ignore', 'pipe'], env });
    let err = '';
    p.stderr.on('data', (d: Buffer) => (err += d.toString()));
    p.on('error', rej);
    p.on('exit', (code) => {
      const seconds = (performance.now() - t0) / 1000;
      if (code !== 0) return rej(new Error(`${what} exited ${code}\n${err}`));
      const m = /BITSCALE_RSS_KB=(\d+) CPU=([\d.]+)\+([\d.]+)/.exec(err);
      res({ seconds, cpu: m ? Number(m[2]) + Number(m[3]) : null, rssMb: m ? Number(m[1]) / 1024 : null });
    });
  });
}
