// GGUF metadata arrays: the whole-array paths of the reader and writer (strings decoded and
// encoded joined by NULs, numbers through typed arrays; src/formats/gguf/reader.ts, writer.ts)
// against a slow item-by-item encoder written here from the format's description, with the
// fallbacks (a NUL inside an item, invalid UTF-8, a bad bool, out-of-range ints) raising the
// errors the item-by-item paths raise; and a header parse resumed after the first read ran out.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BitscaleError } from '../../src/core/errors.js';
import { memorySource, type ByteSource } from '../../src/formats/bytes.js';
import { encodeGguf, gv, readGguf, setGgufWholeArrayReads, type GgufValue } from '../../src/formats/gguf/index.js';
import { Rng } from '../../src/core/rng.js';

const TYPE_IDS = { u8: 0, i8: 1, u16: 2, i16: 3, u32: 4, i32: 5, f32: 6, bool: 7, string: 8, array: 9, u64: 10, i64: 11, f64: 12 } as const;
type ScalarT = Exclude<keyof typeof TYPE_IDS, 'string' | 'array'>;

/** One key/value's bytes, item by item (reference: u64 counts, u32 type ids, little-endian). */
function refKv(key: string, v: { itemType: ScalarT | 'string'; items: unknown[] }): Uint8Array {
  const parts: number[] = [];
  const le = (n: number | bigint, bytes: number): void => {
    let x = BigInt.asUintN(bytes * 8, BigInt(n));
    for (let i = 0; i < bytes; i++, x >>= 8n) parts.push(Number(x & 0xffn));
  };
  const str = (s: string): void => {
    const b = new TextEncoder().encode(s);
    le(b.length, 8);
    parts.push(...b);
  };
  str(key);
  le(TYPE_IDS.array, 4);
  le(TYPE_IDS[v.itemType], 4);
  le(v.items.length, 8);
  for (const x of v.items) {
    const dv = new DataView(new ArrayBuffer(8));
    switch (v.itemType) {
      case 'string': str(x as string); break;
      case 'u8': case 'i8': le(x as number, 1); break;
      case 'u16': case 'i16': le(x as number, 2); break;
      case 'u32': case 'i32': le(x as number, 4); break;
      case 'u64': case 'i64': le(x as bigint, 8); break;
      case 'bool': le(x ? 1 : 0, 1); break;
      case 'f32': dv.setFloat32(0, x as number, true); parts.push(...new Uint8Array(dv.buffer, 0, 4)); break;
      case 'f64': dv.setFloat64(0, x as number, true); parts.push(...new Uint8Array(dv.buffer, 0, 8)); break;
    }
  }
  return Uint8Array.from(parts);
}

const ARRAYS: { itemType: ScalarT | 'string'; items: unknown[] }[] = [
  // multi-byte (2, 3 and 4 bytes), an empty item, a BOM kept as text, a long item, a NUL inside one (the fallback)
  { itemType: 'string', items: ['a', '', 'ñ', '▁t1000', 'Ġhello', '🤗x', '\ufeffbom', 'y'.repeat(300), ''] },
  { itemType: 'string', items: ['before', 'nul\0inside', 'after'] },
  { itemType: 'string', items: [] },
  { itemType: 'u8', items: [0, 1, 255] },
  { itemType: 'i8', items: [-128, 0, 127] },
  { itemType: 'u16', items: [0, 65535] },
  { itemType: 'i16', items: [-32768, 32767] },
  { itemType: 'u32', items: [0, 0xffffffff, 7] },
  { itemType: 'i32', items: [-0x80000000, 0x7fffffff, -1] },
  { itemType: 'f32', items: [0.1, -0, Infinity, -Infinity, NaN, 3.4028234663852886e38, 1e-45, Math.fround(-1 / 7)] },
  { itemType: 'f64', items: [0.1, -0, NaN, Number.MAX_VALUE, 5e-324] },
  { itemType: 'u64', items: [0n, 2n ** 64n - 1n] },
  { itemType: 'i64', items: [-(2n ** 63n), 2n ** 63n - 1n] },
  { itemType: 'bool', items: [true, false, true] },
];

