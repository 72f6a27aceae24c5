// Starts the CLI again, once, with glibc's allocator settings in the environment: glibc reads its
// tunables only at process start, so a running process cannot change them. Why they matter: with
// default settings glibc raises its mmap threshold to the size of every large block freed (up to
// 32 MiB), after which large buffers (GPTQ's per-layer arrays, onnxruntime's activations) are carved
// from the heap and the per-thread arenas instead of mapped, and the holes they leave are not given
// back: GPTQ's resident memory grew layer after layer, the evaluation's over its first windows (one
// arena per thread that runs onnxruntime). A fixed threshold keeps large blocks mapped, so freeing
// them returns the memory; two arenas bound the per-thread copies. Measured in docs/engine.md and
// docs/gptq-performance.md ("Memory and the allocator").
//
// Linux with glibc only; skipped when the user set any malloc tunable (GLIBC_TUNABLES glibc.malloc.*
// or a MALLOC_* variable), when BITSCALE_NO_REEXEC=1, and in the started process itself (marked by
// BITSCALE_RELAUNCHED). The parent is a pass-through: the child inherits stdin/stdout/stderr, runs
// in a process group of its own so that a terminal's Ctrl-C reaches it exactly once (forwarded by
// the parent, like every other terminating signal), and its exit code (or signal) becomes the
// parent's. If the parent dies without forwarding (SIGKILL), the child notices within 50 ms and
// ends the same way, so that no orphan keeps working on outputs the caller considers abandoned.
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { tracePhase } from '../core/phase-trace.js';

/** the allocator settings the CLI runs under (glibc tunables syntax) */
export const MALLOC_TUNABLES = 'glibc.malloc.mmap_threshold=65536:glibc.malloc.arena_max=2';

/**
 * GPTQ streamed into a GGUF: two arenas, glibc's own (dynamic) mmap threshold. Its statistics pass
 * slices and accumulates 1–16 MiB blocks on every calibration run; with the fixed 64 KiB threshold
 * each was a fresh mapping whose pages faulted in again (1.18 against 0.85 CPU-s per window; the whole
 * one-layer run 2.63× its floor against 2.06×, docs/gptq-performance.md, sixth round). The per-layer
 * growth the fixed threshold was brought in against came from layer bytes held until the end, fixed
 * in the fifth round; the 16-layer run's peak under these settings is in the same document.
 * Transparent huge pages (glibc.malloc.hugetlb=1, with a fixed 32 MiB threshold) were measured and
 * not kept: the 16-layer run 1,700 → 1,519 s (page faults are dear on the VMs measured), but its
 * peak RSS 1,668 → 2,002 MiB, over the bound of 1,768 (docs/gptq-performance.md, eighth round).
 */
export const GPTQ_GGUF_MALLOC_TUNABLES = 'glibc.malloc.arena_max=2';

/** The value of `--name V` or `--name=V` on a command line (the last one), if any. */
function optionValue(argv: readonly string[], name: string): string | undefined {
  let v: string | undefined;
  argv.forEach((a, i) => {
    if (a === name) v = argv[i + 1];
    else if (a.startsWith(`${name}=`)) v = a.slice(name.length + 1);
  });
  return v;
}

/**
 * The allocator settings a command line runs under (relaunch.ts), or null for none: help and
 * version, and an RTN quantize with --no-verify, which loads neither onnxruntime nor GPTQ's arrays
 * (its buffers are SharedArrayBuffers and WebAssembly memories, outside malloc: not worth a second
 * process start and its teardown). GPTQ into a GGUF gets its own settings. A recipe file (which may
 * set the method) keeps the common settings.
 */
export function relaunchTunables(argv: readonly string[]): string | null {
  const [name] = argv;
  if (!name || ['--help', '-h', 'help', '--version', '-v'].includes(name)) return null;
  if (name !== 'quantize' || argv.some((a) => a === '--recipe' || a.startsWith('--recipe='))) return MALLOC_TUNABLES;
  const method = optionValue(argv, '--method');
  if (method === 'rtn' && argv.includes('--no-verify') && !argv.some((a) => a.startsWith('--target-bpw'))) return null;
  const gguf = optionValue(argv, '--format') === 'gguf' || (optionValue(argv, '--out') ?? '').toLowerCase().endsWith('.gguf');
  if (method === 'gptq' && gguf) return GPTQ_GGUF_MALLOC_TUNABLES;
  return MALLOC_TUNABLES;
}

/** set in the relaunched process to its parent's pid: never relaunch again (no loop, whatever the
 * environment says), and the parent to watch */
export const RELAUNCHED = 'BITSCALE_RELAUNCHED';
/** BITSCALE_NO_REEXEC=1: run in this process with the allocator as it is */
export const NO_REEXEC = 'BITSCALE_NO_REEXEC';

type Env = Record<string, string | undefined>;

/** Whether this Node runs on glibc (musl and other platforms have neither the problem nor the tunables). */
export function isGlibc(): boolean {
  if (process.platform !== 'linux') return false;
  const header = (process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined)?.header;
  return !!header?.glibcVersionRuntime;
}

/** the user's own malloc settings, if any (then theirs are kept and nothing is added) */
function userMallocSettings(env: Env): boolean {
  if ((env.GLIBC_TUNABLES ?? '').includes('glibc.malloc.')) return true;
  return Object.keys(env).some((k) => k.startsWith('MALLOC_') && env[k] !== undefined);
}

