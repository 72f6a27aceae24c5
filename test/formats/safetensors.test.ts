// safetensors: round trips for every dtype, hand-built headers, and every bad-input case with
// its error code and the file/tensor/offset it names.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { DTYPES, type DType } from '../../src/core/dtype.js';
import { BitscaleError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { memorySource, tensorBytes } from '../../src/formats/bytes.js';
import {
  encodeSafetensors,
  openShardedSafetensors,
  parseShardIndex,
  readSafetensors,
  tensorEntry,
  type SafetensorsWriteTensor,
} from '../../src/formats/safetensors/index.js';

const ALL_DTYPES = Object.keys(DTYPES) as DType[];

function randomBytes(rng: Rng, n: number): Uint8Array {
  const b = new Uint8Array(n);
  for (let i = 0; i < n; i++) b[i] = rng.nextU32() & 0xff;
  return b;
}

/** A hand-built file: 8-byte length, the JSON text as given (no padding), then `data`. */
function rawFile(header: string | Uint8Array, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  const h = typeof header === 'string' ? new TextEncoder().encode(header) : header;
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

async function expectCode(bytes: Uint8Array, code: string, ctx: Record<string, unknown> = {}): Promise<BitscaleError> {
  try {
    await readSafetensors(memorySource(bytes, 'bad.safetensors'));
  } catch (e) {
    assert.ok(e instanceof BitscaleError, `expected a BitscaleError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.context.file, 'bad.safetensors');
    for (const [k, v] of Object.entries(ctx)) assert.equal((e.context as Record<string, unknown>)[k], v, `${k} in ${e.message}`);
    return e;
  }
  assert.fail(`expected error ${code}`);
}

test('round trip: every dtype, several shapes, metadata, data read back byte for byte', async () => {
  const rng = new Rng(1);
  const tensors: SafetensorsWriteTensor[] = [];
  for (const [i, dtype] of ALL_DTYPES.entries()) {
    const shape = [1 + (i % 3), 2 + (i % 5), 3];
    const n = shape.reduce((a, b) => a * b, 1);
    let data = randomBytes(rng, n * DTYPES[dtype].bytes);
    if (dtype === 'BOOL') data = data.map((x) => x & 1);
    tensors.push({ name: `t.${dtype.toLowerCase()}`, dtype, shape, data });
  }
  tensors.push({ name: 'scalar', dtype: 'F32', shape: [], data: new Float32Array([3.5]) });
  tensors.push({ name: 'empty', dtype: 'F16', shape: [0, 4], data: new Uint8Array(0) });
  const metadata = { format: 'pt', note: 'héllo ✓' };
  const bytes = await encodeSafetensors(tensors, { metadata });
  const f = await readSafetensors(memorySource(bytes, 'rt.safetensors'));
  assert.deepEqual(f.metadata, metadata);
  assert.equal((8 + f.headerLength) % 8, 0, 'header padded to 8 bytes');
  assert.equal(f.tensors.length, tensors.length);
  for (const t of tensors) {
    const info = f.info(t.name);
    assert.equal(info.dtype, t.dtype);
    assert.deepEqual(info.shape, t.shape);
    assert.equal(info.offset % DTYPES[t.dtype].bytes, 0, `${t.name} aligned to its element size`);
    const got = await f.readBytes(t.name);
    assert.deepEqual(got, new Uint8Array((t.data as ArrayBufferView).buffer, (t.data as ArrayBufferView).byteOffset, (t.data as ArrayBufferView).byteLength));
    const tensor = await f.readTensor(t.name);
    assert.deepEqual(tensorBytes(tensor), got);
    assert.deepEqual(tensor.shape, t.shape);
  }
  // deterministic: same inputs → same bytes
  assert.deepEqual(await encodeSafetensors(tensors, { metadata }), bytes);
});

test('readTensor decodes into the typed storage of the dtype', async () => {
  const f32 = new Float32Array([1, -2.5, 1e-8, Infinity]);
  const i64 = new BigInt64Array([-1n, 2n ** 62n]);
  const bytes = await encodeSafetensors([
    { name: 'a', dtype: 'F32', shape: [2, 2], data: f32 },
    { name: 'b', dtype: 'I64', shape: [2], data: i64 },
  ]);
  const f = await readSafetensors(memorySource(bytes));
  const a = await f.readTensor('a');
  assert.ok(a.data instanceof Float32Array);
  assert.deepEqual([...a.data], [...f32]);
  const b = await f.readTensor('b');
  assert.ok(b.data instanceof BigInt64Array);
  assert.deepEqual([...b.data], [...i64]);
});

test('order: aligned (element size desc, then name) by default, given on request', async () => {
  const ts: SafetensorsWriteTensor[] = [
    { name: 'z8', dtype: 'U8', shape: [3], data: new Uint8Array(3) },
    { name: 'b32', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    { name: 'a32', dtype: 'F32', shape: [1], data: new Float32Array(1) },
    { name: 'c64', dtype: 'F64', shape: [1], data: new Float64Array(1) },
  ];
  const f = await readSafetensors(memorySource(await encodeSafetensors(ts)));
  assert.deepEqual(f.names(), ['c64', 'a32', 'b32', 'z8']);
  const g = await readSafetensors(memorySource(await encodeSafetensors(ts, { order: 'given' })));
  assert.deepEqual(g.names(), ['z8', 'b32', 'a32', 'c64']);
});

test('hand-computed file: header bytes and offsets exactly as the format says', async () => {
  const bytes = await encodeSafetensors([{ name: 'w', dtype: 'F16', shape: [2], data: new Uint16Array([0x3c00, 0xc000]) }], { metadata: { k: 'v' } });
  const json = '{"__metadata__":{"k":"v"},"w":{"dtype":"F16","shape":[2],"data_offsets":[0,4]}}';
  const padded = Math.ceil(json.length / 8) * 8;
  assert.equal(bytes.length, 8 + padded + 4);
  assert.equal(new DataView(bytes.buffer).getBigUint64(0, true), BigInt(padded));
  assert.equal(new TextDecoder().decode(bytes.subarray(8, 8 + padded)), json.padEnd(padded, ' '));
  assert.deepEqual([...bytes.subarray(8 + padded)], [0x00, 0x3c, 0x00, 0xc0]);
  // a file written by hand (no padding, keys in another order) reads too
  const hand = rawFile('{"w":{"shape":[2],"data_offsets":[0,4],"dtype":"F16"}}', new Uint8Array([0, 0x3c, 0, 0xc0]));
  const f = await readSafetensors(memorySource(hand));
  assert.deepEqual([...((await f.readTensor('w')).data as Uint16Array)], [0x3c00, 0xc000]);
});

test('streaming producers are called in write order and checked for length', async () => {
  const calls: string[] = [];
  const mk = (name: string, n: number): SafetensorsWriteTensor => ({
    name,
    dtype: 'F32',
    shape: [n],
    produce: async () => {
      calls.push(name);
      return new Float32Array(n).fill(n);
    },
  });
  const bytes = await encodeSafetensors([mk('b', 2), mk('a', 3)]);
  assert.deepEqual(calls, ['a', 'b']);
  const f = await readSafetensors(memorySource(bytes));
  assert.deepEqual([...((await f.readTensor('a')).data as Float32Array)], [3, 3, 3]);
  await assert.rejects(
    encodeSafetensors([{ name: 'x', dtype: 'F32', shape: [4], produce: () => new Float32Array(3) }]),
    (e: BitscaleError) => e.code === 'shape_mismatch' && e.context.tensor === 'x',
  );
  await assert.rejects(encodeSafetensors([mk('d', 1), mk('d', 1)]), (e: BitscaleError) => e.code === 'duplicate_name');
  await assert.rejects(encodeSafetensors([{ name: 'n', dtype: 'F32', shape: [1] }]), (e: BitscaleError) => e.code === 'missing_tensor');
  const ac = new AbortController();
  ac.abort();
  await assert.rejects(encodeSafetensors([mk('q', 1)], { signal: ac.signal }), (e: BitscaleError) => e.code === 'interrupted');
});

test('tensorEntry builds a write entry from a core Tensor', async () => {
  const t = { dtype: 'I16' as const, shape: [3], data: new Int16Array([-1, 0, 300]) };
  const f = await readSafetensors(memorySource(await encodeSafetensors([tensorEntry('t', t)])));
  assert.deepEqual([...((await f.readTensor('t')).data as Int16Array)], [-1, 0, 300]);
});

test('bad inputs give typed errors naming the file, tensor/field and offset', async () => {
  const good = '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}';
  await expectCode(new Uint8Array(5), 'truncated', { field: 'header_length' });
  // header length larger than the file
  const big = rawFile(good, new Uint8Array(8));
  new DataView(big.buffer).setBigUint64(0, BigInt(big.length), true);
  await expectCode(big, 'truncated', { field: 'header_length', offset: 0 });
  // above the 100 MB cap (checked before anything is allocated)
  new DataView(big.buffer).setBigUint64(0, 2n ** 40n, true);
  await expectCode(big, 'too_large', { field: 'header_length' });
  await expectCode(rawFile(new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d])), 'bad_string', { offset: 8 });
  await expectCode(rawFile('[1,2]'), 'bad_header');
  await expectCode(rawFile('{"a":'), 'bad_header');
  await expectCode(rawFile('{"a":{"dtype":"F33","shape":[2],"data_offsets":[0,8]}}', new Uint8Array(8)), 'dtype_unknown', { tensor: 'a', field: 'dtype' });
  await expectCode(rawFile(good + ' ', new Uint8Array(6)), 'out_of_bounds', { tensor: 'a' });
  await expectCode(rawFile(good, new Uint8Array(12)), 'bad_header', { field: 'data_offsets' });
  await expectCode(rawFile('{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}', new Uint8Array(8)), 'shape_mismatch', { tensor: 'a', offset: 8 + 54 });
  await expectCode(
    rawFile('{"a":{"dtype":"U8","shape":[4],"data_offsets":[0,4]},"b":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}', new Uint8Array(6)),
    'overlap',
    { tensor: 'b' },
  );
  await expectCode(rawFile('{"a":{"dtype":"U8","shape":[4],"data_offsets":[2,6]}}', new Uint8Array(6)), 'bad_header', { tensor: 'a' });
  await expectCode(
    rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', new Uint8Array(1)),
    'duplicate_name',
    { tensor: 'a' },
  );
  await expectCode(rawFile('{"a":{"dtype":"U8","shape":[-1],"data_offsets":[0,1]}}', new Uint8Array(1)), 'bad_header', { field: 'shape' });
  await expectCode(rawFile('{"a":{"dtype":"U8","shape":[1],"data_offsets":[1,0]}}', new Uint8Array(1)), 'bad_header', { field: 'data_offsets' });
  await expectCode(rawFile('{"__metadata__":{"k":1}}'), 'bad_header', { field: '__metadata__.k' });
  const e = await expectCode(rawFile('{"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,2]}}', new Uint8Array(2)), 'shape_mismatch');
  assert.match(e.message, /bad\.safetensors/);
  assert.match(e.message, /'a'/);
  assert.match(e.message, /expected 4 bytes/);
  // a smaller cap can be chosen
  await assert.rejects(readSafetensors(memorySource(rawFile(good, new Uint8Array(8))), { maxHeaderBytes: 16 }), (x: BitscaleError) => x.code === 'too_large');
  const f = await readSafetensors(memorySource(rawFile(good, new Uint8Array(8)), 'ok'));
  await assert.rejects(f.readBytes('b'), (x: BitscaleError) => x.code === 'missing_tensor' && x.context.tensor === 'b');
});

test('sharded checkpoints form one logical view', async () => {
  const s1 = await encodeSafetensors([{ name: 'a', dtype: 'F32', shape: [1], data: new Float32Array([1]) }], { metadata: { format: 'pt' } });
  const s2 = await encodeSafetensors([
    { name: 'b', dtype: 'F32', shape: [1], data: new Float32Array([2]) },
    { name: 'extra', dtype: 'U8', shape: [1], data: new Uint8Array(1) },
  ]);
  const shards: Record<string, Uint8Array> = { 's1.safetensors': s1, 's2.safetensors': s2 };
  const open = async (f: string) => {
    if (!(f in shards)) throw new BitscaleError('missing_file', 'no such shard', { file: f });
    return memorySource(shards[f], f);
  };
  const idx = { metadata: { total_size: 12 }, weight_map: { a: 's1.safetensors', b: 's2.safetensors' } };
  const v = await openShardedSafetensors(parseShardIndex(idx, 'index.json'), 'index.json', open);
  assert.deepEqual(v.names(), ['a', 'b']);
  assert.equal(v.info('b').file, 's2.safetensors');
  assert.deepEqual([...((await v.readTensor('b')).data as Float32Array)], [2]);
  assert.deepEqual(v.metadata, { format: 'pt' });
  assert.deepEqual(v.indexMetadata, { total_size: 12 });
  await assert.rejects(v.readTensor('extra'), (e: BitscaleError) => e.code === 'missing_tensor');

  const missing = { weight_map: { a: 's1.safetensors', c: 's2.safetensors' } };
  await assert.rejects(openShardedSafetensors(parseShardIndex(missing, 'i'), 'i', open), (e: BitscaleError) => e.code === 'missing_tensor' && e.context.tensor === 'c');
  const dup = { weight_map: { a: 's1.safetensors', b: 's1dup.safetensors' } };
  shards['s1dup.safetensors'] = s1;
  await assert.rejects(openShardedSafetensors(parseShardIndex(dup, 'i'), 'i', open), (e: BitscaleError) => e.code === 'duplicate_name' && e.context.tensor === 'a');
  assert.throws(() => parseShardIndex({ weight_map: { a: '../x.safetensors' } }, 'i'), (e: BitscaleError) => e.code === 'bad_header');
  assert.throws(() => parseShardIndex({}, 'i'), (e: BitscaleError) => e.code === 'bad_header' && e.context.field === 'weight_map');
  await assert.rejects(openShardedSafetensors(parseShardIndex({ weight_map: { a: 'nope' } }, 'i'), 'i', open), (e: BitscaleError) => e.code === 'missing_file');
});

// Byte sequences the reference implementation (huggingface/safetensors) asserts in its own test
// suite for its writer; ours must produce the same bytes, and read them back.
const te = new TextEncoder();
function refFile(n: number, json: string, data: number[]): Uint8Array {
  const head = new Uint8Array(8);
  new DataView(head.buffer).setBigUint64(0, BigInt(n), true);
  const pad = n - te.encode(json).length;
  return new Uint8Array([...head, ...te.encode(json + ' '.repeat(pad)), ...data]);
}
const f32le = (xs: number[]) => [...new Uint8Array(new Float32Array(xs).buffer)];

test('byte-identical to the reference writer on its own test vectors', async () => {
  const i32 = (shape: number[], v = new Int32Array(4)) => ({ dtype: 'I32' as const, shape, data: v });
  const cases: [SafetensorsWriteTensor[], Record<string, string> | undefined, Uint8Array][] = [
    [[{ name: 'test', ...i32([2, 2]) }], undefined, refFile(64, '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', new Array(16).fill(0))],
    [
      [{ name: 'test', ...i32([2, 2], new Int32Array([0, 0, 0, 1])) }],
      undefined,
      refFile(64, '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', [...new Array(12).fill(0), 1, 0, 0, 0]),
    ],
    [
      // given in the other order: the writer forces I32 (wider) before F16
      [{ name: 'test2', dtype: 'F16', shape: [2, 2], data: new Uint16Array(4) }, { name: 'test1', ...i32([2, 2]) }],
      undefined,
      refFile(128, '{"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]},"test2":{"dtype":"F16","shape":[2,2],"data_offsets":[16,24]}}', new Array(24).fill(0)),
    ],
    [
      [{ name: 'test1', ...i32([2, 2]) }],
      { framework: 'pt' },
      refFile(96, '{"__metadata__":{"framework":"pt"},"test1":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', new Array(16).fill(0)),
    ],
    [
      [{ name: 'attn.0', dtype: 'F32', shape: [1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) }],
      undefined,
      refFile(64, '{"attn.0":{"dtype":"F32","shape":[1,2,3],"data_offsets":[0,24]}}', f32le([0, 1, 2, 3, 4, 5])),
    ],
    [
      [{ name: 'attn0', dtype: 'F32', shape: [1, 1, 2, 3], data: new Float32Array([0, 1, 2, 3, 4, 5]) }],
      undefined,
      refFile(72, '{"attn0":{"dtype":"F32","shape":[1,1,2,3],"data_offsets":[0,24]}}', f32le([0, 1, 2, 3, 4, 5])),
    ],
    [[], undefined, new Uint8Array([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32])],
    [[], { framework: 'pt' }, refFile(40, '{"__metadata__":{"framework":"pt"}}', [])],
  ];
  for (const [i, [tensors, metadata, expected]] of cases.entries()) {
    const got = await encodeSafetensors(tensors, { metadata });
    assert.deepEqual(got, expected, `case ${i}`);
    const f = await readSafetensors(memorySource(expected));
    assert.deepEqual(f.metadata, metadata ?? {});
    assert.equal(f.tensors.length, tensors.length);
  }
  // an unpadded file from the reference's deserialization test (older writers did not pad)
  const old = refFile(60, '{"test":{"dtype":"I32","shape":[2,2],"data_offsets":[0,16]}}', new Array(16).fill(0));
  const f = await readSafetensors(memorySource(old));
  assert.deepEqual([...((await f.readTensor('test')).data as Int32Array)], [0, 0, 0, 0]);
});

test('reference order: dtype rank descending, then name by UTF-8 bytes', async () => {
  const mk = (name: string, dtype: DType): SafetensorsWriteTensor => ({ name, dtype, shape: [0], data: new Uint8Array(0) });
  const f = await readSafetensors(
    memorySource(await encodeSafetensors([mk('a', 'I32'), mk('b', 'F32'), mk('c', 'U32'), mk('d', 'BF16'), mk('e', 'F16'), mk('\u{1F600}', 'U8'), mk('\uFF21', 'U8')])),
  );
  // zero-size tensors all sit at offset 0, so compare the header's key order instead
  const json = new TextDecoder().decode((await f.source.read(8, f.headerLength)));
  const keys = [...json.matchAll(/"([^"]+)":\{"dtype"/g)].map((m) => m[1]);
  assert.deepEqual(keys, ['b', 'c', 'a', 'd', 'e', '\uFF21', '\u{1F600}']);
});