const arrayValue = (a: (typeof ARRAYS)[number]): GgufValue => gv.arr(a.itemType as 'u8', a.items as number[]);

test('metadata arrays: the writer gives the item-by-item bytes, the reader gives the items back', async () => {
  for (const a of ARRAYS) {
    const b = await encodeGguf([['k', arrayValue(a)]], []);
    const ref = refKv('k', a);
    assert.deepEqual(b.subarray(24, 24 + ref.length), ref, `${a.itemType} [${a.items.length}]`);
    // read from the bytes as written, and from a Node Buffer view at an odd offset into a larger
    // allocation (readFileSync's kind: its slice() is a view): the same items, the caller's bytes untouched
    const inBuffer = Buffer.concat([Buffer.from([7, 7, 7]), b, Buffer.from([9])]).subarray(3, 3 + b.length);
    const before = Buffer.from(inBuffer);
    for (const src of [b, inBuffer]) {
      const f = await readGguf(memorySource(src));
      const back = f.get('k') as unknown[];
      assert.equal(back.length, a.items.length);
      back.forEach((x, i) => {
        const want = a.itemType === 'f32' ? Math.fround(a.items[i] as number) : a.items[i];
        assert.ok(Object.is(x, want), `${a.itemType}[${i}]: ${String(x)} vs ${String(want)}`);
      });
    }
    assert.ok(inBuffer.equals(before), `${a.itemType}: the source bytes are not written`);
  }
});

/** Byte offset in `b` of item `i` of the string array under key `k` (its length prefix). */
function stringItemOffset(b: Uint8Array, items: string[], i: number): number {
  const keyLen = 8 + 1; // the one-letter key
  let off = 24 + keyLen + 4 + 4 + 8;
  for (let k = 0; k < i; k++) off += 8 + new TextEncoder().encode(items[k]).length;
  return off;
}

test('invalid UTF-8 in an array item names the item and its offset; a bad bool names its index', async () => {
  const items = ['ok', 'fine', 'xYz', 'tail'];
  const b = await encodeGguf([['k', gv.arr('string', items)]], []);
  const at = stringItemOffset(b, items, 2);
  b[at + 8 + 1] = 0xff; // 'Y' → a byte no UTF-8 string holds
  await assert.rejects(readGguf(memorySource(b, 'bad.gguf')), (e: BitscaleError) => e.code === 'bad_string' && e.context.field === 'k[2]' && e.context.offset === at && e.context.file === 'bad.gguf');

  const c = await encodeGguf([['k', gv.arr('bool', [true, false, true])]], []);
  const boolAt = 24 + 9 + 4 + 4 + 8 + 1;
  c[boolAt] = 2;
  await assert.rejects(readGguf(memorySource(c)), (e: BitscaleError) => e.code === 'bad_header' && e.context.field === 'k[1]' && e.context.offset === boolAt && e.context.found === 2);
});

test('the writer refuses out-of-range and non-number items as before (the typed path falls back)', async () => {
  await assert.rejects(encodeGguf([['k', gv.arr('i8', [1, 2, 200])]], []), (e: BitscaleError) => e.code === 'bad_header' && e.context.field === 'k' && e.context.found === 200);
  await assert.rejects(encodeGguf([['k', gv.arr('u32', [1, 1.5])]], []), (e: BitscaleError) => e.code === 'bad_header' && e.context.found === 1.5);
  await assert.rejects(encodeGguf([['k', gv.arr('f32', [1, '2' as unknown as number])]], []), (e: BitscaleError) => e.code === 'bad_header' && e.context.field === 'k');
});

