// QuantPool (src/quant/node/worker-pool.ts) gives bit-identical results to quantize on one thread, falls
// back to the calling thread for schemes that are not row-separable, and reports NaN positions in
// whole-tensor coordinates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../../src/core/rng.js';
import { NumericError } from '../../../src/core/errors.js';
import { quantize, parseScheme } from '../../../src/quant/index.js';
import { QuantPool, rowSplittable } from '../../../src/quant/node/worker-pool.js';

test('worker-thread quantization equals single-threaded quantization', async () => {
  const pool = new QuantPool(3);
  try {
    const rng = new Rng(8);
    const shape = [37, 256];
    const w = rng.fillNormal(new Float32Array(37 * 256), 0, 0.05);
    for (const s of ['int4-g128', 'int4-g64-asym', 'int8-channel', 'nf4-g64', 'fp8-e4m3', 'mxfp4', 'q4_0', 'q4_k', 'seq2', 'ternary', 'nvfp4', 'kmeans2-g128']) {
      const sc = parseScheme(s);
      const a = quantize(w, shape, sc);
      const b = await pool.quantize(w, shape, sc);
      assert.deepEqual(b, a, s);
    }
    assert.equal(rowSplittable(parseScheme('int4-g128'), shape), true);
    assert.equal(rowSplittable(parseScheme('nvfp4'), shape), false);
    assert.equal(rowSplittable(parseScheme('int8-tensor'), shape), false);
    const bad = w.slice();
    bad[30 * 256 + 5] = NaN;
    await assert.rejects(
      pool.quantize(bad, shape, parseScheme('int4-g128'), { name: 'mlp.down' }),
      (e: unknown) => e instanceof NumericError && e.context.index === 30 * 256 + 5 && e.context.tensor === 'mlp.down',
    );
  } finally {
    await pool.close();
  }
});

test('shared-memory ggml rows: every split equals one thread byte for byte (F32/F16 input, imatrix, concurrent tensors)', async () => {
  const { encodeF16Array, decodeF16Array } = await import('../../../src/numerics/float16.js');
  const { quantizeGgml } = await import('../../../src/quant/ggml/index.js');
  const { ggmlRowBytes } = await import('../../../src/quant/ggml/wasm/rows-job.js');
  const rng = new Rng(12);
  const pool = new QuantPool(2);
  try {
    const cases = [
      { type: 'Q4_K', N: 67, K: 512, im: true },
      { type: 'Q6_K', N: 33, K: 256, im: false },
      { type: 'Q8_0', N: 129, K: 96, im: false },
      { type: 'IQ3_S', N: 9, K: 256, im: true }, // no kernel: the TypeScript codec on the workers
    ] as const;
    const runs = cases.map(async ({ type, N, K, im }) => {
      const w = rng.fillNormal(new Float32Array(N * K), 0, 0.05);
      const imatrix = im ? Float32Array.from({ length: K }, () => rng.next()) : undefined;
      const f16 = encodeF16Array(w);
      const want32 = quantizeGgml(type, w, N, K, imatrix);
      const want16 = quantizeGgml(type, decodeF16Array(f16), N, K, imatrix);
      for (const [input, data, want] of [['F32', w, want32], ['F16', f16, want16]] as const) {
        const src = new SharedArrayBuffer(data.byteLength + 64);
        new Uint8Array(src, 64).set(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
        const dst = new SharedArrayBuffer(N * ggmlRowBytes(type, K) + 8);
        await pool.quantizeGgmlRows({ type, input, src, srcOffset: 64, dst, dstOffset: 8, nRows: N, nPerRow: K, imatrix });
        assert.deepEqual(new Uint8Array(dst, 8), want, `${type} ${input}`);
      }
    });
    await Promise.all(runs);
    const bad = new Float32Array(40 * 256);
    bad[31 * 256 + 3] = Infinity;
    bad[39 * 256] = NaN;
    const src = new SharedArrayBuffer(bad.byteLength);
    new Float32Array(src).set(bad);
    await assert.rejects(
      pool.quantizeGgmlRows({ type: 'Q4_K', input: 'F32', src, srcOffset: 0, dst: new SharedArrayBuffer(40 * 144), dstOffset: 0, nRows: 40, nPerRow: 256 }),
      (e: unknown) => e instanceof NumericError && e.context.index === 31 * 256 + 3,
    );
  } finally {
    await pool.close();
  }
  assert.throws(() => new QuantPool(0), /threads/);
  assert.throws(() => new QuantPool(100000), /threads/);
});
