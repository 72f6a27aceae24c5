// One fuzz target in a process of its own (for `npm run fuzz`): prints one JSON line with the
// stats, the peak resident memory and the largest input, so that memory can be judged against
// input size. Usage: node --import tsx test/fuzz/child.ts TARGET_INDEX CASES SEED [HANG_MS]
import { existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { emptyStats, fuzzTarget, makeWorkdir, runCli, TARGETS } from './cli-fuzz.js';

function bytesOf(p: string): number {
  const st = statSync(p);
  return st.isDirectory() ? readdirSync(p).reduce((n, f) => n + bytesOf(join(p, f)), 0) : st.size;
}

const [ti, cases, seed, hang] = process.argv.slice(2).map(Number);
const target = TARGETS[ti];
const d = await makeWorkdir();
try {
  const stats = emptyStats();
  // the unmutated command first: the memory of a normal run; the input is every file it names
  const argv = target.argv(d);
  await runCli(argv);
  const inputBytes = argv.filter((a) => a.startsWith(d) && existsSync(a)).reduce((n, a) => n + bytesOf(a), 0);
  const baselineRssKB = process.resourceUsage().maxRSS;
  const saveDir = join(tmpdir(), 'bitscale-fuzz-crashes');
  mkdirSync(saveDir, { recursive: true });
  await fuzzTarget(d, target, cases, seed, { hangMs: hang || 20_000, stats, saveDir });
  process.stdout.write(JSON.stringify({ target: target.name, stats, baselineRssKB, maxRssKB: process.resourceUsage().maxRSS, inputBytes }) + '\n');
} finally {
  rmSync(d, { recursive: true, force: true });
}
process.exit(0);
