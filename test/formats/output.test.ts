// Output transactions (formats/io/output.ts): the rules that keep user files safe, each checked on a
// real filesystem: --force replaces only a folder bitscale wrote, inputs are protected through
// symlinks and hard links, nothing appears at the final path before commit, a dead run's staging is
// rolled back or forward, the lock refuses a live writer and takes over a dead one's, and the
// manifest carries the sha256 of the bytes beside it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, linkSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BitscaleError } from '../../src/core/errors.js';
import { atomicWriteFile, checkOutput, folderOwnership, MANIFEST_FILE, OutputTxn, openWorkspace, withOutput } from '../../src/formats/io/index.js';

function tmp(): string {
  return mkdtempSync(join(tmpdir(), 'bitscale-output-'));
}

/** A pid that certainly ran and certainly ended. */
function deadPid(): number {
  const r = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
  return Number(r.stdout);
}

async function rejectsCode(p: Promise<unknown>, code: string, re?: RegExp): Promise<BitscaleError> {
  try {
    await p;
  } catch (e) {
    assert.ok(e instanceof BitscaleError, `not a BitscaleError: ${String(e)}`);
    assert.equal(e.code, code, e.message);
    if (re) assert.match(e.message, re);
    return e;
  }
  assert.fail(`expected a '${code}' error`);
}

const sha = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');

