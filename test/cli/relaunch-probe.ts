// A stand-in for the CLI entry point (src/cli/main.ts) for test/cli/relaunch.test.ts: goes through
// the same runOrRelaunch, then reports on stderr what the running process sees and acts on argv:
//   exit N  — exits with N;   wait — prints "ready", counts SIGINTs for 300 ms after the first, exits 130.
import { MALLOC_TUNABLES, runOrRelaunch } from '../../src/cli/relaunch.js';

runOrRelaunch(MALLOC_TUNABLES, () => {
  const seen = { pid: process.pid, ppid: process.ppid, tunables: process.env.GLIBC_TUNABLES ?? null, marker: process.env.BITSCALE_RELAUNCHED ?? null };
  process.stderr.write(`probe ${JSON.stringify(seen)}\n`);
  const [mode, n] = process.argv.slice(2);
  if (mode === 'exit') process.exit(Number(n));
  let ints = 0;
  process.on('SIGINT', () => {
    if (++ints === 1) {
      setTimeout(() => {
        process.stderr.write(`sigint ${ints}\n`);
        process.exit(130);
      }, 300);
    }
  });
  setInterval(() => {}, 1000);
  process.stderr.write('ready\n');
});
