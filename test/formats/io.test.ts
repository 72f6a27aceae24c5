// The filesystem adapter: positional reads, atomic writes (refusals, no partial output), file
// helpers, container files by path, and a safetensors tensor at an offset past 4 GiB.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { constants as bufferConstants } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readFileSync, renameSync, rmSync, writeFileSync, symlinkSync, truncateSync, openSync, writeSync, closeSync } from 'node:fs';
import { join } from 'node:path';
import { BitscaleError } from '../../src/core/errors.js';
import {
  AtomicFileSink,
  type AtomicWriteOptions,
  atomicWriteFile,
  fileExists,
  openFileSource,
  openGgufFile,
  openSafetensorsDir,
  openSafetensorsFile,
  readJsonFile,
  noteRenamed,
  sha256File,
  withAtomicFile,
  writeGgufFile,
  writeSafetensorsFile,
  writeShardedSafetensorsFiles,
} from '../../src/formats/io/index.js';
import { gv } from '../../src/formats/gguf/index.js';
import { safetensorsLayout } from '../../src/formats/safetensors/index.js';
import { tempDir } from '../helpers.js';
import { STAGE_BYTES, StagedWriter } from '../../src/formats/io/staged-writes.js';
import { StageHasher } from '../../src/formats/io/stage-hasher.js';
import { open } from 'node:fs/promises';
import type { Worker } from 'node:worker_threads';

function tmp(): string {
  return tempDir('bitscale-io-');
}

