// The installed command works: after `npm install` (whose prepare step builds dist/), every bin
// target of package.json exists, starts with a node shebang and is executable, so `npx bitscale`
// runs in a fresh clone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { bin: Record<string, string> };
const built = existsSync('dist') ? false : 'dist/ is not built (npm install runs the build)';

test('every bin target is an executable node script that prints the help', { skip: built }, () => {
  for (const [name, target] of Object.entries(pkg.bin)) {
    assert.ok(existsSync(target), `${name} → ${target} exists`);
    assert.match(readFileSync(target, 'utf8').split('\n')[0], /^#!\/usr\/bin\/env node/);
    assert.ok((statSync(target).mode & 0o111) !== 0, `${target} is executable (mode ${statSync(target).mode.toString(8)})`);
    const help = execFileSync(target, ['--help'], { encoding: 'utf8' });
    assert.match(help, /^bitscale: /);
  }
});
