// The `process` global inside the browser bundle (injected by esbuild): only what bitscale's
// modules below the CLI read (temporary-file names use the pid; the demo resolves against cwd).
let dir = '/';
export const process = {
  pid: 1,
  platform: 'browser',
  env: {} as Record<string, string | undefined>,
  argv: [] as string[],
  versions: {} as Record<string, string>,
  cwd: (): string => dir,
  /** the job worker makes the folder of the user's texts current, so the pipeline names them as the user did (by file name) */
  chdir: (d: string): void => {
    dir = d;
  },
  hrtime: { bigint: (): bigint => BigInt(Math.round(performance.now() * 1e6)) },
  memoryUsage: (): { rss: number; heapUsed: number } => ({ rss: 0, heapUsed: 0 }),
  nextTick: (f: (...a: unknown[]) => void, ...a: unknown[]): void => void queueMicrotask(() => f(...a)),
  on: (): void => undefined,
  off: (): void => undefined,
  once: (): void => undefined,
  emitWarning: (): void => undefined,
};
