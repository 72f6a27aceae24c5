import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { GgmlGrid, GPTQ_GGML_TYPES } from '../../src/algorithms/ggml-grid.js';
import { HOOK_GRID_TYPES, KQuantGrid } from '../../src/algorithms/ggml-hook-grid.js';
import { IQ4_GRID_TYPES, Iq4Grid } from '../../src/algorithms/ggml-iq4-grid.js';
import { gptq, rtnOnGrid } from '../../src/algorithms/gptq.js';
import { gramOf, weightedError } from '../../src/algorithms/stats.js';
import { dequantizeGgml, quantizeGgml } from '../../src/quant/ggml/index.js';

function layer(seed: number, N: number, K: number, T: number) {
  const rng = new Rng(seed);
  const mix = new Float64Array(K).map(() => rng.normal());
  const scale = new Float64Array(K).map(() => Math.exp(rng.normal() * 0.7));
  const x = new Float64Array(T * K);
  for (let t = 0; t < T; t++) {
    const common = rng.normal();
    for (let j = 0; j < K; j++) x[t * K + j] = (rng.normal() + 0.8 * common * mix[j]) * scale[j];
  }
  const w = Float32Array.from({ length: N * K }, () => rng.normal() * 0.03);
  const gram = gramOf(x, T, K);
  const imp = new Float32Array(K);
  for (let j = 0; j < K; j++) imp[j] = gram[j * K + j] / T;
  return { w, gram, h: gram.map((v) => (2 * v) / T), imp };
}

test('RTN on the ggml grid reproduces quantizeGgml byte for byte (no imatrix)', () => {
  const N = 6, K = 128;
  const { w } = layer(1, N, K, 8);
  for (const type of GPTQ_GGML_TYPES) {
    const grid = new GgmlGrid(type, N, K);
    const wq = rtnOnGrid(w, N, K, grid);
    assert.deepEqual(grid.encode(), quantizeGgml(type, w, N, K), type);
    assert.deepEqual(Float32Array.from(wq), dequantizeGgml(type, grid.encode(), N * K), type);
  }
});

test('GPTQ onto ggml blocks: the encoded bytes decode exactly to the weights GPTQ reports', () => {
  const N = 8, K = 256, T = 400;
  const { w, h, imp } = layer(2, N, K, T);
  for (const type of GPTQ_GGML_TYPES) {
    for (const actOrder of [false, true]) {
      for (const im of [undefined, imp]) {
        const grid = new GgmlGrid(type, N, K, im);
        const res = gptq(w, N, K, h, grid, { actOrder, blockSize: 64 });
        const dec = dequantizeGgml(type, grid.encode(), N * K);
        assert.deepEqual(dec, Float32Array.from(res.weights), `${type} actOrder=${actOrder} imatrix=${!!im}`);
        // static groups were forced under act-order: g_idx is the plain block index
        for (let j = 0; j < K; j++) assert.equal(res.gIdx[j], j >> 5);
      }
    }
  }
});

test('GPTQ-optimised Q4_0 and Q4_1 beat ggml RTN on output error', () => {
  const N = 32, K = 256, T = 600;
  const { w, h, gram } = layer(3, N, K, T);
  for (const type of ['Q4_0', 'Q4_1'] as const) {
    const rtn = dequantizeGgml(type, quantizeGgml(type, w, N, K), N * K);
    const res = gptq(w, N, K, h, new GgmlGrid(type, N, K));
    const eR = weightedError(w, rtn, gram, N, K);
    const eG = weightedError(w, res.weights, gram, N, K);
    assert.ok(eG < 0.8 * eR, `${type}: GPTQ ${eG} vs RTN ${eR}`);
  }
});

test('ggml grid rejects rows that are not whole blocks and types it cannot target', () => {
  assert.throws(() => new GgmlGrid('Q4_0', 2, 40), { code: 'bad_option' });
  assert.throws(() => new GgmlGrid('Q4_K' as never, 2, 256), { code: 'unsupported' });
});

