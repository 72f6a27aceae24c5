// The GPTQ hooks (params → codes → encode, and value) against ggml itself: run block by block,
// they must reproduce quantizeGgml's bytes (all types without an imatrix; the K-quants with one,
// since ggml requantizes K-quant codes from the stored scales), and value() must equal
// dequantizeGgml for every code.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { dequantizeGgml, GGML_BLOCK_HOOKS, type GgmlHookType, quantizeGgml } from '../../src/quant/ggml/index.js';

const K = 512;
const ROWS = 4;

function inputs(): { x: Float32Array; qw: Float32Array } {
  const rng = new Rng(7);
  const x = new Float32Array(ROWS * K);
  for (let r = 0; r < ROWS; r++) {
    const s = 10 ** (r - 2);
    for (let j = 0; j < K; j++) x[r * K + j] = s * rng.normal() * (j % 97 === 0 ? 20 : 1);
  }
  for (let j = 0; j < 32; j++) x[j] = 0; // an all-zero block (and a zero K-quant group)
  const qw = new Float32Array(K);
  for (let j = 0; j < K; j++) qw[j] = 0.1 + rng.next() ** 2;
  return { x, qw };
}

function viaHooks(type: GgmlHookType, x: Float32Array, qw?: Float32Array): Uint8Array {
  const h = GGML_BLOCK_HOOKS[type] as (typeof GGML_BLOCK_HOOKS)['Q4_K'] & (typeof GGML_BLOCK_HOOKS)['Q4_0'];
  const nb = K / h.blockSize;
  const out = new Uint8Array(ROWS * nb * h.typeSize);
  const L = new Uint8Array(h.blockSize);
  for (let r = 0; r < ROWS; r++) {
    const row = x.subarray(r * K, (r + 1) * K);
    for (let b = 0; b < nb; b++) {
      const p = h.params(row, b * h.blockSize, qw, L);
      h.codes(row, b * h.blockSize, p, L);
      h.encode(L, p, out, (r * nb + b) * h.typeSize);
    }
  }
  return out;
}

const { x, qw } = inputs();
for (const type of Object.keys(GGML_BLOCK_HOOKS) as GgmlHookType[]) {
  const kquant = type.endsWith('_K');
  test(`${type}: hooks reproduce quantizeGgml bytes`, () => {
    assert.deepEqual(viaHooks(type, x), quantizeGgml(type, x, ROWS, K));
    if (kquant) assert.deepEqual(viaHooks(type, x, qw), quantizeGgml(type, x, ROWS, K, qw));
  });
  test(`${type}: value() equals the decoder for every value of a block`, () => {
    const h = GGML_BLOCK_HOOKS[type] as (typeof GGML_BLOCK_HOOKS)['Q4_K'] & (typeof GGML_BLOCK_HOOKS)['Q4_0'];
    const row = x.subarray(K, 2 * K);
    const L = new Uint8Array(h.blockSize);
    const p = h.params(row, 0, undefined, L);
    h.codes(row, 0, p, L);
    const bytes = new Uint8Array(h.typeSize);
    h.encode(L, p, bytes, 0);
    const dq = dequantizeGgml(type, bytes, h.blockSize);
    for (let j = 0; j < h.blockSize; j++) assert.equal(h.value(p, j, L[j]), dq[j], `value ${j}`);
  });
}
