// RTN on the int and code-book column grids through the WebAssembly kernel (quant/rtn-kernel.ts,
// rows in order) against the TypeScript column loop (grid.quantizeColumn), which is the reference:
// the same codes and the same float64 values, exactly. Bits 2–8, symmetric and asymmetric, both
// rounding modes, restricted range, F16/BF16/exact scales, groups (a ragged last one), per channel,
// zero rows (scale 0), ties, outliers; NF4 and a custom book.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rtnOnGrid } from '../../src/algorithms/gptq.js';
import { CodebookGrid, IntGrid, type ColumnGrid } from '../../src/algorithms/grid.js';
import { setGgmlKernelsEnabled } from '../../src/quant/ggml/index.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

/** [N, K] weights: Gaussian-ish, a zero row, an outlier, values on half steps (ties). */
function weights(n: number, k: number, seed: number): Float32Array {
  const r = rng(seed);
  const w = Float32Array.from({ length: n * k }, () => (r() + r() + r() - 1.5) * 0.05);
  w.fill(0, 2 * k, 3 * k);
  w[5 * k + 3] = 3;
  for (let j = 0; j < k; j += 3) w[7 * k + j] = (j % 17) * 0.125 - 1; // exact multiples: ties after scaling
  return w;
}

function both(make: () => ColumnGrid & { codes: ArrayLike<number> }, w: Float32Array, n: number, k: number, what: string): void {
  setGgmlKernelsEnabled(false);
  let ref: Float64Array, refGrid;
  try {
    refGrid = make();
    ref = rtnOnGrid(w, n, k, refGrid);
  } finally {
    setGgmlKernelsEnabled(true);
  }
  // the kernel path is the one taken with the kernels on
  assert.ok((make() as unknown as { rtnRows(w: Float64Array, out: Float64Array): boolean }).rtnRows(Float64Array.from(w), new Float64Array(n * k)), `${what}: kernel ran`);
  const g = make();
  const got = rtnOnGrid(w, n, k, g);
  const bad = got.findIndex((v, i) => !Object.is(v, ref[i]));
  assert.equal(bad, -1, `${what}: value ${bad}: ${got[bad]} vs ${ref[bad]}`);
  assert.deepEqual(Array.from(g.codes), Array.from(refGrid.codes), `${what}: codes`);
}

test('int grid RTN: the row-order kernel gives the column loop\'s codes and values', () => {
  const n = 40, k = 200; // groups of 64 leave a ragged last group of 8
  const w = weights(n, k, 1);
  for (const bits of [2, 3, 4, 8]) {
    for (const symmetric of [true, false]) {
      for (const groupSize of [64, 0]) {
        for (const rounding of ['half_even', 'half_away'] as const) {
          for (const scaleDtype of ['F16', 'BF16', null] as const) {
            const restricted = symmetric && bits === 4 && groupSize === 64;
            both(() => new IntGrid(n, k, { bits, symmetric, groupSize, rounding, scaleDtype, restricted }), w, n, k, `int${bits} sym=${symmetric} g=${groupSize} ${rounding} ${scaleDtype} restricted=${restricted}`);
          }
        }
      }
    }
  }
});

test('code-book grid RTN (NF4, a custom book): the row-order kernel gives the column loop\'s codes and values', () => {
  const n = 33, k = 160;
  const w = weights(n, k, 2);
  for (const groupSize of [64, 32, 0]) {
    for (const scaleDtype of ['F16', null] as const) {
      both(() => new CodebookGrid(n, k, groupSize, undefined, scaleDtype), w, n, k, `nf4 g=${groupSize} ${scaleDtype}`);
    }
  }
  // an even number of levels with exact midpoints: ties go to the even index
  both(() => new CodebookGrid(n, k, 32, [-1, -0.5, -0.25, 0, 0.25, 0.5, 0.75, 1]), w, n, k, 'custom book');
});
