// GGUF edge cases: version 2, minimal files, metadata given as an object, zero-element tensors,
// deep array nesting, headers larger than the first read, big vocabularies.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BitscaleError } from '../../src/core/errors.js';
import { memorySource, type ByteSource } from '../../src/formats/bytes.js';
import { encodeGguf, GGUF_MAX_ARRAY_DEPTH, gv, readGguf, TOKENIZER, type GgufArray } from '../../src/formats/gguf/index.js';

test('version 2 files read (same layout as v3)', async () => {
  const b = await encodeGguf({ k: gv.i32(-1) }, [{ name: 't', type: 'I8', shape: [3], data: new Int8Array([-1, 0, 1]) }], { version: 2 });
  const f = await readGguf(memorySource(b));
  assert.equal(f.version, 2);
  assert.equal(f.get('k'), -1);
  const t = await f.readTensor('t');
  assert.ok('dtype' in t && t.dtype === 'I8');
  assert.deepEqual([...(t.data as Int8Array)], [-1, 0, 1]);
});

test('a minimal file (no KV, no tensors, no padding) reads', async () => {
  const b = new Uint8Array(24);
  b.set([0x47, 0x47, 0x55, 0x46, 3]);
  const f = await readGguf(memorySource(b));
  assert.equal(f.tensors.length, 0);
  assert.equal(f.metadata.size, 0);
});

test('zero-element tensors and 4-D tensors', async () => {
  const b = await encodeGguf([], [
    { name: 'e', type: 'F32', shape: [0, 4], data: new Uint8Array(0) },
    { name: 'q', type: 'Q8_0', shape: [1, 2, 3, 32], data: new Uint8Array(6 * 34).fill(9) },
  ]);
  const f = await readGguf(memorySource(b));
  assert.equal(f.info('e').byteLength, 0);
  assert.deepEqual(f.info('q').ne, [32, 3, 2, 1]);
  const q = await f.readTensor('q');
  assert.ok('bytes' in q);
  assert.deepEqual(q.shape, [1, 2, 3, 32]);
  assert.equal(q.bytes.length, 204);
});

test('array nesting deeper than the bound is rejected with a typed error', async () => {
  let a: GgufArray = gv.arr('u8', [1]);
  for (let i = 0; i < GGUF_MAX_ARRAY_DEPTH; i++) a = gv.arr('array', [a]);
  const b = await encodeGguf([['deep', a]], []);
  await assert.rejects(readGguf(memorySource(b, 'deep.gguf')), (e: BitscaleError) => e.code === 'bad_header' && e.context.field?.startsWith('deep') === true);
  // one level less is fine
  const ok = await encodeGguf([['deep', (a as { value: GgufArray[] }).value[0]]], []);
  assert.deepEqual((await readGguf(memorySource(ok))).metadata.get('deep'), (a as { value: GgufArray[] }).value[0]);
});

test('a header larger than the first read (big vocabulary) parses, reading only what it needs', async () => {
  const n = 120_000;
  const tokens = Array.from({ length: n }, (_, i) => `tok_${i}_${'x'.repeat(i % 7)}`);
  const scores = Array.from({ length: n }, (_, i) => Math.fround(-i / 7));
  const b = await encodeGguf(
    [
      [TOKENIZER.tokens, gv.arr('string', tokens)],
      [TOKENIZER.scores, gv.arr('f32', scores)],
      [TOKENIZER.tokenType, gv.arr('i32', new Array(n).fill(1))],
    ],
    [{ name: 'w', type: 'F16', shape: [1 << 20], data: new Uint16Array(1 << 20) }],
  );
  assert.ok(b.length > 3 << 20);
  const reads: [number, number][] = [];
  const inner = memorySource(b);
  const src: ByteSource = { name: 'vocab.gguf', size: b.length, read: (o, l) => (reads.push([o, l]), inner.read(o, l)) };
  const f = await readGguf(src);
  assert.deepEqual(f.get(TOKENIZER.tokens), tokens);
  assert.deepEqual(f.get(TOKENIZER.scores), scores);
  // the header is ~2.3 MB; the tensor data (2 MiB) is never needed to parse it
  assert.ok(reads.every(([o, l]) => o === 0 && l <= f.dataStart + (1 << 20)), JSON.stringify(reads));
});

test('plain values through get(); absent keys are undefined', async () => {
  const f = await readGguf(memorySource(await encodeGguf({ a: gv.u64(7n), b: gv.arr('array', [gv.arr('bool', [true])]) }, [])));
  assert.equal(f.get('a'), 7n);
  assert.deepEqual(f.get('b'), [[true]]);
  assert.equal(f.get('nope'), undefined);
  await assert.rejects(f.readTensor('nope'), (e: BitscaleError) => e.code === 'missing_tensor');
});

test('strings UTF-8 cannot carry exactly (lone surrogates) are refused by the writer', async () => {
  await assert.rejects(encodeGguf([['k', gv.str('a\ud800b')]], []), (e: BitscaleError) => e.code === 'bad_string' && e.context.field === 'k');
  await assert.rejects(encodeGguf([['k', gv.arr('string', ['ok', '\udc00'])]], []), (e: BitscaleError) => e.code === 'bad_string');
  await assert.rejects(encodeGguf([], [{ name: 'x\ud800', type: 'F32', shape: [1], data: new Float32Array(1) }]), (e: BitscaleError) => e.code === 'bad_string');
  // a proper surrogate pair (an emoji) is fine
  const f = await readGguf(memorySource(await encodeGguf([['k', gv.str('🤗')]], [])));
  assert.equal(f.get('k'), '🤗');
});
