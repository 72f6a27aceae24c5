// The input digest cache (src/formats/io/digest-cache.ts): a digest is served from the cache only
// while the file is the same (inode, size, times); touching, rewriting in place (even with the old
// modification time put back) or replacing the file makes it read again, and the digest always
// equals node:crypto's sha256 of the bytes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, renameSync, rmSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { digestCacheDir, sha256Cached } from '../../src/formats/io/index.js';
import { tempDir } from '../helpers.js';

// file times tick coarsely (a few ms): a change right after the stored stat could keep its times,
// which the cache's 2 s rule covers in use; these tests store with no such margin, so they wait
const tick = (): Promise<void> => new Promise((r) => setTimeout(r, 30));
const sha = (p: string): string => createHash('sha256').update(readFileSync(p)).digest('hex');

test('digest cache: hits while the file is unchanged, misses after touch / in-place rewrite / replacement', async () => {
  const dir = tempDir('bitscale-digest-');
  try {
    const cache = join(dir, 'cache');
    const f = join(dir, 'model.bin');
    writeFileSync(f, Buffer.alloc(100_000, 3));
    let reads: string[] = [];
    const compute = async (ps: string[]): Promise<string[]> => {
      reads.push(...ps);
      return ps.map(sha);
    };
    const run = async (racy = 0n) => {
      reads = [];
      const d = await sha256Cached([f], compute, cache, racy);
      assert.equal(d.hex[0], sha(f));
      return { cached: d.cached[0], read: reads.length > 0 };
    };
    assert.deepEqual(await run(), { cached: false, read: true }); // cold: read and stored
    assert.deepEqual(await run(), { cached: true, read: false }); // warm
    // a file changed just now is hashed but not stored (a same-tick write could go unseen)
    await tick();
    utimesSync(f, statSync(f).atime, statSync(f).mtime); // touch: the change time moves
    assert.deepEqual(await run(10n ** 12n), { cached: false, read: true });
    assert.deepEqual(await run(10n ** 12n), { cached: false, read: true });
    assert.deepEqual(await run(), { cached: false, read: true });
    assert.deepEqual(await run(), { cached: true, read: false });
    // rewritten in place, same size, old modification time put back: the change time still differs
    const { atime, mtime } = statSync(f);
    await tick();
    writeFileSync(f, Buffer.alloc(100_000, 4));
    utimesSync(f, atime, mtime);
    assert.deepEqual(await run(), { cached: false, read: true });
    assert.deepEqual(await run(), { cached: true, read: false });
    // replaced by another file (new inode) with the same bytes and times
    await tick();
    const g = join(dir, 'other.bin');
    writeFileSync(g, readFileSync(f));
    utimesSync(g, atime, mtime);
    renameSync(g, f);
    assert.deepEqual(await run(), { cached: false, read: true });
    // off: always read
    const off = await sha256Cached([f], compute, null, 0n);
    assert.deepEqual(off.cached, [false]);
    assert.equal(off.hex[0], sha(f));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('digest cache folder: BITSCALE_DIGEST_CACHE, off, else the user cache folder', () => {
  assert.equal(digestCacheDir({ BITSCALE_DIGEST_CACHE: 'off' }, '/home/u'), null);
  assert.equal(digestCacheDir({ BITSCALE_DIGEST_CACHE: '0' }, '/home/u'), null);
  assert.equal(digestCacheDir({ BITSCALE_DIGEST_CACHE: '/c/d' }, '/home/u'), '/c/d');
  assert.equal(digestCacheDir({ XDG_CACHE_HOME: '/x' }, '/home/u'), join('/x', 'bitscale', 'sha256'));
  assert.equal(digestCacheDir({}, '/home/u'), join('/home/u', '.cache', 'bitscale', 'sha256'));
});
