// QuantPool (src/pipeline/workers.ts) gives bit-identical results to quantize on one thread, falls
// back to the calling thread for schemes that are not row-separable, and reports NaN positions in
// whole-tensor coordinates.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { NumericError } from '../../src/core/errors.js';
import { quantize, parseScheme } from '../../src/quant/index.js';
import { QuantPool, rowSplittable } from '../../src/pipeline/workers.js';

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
