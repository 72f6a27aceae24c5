// Cross-check against an independent GGUF implementation, @huggingface/gguf 0.4.6 (dev
// dependency): it parses files our writer produced (metadata types, tensor infos, data offset),
// and our reader parses headers its serializer produced.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { gguf, serializeGgufMetadata } from '@huggingface/gguf';
import { GGML_TYPES, type GgmlType } from '../../src/core/dtype.js';
import { memorySource } from '../../src/formats/bytes.js';
import { GGUF_VALUE_TYPE_IDS, gv, readGguf, type GgufValue } from '../../src/formats/gguf/index.js';
import { writeGgufFile } from '../../src/formats/io/index.js';
import { withTempDir } from '../helpers.js';

const METADATA: [string, GgufValue][] = [
  ['general.architecture', gv.str('llama')],
  ['v.u8', gv.u8(200)],
  ['v.i8', gv.i8(-3)],
  ['v.u16', gv.u16(60000)],
  ['v.i16', gv.i16(-30000)],
  ['v.u32', gv.u32(4000000000)],
  ['v.i32', gv.i32(-2000000000)],
  ['v.f32', gv.f32(Math.fround(0.1))],
  ['v.bool', gv.bool(true)],
  ['v.string', gv.str('ü ✓ 🤗')],
  ['v.u64', gv.u64(2n ** 60n + 3n)],
  ['v.i64', gv.i64(-(2n ** 60n))],
  ['v.f64', gv.f64(-1.25e-300)],
  ['a.string', gv.arr('string', ['<s>', 'x y', ''])],
  ['a.f32', gv.arr('f32', [0, -1.5, 3])],
  ['a.i32', gv.arr('i32', [1, -2])],
  ['a.nested', gv.arr('array', [gv.arr('u8', [1, 2]), gv.arr('u8', [3])])],
];

function plain(v: GgufValue): unknown {
  if (v.type !== 'array') return v.value;
  return v.itemType === 'array' ? v.value.map(plain) : v.value;
}

for (const alignment of [32, 64]) {
  test(`@huggingface/gguf parses our GGUF (alignment ${alignment})`, async () => {
    await withTempDir('bitscale-gguf-ref-', async (dir) => {
      const p = join(dir, 'm.gguf');
      const types: GgmlType[] = ['F32', 'F16', 'BF16', 'Q8_0', 'Q4_0', 'Q4_K', 'Q6_K', 'IQ4_NL', 'TQ2_0', 'I32'];
      const tensors = types.map((type, i) => {
        const { blockSize, typeSize } = GGML_TYPES[type];
        const shape = [2 + i, blockSize * 2];
        return { name: `blk.${i}.${type}`, type, shape, data: new Uint8Array(((shape[0] * shape[1]) / blockSize) * typeSize).fill(i) };
      });
      const layout = await writeGgufFile(p, METADATA, tensors, { alignment });
      const r = await gguf(p, { allowLocalFile: true, typedMetadata: true });
      assert.equal(r.littleEndian, true);
      assert.equal(r.typedMetadata.version.value, 3);
      assert.equal(r.typedMetadata.tensor_count.value, BigInt(tensors.length));
      assert.equal(r.tensorDataOffset, BigInt(layout.dataStart));
      const tm = r.typedMetadata as unknown as Record<string, { value: unknown; type: number; subType?: number }>;
      for (const [k, v] of METADATA) {
        assert.equal(tm[k].type, GGUF_VALUE_TYPE_IDS[v.type], k);
        if (v.type === 'array') assert.equal(tm[k].subType, GGUF_VALUE_TYPE_IDS[v.itemType], k);
        assert.deepEqual(tm[k].value, plain(v), k);
      }
      if (alignment !== 32) assert.deepEqual(tm['general.alignment'], { value: alignment, type: 4 });
      assert.equal(r.tensorInfos.length, tensors.length);
      for (const [i, ti] of r.tensorInfos.entries()) {
        const ours = layout.tensors[i];
        assert.equal(ti.name, ours.name);
        assert.deepEqual(ti.shape, ours.ne.map(BigInt));
        assert.equal(ti.dtype, GGML_TYPES[ours.type].id);
        assert.equal(ti.offset, BigInt(ours.offset));
      }
    });
  });
}

test('our reader parses a header serialized by @huggingface/gguf', async () => {
  const typed: Record<string, unknown> = {
    version: { value: 3, type: 4 },
    tensor_count: { value: 0n, type: 10 },
    kv_count: { value: 5n, type: 10 },
    'general.architecture': { value: 'llama', type: 8 },
    'llama.block_count': { value: 12, type: 4 },
    'x.i64': { value: -7n, type: 11 },
    'x.f64': { value: 2.5, type: 12 },
    'tokenizer.ggml.tokens': { value: ['a', 'b', 'ç'], type: 9, subType: 8 },
  };
  const bytes = serializeGgufMetadata(typed as never, { alignment: 32 });
  const f = await readGguf(memorySource(bytes, 'hf.gguf'));
  assert.equal(f.version, 3);
  assert.deepEqual(f.metadata.get('llama.block_count'), gv.u32(12));
  assert.deepEqual(f.metadata.get('x.i64'), gv.i64(-7n));
  assert.deepEqual(f.metadata.get('x.f64'), gv.f64(2.5));
  assert.deepEqual(f.get('tokenizer.ggml.tokens'), ['a', 'b', 'ç']);
  assert.equal(f.tensors.length, 0);
});