test('a header past the first read is resumed where the read ran out: inside an array, inside the tensor infos', async () => {
  const FIRST = 4 << 20;
  const tensors = Array.from({ length: 3000 }, (_, i) => ({ name: `blk.${i}.w`, type: 'F32' as const, shape: [8], data: new Float32Array(8).fill(i) }));
  for (const [label, fill] of [['array', FIRST + 50_000], ['infos', FIRST - 40_000]] as const) {
    // one long string array of about `fill` bytes, then (for 'infos') the 3000 tensor infos straddle 4 MiB
    const n = Math.floor(fill / 24);
    const tokens = Array.from({ length: n }, (_, i) => `t${String(i).padStart(15, '0')}`);
    const b = await encodeGguf([['tokens', gv.arr('string', tokens)], ['after', gv.u32(7)]], tensors);
    const reads: number[] = [];
    const inner = memorySource(b);
    const src: ByteSource = { name: 'big.gguf', size: b.length, read: (o, l) => (reads.push(l), inner.read(o, l)) };
    const f = await readGguf(src);
    assert.equal(reads.length, 2, `${label}: one read of 4 MiB, one to the end of the header`);
    assert.equal(reads[0], FIRST);
    assert.deepEqual(f.get('tokens'), tokens, label);
    assert.equal(f.get('after'), 7);
    assert.deepEqual(f.tensors.map((t) => t.name), tensors.map((t) => t.name));
    const last = await f.readTensor('blk.2999.w');
    assert.ok('data' in last && (last.data as Float32Array)[0] === 2999);

    // a name given twice is still caught when the second one comes after the resume
    const dup = b.slice();
    const name = new TextEncoder().encode('blk.2999.w');
    const other = new TextEncoder().encode('blk.2998.w');
    const at = Buffer.from(dup).indexOf(Buffer.from(name));
    dup.set(other, at);
    await assert.rejects(readGguf(memorySource(dup)), (e: BitscaleError) => e.code === 'duplicate_name' && e.context.tensor === 'blk.2998.w');
  }
});

/** What a read gives: the metadata and tensor infos, or the error's code, field and offset. */
async function outcome(bytes: Uint8Array): Promise<unknown> {
  try {
    const f = await readGguf(memorySource(bytes, 'm.gguf'));
    return { metadata: [...f.metadata], tensors: f.tensors.map((t) => [t.name, t.type, t.shape, t.absoluteOffset]) };
  } catch (e) {
    if (!(e instanceof BitscaleError)) throw e;
    return { code: e.code, field: e.context.field, offset: e.context.offset, tensor: e.context.tensor };
  }
}

test('seeded mutations of a header: the whole-array reads give what item-by-item reads give, values or errors', async () => {
  const rng = new Rng(7);
  const words = Array.from({ length: 400 }, (_, i) => ['▁', 'Ġ', '', 'ä', '🤗'][i % 5] + 'w' + i.toString(36));
  const base = await encodeGguf(
    [
      ['tokens', gv.arr('string', words)],
      ['scores', gv.arr('f32', words.map((_, i) => -i / 3))],
      ['types', gv.arr('i32', words.map((_, i) => i % 6))],
      ['flags', gv.arr('bool', words.map((_, i) => i % 3 === 0))],
      ['wide', gv.arr('u64', [1n, 2n ** 40n])],
      ['merges', gv.arr('string', words.slice(0, 200).map((w, i) => `${w} ${words[i + 1]}`))],
    ],
    [{ name: 'w', type: 'F32', shape: [4], data: new Float32Array(4) }],
  );
  let differing = 0;
  let errors = 0;
  for (let i = 0; i < 400; i++) {
    const b = base.slice();
    // flips in the header, sometimes a length's high bytes, sometimes a cut
    for (let k = 0, n = 1 + (rng.nextU32() % 4); k < n; k++) b[rng.nextU32() % (b.length - 64)] = rng.nextU32() & 0xff;
    const input = rng.nextU32() % 5 === 0 ? b.subarray(0, rng.nextU32() % b.length) : b;
    setGgufWholeArrayReads(false);
    let slow: unknown;
    try {
      slow = await outcome(input);
    } finally {
      setGgufWholeArrayReads(true);
    }
    const fast = await outcome(input);
    if ((fast as { code?: string }).code) errors++;
    try {
      assert.deepEqual(fast, slow);
    } catch (e) {
      differing++;
      throw Object.assign(e as Error, { message: `mutation ${i}: ${(e as Error).message}` });
    }
  }
  assert.equal(differing, 0);
  assert.ok(errors > 50 && errors < 390, `the mutations exercise both outcomes (${errors} errors of 400)`);
});
