// safetensors edge cases: awkward tensor names (escapes, unicode, integer-like), duplicates that
// only appear after JSON unescaping, deep nesting, leading junk, empty files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTYPES, type DType } from '../../src/core/dtype.js';
import { BitscaleError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { blobSource, memorySource } from '../../src/formats/bytes.js';
import { encodeSafetensors, readSafetensors, topLevelKeys, type SafetensorsWriteTensor } from '../../src/formats/safetensors/index.js';

function rawFile(header: string, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

async function code(bytes: Uint8Array): Promise<string> {
  try {
    await readSafetensors(memorySource(bytes, 'edge.safetensors'));
    return 'ok';
  } catch (e) {
    assert.ok(e instanceof BitscaleError, String(e));
    assert.equal(e.context.file, 'edge.safetensors');
    return e.code;
  }
}

test('awkward names round trip: quotes, backslashes, control characters, unicode, integer-like', async () => {
  const names = ['a"b', 'c\\d', 'e\\"f', 'tab\there', 'nul\u0000x', 'é', '🤗.weight', '10', '2', '__metadata__x', ' '];
  const tensors: SafetensorsWriteTensor[] = names.map((name, i) => ({ name, dtype: 'U8', shape: [1], data: new Uint8Array([i]) }));
  const f = await readSafetensors(memorySource(await encodeSafetensors(tensors, { order: 'given' })));
  assert.deepEqual(f.names(), names);
  for (const [i, n] of names.entries()) assert.deepEqual([...(await f.readBytes(n))], [i]);
});

test('topLevelKeys keeps source order and unescapes keys', () => {
  assert.deepEqual(topLevelKeys('{"b":{"x":[1,{"y":2}]},"a\\u0062":"s,\\"{","2":[]}'), ['b', 'ab', '2']);
  assert.deepEqual(topLevelKeys('{}'), []);
});

test('duplicates that differ only in escaping are caught', async () => {
  const e = '{"ab":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a\\u0062":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}';
  assert.equal(await code(rawFile(e, new Uint8Array(1))), 'duplicate_name');
});

test('structural junk is a bad_header, never a crash', async () => {
  assert.equal(await code(rawFile('[' .repeat(200_000))), 'bad_header');
  assert.equal(await code(rawFile(' {}')), 'bad_header');
  assert.equal(await code(rawFile('\ufeff{}')), 'bad_header');
  assert.equal(await code(rawFile('{"a":1}')), 'bad_header');
  assert.equal(await code(rawFile('{"a":{"dtype":"U8","shape":[1.5],"data_offsets":[0,1]}}', new Uint8Array(1))), 'bad_header');
  assert.equal(await code(rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,9007199254740993]}}', new Uint8Array(1))), 'bad_header');
  assert.equal(await code(rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0]}}', new Uint8Array(1))), 'bad_header');
  assert.equal(await code(rawFile('{"a":{"dtype":null,"shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1))), 'dtype_unknown');
  assert.equal(await code(rawFile('{"__metadata__":["x"]}')), 'bad_header');
  // a shape whose element count overflows 2^53
  assert.equal(await code(rawFile('{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,8]}}', new Uint8Array(8))), 'shape_mismatch');
});

test('empty files: no tensors, no metadata; null __metadata__; zero-size tensors', async () => {
  assert.equal(await code(rawFile('{}')), 'ok');
  assert.equal(await code(rawFile('{"__metadata__":null}')), 'ok');
  const f = await readSafetensors(memorySource(rawFile('{"z":{"dtype":"F32","shape":[0,3],"data_offsets":[0,0]},"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]}}', new Uint8Array([5, 6]))));
  assert.deepEqual((await f.readTensor('z')).shape, [0, 3]);
  assert.deepEqual([...(await f.readBytes('a'))], [5, 6]);
});

test('requireAlignment rejects data not aligned to its element size (unpadded header)', async () => {
  // header of 57 bytes: data starts at 65, so an F32 tensor there is misaligned
  const json = '{"w":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}';
  const bytes = rawFile(json + ' '.repeat(57 - json.length), new Uint8Array(4));
  assert.equal(await code(bytes), 'ok');
  await assert.rejects(
    readSafetensors(memorySource(bytes, 'm.safetensors'), { requireAlignment: true }),
    (e: BitscaleError) => e.code === 'misaligned' && e.context.tensor === 'w' && e.context.offset === 65,
  );
  // still readable without the option: the reader copies into an aligned buffer
  const f = await readSafetensors(memorySource(bytes));
  assert.deepEqual([...((await f.readTensor('w')).data as Float32Array)], [0]);
  const good = await encodeSafetensors([{ name: 'w', dtype: 'F64', shape: [1], data: new Float64Array(1) }, { name: 'b', dtype: 'U8', shape: [3], data: new Uint8Array(3) }]);
  await readSafetensors(memorySource(good), { requireAlignment: true });
});

test('seeded random round trips: names, dtypes, shapes, metadata, both orders', async () => {
  const rng = new Rng(11);
  const dtypes = Object.keys(DTYPES) as DType[];
  const alphabet = ['a', 'b', '.', '_', '0', '9', 'é', '"', '\\', '🤗', ' '];
  for (let it = 0; it < 60; it++) {
    const names = new Set<string>();
    while (names.size < rng.nextU32() % 6) names.add(Array.from({ length: 1 + (rng.nextU32() % 6) }, () => alphabet[rng.nextU32() % alphabet.length]).join(''));
    const tensors: SafetensorsWriteTensor[] = [...names].map((name) => {
      const dtype = dtypes[rng.nextU32() % dtypes.length];
      const shape = Array.from({ length: rng.nextU32() % 4 }, () => rng.nextU32() % 4);
      const n = shape.reduce((a, b) => a * b, 1) * DTYPES[dtype].bytes;
      return { name, dtype, shape, data: Uint8Array.from({ length: n }, () => rng.nextU32() & 0xff) };
    });
    const metadata = rng.nextU32() % 2 ? { k: `v${rng.nextU32()}`, 'ü': '"\\' } : undefined;
    const order = rng.nextU32() % 2 ? 'given' : 'aligned';
    const bytes = await encodeSafetensors(tensors, { metadata, order });
    const f = await readSafetensors(memorySource(bytes));
    assert.deepEqual(f.metadata, metadata ?? {});
    assert.deepEqual(new Set(f.names()), names);
    for (const t of tensors) {
      assert.deepEqual(f.info(t.name).shape, t.shape);
      assert.equal(f.info(t.name).dtype, t.dtype);
      assert.deepEqual(await f.readBytes(t.name), t.data);
    }
  }
});

test('reads through a Blob source (the browser path) fetch only the ranges asked for', async () => {
  const bytes = await encodeSafetensors([{ name: 'w', dtype: 'F32', shape: [2], data: new Float32Array([1.5, -3]) }]);
  const blob = new Blob([bytes as Uint8Array<ArrayBuffer>]);
  const sliced: number[][] = [];
  const spy = { size: blob.size, slice: (a: number, b: number) => (sliced.push([a, b]), blob.slice(a, b)) } as unknown as Blob;
  const f = await readSafetensors(blobSource(spy, 'in-browser.safetensors'));
  assert.deepEqual([...((await f.readTensor('w')).data as Float32Array)], [1.5, -3]);
  assert.deepEqual(sliced, [[0, 8], [8, f.dataStart], [f.dataStart, f.dataStart + 8]]);
  await assert.rejects(blobSource(blob).read(bytes.length - 2, 4), (e: BitscaleError) => e.code === 'truncated' && e.context.file === '<blob>');
});
