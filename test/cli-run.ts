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
