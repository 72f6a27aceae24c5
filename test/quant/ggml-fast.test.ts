// TypeScript fast paths (src/quant/ggml/fast.ts, used when the WebAssembly kernels are off) against the plain reference quantizers: identical bytes on
// seeded random rows that stress the rounding (exact ties, zero and constant blocks, subnormals,
// huge values, a signed max appearing twice), and the same NaN/Inf error with the same index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { NumericError } from '../../src/core/errors.js';
import { quantizeGgml, quantizeGgmlReference, setGgmlKernelsEnabled } from '../../src/quant/ggml/index.js';

// these fast paths are TypeScript; the WebAssembly kernels (tested in ggml-wasm.test.ts) would
// otherwise serve quantizeGgml
setGgmlKernelsEnabled(false);

const K = 256;
const ROWS = 64;

function stressRows(seed: number): Float32Array {
  const rng = new Rng(seed);
  const x = new Float32Array(ROWS * K);
  for (let b = 0; b < x.length / 32; b++) {
    const o = b * 32;
    const kind = rng.int(8);
    const scale = 10 ** (rng.int(16) - 10);
    for (let j = 0; j < 32; j++) {
      let v: number;
      switch (kind) {
        case 0: v = 0; break; // all-zero block
        case 1: v = 0.125; break; // constant
        case 2: v = (rng.int(17) - 8) / 8; break; // codes land exactly on .5 ties
        case 3: v = (rng.int(255) - 127) / 64; break; // Q8_0 ties at id = 64
        case 4: v = rng.normal() * 1e-40; break; // subnormal float32
        case 5: v = rng.normal() * 3e4; break;
        default: v = rng.normal() * scale;
      }
      x[o + j] = v;
    }
    if (kind === 6) x[o + rng.int(32)] = -x[o + rng.int(32)]; // ±max twice
  }
  return x;
}

for (const type of ['Q8_0', 'Q4_0'] as const) {
  test(`${type}: fast path equals the reference on stress rows (property, 20 seeds)`, () => {
    for (let seed = 1; seed <= 20; seed++) {
      const x = stressRows(seed);
      assert.deepEqual(quantizeGgml(type, x, ROWS, K), quantizeGgmlReference(type, x, ROWS, K), `seed ${seed}`);
    }
  });
  test(`${type}: fast path rejects NaN/Inf at the same index as the reference`, () => {
    for (const bad of [NaN, Infinity, -Infinity]) {
      const x = stressRows(3);
      x[777] = bad;
      x[900] = NaN;
      for (const f of [quantizeGgml, quantizeGgmlReference]) {
        assert.throws(() => f(type, x, ROWS, K), (e: unknown) => e instanceof NumericError && e.context.index === 777);
      }
    }
  });
}
