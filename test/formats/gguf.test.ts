// GGUF: a hand-computed byte sequence, round trips of every metadata type (nested arrays too),
// every ggml type and alignments 32/64, and every bad-input case with its code and location.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GGML_TYPES, type GgmlType } from '../../src/core/dtype.js';
import { BitscaleError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { memorySource } from '../../src/formats/bytes.js';
import { encodeGguf, gv, readGguf, TOKENIZER, type GgufMetadata, type GgufValue, type GgufWriteTensor } from '../../src/formats/gguf/index.js';

// Hand-computed: 1 tensor 'x' F32 ne=[2] = [1, -2], 1 KV 'a' = u32 5, alignment 32.
// header = 4 magic + 4 version + 8 + 8 counts + KV (8+1 key, 4 type, 4 value) + info (8+1 name,
// 4 n_dims, 8 ne0, 4 type, 8 offset) = 74 bytes → data at 96; 8 data bytes padded to 32 → 128.
const u64 = (n: number) => [n, 0, 0, 0, 0, 0, 0, 0];
const HAND = new Uint8Array([
  ...[0x47, 0x47, 0x55, 0x46], ...[3, 0, 0, 0], ...u64(1), ...u64(1),
  ...u64(1), 0x61, ...[4, 0, 0, 0], ...[5, 0, 0, 0],
  ...u64(1), 0x78, ...[1, 0, 0, 0], ...u64(2), ...[0, 0, 0, 0], ...u64(0),
  ...new Array(96 - 74).fill(0),
  ...[0x00, 0x00, 0x80, 0x3f], ...[0x00, 0x00, 0x00, 0xc0], ...new Array(24).fill(0),
]);

test('hand-computed GGUF bytes: the writer produces them and the reader reads them', async () => {
  assert.equal(HAND.length, 128);
  const written = await encodeGguf(new Map([['a', gv.u32(5)]]), [{ name: 'x', type: 'F32', shape: [2], data: new Float32Array([1, -2]) }]);
  assert.deepEqual(written, HAND);
  const f = await readGguf(memorySource(HAND, 'hand.gguf'));
  assert.equal(f.version, 3);
  assert.equal(f.alignment, 32);
  assert.equal(f.dataStart, 96);
  assert.deepEqual(f.metadata.get('a'), { type: 'u32', value: 5 });
  assert.equal(f.get('a'), 5);
  const t = f.info('x');
  assert.deepEqual([t.ne, t.shape, t.offset, t.absoluteOffset, t.byteLength], [[2], [2], 0, 96, 8]);
  const x = await f.readTensor('x');
  assert.ok('data' in x && x.data instanceof Float32Array);
  assert.deepEqual([...x.data], [1, -2]);
});

function allTypesMetadata(rng: Rng): GgufMetadata {
  const f32 = () => Math.fround(rng.next() * 200 - 100);
  return new Map<string, GgufValue>([
    ['general.architecture', gv.str('llama')],
    ['v.u8', gv.u8(255)],
    ['v.i8', gv.i8(-128)],
    ['v.u16', gv.u16(65535)],
    ['v.i16', gv.i16(-32768)],
    ['v.u32', gv.u32(0xffffffff)],
    ['v.i32', gv.i32(-0x80000000)],
    ['v.f32', gv.f32(f32())],
    ['v.f32.nan', gv.f32(NaN)],
    ['v.bool.t', gv.bool(true)],
    ['v.bool.f', gv.bool(false)],
    ['v.string', gv.str('ünïcödé ✓ 你好 🤗')],
    ['v.string.empty', gv.str('')],
    ['v.u64', gv.u64(2n ** 64n - 1n)],
    ['v.i64', gv.i64(-(2n ** 63n))],
    ['v.f64', gv.f64(Math.PI)],
    ['a.u8', gv.arr('u8', [0, 1, 255])],
    ['a.i32', gv.arr('i32', [-1, 0, 7])],
    ['a.f32', gv.arr('f32', Array.from({ length: 17 }, f32))],
    ['a.f64', gv.arr('f64', [1e300, -0])],
    ['a.u64', gv.arr('u64', [0n, 2n ** 53n + 1n])],
    ['a.i64', gv.arr('i64', [-5n])],
    ['a.bool', gv.arr('bool', [true, false, true])],
    ['a.empty', gv.arr('u16', [])],
    [TOKENIZER.tokens, gv.arr('string', ['<s>', '</s>', 'a b', ''])],
    ['a.nested', gv.arr('array', [gv.arr('u32', [1, 2]), gv.arr('string', ['x']), gv.arr('array', [gv.arr('i8', [-1])])])],
  ]);
}

function randomTensor(rng: Rng, name: string, type: GgmlType, rows: number): GgufWriteTensor {
  const { blockSize, typeSize } = GGML_TYPES[type];
  const cols = blockSize * (1 + (rng.nextU32() % 3));
  const bytes = new Uint8Array((rows * cols * typeSize) / blockSize);
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.nextU32() & 0xff;
  return { name, type, shape: rows === 1 ? [cols] : [rows, cols], data: bytes };
}

for (const alignment of [32, 64]) {
  test(`round trip: every metadata type and every ggml type, alignment ${alignment}`, async () => {
    const rng = new Rng(alignment);
    const md = allTypesMetadata(rng);
    const tensors = (Object.keys(GGML_TYPES) as GgmlType[]).map((t, i) => randomTensor(rng, `blk.${i}.${t.toLowerCase()}`, t, 1 + (i % 3)));
    tensors.push({ name: 'three.d', type: 'F16', shape: [2, 3, 4], data: new Uint16Array(24).fill(0x3c00) });
    const bytes = await encodeGguf(md, tensors, { alignment });
    const f = await readGguf(memorySource(bytes, 'rt.gguf'));
    assert.equal(f.alignment, alignment);
    assert.equal(f.dataStart % alignment, 0);
    const expectedMd = new Map(md);
    if (alignment !== 32) expectedMd.set('general.alignment', gv.u32(alignment));
    assert.deepEqual([...f.metadata.keys()], [...expectedMd.keys()], 'key order kept');
    assert.deepEqual(f.metadata, expectedMd);
    assert.deepEqual(f.tensors.map((t) => t.name), tensors.map((t) => t.name));
    // llama.cpp's loader wants each offset to be exactly the padded running size of the tensors before it
    let expectedOffset = 0;
    for (const t of f.tensors) {
      assert.equal(t.offset, expectedOffset, t.name);
      expectedOffset += Math.ceil(t.byteLength / alignment) * alignment;
    }
    assert.equal(bytes.length, f.dataStart + expectedOffset, 'file ends after the last padded tensor');
    for (const t of tensors) {
      const info = f.info(t.name);
      assert.equal(info.type, t.type);
      assert.deepEqual(info.shape, t.shape);
      assert.deepEqual(info.ne, [...t.shape].reverse());
      assert.equal(info.offset % alignment, 0);
      const d = t.data as ArrayBufferView;
      assert.deepEqual(await f.readBytes(t.name), new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
      const r = await f.readTensor(t.name);
      if (GGML_TYPES[t.type].quantized) {
        assert.ok('bytes' in r);
        assert.equal(r.type, t.type);
        assert.deepEqual(r.shape, t.shape);
      } else {
        assert.ok('dtype' in r);
        assert.equal(r.dtype, t.type);
      }
    }
    // re-writing what was read gives the same bytes
    const again = await encodeGguf(
      f.metadata,
      await Promise.all(f.tensors.map(async (t) => ({ name: t.name, type: t.type, shape: t.shape, data: await f.readBytes(t.name) }))),
    );
    assert.deepEqual(again, bytes);
  });
}

test('seeded random round trips (generated metadata shapes and tensor sets)', async () => {
  const rng = new Rng(7);
  const types = Object.keys(GGML_TYPES) as GgmlType[];
  for (let it = 0; it < 40; it++) {
    const md = new Map<string, GgufValue>();
    const nKv = rng.nextU32() % 6;
    for (let k = 0; k < nKv; k++) {
      const pick = rng.nextU32() % 4;
      md.set(
        `k${k}`,
        pick === 0 ? gv.u32(rng.nextU32()) : pick === 1 ? gv.str(`s${rng.nextU32()}`) : pick === 2 ? gv.arr('i16', [rng.nextU32() % 100 - 50]) : gv.arr('array', [gv.arr('bool', [true])]),
      );
    }
    const tensors = Array.from({ length: rng.nextU32() % 4 }, (_, i) => randomTensor(rng, `t${i}`, types[rng.nextU32() % types.length], 1 + (rng.nextU32() % 2)));
    const bytes = await encodeGguf(md, tensors, { alignment: rng.nextU32() % 2 ? 32 : 64 });
    const f = await readGguf(memorySource(bytes));
    assert.deepEqual(
      new Map([...f.metadata].filter(([k]) => k !== 'general.alignment')),
      md,
    );
    for (const t of tensors) assert.deepEqual(await f.readBytes(t.name), t.data);
  }
});

async function expectCode(bytes: Uint8Array, code: string, ctx: Record<string, unknown> = {}): Promise<BitscaleError> {
  try {
    await readGguf(memorySource(bytes, 'bad.gguf'));
  } catch (e) {
    assert.ok(e instanceof BitscaleError, `expected a BitscaleError, got ${String(e)}`);
    assert.equal(e.code, code, e.message);
    assert.equal(e.context.file, 'bad.gguf');
    for (const [k, v] of Object.entries(ctx)) assert.deepEqual((e.context as Record<string, unknown>)[k], v, `${k} in ${e.message}`);
    return e;
  }
  assert.fail(`expected error ${code}`);
}

function patched(base: Uint8Array, at: number, bytes: number[]): Uint8Array {
  const b = base.slice();
  b.set(bytes, at);
  return b;
}

test('bad GGUF inputs give typed errors naming file, field/tensor and offset', async () => {
  await expectCode(patched(HAND, 0, [0x47, 0x47, 0x4d, 0x4c]), 'bad_magic', { offset: 0, found: 'GGML' });
  await expectCode(patched(HAND, 0, [0x00, 0x47, 0xff, 0x4c]), 'bad_magic', { found: '\\x00G\\xffL' });
  await expectCode(patched(HAND, 4, [1, 0, 0, 0]), 'bad_version', { found: 1 });
  await expectCode(patched(HAND, 4, [4, 0, 0, 0]), 'bad_version');
  const be = await expectCode(patched(HAND, 4, [0, 0, 0, 3]), 'bad_version');
  assert.match(be.message, /big-endian/);
  await expectCode(HAND.subarray(0, 20), 'too_large', { field: 'n_tensors' });
  await expectCode(HAND.subarray(0, 60), 'truncated');
  // counts inflated beyond what the file can hold: refused before allocating
  await expectCode(patched(HAND, 8, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]), 'too_large', { field: 'n_tensors', offset: 8 });
  await expectCode(patched(HAND, 16, [0, 0, 0, 0, 1, 0, 0, 0]), 'too_large', { field: 'n_kv' });
  // key length larger than the file
  await expectCode(patched(HAND, 24, [0, 0, 0, 0, 0, 1, 0, 0]), 'too_large', { offset: 24 });
  await expectCode(patched(HAND, 32, [0xc3]), 'bad_string', { offset: 24 });
  await expectCode(patched(HAND, 33, [13]), 'dtype_unknown', { field: 'a', offset: 33 });
  // tensor type id 99
  await expectCode(patched(HAND, 62, [99]), 'dtype_unknown', { tensor: 'x', field: 'type', offset: 62 });
  // Q4_0 needs ne[0] % 32 == 0
  await expectCode(patched(HAND, 62, [2]), 'shape_mismatch', { tensor: 'x', field: 'ne[0]' });
  // offset 4: not aligned
  await expectCode(patched(HAND, 66, [4]), 'misaligned', { tensor: 'x', field: 'offset' });
  // offset 32: ends past the file
  await expectCode(patched(HAND, 66, [64]), 'out_of_bounds', { tensor: 'x' });
  // ne[0] huge
  await expectCode(patched(HAND, 54, [0, 0, 0, 0, 0, 0, 0, 1]), 'too_large', { tensor: undefined });
  // n_dims 5
  await expectCode(patched(HAND, 50, [5]), 'bad_header', { tensor: 'x', field: 'n_dims' });
  // bool byte 2
  const boolFile = patched(HAND, 33, [7]);
  await expectCode(patched(boolFile, 37, [2]), 'bad_header', { field: 'a' });
});

test('duplicate names, overlapping tensors and a bad general.alignment are rejected', async () => {
  const dupKey = await encodeGguf([['a', gv.u8(1)], ['b', gv.u8(2)]], []);
  // rename key 'b' to 'a' (each KV is 8 + 1 + 4 + 1 bytes: the second key's byte is at 24 + 14 + 8)
  await expectCode(patched(dupKey, 24 + 14 + 8, [0x61]), 'duplicate_name', { field: 'a', offset: 38 });
  const two = await encodeGguf([], [
    { name: 'p', type: 'F32', shape: [8], data: new Float32Array(8) },
    { name: 'q', type: 'F32', shape: [8], data: new Float32Array(8) },
  ]);
  // header 24 bytes, then p's info (33 bytes), then q's name, n_dims, ne, type (25 bytes)
  const qOffsetAt = 24 + (8 + 1 + 4 + 8 + 4 + 8) + (8 + 1 + 4 + 8 + 4);
  assert.equal(new DataView(two.buffer).getBigUint64(qOffsetAt, true), 32n);
  await expectCode(patched(two, qOffsetAt, [0]), 'overlap', { tensor: 'q' });
  await expectCode(patched(two, 24 + 33 + 8, [0x70]), 'duplicate_name', { tensor: 'p', offset: 57 });
  for (const al of [gv.u32(48), gv.u64(64), gv.u32(0)]) {
    const bad = await encodeGguf([['general.alignment', al]], [], { alignment: 32 }).catch((e: BitscaleError) => e);
    assert.ok(bad instanceof BitscaleError && bad.code === 'bad_header', 'writer refuses a bad alignment');
  }
  // build a file whose general.alignment is 48 by patching a valid u32 32
  const good = await encodeGguf([['general.alignment', gv.u32(32)]], []);
  const at = 24 + 8 + 'general.alignment'.length + 4;
  await expectCode(patched(good, at, [48]), 'bad_header', { field: 'general.alignment' });
});

test('writer rejects invalid values with the key named', async () => {
  const cases: [string, GgufValue][] = [
    ['u8', gv.u8(256)],
    ['i8', gv.i8(1.5)],
    ['u32', gv.u32(-1)],
    ['u64', gv.u64(-1n)],
    ['i64', { type: 'i64', value: 5 as unknown as bigint }],
    ['s', { type: 'string', value: 5 as unknown as string }],
    ['arr', gv.arr('u16', [70000])],
    ['nested', { type: 'array', itemType: 'array', value: [5 as unknown as never] }],
    ['type', { type: 'u128' as 'u8', value: 1 }],
  ];
  for (const [k, v] of cases) {
    await assert.rejects(encodeGguf([[k, v]], []), (e: BitscaleError) => e.code === 'bad_header' && e.context.field === k, k);
  }
  await assert.rejects(encodeGguf([], [{ name: 'q', type: 'Q4_0', shape: [4, 30], data: new Uint8Array(0) }]), (e: BitscaleError) => e.code === 'shape_mismatch');
  await assert.rejects(encodeGguf([], [{ name: 'q', type: 'Q4_0', shape: [32], data: new Uint8Array(17) }]), (e: BitscaleError) => e.code === 'shape_mismatch' && e.context.tensor === 'q');
  await assert.rejects(encodeGguf([], [{ name: 'q', type: 'F32', shape: [1, 1, 1, 1, 1], data: new Uint8Array(4) }]), (e: BitscaleError) => e.code === 'bad_header');
});

test('writer: a tensor given in pieces is written as the same bytes as given whole; pieces that run past its length, or stop short, are refused naming it', async () => {
  const rng = new Rng(7);
  const q = Uint8Array.from({ length: 4 * 34 * 3 }, () => rng.nextU32() & 0xff); // Q8_0 [3, 128]: 3 rows of 4 blocks
  const norm = new Float32Array([1, 2, 3]);
  const md: Record<string, GgufValue> = { 'general.architecture': gv.str('llama') };
  const whole: GgufWriteTensor[] = [
    { name: 'a', type: 'Q8_0', shape: [3, 128], data: q },
    { name: 'b', type: 'F32', shape: [3], data: norm },
  ];
  const piecesOf = (bytes: Uint8Array, cuts: number[]) => ({
    chunks: (async function* () {
      // each piece from the same reused buffer, as a streaming producer hands them out
      const buf = new Uint8Array(bytes.length);
      let at = 0;
      for (const c of [...cuts, bytes.length]) {
        buf.set(bytes.subarray(at, c));
        yield buf.subarray(0, c - at);
        buf.fill(0xee); // overwritten once the next piece is asked for: the writer must have taken it
        at = c;
      }
    })(),
  });
  const want = await encodeGguf(md, whole);
  const got = await encodeGguf(md, [{ name: 'a', type: 'Q8_0', shape: [3, 128], produce: () => piecesOf(q, [34, 136, 300]) }, whole[1]]);
  assert.deepEqual(got, want);
  const refused = (found: RegExp) => (e: unknown) => e instanceof BitscaleError && e.code === 'shape_mismatch' && e.context.tensor === 'a' && found.test(String(e.context.found));
  const long = new Uint8Array(q.length + 1);
  await assert.rejects(encodeGguf(md, [{ name: 'a', type: 'Q8_0', shape: [3, 128], produce: () => piecesOf(long, [200]) }]), refused(/at least 409 bytes/));
  await assert.rejects(encodeGguf(md, [{ name: 'a', type: 'Q8_0', shape: [3, 128], produce: () => piecesOf(q.subarray(0, 400), [100]) }]), refused(/^400 bytes \(in pieces\)/));
});
