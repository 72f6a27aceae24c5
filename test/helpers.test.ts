// The test helpers: the ../shared skip (and its CI rule) and temporary folders that are removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sharedSkipIn, tempDir, withTempDir } from './helpers.js';

test('sharedSkip: false when present; a reason when ../shared or a file is missing; under CI a missing file throws', async () => {
  await withTempDir('bitscale-helpers-', (root) => {
    writeFileSync(join(root, 'a.bin'), 'x');
    assert.equal(sharedSkipIn(root, ['a.bin'], {}), false);
    assert.equal(sharedSkipIn(root, ['a.bin'], { CI: 'true' }), false);
    assert.equal(sharedSkipIn(root, ['b.bin'], {}), '../shared is present but lacks b.bin');
    assert.throws(() => sharedSkipIn(root, ['a.bin', 'b.bin'], { CI: 'true' }), /\.\.\/shared\/b\.bin is missing/);
    const gone = join(root, 'absent');
    assert.equal(sharedSkipIn(gone, ['a.bin'], { CI: 'true' }), 'needs ../shared (a.bin)');
    assert.equal(sharedSkipIn(gone, [], {}), 'needs ../shared (.)');
  });
});

let kept = '';
test('tempDir: the folder exists during the test …', () => {
  kept = tempDir('bitscale-helpers-');
  writeFileSync(join(kept, 'f'), 'x');
  assert.ok(existsSync(join(kept, 'f')));
});

test('… and is gone after it; withTempDir removes its folder after an error too', async () => {
  assert.ok(kept && !existsSync(kept));
  let seen = '';
  await assert.rejects(
    withTempDir('bitscale-helpers-', (d) => {
      seen = d;
      throw new Error('boom');
    }),
    /boom/,
  );
  assert.ok(seen && !existsSync(seen));
});
