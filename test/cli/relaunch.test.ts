// The CLI's relaunch with glibc's allocator settings (src/cli/relaunch.ts): which environments
// relaunch and with what; then real processes through the same entry function (relaunch-probe.ts):
// the settings reach the command's process exactly once (one child, never a loop; the marker is
// gone from its environment), exit code and stderr pass through, a SIGINT to the launcher reaches
// the command once, a SIGKILLed launcher takes the command with it, and BITSCALE_NO_REEXEC=1 runs
// in place. Last, the real CLI: an error's exit code and message arrive once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { GPTQ_GGUF_MALLOC_TUNABLES, MALLOC_TUNABLES, RELAUNCHED, isGlibc, relaunchEnv, relaunchTunables } from '../../src/cli/relaunch.js';
import { cliSync } from '../cli-run.js';

const PROBE = resolve('test/cli/relaunch-probe.ts');
const TSX = import.meta.resolve('tsx');
const skip = isGlibc() ? false : 'the relaunch happens on Linux with glibc only';

test('relaunchTunables: which allocator settings each command line runs under', () => {
  // none: help and version; an RTN quantize without verification (no onnxruntime, no GPTQ arrays)
  assert.equal(relaunchTunables([]), null);
  assert.equal(relaunchTunables(['--help']), null);
  assert.equal(relaunchTunables(['--version']), null);
  assert.equal(relaunchTunables(['quantize', 'm.gguf', '--out', 'o.gguf', '--scheme', 'q8_0', '--method', 'rtn', '--no-verify']), null);
  assert.equal(relaunchTunables(['quantize', 'm.gguf', '--out=o.gguf', '--scheme=q4_0', '--method=rtn', '--no-verify']), null);
  // GPTQ into a GGUF: two arenas, glibc's own mmap threshold
  assert.equal(relaunchTunables(['quantize', 'm.gguf', '--out', 'o.gguf', '--scheme', 'q4_k', '--method', 'gptq']), GPTQ_GGUF_MALLOC_TUNABLES);
  assert.equal(relaunchTunables(['quantize', 'm', '--out', 'o', '--format=gguf', '--method=gptq']), GPTQ_GGUF_MALLOC_TUNABLES);
  assert.ok(!GPTQ_GGUF_MALLOC_TUNABLES.includes('mmap_threshold') && GPTQ_GGUF_MALLOC_TUNABLES.includes('arena_max=2'));
  // the common settings for everything else: verification runs the engine; the default method
  // (not named), AWQ, GPTQ into other formats, --target-bpw, a recipe that may set the method,
  // other commands
  for (const argv of [
    ['quantize', 'm.gguf', '--out', 'o.gguf', '--scheme', 'q8_0', '--method', 'rtn'],
    ['quantize', 'm.gguf', '--out', 'o.gguf', '--scheme', 'q8_0', '--no-verify'],
    ['quantize', 'm.gguf', '--out', 'o.gguf', '--scheme', 'q4_k', '--method', 'awq'],
    ['quantize', 'm', '--out', 'dir', '--scheme', 'int4-g128', '--method', 'gptq', '--format', 'gptq'],
    ['quantize', 'm.gguf', '--out', 'o.gguf', '--method', 'rtn', '--no-verify', '--target-bpw', '4.5'],
    ['quantize', 'm.gguf', '--out', 'o.gguf', '--method', 'rtn', '--no-verify', '--recipe', 'r.yaml'],
    ['eval', 'm.gguf'],
    ['sweep', 'm.gguf'],
  ]) assert.equal(relaunchTunables(argv), MALLOC_TUNABLES, argv.join(' '));
});

