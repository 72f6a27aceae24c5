import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  importance, readImatrix, readImatrixGguf, readImatrixLegacy, writeImatrixGguf, writeImatrixLegacy, type Imatrix,
} from '../../src/formats/imatrix/index.js';

function sample(): Imatrix {
  return {
    entries: new Map([
      ['blk.0.attn_q.weight', { sums: Float32Array.from([4, 8, 12, 16]), counts: [4] }],
      // a two-expert tensor: [M = 2, K = 3]
      ['blk.0.ffn_up_exps.weight', { sums: Float32Array.from([2, 4, 6, 30, 60, 90]), counts: [2, 30] }],
    ]),
    chunkCount: 2,
    chunkSize: 4,
    datasets: ['calib.txt'],
  };
}

test('legacy layout written by hand is read back: sums = values, counts = [ncall]', () => {
  const enc = new TextEncoder();
  const name = enc.encode('output.weight');
  const ds = enc.encode('wiki.train.raw');
  const parts: number[] = [];
  const i32 = (v: number) => parts.push(...new Uint8Array(Int32Array.from([v]).buffer));
  const f32 = (v: number) => parts.push(...new Uint8Array(Float32Array.from([v]).buffer));
  i32(1);
  i32(name.length);
  parts.push(...name);
  i32(10); // ncall
  i32(2); // nval
  f32(5);
  f32(20);
  i32(10); // last chunk
  i32(ds.length);
  parts.push(...ds);
  const im = readImatrixLegacy(Uint8Array.from(parts));
  assert.deepEqual([...im.entries.keys()], ['output.weight']);
  const e = im.entries.get('output.weight')!;
  assert.deepEqual(Array.from(importance(e)), [0.5, 2]);
  assert.equal(im.chunkCount, 10);
  assert.deepEqual(im.datasets, ['wiki.train.raw']);
  // trailer is optional
  const short = Uint8Array.from(parts.slice(0, 4 + 4 + name.length + 8 + 8));
  assert.equal(readImatrixLegacy(short).chunkCount, 0);
});

test('legacy round trip keeps importance (E[x²]) per matrix, ncall = ceil(max count / chunk size)', () => {
  const im = sample();
  const bytes = writeImatrixLegacy(im);
  const back = readImatrixLegacy(bytes);
  // ncall for attn_q: ceil(4/4) = 1 → values = mean·1
  assert.deepEqual(back.entries.get('blk.0.attn_q.weight')!.counts, [1]);
  assert.deepEqual(Array.from(importance(back.entries.get('blk.0.attn_q.weight')!)), [1, 2, 3, 4]);
  // experts collapse to one count in the legacy format, but the per-column means survive
  const ex = back.entries.get('blk.0.ffn_up_exps.weight')!;
  assert.deepEqual(ex.counts, [8]);
  assert.deepEqual(Array.from(importance(ex)), [1, 2, 3, 1, 2, 3]);
  assert.equal(back.chunkCount, 2);
  assert.deepEqual(back.datasets, ['calib.txt']);
});

test('GGUF imatrix round trip is exact, and readImatrix picks the format from the magic', async () => {
  const im = sample();
  const bytes = await writeImatrixGguf(im);
  const back = await readImatrix(bytes);
  assert.equal(back.chunkCount, 2);
  assert.equal(back.chunkSize, 4);
  assert.deepEqual(back.datasets, ['calib.txt']);
  for (const [k, e] of im.entries) {
    assert.deepEqual(back.entries.get(k)!.sums, e.sums);
    assert.deepEqual(back.entries.get(k)!.counts, e.counts);
  }
  // GGUF → legacy → GGUF keeps the importance values
  const viaLegacy = await readImatrix(writeImatrixLegacy(back));
  const again = await readImatrixGguf(await writeImatrixGguf(viaLegacy));
  assert.deepEqual(importance(again.entries.get('blk.0.attn_q.weight')!), importance(im.entries.get('blk.0.attn_q.weight')!));
});

test('corrupt legacy files fail with a typed error naming the field and offset', () => {
  const good = writeImatrixLegacy(sample());
  assert.throws(() => readImatrixLegacy(good.subarray(0, 60), 'x.dat'), (e: any) => e.code === 'truncated' && e.context.file === 'x.dat');
  const bad = good.slice();
  new DataView(bad.buffer).setInt32(0, 1 << 30, true);
  assert.throws(() => readImatrixLegacy(bad), (e: any) => e.code === 'bad_header' && e.context.field === 'n_entries');
  const neg = good.slice();
  new DataView(neg.buffer).setInt32(4, -5, true);
  assert.throws(() => readImatrixLegacy(neg), (e: any) => e.code === 'bad_string' && e.context.offset === 4);
});