test('GPTQ onto K-quants (Q2_K … Q6_K) through the ggml block hooks: bytes decode to exactly the GPTQ weights, beating RTN', () => {
  const N = 8, K = 512, T = 700;
  const { w, h, gram, imp } = layer(6, N, K, T);
  for (const type of HOOK_GRID_TYPES) {
    for (const im of [undefined, imp]) {
      const grid = new KQuantGrid(type, N, K, im);
      const res = gptq(w, N, K, h, grid, { actOrder: !!im });
      const dec = dequantizeGgml(type, grid.encode(), N * K);
      assert.deepEqual(dec, Float32Array.from(res.weights), `${type} imatrix=${!!im}`);
      if (!im) {
        const rtn = dequantizeGgml(type, quantizeGgml(type, w, N, K), N * K);
        const eR = weightedError(w, rtn, gram, N, K);
        const eG = weightedError(w, res.weights, gram, N, K);
        assert.ok(eG < eR, `${type}: GPTQ ${eG} vs RTN ${eR}`);
      }
    }
  }
});

test('GPTQ onto IQ4_NL / IQ4_XS (ggml\'s IQ4 scale search per block, nearest table entry): bytes decode to exactly the GPTQ weights, beating RTN', () => {
  const N = 8, K = 512, T = 700;
  const { w, h, gram, imp } = layer(7, N, K, T);
  for (const type of IQ4_GRID_TYPES) {
    for (const im of [undefined, imp]) {
      const grid = new Iq4Grid(type, N, K, im);
      const res = gptq(w, N, K, h, grid, { actOrder: !!im });
      const dec = dequantizeGgml(type, grid.encode(), N * K);
      assert.deepEqual(dec, Float32Array.from(res.weights), `${type} imatrix=${!!im}`);
      const rtn = dequantizeGgml(type, quantizeGgml(type, w, N, K, im), N * K);
      const eR = weightedError(w, rtn, gram, N, K);
      const eG = weightedError(w, res.weights, gram, N, K);
      assert.ok(eG < 0.9 * eR, `${type} imatrix=${!!im}: GPTQ ${eG} vs RTN ${eR}`);
    }
  }
  assert.throws(() => new Iq4Grid('IQ4_XS', 2, 96), { code: 'bad_option' });
});

test('K-quant grid: block parameters read back from quantizeGgml bytes are the block hook\'s', async () => {
  const { GGML_BLOCK_HOOKS } = await import('../../src/quant/ggml/index.js');
  const N = 5, K = 512;
  const { w, imp } = layer(9, N, K, 600);
  // adversarial rows: all equal, one outlier, a zero row, tiny values
  w.fill(0.01, 0, K);
  w[K + 17] = 3;
  w.fill(0, 2 * K, 3 * K);
  for (let j = 0; j < K; j++) w[3 * K + j] *= 1e-4;
  for (const type of HOOK_GRID_TYPES) {
    const hook = GGML_BLOCK_HOOKS[type] as unknown as { params(x: Float32Array, o: number, qw: Float32Array | undefined, L: Uint8Array): unknown; value(p: unknown, j: number, q: number): number; encode(L: Uint8Array, p: unknown, out: Uint8Array, o: number): void; typeSize: number };
    for (const im of [undefined, imp]) {
      const grid = new KQuantGrid(type, N, K, im);
      const wq = rtnOnGrid(w, N, K, grid);
      assert.deepEqual(Float32Array.from(wq), dequantizeGgml(type, grid.encode(), N * K), `${type} imatrix=${!!im}: values`);
      const L = new Uint8Array(256);
      const codes = Uint8Array.from({ length: 256 }, (_, j) => (j * 7) % 4);
      for (let r = 0; r < N; r++) {
        for (let b = 0; b < K / 256; b++) {
          const ref = hook.params(w.subarray(r * K, r * K + K), b * 256, im, L);
          const got = grid.params[r * (K / 256) + b];
          for (let j = 0; j < 256; j += 5) for (const q of [0, 1, 3]) assert.equal(hook.value(got, j, q), hook.value(ref, j, q), `${type} row ${r} block ${b}: value(${j}, ${q})`);
          const a = new Uint8Array(hook.typeSize), c = new Uint8Array(hook.typeSize);
          hook.encode(codes, ref, a, 0);
          hook.encode(codes, got, c, 0);
          assert.deepEqual(c, a, `${type} row ${r} block ${b}: encode`);
        }
      }
    }
  }
});
