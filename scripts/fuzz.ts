// `npm run fuzz`: the long run of the fuzzers the suite runs briefly.
//   1. the command line around the readers (test/fuzz/cli-fuzz.ts): every target in a process of its
//      own, CASES mutated inputs each: cases, typed errors, crashes (untyped, exit 70), hangs, and
//      the peak resident memory against a normal run's and against the input size;
//   2. the kill test (test/fuzz/kill.ts): each of quantize, convert, train and sweep killed KILLS
//      times with SIGKILL at seeded random points, then checked and run to completion.
// Options: --cases N (default 500 per target), --kills N (default 50), --seed S, --only SUBSTRING,
// --no-kill, --no-cli. Exit status 1 if anything crashed, hung or failed a kill check.
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { TARGETS } from '../test/fuzz/cli-fuzz.js';
import { KILL_COMMANDS, killTest, killWorkdir } from '../test/fuzz/kill.js';

const { values } = parseArgs({ options: { cases: { type: 'string' }, kills: { type: 'string' }, seed: { type: 'string' }, only: { type: 'string' }, 'no-kill': { type: 'boolean' }, 'no-cli': { type: 'boolean' } } });
const CASES = Number(values.cases ?? 500);
const KILLS = Number(values.kills ?? 50);
const SEED = Number(values.seed ?? 1);
const only = values.only;
let failed = false;
const mb = (kb: number) => (kb / 1024).toFixed(0);

if (!values['no-cli']) {
  console.log(`command-line fuzzing: ${CASES} cases per target, seed ${SEED}`);
  console.log(['target', 'cases', 'ok', 'typed errors', 'crashes', 'hangs', 'max ms', 'input MB', 'RSS normal run MB', 'RSS max MB', '(max − normal) / input'].join(' | '));
  const total = { cases: 0, typed: 0, crashes: 0, hangs: 0 };
  for (const [i, t] of TARGETS.entries()) {
    if (only && !t.name.includes(only)) continue;
    // a train-config case that is valid trains one step of whatever model it describes: fewer of those
    const n = t.name === 'train config' ? Math.ceil(CASES / 5) : CASES;
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'test/fuzz/child.ts', String(i), String(n), String(SEED * 1000 + i), t.name === 'train config' ? '120000' : '20000'], { encoding: 'utf8', maxBuffer: 1 << 26, env: { ...process.env, NODE_OPTIONS: '' } });
    const line = r.stdout.trim().split('\n').pop() ?? '';
    let res: { stats: { cases: number; ok: number; typed: Record<string, number>; crashes: { iteration: number; output: string; saved?: string }[]; hangs: unknown[]; maxMs: number; maxInputBytes: number }; baselineRssKB: number; maxRssKB: number; inputBytes: number };
    try {
      res = JSON.parse(line);
    } catch {
      // the process itself died (out of memory, a native crash): a crash of every case it held
      console.log(`${t.name} | process died (status ${r.status}, signal ${r.signal}) | ${r.stderr.slice(-2000)}`);
      failed = true;
      total.crashes++;
      continue;
    }
    const s = res.stats;
    const typed = Object.values(s.typed).reduce((a, b) => a + b, 0);
    const input = Math.max(res.inputBytes, s.maxInputBytes);
    const growth = ((res.maxRssKB - res.baselineRssKB) * 1024) / input;
    console.log([t.name, s.cases, s.ok, `${typed} (${Object.entries(s.typed).map(([k, n]) => `${k} ${n}`).join(', ')})`, s.crashes.length, s.hangs.length, Math.round(s.maxMs), (input / 1e6).toFixed(2), mb(res.baselineRssKB), mb(res.maxRssKB), `${growth.toFixed(2)}×`].join(' | '));
    for (const c of s.crashes.slice(0, 5)) console.log(`  crash at case ${c.iteration}${c.saved ? ` (input kept in ${c.saved})` : ''}: ${c.output.split('\n').slice(0, 4).join(' / ')}`);
    total.cases += s.cases;
    total.typed += typed;
    total.crashes += s.crashes.length;
    total.hangs += s.hangs.length;
    if (s.crashes.length || s.hangs.length) failed = true;
  }
  console.log(`total: ${total.cases} cases, ${total.typed} typed errors, ${total.crashes} crashes, ${total.hangs} hangs`);
}

if (!values['no-kill']) {
  console.log(`\nkill test: ${KILLS} SIGKILLs per command at seeded random points, seed ${SEED}`);
  console.log(['command', 'kills', 'during work', 'output absent after kill', 'output complete after kill', 'next run'].join(' | '));
  for (const [i, cmd] of KILL_COMMANDS.entries()) {
    if (only && !cmd.name.includes(only)) continue;
    const d = killWorkdir();
    try {
      const s = await killTest(d, cmd, KILLS, SEED * 100 + i, cmd.workMs);
      console.log([s.command, s.kills, s.duringWork, s.absentAfterKill, s.completeAfterKill, 'ok'].join(' | '));
    } catch (e) {
      failed = true;
      console.log(`${cmd.name} | FAILED: ${(e as Error).message}`);
    } finally {
      rmSync(d, { recursive: true, force: true });
    }
  }
}
process.exit(failed ? 1 : 0);