/**
 * The environment to relaunch with (`env` plus the malloc tunables), or null when no relaunch is
 * due: not Linux/glibc, opted out, already relaunched, or the user chose malloc settings.
 */
export function relaunchEnv(env: Env, glibc: boolean, parentPid = process.pid, tunables = MALLOC_TUNABLES): Env | null {
  if (!glibc || env[NO_REEXEC] === '1' || env[RELAUNCHED] || userMallocSettings(env)) return null;
  const other = env.GLIBC_TUNABLES;
  return { ...env, GLIBC_TUNABLES: other ? `${other}:${tunables}` : tunables, [RELAUNCHED]: String(parentPid) };
}

/**
 * The environment for a child process of a bench that must run as the CLI runs: the launcher's
 * allocator settings (unless the user chose their own or opted out), without the relaunch marker.
 */
export function cliAllocatorEnv(env: Env = process.env, tunables = MALLOC_TUNABLES): Env {
  const e = relaunchEnv({ ...env, [RELAUNCHED]: undefined }, isGlibc(), process.pid, tunables) ?? { ...env };
  delete e[RELAUNCHED];
  return e;
}

/** One line saying which allocator settings this process runs under (for logs and bench output). */
export function allocatorSettings(env: Env = process.env): string {
  const malloc = Object.entries(env).filter(([k, v]) => k.startsWith('MALLOC_') && v !== undefined).map(([k, v]) => `${k}=${v}`);
  const tun = (env.GLIBC_TUNABLES ?? '').split(':').filter((t) => t.startsWith('glibc.malloc.'));
  const all = [...tun, ...malloc];
  if (process.platform !== 'linux') return `allocator: ${process.platform} default`;
  return `allocator: glibc ${all.length ? all.join(', ') : 'defaults (dynamic mmap threshold)'}${relaunched || env[RELAUNCHED] ? ' (set by the bitscale launcher)' : ''}`;
}

/** signals the parent passes on to the child (every one a terminal or a supervisor sends to end or stop work) */
const FORWARDED: NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGQUIT', 'SIGUSR2', 'SIGWINCH', 'SIGCONT'];

const SIGNUM: Partial<Record<NodeJS.Signals, number>> = { SIGHUP: 1, SIGINT: 2, SIGQUIT: 3, SIGKILL: 9, SIGTERM: 15 };

/**
 * Runs this process's command line again in a child with `env` and resolves with the exit code
 * this process should end with. A child killed by a signal is reported by re-raising that signal
 * on this process once the handlers are gone (exit code 128 + n where the signal is ignored).
 */
export function relaunch(env: Env): Promise<number> {
  const child = spawn(process.execPath, [...process.execArgv, ...process.argv.slice(1)], { stdio: 'inherit', env, detached: true });
  const handlers = FORWARDED.map((sig) => {
    const h = () => {
      if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    };
    process.on(sig, h);
    return [sig, h] as const;
  });
  return new Promise((resolve) => {
    const done = (code: number) => {
      for (const [sig, h] of handlers) process.off(sig, h);
      resolve(code);
    };
    child.once('error', (e) => {
      process.stderr.write(`bitscale: could not start the worker process (${e.message}); set ${NO_REEXEC}=1 to run without it\n`);
      done(1);
    });
    child.once('exit', (code, signal) => {
      tracePhase('relaunch: child ended');
      if (signal) {
        for (const [sig, h] of handlers) process.off(sig, h);
        process.kill(process.pid, signal);
        done(128 + (SIGNUM[signal] ?? 0));
      } else done(code ?? 1);
    });
  });
}

/** whether this process is the relaunched one (adoptRelaunch saw the marker) */
let relaunched = false;

/**
 * In the relaunched process: takes the marker out of the environment (so that processes this one
 * starts neither skip their own checks nor watch the wrong parent) and ends this process with
 * SIGKILL once its parent is gone (the parent was killed without a chance to forward anything). A
 * worker thread polls, so a long synchronous stretch of the main thread does not delay it;
 * unreferenced, so it never keeps the process alive. Returns whether this is the relaunched process.
 */
export function adoptRelaunch(env: Env = process.env): boolean {
  const parent = Number(env[RELAUNCHED]);
  delete env[RELAUNCHED];
  if (!Number.isInteger(parent) || parent <= 0) return false;
  relaunched = true;
  const w = new Worker(
    `const { workerData } = require('node:worker_threads');
     const t = setInterval(() => { if (process.ppid !== workerData) { clearInterval(t); process.kill(process.pid, 'SIGKILL'); } }, 50);`,
    { eval: true, workerData: parent, stdout: false, stderr: false },
  );
  w.unref();
  return true;
}

/**
 * A CLI entry point: in the process the user started (Linux/glibc, no opt-out, `tunables` not
 * null), relaunches the command line with those allocator settings and ends with the child's exit;
 * otherwise (the relaunched child, another platform, opted out, a command that needs none) runs the
 * command here with `here`.
 */
export function runOrRelaunch(tunables: string | null, here: () => void): void {
  tracePhase('cli: start');
  const env = !adoptRelaunch() && tunables !== null ? relaunchEnv(process.env, isGlibc(), process.pid, tunables) : null;
  if (env) void relaunch(env).then((code) => process.exit(code));
  else here();
}
