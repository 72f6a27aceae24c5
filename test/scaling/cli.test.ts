// `bitscale law …` end to end through the real CLI entry point (a child process).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { KUMAR2024, predictRow } from '../../src/scaling/index.js';
import { BitscaleError } from '../../src/core/errors.js';
import { run } from '../../src/cli/commands/law.js';
import { tempDir } from '../helpers.js';

function cli(...args: string[]) {
  const r = spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'law', ...args], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

test('law optimal --json gives a numeric precision, with the caveat about the paper', () => {
  const r = cli('optimal', '--compute', '1e21', '--json');
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { precision: number; caveats: string[]; N: number; D: number };
  assert.equal(typeof j.precision, 'number');
  // REFERENCE T1.6: with the three separate γ values, maximising f_w·f_a·f_kv/P gives P* ≈ 3.47
  // (two decimals quoted: ± half a unit of the last one); a 0.05-step grid lands on 3.45
  assert.ok(Math.abs(j.precision - 3.47) <= 0.005, String(j.precision));
  assert.ok(Math.abs(j.precision - 3.45) <= 0.025, `within the grid cell of 3.45: ${j.precision}`);
  assert.ok(j.caveats.some((c) => c.includes('7-8-bit')));
});

test('law predict prints a table with the T1 number and the caveats', () => {
  const r = cli('predict', '--N', '220e6', '--D', '26e9', '--post-bits', '4');
  assert.equal(r.code, 0, r.stderr);
  // T1: 3.1966 + δ 0.017586 = 3.2142
  assert.match(r.stdout, /loss after PTQ\s+3\.2142 nats\/token/);
  assert.match(r.stdout, /critical data size D\*\s+1\.753e\+11/);
  assert.match(r.stdout, /caveats:\n {2}- /);
});

test('out-of-range values are clear errors naming the flag (exit code 2 from the real CLI)', async () => {
  for (const [args, field] of [
    [['predict', '--N=-5', '--D', '1e9'], '--N'],
    [['predict', '--N', '1e9', '--D', '1e9', '--post-bits', '0.5'], '--post-bits'],
    [['optimal', '--compute', '0'], '--compute'],
    [['optimal', '--compute', '1e21', '--cost-weights', '1,2'], '--cost-weights'],
    [['predict', '--D', '1e9'], '--N'],
    [['nope'], 'subcommand'],
  ] as [string[], string][]) {
    await assert.rejects(
      run(args),
      (e: unknown) => e instanceof BitscaleError && e.code === 'bad_option' && e.context.field === field,
      args.join(' '),
    );
  }
  const r = cli('predict', '--N=-5', '--D', '1e9');
  assert.equal(r.code, 2, r.stderr);
  assert.match(r.stderr, /invalid value for --N \(field '--N'\): expected a number > 0, found -5/);
});

test('law fit reads CSV runs and recovers E; law plot writes three SVG files', () => {
  const dir = tempDir('bitscale-law-cli-');
  const lines = ['N,D,w,a,kv,post,loss'];
  for (const N of [30e6, 110e6, 220e6]) {
    for (const D of [1.5e9, 6e9, 26e9]) {
      for (const b of ['', '4', '8']) {
        const t = b ? { w: +b, a: +b, kv: +b } : undefined;
        lines.push(`${N},${D},${b},${b},${b},,${predictRow({ N, D, loss: 0, train: t }, KUMAR2024.values)}`);
      }
    }
  }
  const csv = join(dir, 'runs.csv');
  writeFileSync(csv, lines.join('\n'));
  const r = cli('fit', csv, '--params', 'E,gammaW', '--bootstrap', '20', '--json', '--out', join(dir, 'fit.json'));
  assert.equal(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { estimates: { E: number; gammaW: number }; ci: { E: [number, number] } };
  assert.ok(Math.abs(j.estimates.E - KUMAR2024.values.E) < 1e-6);
  assert.ok(j.ci.E[0] <= j.estimates.E && j.estimates.E <= j.ci.E[1]);
  // the written set is usable as --constants
  const p = cli('predict', '--N', '1e8', '--D', '1e9', '--constants', join(dir, 'fit.json'), '--json');
  assert.equal(p.code, 0, p.stderr);
  const plots = cli('plot', '--out', join(dir, 'plots'));
  assert.equal(plots.code, 0, plots.stderr);
  assert.deepEqual(readdirSync(join(dir, 'plots')).sort(), ['delta-ptq-vs-data.svg', 'iso-compute.svg', 'loss-vs-data.svg']);
});