test('openFileSource reads by offset and reports truncation and missing files', async () => {
  const dir = tmp();
  try {
    const p = join(dir, 'a.bin');
    writeFileSync(p, Uint8Array.from({ length: 100 }, (_, i) => i));
    const src = await openFileSource(p);
    assert.equal(src.size, 100);
    assert.deepEqual([...(await src.read(10, 3))], [10, 11, 12]);
    assert.deepEqual([...(await src.read(100, 0))], []);
    await assert.rejects(src.read(98, 3), (e: BitscaleError) => e.code === 'truncated' && e.context.file === p && e.context.offset === 98);
    await src.close();
    await assert.rejects(openFileSource(join(dir, 'nope')), (e: BitscaleError) => e.code === 'missing_file');
    await assert.rejects(openFileSource(dir), (e: BitscaleError) => e.code === 'io');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('atomic writes: commit, refusals, and no partial file on error or abort', async () => {
  const dir = tmp();
  try {
    const out = join(dir, 'out.bin');
    await atomicWriteFile(out, 'hello');
    assert.equal(readFileSync(out, 'utf8'), 'hello');
    await assert.rejects(atomicWriteFile(out, 'x'), (e: BitscaleError) => e.code === 'exists' && e.context.file === out);
    await atomicWriteFile(out, 'again', { overwrite: true });
    assert.equal(readFileSync(out, 'utf8'), 'again');
    // the output may not be an input, even through a symlink and even with overwrite
    const link = join(dir, 'link.bin');
    symlinkSync(out, link);
    await assert.rejects(atomicWriteFile(link, 'x', { overwrite: true, inputs: [out] }), (e: BitscaleError) => e.code === 'would_overwrite_input');
    await assert.rejects(atomicWriteFile(out, 'x', { overwrite: true, inputs: [join(dir, '.', 'out.bin')] }), (e: BitscaleError) => e.code === 'would_overwrite_input');
    // a failing producer leaves neither the output nor a temporary file
    const failed = join(dir, 'failed.bin');
    await assert.rejects(
      withAtomicFile(failed, {}, async (sink) => {
        await sink.write(new Uint8Array(10 << 20));
        throw new Error('producer failed');
      }),
      /producer failed/,
    );
    const sink = await AtomicFileSink.create(join(dir, 'aborted.bin'));
    await sink.write(new Uint8Array(5));
    assert.ok(await fileExists(sink.tempPath));
    assert.match(sink.tempPath, /aborted\.bin\.tmp-\d+-[0-9a-f]{8}$/);
    await sink.abort();
    await sink.abort();
    await assert.rejects(sink.write(new Uint8Array(1)), (e: BitscaleError) => e.code === 'io');
    assert.deepEqual(readdirSync(dir).sort(), ['link.bin', 'out.bin']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a cancelled or failing container write leaves no output and no temporary file', async () => {
  const dir = tmp();
  try {
    const ac = new AbortController();
    const tensors = [0, 1, 2].map((i) => ({
      name: `t${i}`,
      dtype: 'F32' as const,
      shape: [4],
      produce: () => {
        if (i === 1) ac.abort();
        return new Float32Array(4);
      },
    }));
    const out = join(dir, 'x.safetensors');
    await assert.rejects(writeSafetensorsFile(out, tensors, { signal: ac.signal }), (e: BitscaleError) => e.code === 'interrupted');
    await assert.rejects(
      writeGgufFile(join(dir, 'x.gguf'), [], [{ name: 'q', type: 'Q8_0', shape: [32], produce: () => new Uint8Array(33) }]),
      (e: BitscaleError) => e.code === 'shape_mismatch' && e.context.tensor === 'q',
    );
    assert.deepEqual(readdirSync(dir), []);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('readJsonFile, fileExists and sha256File', async () => {
  const dir = tmp();
  try {
    const j = join(dir, 'c.json');
    writeFileSync(j, '{"a": [1, 2]}');
    assert.deepEqual(await readJsonFile(j), { a: [1, 2] });
    writeFileSync(j, '{"a": ');
    await assert.rejects(readJsonFile(j), (e: BitscaleError) => e.code === 'bad_header' && e.context.file === j);
    await assert.rejects(readJsonFile(join(dir, 'none.json')), (e: BitscaleError) => e.code === 'missing_file');
    assert.equal(await fileExists(j), true);
    assert.equal(await fileExists(join(dir, 'none.json')), false);
    const big = new Uint8Array(3 << 20).map((_, i) => (i * 31) & 0xff);
    const p = join(dir, 'big.bin');
    writeFileSync(p, big);
    assert.equal(await sha256File(p), createHash('sha256').update(big).digest('hex'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sha256File of a file an AtomicFileSink wrote: the digest taken while writing, and the file read again once it changed', async () => {
  const dir = tmp();
  try {
    const p = join(dir, 'w.bin');
    // pieces below and above the sink's 4 MiB buffer, so both write paths feed the digest
    const parts = [new Uint8Array(1000).fill(7), new Uint8Array(5 << 20).map((_, i) => (i * 13) & 0xff), new Uint8Array(3).fill(1)];
    await withAtomicFile(p, {}, async (s) => {
      for (const b of parts) await s.write(b);
    });
    const whole = readFileSync(p);
    assert.equal(await sha256File(p), createHash('sha256').update(whole).digest('hex'));
    // rewritten behind the process's back (same size): the remembered digest no longer applies
    const changed = Buffer.from(whole);
    changed[12345] ^= 0xff;
    writeFileSync(p, changed);
    assert.equal(await sha256File(p), createHash('sha256').update(changed).digest('hex'));
    // renamed (as an output transaction moves its staged file): the digest follows the file
    // (noteRenamed), and a file changed after the move is read again
    const q = join(dir, 'w2.bin');
    await withAtomicFile(q, {}, (s) => s.write(whole));
    const moved = join(dir, 'moved.bin');
    renameSync(q, moved);
    await noteRenamed(q, moved);
    assert.equal(await sha256File(moved), createHash('sha256').update(whole).digest('hex'));
    writeFileSync(moved, changed);
    assert.equal(await sha256File(moved), createHash('sha256').update(changed).digest('hex'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('AtomicFileSink in 8 MiB blocks: the same bytes and digest around the page cache (O_DIRECT) and through it, odd chunk sizes, a tail', async () => {
  const dir = tmp();
  try {
    // 2 full staging blocks and a tail: chunks smaller than, equal to and larger than a block, at odd offsets
    const sizes = [1, 4093, STAGE_BYTES, 3 << 20, STAGE_BYTES + 17, 5, (1 << 20) + 3];
    const total = sizes.reduce((a, b) => a + b, 0);
    const whole = randomBytes(total);
    const parts: Uint8Array[] = [];
    for (let o = 0, i = 0; i < sizes.length; o += sizes[i++]) parts.push(whole.subarray(o, o + sizes[i]));
    const expected = createHash('sha256').update(whole).digest('hex');
    const ways: [string, AtomicWriteOptions][] = [['direct.bin', {}], ['cached.bin', { pageCache: true }]];
    for (const [name, opts] of ways) {
      const p = join(dir, name);
      const sink = await AtomicFileSink.create(p, opts);
      if (opts.pageCache) assert.equal(sink.bypassesPageCache, false);
      for (const b of parts) await sink.write(b);
      assert.equal(sink.position, total);
      await sink.close();
      assert.ok(Buffer.from(readFileSync(p)).equals(whole), name);
      assert.equal(await sha256File(p), expected);
      assert.equal(createHash('sha256').update(readFileSync(p)).digest('hex'), expected);
    }
    // aborted after blocks went out: no output, no temporary file
    const sink = await AtomicFileSink.create(join(dir, 'aborted.bin'));
    await sink.write(whole.subarray(0, 2 * STAGE_BYTES + 1));
    await sink.abort();
    assert.deepEqual(readdirSync(dir).sort(), ['cached.bin', 'direct.bin']);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('AtomicFileSink takes the sha256 of a file larger than one block on the hash thread, in file order; a small file on the writing thread', async () => {
  const dir = tmp();
  try {
    // 3 whole blocks and a tail, in chunks that straddle the block boundaries, more blocks than
    // the writer rotates through (the hash thread must have finished a block before it is refilled)
    const total = 5 * STAGE_BYTES + 12345;
    const whole = randomBytes(total);
    const p = join(dir, 'big.bin');
    const sink = await AtomicFileSink.create(p);
    assert.equal(sink.bytesHashedOffThread, 0);
    for (let o = 0; o < total; o += 3_000_017) await sink.write(whole.subarray(o, Math.min(total, o + 3_000_017)));
    // every whole block so far went to the hash thread
    assert.ok(sink.bytesHashedOffThread >= 4 * STAGE_BYTES, `${sink.bytesHashedOffThread}`);
    await sink.close();
    // the tail too: every byte of the file was hashed there, none on this thread
    assert.equal(sink.bytesHashedOffThread, total);
    const file = readFileSync(p);
    assert.ok(Buffer.from(file).equals(whole));
    // the digest the manifest gets (sha256File answers from the one taken while writing) is the file's
    assert.equal(await sha256File(p), createHash('sha256').update(file).digest('hex'));
    // smaller than one block: hashed on this thread, no thread started
    const q = join(dir, 'small.bin');
    const small = await AtomicFileSink.create(q);
    await small.write(whole.subarray(0, STAGE_BYTES - 1));
    await small.close();
    assert.equal(small.bytesHashedOffThread, 0);
    assert.equal(await sha256File(q), createHash('sha256').update(whole.subarray(0, STAGE_BYTES - 1)).digest('hex'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('where no hash thread can start (the browser build), a file larger than one block is hashed on the writing thread', async () => {
  // the page's worker_threads shim throws from its constructor (web/shims/misc.ts)
  class NoThreads {
    constructor() {
      throw new Error('worker_threads is not available in the browser build');
    }
  }
  assert.equal(StageHasher.tryStart(NoThreads as unknown as typeof Worker), null);
  const dir = tmp();
  try {
    const total = 3 * STAGE_BYTES + 777;
    const whole = randomBytes(total);
    const p = join(dir, 'big.bin');
    const fh = await open(p, 'w');
    const w = await StagedWriter.open(fh, p, false, true, () => StageHasher.tryStart(NoThreads as unknown as typeof Worker));
    for (let o = 0; o < total; o += 5_000_011) await w.write(whole.subarray(o, Math.min(total, o + 5_000_011)));
    const hex = await w.finish();
    await fh.close();
    assert.equal(w.bytesHashedOffThread, 0);
    assert.ok(Buffer.from(readFileSync(p)).equals(whole));
    assert.equal(hex, createHash('sha256').update(whole).digest('hex'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('safetensors and GGUF files by path, and a directory of shards', async () => {
  const dir = tmp();
  try {
    const st = join(dir, 'model.safetensors');
    await writeSafetensorsFile(st, [{ name: 'w', dtype: 'F32', shape: [2], data: new Float32Array([1, 2]) }], { metadata: { format: 'pt' } });
    const f = await openSafetensorsFile(st);
    assert.deepEqual([...((await f.readTensor('w')).data as Float32Array)], [1, 2]);
    await f.close();
    const v = await openSafetensorsDir(dir);
    assert.deepEqual(v.names(), ['w']);
    await v.close();
    await assert.rejects(writeSafetensorsFile(st, []), (e: BitscaleError) => e.code === 'exists');
    // shards + index take precedence over model.safetensors
    await writeSafetensorsFile(join(dir, 'm-1.safetensors'), [{ name: 'a', dtype: 'U8', shape: [1], data: new Uint8Array([7]) }]);
    await writeSafetensorsFile(join(dir, 'm-2.safetensors'), [{ name: 'b', dtype: 'U8', shape: [1], data: new Uint8Array([9]) }]);
    writeFileSync(join(dir, 'model.safetensors.index.json'), JSON.stringify({ metadata: { total_size: 2 }, weight_map: { a: 'm-1.safetensors', b: 'm-2.safetensors' } }));
    const s = await openSafetensorsDir(dir);
    assert.deepEqual(s.names(), ['a', 'b']);
    assert.deepEqual([...((await s.readTensor('b')).data as Uint8Array)], [9]);
    await s.close();
    await assert.rejects(openSafetensorsDir(join(dir, 'none')), (e: BitscaleError) => e.code === 'missing_file');

    const g = join(dir, 'm.gguf');
    await writeGgufFile(g, [['general.architecture', gv.str('llama')]], [{ name: 't', type: 'Q8_0', shape: [32], data: new Uint8Array(34).fill(3) }]);
    const gf = await openGgufFile(g);
    assert.equal(gf.get('general.architecture'), 'llama');
    assert.deepEqual(await gf.readBytes('t'), new Uint8Array(34).fill(3));
    await gf.close();
    // a corrupt file: the handle is closed and the error names the path
    writeFileSync(join(dir, 'bad.gguf'), 'GGUF\x01\x00\x00\x00');
    await assert.rejects(openGgufFile(join(dir, 'bad.gguf')), (e: BitscaleError) => e.code === 'bad_version' && e.context.file === join(dir, 'bad.gguf'));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('sharded writer: Hugging Face shard names, index written last, reads back as one view', async () => {
  const dir = tmp();
  try {
    const tensors = ['c', 'a', 'b', 'd'].map((name, i) => ({ name, dtype: 'F32' as const, shape: [4 + i], data: new Float32Array(4 + i).fill(i) }));
    // 16, 20, 24, 28 bytes with at most 40 per shard → [c, a] [b] [d]
    const plan = await writeShardedSafetensorsFiles(dir, tensors, { maxShardBytes: 40, metadata: { format: 'pt' } });
    assert.deepEqual(plan.shards.map((s) => [s.file, s.tensors.map((t) => t.name)]), [
      ['model-00001-of-00003.safetensors', ['c', 'a']],
      ['model-00002-of-00003.safetensors', ['b']],
      ['model-00003-of-00003.safetensors', ['d']],
    ]);
    const index = (await readJsonFile(join(dir, 'model.safetensors.index.json'))) as { metadata: { total_size: number }; weight_map: Record<string, string> };
    assert.equal(index.metadata.total_size, 88);
    assert.deepEqual(Object.keys(index.weight_map), ['a', 'b', 'c', 'd']);
    const v = await openSafetensorsDir(dir);
    for (const [i, t] of tensors.entries()) assert.deepEqual([...((await v.readTensor(t.name)).data as Float32Array)], new Array(4 + i).fill(i));
    assert.deepEqual(v.metadata, { format: 'pt' });
    await v.close();
    // refused before anything is written when any output exists
    await assert.rejects(writeShardedSafetensorsFiles(dir, tensors, { maxShardBytes: 1000 }), (e: BitscaleError) => e.code === 'exists');
    assert.equal(readdirSync(dir).length, 4);
    await assert.rejects(writeShardedSafetensorsFiles(dir, tensors, { maxShardBytes: 0 }), (e: BitscaleError) => e.code === 'bad_option');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('safetensors tensor stored past 4 GiB (sparse file) reads back', async (t) => {
  const dir = tmp();
  try {
    // Layout: one 4.5 GiB U8 tensor (zeros, sparse) then a small F32 tensor at offset > 2^32.
    const bigLen = 4.5 * 2 ** 30;
    const tensors = [
      { name: 'a.big', dtype: 'U8' as const, shape: [bigLen] },
      { name: 'b.tail', dtype: 'F32' as const, shape: [3] },
    ];
    const layout = safetensorsLayout(tensors, { order: 'given' });
    const tail = layout.tensors[1];
    assert.ok(tail.offset > 2 ** 32);
    const p = join(dir, 'big.safetensors');
    try {
      writeFileSync(p, layout.header);
      truncateSync(p, layout.size);
    } catch (e) {
      t.skip(`filesystem cannot hold a sparse ${layout.size}-byte file: ${String(e)}`);
      return;
    }
    const fd = openSync(p, 'r+');
    writeSync(fd, new Uint8Array(new Float32Array([1.5, -2, 3]).buffer), 0, 12, tail.offset);
    closeSync(fd);
    const f = await openSafetensorsFile(p);
    assert.equal(f.info('b.tail').offset, tail.offset);
    assert.deepEqual([...((await f.readTensor('b.tail')).data as Float32Array)], [1.5, -2, 3]);
    assert.deepEqual([...(await f.source.read(tail.offset - 4, 4))], [0, 0, 0, 0]);
    // a 4.5 GiB tensor is past what one Node allocation can hold: a typed error, before allocating
    if (bigLen > bufferConstants.MAX_LENGTH) {
      await assert.rejects(f.readBytes('a.big'), (e: BitscaleError) => e.code === 'too_large' && e.context.file === p);
    }
    await f.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