test('relaunchEnv: when the CLI relaunches, and with which settings', () => {
  const base = { PATH: '/bin' };
  assert.deepEqual(relaunchEnv(base, true, 42), { PATH: '/bin', GLIBC_TUNABLES: MALLOC_TUNABLES, [RELAUNCHED]: '42' });
  // other tunables of the user are kept, ours appended
  assert.equal(relaunchEnv({ GLIBC_TUNABLES: 'glibc.cpu.hwcaps=-AVX2' }, true, 1)?.GLIBC_TUNABLES, `glibc.cpu.hwcaps=-AVX2:${MALLOC_TUNABLES}`);
  assert.equal(relaunchEnv(base, false), null, 'not glibc');
  assert.equal(relaunchEnv({ ...base, BITSCALE_NO_REEXEC: '1' }, true), null, 'opted out');
  assert.equal(relaunchEnv({ ...base, [RELAUNCHED]: '42' }, true), null, 'already relaunched');
  assert.equal(relaunchEnv({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=4' }, true), null, "the user's malloc tunables");
  assert.equal(relaunchEnv({ MALLOC_ARENA_MAX: '4' }, true), null, "the user's MALLOC_ variable");
});

/** whether `pid` exists and is not a zombie (a dead orphan waits there until its new parent reaps it) */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

interface Run {
  status: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
  probe: { pid: number; ppid: number; tunables: string | null; marker: string | null };
}

function probe(args: string[], env: NodeJS.ProcessEnv = {}, act?: (pid: number, stderr: () => string) => void): { pid: number; done: Promise<Run> } {
  const base = { ...process.env, NODE_OPTIONS: '' } as NodeJS.ProcessEnv;
  for (const k of Object.keys(base)) if (k.startsWith('MALLOC_') || k === 'GLIBC_TUNABLES' || k === RELAUNCHED || k === 'BITSCALE_NO_REEXEC') delete base[k];
  const child = spawn(process.execPath, ['--import', TSX, PROBE, ...args], { env: { ...base, ...env }, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  let acted = false;
  child.stderr!.on('data', (b: Buffer) => {
    stderr += b.toString();
    if (act && !acted && stderr.includes('ready\n')) {
      acted = true;
      act(child.pid!, () => stderr);
    }
  });
  const done = new Promise<Run>((res) =>
    child.on('close', (status, signal) => {
      const line = stderr.split('\n').find((l) => l.startsWith('probe '));
      res({ status, signal, stderr, probe: line ? JSON.parse(line.slice(6)) : null });
    }),
  );
  return { pid: child.pid!, done };
}

test('relaunch: settings in effect once in one child, marker removed, exit code and stderr passed through', { skip, timeout: 60_000 }, async () => {
  const p = probe(['exit', '7']);
  const r = await p.done;
  assert.equal(r.status, 7, r.stderr);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('probe ')).length, 1, r.stderr);
  assert.equal(r.probe.tunables, MALLOC_TUNABLES);
  assert.equal(r.probe.ppid, p.pid, 'the command runs in a child of the launcher (one level: no loop)');
  assert.notEqual(r.probe.pid, p.pid);
  assert.equal(r.probe.marker, null, 'the marker does not leak to processes the command starts');
});

test('relaunch: BITSCALE_NO_REEXEC=1 and user malloc settings run the command in place', { skip, timeout: 60_000 }, async () => {
  const off = probe(['exit', '0'], { BITSCALE_NO_REEXEC: '1' });
  const r = await off.done;
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.probe.pid, off.pid);
  assert.equal(r.probe.tunables, null);
  const own = probe(['exit', '3'], { MALLOC_ARENA_MAX: '2' });
  const r2 = await own.done;
  assert.equal(r2.status, 3, r2.stderr);
  assert.equal(r2.probe.pid, own.pid);
});

test('relaunch: a SIGINT to the launcher reaches the command exactly once; its exit code comes back', { skip, timeout: 60_000 }, async () => {
  const r = await probe(['wait'], {}, (pid) => process.kill(pid, 'SIGINT')).done;
  assert.equal(r.status, 130, r.stderr);
  assert.match(r.stderr, /^sigint 1$/m);
});

test('relaunch: a SIGKILLed launcher takes the command with it', { skip, timeout: 60_000 }, async () => {
  let commandPid = 0;
  const r = await probe(['wait'], {}, (pid, stderr) => {
    commandPid = JSON.parse(stderr().split('\n').find((l) => l.startsWith('probe '))!.slice(6)).pid;
    process.kill(pid, 'SIGKILL');
  }).done;
  assert.equal(r.signal, 'SIGKILL');
  // 'close' waited for the command too (it held stderr): it is gone, not an orphan at work
  assert.ok(commandPid > 0);
  assert.ok(!running(commandPid), `process ${commandPid} still runs`);
  assert.doesNotMatch(r.stderr, /sigint/);
});

test('bitscale through the launcher: an error exits 1 with its message printed once', { timeout: 60_000 }, () => {
  const r = cliSync(['inspect', resolve('no-such-model.gguf')]);
  assert.equal(r.status, 1, r.stderr);
  assert.equal(r.stderr.match(/error \[missing_file\]/g)?.length, 1, r.stderr);
});