test('--force never deletes a folder bitscale did not write, nor a file it did not list', async () => {
  const d = tmp();
  try {
    const keep = join(d, 'keep');
    mkdirSync(keep);
    writeFileSync(join(keep, 'notes.txt'), 'hi');
    await rejectsCode(checkOutput(keep, { kind: 'dir', force: true }), 'exists', /not written by bitscale/);
    await rejectsCode(checkOutput(keep, { kind: 'dir' }), 'exists', /already exists/);
    assert.equal(readFileSync(join(keep, 'notes.txt'), 'utf8'), 'hi');
    // a folder bitscale wrote (manifest listing its files) is replaced with --force …
    const out = join(d, 'out');
    await withOutput(out, { kind: 'dir', command: 'test' }, async (t) => writeFileSync(join(t.staged, 'a.bin'), 'one'));
    const m = JSON.parse(readFileSync(join(out, MANIFEST_FILE), 'utf8'));
    assert.equal(m.tool, 'bitscale');
    assert.deepEqual(Object.keys(m.output.sha256), ['a.bin']);
    assert.equal(m.output.sha256['a.bin'], sha(join(out, 'a.bin')));
    assert.deepEqual(await folderOwnership(out), { manifest: true, foreign: [] });
    await withOutput(out, { kind: 'dir', force: true }, async (t) => writeFileSync(join(t.staged, 'b.bin'), 'two'));
    assert.deepEqual(readdirSync(out).sort(), ['b.bin', MANIFEST_FILE]);
    // … but not once a user put a file of their own in it
    writeFileSync(join(out, 'mine.txt'), 'x');
    const e = await rejectsCode(checkOutput(out, { kind: 'dir', force: true }), 'exists', /did not write/);
    assert.match(e.message, /mine\.txt/);
    assert.ok(existsSync(join(out, 'mine.txt')) && existsSync(join(out, 'b.bin')));
    // an empty folder is free; a file output never replaces a folder, a folder output never a file
    mkdirSync(join(d, 'empty'));
    await checkOutput(join(d, 'empty'), { kind: 'dir' });
    await rejectsCode(checkOutput(keep, { kind: 'file', force: true }), 'exists', /is a folder/);
    writeFileSync(join(d, 'f.txt'), 'f');
    await rejectsCode(checkOutput(join(d, 'f.txt'), { kind: 'dir', force: true }), 'exists', /is a file/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('inputs are protected by path, symlink, hard link and enclosing folder; the working folder is not an output folder', async () => {
  const d = tmp();
  try {
    const input = join(d, 'tok.bin');
    writeFileSync(input, 'vocab');
    symlinkSync(input, join(d, 'sym.bin'));
    linkSync(input, join(d, 'hard.bin'));
    for (const out of [input, join(d, 'sym.bin'), join(d, 'hard.bin'), join(d, '.', 'tok.bin')]) {
      await rejectsCode(checkOutput(out, { kind: 'file', force: true, inputs: [input] }), 'would_overwrite_input');
    }
    // a sidecar (`<out>.manifest.json`) is an output too
    writeFileSync(join(d, 'q.gguf.manifest.json'), 'user data');
    await rejectsCode(checkOutput(join(d, 'q.gguf'), { kind: 'file', force: true, inputs: [join(d, 'q.gguf.manifest.json')], sidecars: ['q.gguf.manifest.json'] }), 'would_overwrite_input');
    // a folder holding an input
    mkdirSync(join(d, 'model'));
    writeFileSync(join(d, 'model', 'config.json'), '{}');
    await rejectsCode(checkOutput(join(d, 'model'), { kind: 'dir', force: true, inputs: [join(d, 'model', 'config.json')] }), 'would_overwrite_input');
    assert.equal(readFileSync(input, 'utf8'), 'vocab');
    await rejectsCode(checkOutput('.', { kind: 'dir', force: true }), 'bad_option', /current folder/);
    await rejectsCode(checkOutput(join(d, 'missing', 'x.gguf'), { kind: 'file' }), 'missing_file', /parent folder does not exist/);
    await rejectsCode(checkOutput(join(input, 'x.gguf'), { kind: 'file' }), 'io', /not a folder/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('nothing at the final path before commit; a failed body leaves nothing, not even its staging folder or lock', async () => {
  const d = tmp();
  try {
    const out = join(d, 'm.gguf');
    writeFileSync(out, 'old');
    await assert.rejects(
      withOutput(out, { kind: 'file', force: true, sidecars: ['m.gguf.manifest.json'] }, async (t) => {
        writeFileSync(t.staged, 'new, unverified');
        writeFileSync(t.stagedSidecar('m.gguf.manifest.json'), JSON.stringify({ tool: 'bitscale', output: {} }));
        assert.equal(readFileSync(out, 'utf8'), 'old', 'the final path keeps the old bytes while the run works');
        throw new Error('verification failed');
      }),
      /verification failed/,
    );
    assert.equal(readFileSync(out, 'utf8'), 'old');
    assert.deepEqual(readdirSync(d), ['m.gguf']);
    // committed: the file and its manifest, the manifest describing exactly these bytes
    await withOutput(out, { kind: 'file', force: true, sidecars: ['m.gguf.manifest.json'] }, async (t) => {
      writeFileSync(t.staged, 'new');
      writeFileSync(t.stagedSidecar('m.gguf.manifest.json'), JSON.stringify({ tool: 'bitscale', output: { files: [t.staged] } }));
    });
    const m = JSON.parse(readFileSync(`${out}.manifest.json`, 'utf8'));
    assert.deepEqual(m.output.files, [out]);
    assert.equal(m.output.sha256['m.gguf'], sha(out));
    assert.deepEqual(readdirSync(d).sort(), ['m.gguf', 'm.gguf.manifest.json']);
    // an output that writes no manifest drops the old one rather than leave it describing other bytes
    await withOutput(out, { kind: 'file', force: true }, async (t) => writeFileSync(t.staged, 'third'));
    assert.deepEqual(readdirSync(d), ['m.gguf']);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a live writer holds the output; a dead one\'s lock, staging folder and temporaries are recovered', async () => {
  const d = tmp();
  try {
    const out = join(d, 'x.gguf');
    const t1 = await OutputTxn.begin(out, { kind: 'file' });
    const e = await rejectsCode(OutputTxn.begin(out, { kind: 'file' }), 'locked', /another bitscale run/);
    assert.match(e.message, new RegExp(`process ${process.pid}`));
    await t1.abort();
    const dead = deadPid();
    // killed before its commit point, after moving the old output aside: rolled back
    writeFileSync(join(d, '.x.gguf.lock'), `${dead} abc\n`);
    const root = join(d, `.x.gguf.tmp-${dead}-00ff00ff`);
    mkdirSync(root);
    writeFileSync(join(root, 'x.gguf'), 'partial new');
    writeFileSync(join(root, '.replaced'), 'old complete');
    writeFileSync(join(d, `x.gguf.tmp-${dead}-0a0b0c0d`), 'stray temporary');
    const t2 = await OutputTxn.begin(out, { kind: 'file', force: true });
    assert.equal(readFileSync(out, 'utf8'), 'old complete', 'the old output is back');
    assert.ok(!existsSync(root) && !existsSync(join(d, `x.gguf.tmp-${dead}-0a0b0c0d`)));
    await t2.abort();
    // killed after its commit point: the sidecars are moved into place
    const root2 = join(d, `.x.gguf.tmp-${dead}-11ff00ff`);
    mkdirSync(root2);
    writeFileSync(join(root2, 'x.gguf.manifest.json'), '{"tool":"bitscale"}');
    const t3 = await OutputTxn.begin(out, { kind: 'file', force: true });
    assert.equal(readFileSync(`${out}.manifest.json`, 'utf8'), '{"tool":"bitscale"}');
    assert.ok(!existsSync(root2));
    await t3.abort();
    assert.deepEqual(readdirSync(d).sort(), ['x.gguf', 'x.gguf.manifest.json']);
    // a plain atomic write also clears its own dead temporaries
    writeFileSync(join(d, `s.json.tmp-${dead}-deadbeef`), 'half');
    await atomicWriteFile(join(d, 's.json'), '{}');
    assert.ok(!existsSync(join(d, `s.json.tmp-${dead}-deadbeef`)));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('a workspace folder: a file there is a typed error; two runs cannot hold it at once', async () => {
  const d = tmp();
  try {
    writeFileSync(join(d, 'file'), 'x');
    await rejectsCode(openWorkspace(join(d, 'file')), 'exists', /is a file/);
    await rejectsCode(openWorkspace(join(d, 'file', 'sub')), 'io');
    const ws = await openWorkspace(join(d, 'a', 'b'));
    await rejectsCode(openWorkspace(join(d, 'a', 'b')), 'locked');
    await ws.release();
    await (await openWorkspace(join(d, 'a', 'b'))).release();
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
