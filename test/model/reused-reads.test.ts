// Float tensors read into arrays reused from one read to the next (src/model/reused-reads.ts): the
// values readF32 gives for F16, BF16 and F32 storage, the same array for the same key and size,
// NaN refused naming the file and tensor, and sources without readInto read as before.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ReusedFloatReads } from '../../src/model/reused-reads.js';
import { nameInLayer } from '../../src/model/names.js';
import { lazyTensor } from '../../src/model/tensor-source.js';
import { encodeBf16Array, encodeF16Array } from '../../src/numerics/float16.js';
import { NumericError } from '../../src/core/errors.js';

function source(name: string, dtype: 'F16' | 'BF16' | 'F32', values: Float32Array, N: number, K: number, withInto = true) {
  const bytes = dtype === 'F32' ? new Uint8Array(values.slice().buffer) : new Uint8Array((dtype === 'F16' ? encodeF16Array(values) : encodeBf16Array(values)).buffer);
  return lazyTensor(name, [N, K], dtype, bytes.length, async () => bytes.slice(), withInto ? async (dst: Uint8Array) => dst.set(bytes) : undefined);
}

test('reused float reads equal readF32, keep one array per key and size, and refuse NaN by name', async () => {
  const N = 7;
  const K = 9;
  const r = new ReusedFloatReads('m.gguf');
  for (const dtype of ['F16', 'BF16', 'F32'] as const) {
    const a = Float32Array.from({ length: N * K }, (_, i) => (i - 30) / 8);
    const b = Float32Array.from({ length: N * K }, (_, i) => (i * 3) % 17 - 5.5);
    const sa = source('model.layers.0.mlp.up_proj.weight', dtype, a, N, K);
    const sb = source('model.layers.1.mlp.up_proj.weight', dtype, b, N, K);
    const got = await r.read(sa, 'mlp.up_proj.weight');
    assert.deepEqual(got, await sa.readF32(), dtype);
    const again = await r.read(sb, 'mlp.up_proj.weight');
    assert.equal(again, got, 'the same array is reused for the next layer');
    assert.deepEqual(again, await sb.readF32());
    r.forget('mlp.up_proj.weight');
    assert.notEqual(await r.read(sa, 'mlp.up_proj.weight'), got, 'a new array after forget');
  }
  // no readInto: read as before (readF32, a fresh array)
  const plain = source('w', 'F16', new Float32Array(N * K).fill(0.5), N, K, false);
  assert.deepEqual(await r.read(plain, 'w'), new Float32Array(N * K).fill(0.5));
  const bad = Float32Array.from({ length: N * K }, (_, i) => (i === 20 ? NaN : 1));
  await assert.rejects(r.read(source('model.layers.2.mlp.up_proj.weight', 'F16', bad, N, K), 'mlp.up_proj.weight'), (e: unknown) => e instanceof NumericError && e.context.file === 'm.gguf' && e.context.tensor === 'model.layers.2.mlp.up_proj.weight');
});

test('the key of a tensor within its layer: the canonical name without its layer prefix', () => {
  assert.equal(nameInLayer('model.layers.12.mlp.up_proj.weight'), 'mlp.up_proj.weight');
  assert.equal(nameInLayer('model.layers.0.input_layernorm.weight'), 'input_layernorm.weight');
  assert.equal(nameInLayer('model.embed_tokens.weight'), 'model.embed_tokens.weight');
  assert.equal(nameInLayer('blk.3.ffn_up.weight'), 'blk.3.ffn_up.weight'); // GGUF names are not canonical
});
