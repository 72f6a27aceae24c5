import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { hqq } from '../../src/algorithms/hqq.js';
import { IntGrid } from '../../src/algorithms/grid.js';
import { rtnOnGrid } from '../../src/algorithms/gptq.js';

/** Heavy-tailed weights (Student-t with 3 degrees of freedom), as LLM weight rows often are. */
function heavyTailed(seed: number, n: number): Float64Array {
  const r = new Rng(seed);
  return Float64Array.from({ length: n }, () => {
    const z = r.normal();
    let chi = 0;
    for (let i = 0; i < 3; i++) chi += r.normal() ** 2;
    return (0.02 * z) / Math.sqrt(chi / 3);
  });
}

const meanAbs = (a: Float64Array, b: Float64Array) => a.reduce((s, v, i) => s + Math.abs(v - b[i]), 0) / a.length;

test('HQQ lowers mean |W − Ŵ| against min-max RTN at 3, 4 and 8 bits (g64; at 2 bits on this data they tie)', () => {
  const N = 32, K = 256;
  const w = heavyTailed(3, N * K);
  for (const bits of [3, 4, 8]) {
    const h = hqq(w, N, K, { bits, groupSize: 64 });
    const rtn = rtnOnGrid(w, N, K, new IntGrid(N, K, { bits, symmetric: false, groupSize: 64 }));
    const eH = meanAbs(w, h.weights);
    const eR = meanAbs(w, rtn);
    assert.ok(eH < eR, `${bits} bits: HQQ ${eH} vs RTN ${eR}`);
    // Ŵ = step·(q − z) exactly, codes in range
    for (let r = 0; r < N; r++) {
      for (let j = 0; j < K; j++) {
        const g = r * 4 + (j >> 6);
        assert.equal(h.weights[r * K + j], (h.codes[r * K + j] - h.zeros[g]) * h.steps[g]);
        assert.ok(h.codes[r * K + j] <= 2 ** bits - 1);
      }
    }
  }
  assert.throws(() => hqq(w, N, K, { bits: 9 }), { code: 'bad_option' });
});
