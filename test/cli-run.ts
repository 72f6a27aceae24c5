// Runs the bitscale CLI from source in a child process, as users run it, from any working folder
// (tsx is resolved from the repository, not from the child's cwd).
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { resolve } from 'node:path';

export const CLI = resolve('src/cli/main.ts');
const TSX = import.meta.resolve('tsx');

function argv(args: string[]): string[] {
  return ['--import', TSX, CLI, ...args];
}

/** Runs to the end; stdout and stderr as text. */
export function cliSync(args: string[], cwd = process.cwd(), env: NodeJS.ProcessEnv = {}) {
  return spawnSync(process.execPath, argv(args), { cwd, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '', ...env } });
}

/** Starts the CLI; `done` resolves with the exit status (or signal) and stderr. */
export function cliSpawn(args: string[], cwd = process.cwd(), opts: { uid?: number; gid?: number } = {}): { child: ChildProcess; done: Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }> } {
  const child = spawn(process.execPath, argv(args), { cwd, env: { ...process.env, NODE_OPTIONS: '' }, ...opts });
  let stdout = '';
  let stderr = '';
  child.stdout?.on('data', (b: Buffer) => (stdout += b.toString()));
  child.stderr?.on('data', (b: Buffer) => (stderr += b.toString()));
  const done = new Promise<{ status: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>((res) => child.on('close', (status, signal) => res({ status, signal, stdout, stderr })));
  return { child, done };
}

/**
 * Runs `bitscale …` in this process (the same code as the binary, without the process start-up:
 * milliseconds instead of seconds), from `cwd`, capturing what it prints; `env` sets (or, with
 * undefined, removes) environment variables for the run and restores them after. Not for runs that
 * must be separate processes (locks, kills, another user).
 */
export async function cliIn(args: string[], cwd = process.cwd(), env: Record<string, string | undefined> = {}): Promise<{ status: number; stdout: string; stderr: string }> {
  const { main } = await import('../src/cli/main.js');
  const { redirectOutput } = await import('../src/cli/output.js');
  const here = process.cwd();
  const saved = Object.fromEntries(Object.keys(env).map((k) => [k, process.env[k]]));
  const setEnv = (vars: Record<string, string | undefined>) => {
    for (const [k, v] of Object.entries(vars)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  };
  let stdout = '';
  let stderr = '';
  redirectOutput({ stdout: (s) => (stdout += s), stderr: (s) => (stderr += s) });
  setEnv(env);
  process.chdir(cwd);
  try {
    return { status: await main(args), stdout, stderr };
  } finally {
    process.chdir(here);
    setEnv(saved);
    redirectOutput(null);
  }
}
