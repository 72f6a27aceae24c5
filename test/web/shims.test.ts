// The node:* stand-ins of the browser build (web/shims) against Node's own modules: SHA-256 over
// any split of the input (manifests hash their inputs as streams), POSIX paths, Buffer text, and
// the Blob-backed filesystem's async calls (the sync ones need a Web Worker's FileReaderSync and are
// exercised by the Chromium tests).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { Sha256, createHash as shimHash } from '../../web/shims/crypto.js';
import * as p from '../../web/shims/path.js';
import { Buffer as ShimBuffer } from '../../web/shims/buffer.js';
import * as fsp from '../../web/shims/fs-promises.js';
import * as fs from '../../web/shims/fs.js';
import { mount, readBlob, readBlobInto, blobReadRetries, blobReadTiming } from '../../web/shims/vfs.js';

test('SHA-256 equals node:crypto for lengths around the block edges and any chunking', () => {
  for (const n of [0, 1, 55, 56, 63, 64, 65, 119, 120, 127, 128, 1000, 4097]) {
    const data = new Uint8Array(randomBytes(n));
    const want = createHash('sha256').update(data).digest('hex');
    assert.equal(shimHash('sha256').update(data).digest('hex'), want, `${n} bytes in one update`);
    const h = new Sha256();
    for (let o = 0; o < n; o += 7) h.update(data.subarray(o, Math.min(n, o + 7)));
    assert.equal(h.digest('hex'), want, `${n} bytes in 7-byte updates`);
  }
  assert.equal(shimHash('sha256').update('abc').digest('hex'), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});

test('path functions equal node:path.posix on absolute and relative paths', () => {
  const cases = ['/a/b/c.txt', '/a/b/', 'a/b/../c', '/', '.', 'x', '/in/model/config.json', '../up/one', '/a//b/./c/', 'file.tar.gz', '.hidden'];
  for (const c of cases) {
    assert.equal(p.normalize(c), posix.normalize(c).replace(/(.)\/$/, '$1'), `normalize ${c}`);
    assert.equal(p.dirname(c), posix.dirname(c), `dirname ${c}`);
    assert.equal(p.basename(c), posix.basename(c), `basename ${c}`);
    assert.equal(p.extname(c), posix.extname(c), `extname ${c}`);
  }
  assert.equal(p.join('/out', 'q.gguf'), posix.join('/out', 'q.gguf'));
  assert.equal(p.join('a', '..', 'b', 'c'), posix.join('a', '..', 'b', 'c'));
  assert.equal(p.resolve('/in/model', 'config.json'), '/in/model/config.json');
  assert.equal(p.resolve('/a', '/b', 'c'), '/b/c');
  assert.equal(p.relative('/a/b/c', '/a/d'), posix.relative('/a/b/c', '/a/d'));
  assert.equal(p.basename('/x/model.gguf', '.gguf'), 'model');
});

test('Buffer stand-in: hex, utf8 and base64 text as Node writes them; concat', () => {
  const bytes = new Uint8Array(randomBytes(33));
  assert.equal(ShimBuffer.from(bytes).toString('hex'), Buffer.from(bytes).toString('hex'));
  assert.equal(ShimBuffer.from(bytes).toString('base64'), Buffer.from(bytes).toString('base64'));
  assert.equal(ShimBuffer.from('héllo ✓').toString('utf8'), 'héllo ✓');
  assert.deepEqual([...ShimBuffer.concat([ShimBuffer.from('ab'), ShimBuffer.from('c')])], [...Buffer.from('abc')]);
});

test('the Blob filesystem: positional reads of a mounted Blob, atomic write-then-rename, folders, typed ENOENT', async () => {
  const data = new Uint8Array(randomBytes(5000));
  mount('/in/t/model.bin', new Blob([data]));
  const fh = await fsp.open('/in/t/model.bin', 'r');
  const buf = new Uint8Array(100);
  const { bytesRead } = await fh.read(buf, 0, 100, 4950);
  assert.equal(bytesRead, 50, 'a read past the end stops at the end');
  assert.deepEqual([...buf.subarray(0, 50)], [...data.subarray(4950)]);
  assert.equal((await fsp.stat('/in/t/model.bin')).size, 5000);
  await fsp.mkdir('/out/x', { recursive: true });
  const w = await fsp.open('/out/x/f.tmp', 'wx');
  await w.write(data, 0, 3000);
  await w.write(data, 3000, 2000);
  await w.sync();
  await w.close();
  await assert.rejects(fsp.open('/out/x/f.tmp', 'wx'), { code: 'EEXIST' });
  await fsp.rename('/out/x/f.tmp', '/out/x/f.bin');
  assert.deepEqual(new Uint8Array(await fsp.readFile('/out/x/f.bin')), data);
  assert.deepEqual(await fsp.readdir('/out/x'), ['f.bin']);
  await assert.rejects(fsp.stat('/out/x/f.tmp'), { code: 'ENOENT' });
  await fsp.rm('/out/x', { recursive: true });
  await assert.rejects(fsp.readdir('/out/x'), { code: 'ENOENT' });
});

test('the Blob filesystem without fresh buffers: reads across scratch-buffer edges, shared-memory writes, the reused read stream', async () => {
  // 2.5 MiB: more than two of the 1 MiB scratch buffers reads and shared-memory writes go through
  const data = new Uint8Array(randomBytes((5 << 20) / 2 + 7));
  mount('/in/big/model.bin', new Blob([data]));
  const fh = await fsp.open('/in/big/model.bin', 'r');
  // into shared memory at an offset (the streaming RTN writer reads tensors so), from an odd position
  const shared = new Uint8Array(new SharedArrayBuffer(data.length));
  const { bytesRead } = await fh.read(shared, 3, data.length - 3, 1);
  assert.equal(bytesRead, data.length - 3);
  assert.deepEqual(shared.subarray(3), data.subarray(1, data.length - 2));
  // two reads at once (a tensor and the input's hash) each get their own bytes
  const [a, b] = [new Uint8Array(1500000), new Uint8Array(1500000)];
  await Promise.all([fh.read(a, 0, a.length, 0), fh.read(b, 0, b.length, 1000000)]);
  assert.deepEqual(a, data.subarray(0, 1500000));
  assert.deepEqual(b, data.subarray(1000000, 2500000));
  await fh.close();
  // writes from shared memory (refused by the Blob constructor as they are) and from a buffer the caller reuses
  const w = await fsp.open('/out/big.bin', 'w');
  const src = new Uint8Array(new SharedArrayBuffer(data.length));
  src.set(data);
  await w.write(src, 0, 2000000);
  const reused = new Uint8Array(data.length - 2000000);
  reused.set(data.subarray(2000000));
  await w.write(reused);
  reused.fill(0);
  // small writes (gathered in the file's stage buffer) from one buffer refilled between them
  const small = new Uint8Array(100);
  const tail = new Uint8Array(randomBytes(300));
  for (let i = 0; i < 3; i++) {
    small.set(tail.subarray(i * 100, i * 100 + 100));
    await w.write(small);
  }
  assert.equal((await w.stat()).size, data.length + 300, 'the size counts staged bytes');
  await w.close();
  assert.deepEqual(new Uint8Array(await fsp.readFile('/out/big.bin')), new Uint8Array([...data, ...tail]));
  // the read stream: each chunk hashed before the next is asked for (as sha256File does) gives Node's digest
  const h = shimHash('sha256');
  let chunks = 0;
  for await (const c of fs.createReadStream('/out/big.bin', { highWaterMark: 1 << 20 })) {
    h.update(c);
    chunks++;
  }
  assert.equal(chunks, 3);
  assert.equal(h.digest('hex'), createHash('sha256').update(Buffer.from([...data, ...tail])).digest('hex'));
});

/**
 * A stand-in Blob over `data` whose reads stall (never settle) as told: `arrayBufferStalls` attempts
 * of arrayBuffer(), `streamStalls` BYOB streams that deliver `stallAfter` bytes and then stall. Only
 * what vfs.ts calls.
 */
function stallingBlob(data: Uint8Array, o: { arrayBufferStalls?: number; streamStalls?: number; stallAfter?: number }): Blob {
  let abLeft = o.arrayBufferStalls ?? 0;
  let streamLeft = o.streamStalls ?? 0;
  const make = (bytes: Uint8Array): Blob =>
    ({
      size: bytes.length,
      slice: (a = 0, b = bytes.length) => make(bytes.subarray(a, Math.min(b, bytes.length))),
      arrayBuffer: () => (abLeft-- > 0 ? new Promise<ArrayBuffer>(() => undefined) : Promise.resolve(bytes.slice().buffer)),
      stream: () => {
        const stall = streamLeft-- > 0;
        let at = 0;
        return new ReadableStream({
          type: 'bytes',
          pull(c) {
            const req = c.byobRequest!;
            const view = req.view as Uint8Array;
            const limit = stall ? (o.stallAfter ?? 0) : bytes.length;
            if (at >= limit) {
              if (stall) return new Promise<void>(() => undefined); // never answers
              c.close();
              req.respond(0);
              return;
            }
            const n = Math.min(view.byteLength, limit - at, 4096);
            view.set(bytes.subarray(at, at + n));
            at += n;
            req.respond(n);
          },
        });
      },
    }) as unknown as Blob;
  return make(data);
}

test('a Blob read that stalls (the browser never settles it) is done again on a fresh read, and fails with EIO when every try stalls', async () => {
  const keep = blobReadTiming.stallMs;
  blobReadTiming.stallMs = 30;
  try {
    const data = new Uint8Array(randomBytes(300_000));
    const r0 = blobReadRetries.count;
    assert.deepEqual(await readBlob(stallingBlob(data, { arrayBufferStalls: 1 }), 1000, 5000), data.subarray(1000, 6000), 'arrayBuffer() stalled once, then read');
    assert.equal(blobReadRetries.count, r0 + 1);
    await assert.rejects(readBlob(stallingBlob(data, { arrayBufferStalls: 9 }), 0, 10), (e: NodeJS.ErrnoException) => e.code === 'EIO' && /did not finish/.test(e.message));
    // a streamed read (≥ 64 KiB): 12,288 bytes arrive, then nothing; the retry reads the rest
    const dst = new Uint8Array(200_000);
    const r1 = blobReadRetries.count;
    await readBlobInto(stallingBlob(data, { streamStalls: 1, stallAfter: 12_288 }), 50_000, dst);
    assert.deepEqual(dst, data.subarray(50_000, 250_000), 'the bytes of the range, the stalled part’s included');
    assert.ok(blobReadRetries.count > r1, 'the stalled read was done again');
    await assert.rejects(readBlobInto(stallingBlob(data, { streamStalls: 9, arrayBufferStalls: 9 }), 0, new Uint8Array(100_000)), (e: NodeJS.ErrnoException) => e.code === 'EIO' && /no progress/.test(e.message));
  } finally {
    blobReadTiming.stallMs = keep;
  }
});

test('the download zips outputs by watched slice reads: a stalled read is done again, Blob streams are never used', { timeout: 30_000 }, async () => {
  const { zipTo, blobChunks } = await import('../../web/download.js');
  const { unzipSync } = await import('fflate');
  const keep = blobReadTiming.stallMs;
  blobReadTiming.stallMs = 30;
  try {
    // 2.5 chunks and an empty file; every stream() of these Blobs stalls at once
    const big = new Uint8Array(randomBytes(2.5 * (1 << 20)));
    const small = new Uint8Array(randomBytes(1000));
    const files = [
      { name: 'model.safetensors', bytes: big, blob: stallingBlob(big, { arrayBufferStalls: 1, streamStalls: 99 }) },
      { name: 'config.json', bytes: small, blob: stallingBlob(small, { arrayBufferStalls: 1, streamStalls: 99 }) },
      { name: 'empty.txt', bytes: new Uint8Array(0), blob: stallingBlob(new Uint8Array(0), { streamStalls: 99 }) },
    ];
    const sizes: number[] = [];
    for await (const c of blobChunks(stallingBlob(big, { streamStalls: 99 }))) sizes.push(c.length);
    assert.deepEqual(sizes, [1 << 20, 1 << 20, 1 << 19], 'bounded slices');
    const r0 = blobReadRetries.count;
    const parts: Uint8Array[] = [];
    let closed = false;
    await zipTo('out', files.map((f) => ({ name: f.name, blob: f.blob })), { write: async (c) => void parts.push(c.slice()), close: async () => void (closed = true) });
    assert.ok(closed);
    assert.ok(blobReadRetries.count >= r0 + 2, 'the stalled first reads were done again');
    const entries = unzipSync(Buffer.concat(parts));
    assert.deepEqual(Object.keys(entries), ['out/config.json', 'out/empty.txt', 'out/model.safetensors'], 'sorted entries under the folder');
    for (const f of files) assert.ok(Buffer.from(entries[`out/${f.name}`]).equals(Buffer.from(f.bytes)), f.name);
  } finally {
    blobReadTiming.stallMs = keep;
  }
});
