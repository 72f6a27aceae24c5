// Seeded fuzzing of the safetensors and GGUF readers: thousands of mutated files (bit flips,
// byte overwrites, truncations, length-field inflation, inserted/deleted bytes, random bytes,
// JSON number rewrites). Every outcome must be a clean parse (and every tensor then readable) or
// a BitscaleError; never another exception, never a read outside the file, never a hang.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { BitscaleError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { memorySource, type ByteSource } from '../../src/formats/bytes.js';
import { encodeGguf, gv, readGguf } from '../../src/formats/gguf/index.js';
import { encodeSafetensors, parseShardIndex, readSafetensors } from '../../src/formats/safetensors/index.js';
import { BINARY_FILE_MUTATIONS, mutateBytes } from '../fuzz/mutate.js';

const ITERATIONS = 10000;
/** a hang detector, not a speed check: one tiny file must never take this long */
const HANG_MS = 5000;

/** A memory source that records the largest read and refuses reads outside the file. */
function trackedSource(bytes: Uint8Array, stats: { maxRead: number }): ByteSource {
  const inner = memorySource(bytes, 'fuzz');
  return {
    name: 'fuzz',
    size: bytes.length,
    read(offset, length) {
      stats.maxRead = Math.max(stats.maxRead, length);
      assert.ok(offset + length <= bytes.length || length < 0 || offset < 0 || !Number.isSafeInteger(offset + length), 'read beyond the file requested');
      return inner.read(offset, length);
    },
  };
}

async function exercise(
  name: string,
  base: Uint8Array,
  open: (src: ByteSource) => Promise<{ names(): string[]; readTensor(n: string): Promise<unknown> }>,
): Promise<void> {
  const rng = new Rng(name === 'gguf' ? 101 : 202);
  let parsed = 0;
  let rejected = 0;
  const codes = new Map<string, number>();
  for (let i = 0; i < ITERATIONS; i++) {
    const bytes = mutateBytes(rng, base, base.length, BINARY_FILE_MUTATIONS);
    const stats = { maxRead: 0 };
    const t0 = performance.now();
    try {
      const f = await open(trackedSource(bytes, stats));
      for (const n of f.names()) await f.readTensor(n);
      parsed++;
    } catch (e) {
      if (!(e instanceof BitscaleError)) {
        assert.fail(`${name} iteration ${i}: non-BitscaleError ${String((e as Error)?.stack ?? e)}\nbytes: ${Buffer.from(bytes).toString('hex').slice(0, 400)}`);
      }
      rejected++;
      codes.set(e.code, (codes.get(e.code) ?? 0) + 1);
    }
    const ms = performance.now() - t0;
    assert.ok(ms < HANG_MS, `${name} iteration ${i} took ${ms.toFixed(0)} ms`);
    assert.ok(stats.maxRead <= bytes.length, `${name} iteration ${i}: read ${stats.maxRead} bytes of a ${bytes.length}-byte file`);
  }
  if (process.env.FUZZ_VERBOSE) console.log(name, { parsed, rejected, codes: Object.fromEntries(codes) });
  // the mutations must exercise both outcomes, and more than one failure path
  assert.ok(parsed > 50, `${name}: only ${parsed} clean parses`);
  assert.ok(rejected > ITERATIONS / 4, `${name}: only ${rejected} rejections`);
  assert.ok(codes.size >= 6, `${name}: error codes seen ${[...codes.keys()].join(',')}`);
}

test('fuzz: GGUF reader', async () => {
  const base = await encodeGguf(
    [
      ['general.architecture', gv.str('llama')],
      ['general.alignment', gv.u32(32)],
      ['llama.block_count', gv.u32(2)],
      ['f', gv.f32(0.5)],
      ['b', gv.bool(true)],
      ['big', gv.u64(123n)],
      ['tok', gv.arr('string', ['<s>', 'a', 'bc'])],
      ['sc', gv.arr('f32', [0, 1, 2])],
      ['nest', gv.arr('array', [gv.arr('i8', [1, -1]), gv.arr('string', ['z'])])],
    ],
    [
      { name: 'w', type: 'F32', shape: [2, 4], data: new Float32Array(8).fill(1) },
      { name: 'q', type: 'Q4_0', shape: [2, 32], data: new Uint8Array(36).fill(0x11) },
      { name: 'h', type: 'F16', shape: [3], data: new Uint16Array([1, 2, 3]) },
    ],
  );
  await exercise('gguf', base, (src) => readGguf(src).then((f) => ({ names: () => f.tensors.map((t) => t.name), readTensor: (n) => f.readTensor(n) })));
});

test('fuzz: safetensors reader', async () => {
  const base = await encodeSafetensors(
    [
      { name: 'a', dtype: 'F32', shape: [2, 3], data: new Float32Array(6).fill(2) },
      { name: 'b', dtype: 'BF16', shape: [4], data: new Uint16Array(4) },
      { name: 'c', dtype: 'I64', shape: [1], data: new BigInt64Array([5n]) },
      { name: 'd', dtype: 'U8', shape: [5], data: new Uint8Array(5) },
    ],
    { metadata: { format: 'pt' } },
  );
  await exercise('safetensors', base, (src) => readSafetensors(src));
});

test('fuzz: sharded index JSON (random values, random weight_map entries)', () => {
  const rng = new Rng(303);
  const leaf = (): unknown => {
    const k = rng.nextU32() % 8;
    return [null, true, 1.5, -1, '', 'model-00001-of-00002.safetensors', '../x', 'a/b', []][k];
  };
  const value = (d: number): unknown => {
    if (d > 3 || rng.nextU32() % 3 === 0) return leaf();
    if (rng.nextU32() % 2) return Array.from({ length: rng.nextU32() % 3 }, () => value(d + 1));
    return Object.fromEntries(Array.from({ length: rng.nextU32() % 4 }, (_, i) => [['weight_map', 'metadata', `t${i}`, '__proto__'][rng.nextU32() % 4], value(d + 1)]));
  };
  let ok = 0;
  for (let i = 0; i < 3000; i++) {
    const json = rng.nextU32() % 2 ? { weight_map: value(1), metadata: value(1) } : value(0);
    try {
      const idx = parseShardIndex(JSON.parse(JSON.stringify(json ?? null)), 'index.json');
      for (const f of idx.files) assert.ok(!/[\\/]/.test(f) && f !== '..' && f !== '', `unsafe shard name accepted: ${f}`);
      ok++;
    } catch (e) {
      assert.ok(e instanceof BitscaleError, `iteration ${i}: ${String(e)}`);
    }
  }
  assert.ok(ok > 100, `only ${ok} indexes accepted`);
});
