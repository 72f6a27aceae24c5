// Exact grid encoders against ggml's own decoders: for random rows on each grid (fp16 step per
// row, integer levels), dequantizeGgml(encodeGridRows(...)) must equal fround(step·level) for
// every value, with no tolerance. Where ggml's quantizer itself lands on the grid (TQ1_0/TQ2_0 when
// every block holds a ±1, Q4_0 when every block holds a −8) the bytes must be identical; for the
// K-quants, ggml's requantization rule (the block hooks' codes() from the stored scales) must give
// back the codes we wrote.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { f16ToF32, f32ToF16 } from '../../src/numerics/float16.js';
import { dequantizeGgml, encodeGridRows, GGML_BLOCK_HOOKS, GRID_GGML_TYPES, GRID_LEVELS, gridLevels, quantizeGgml, type GridGgmlType } from '../../src/quant/ggml/index.js';
import { GGML_TYPES } from '../../src/core/dtype.js';

const N = 6;
const K = 512;

/** fp16 steps spanning subnormal to large, plus one exactly-zero row scale. */
function steps(rng: Rng): Float32Array {
  const s = new Float32Array(N);
  for (let n = 0; n < N; n++) s[n] = f16ToF32(f32ToF16(10 ** (rng.next() * 8 - 6) * (1 + rng.next())));
  s[1] = f16ToF32(1); // subnormal fp16 (2^-24)
  return s;
}

function randomLevels(rng: Rng, type: GridGgmlType, force?: number): Int8Array {
  const g = GRID_LEVELS[type];
  const L = new Int8Array(N * K);
  for (let i = 0; i < L.length; i++) {
    let l: number;
    do l = g.lo + rng.int(g.hi - g.lo + 1);
    while (g.odd && (l & 1) === 0);
    L[i] = l;
  }
  if (force !== undefined) for (let i = 0; i < L.length; i += GGML_TYPES[type].blockSize) L[i + 5] = force;
  return L;
}

test('grid encoders: ggml dequantization is exactly step·level for every container', () => {
  const rng = new Rng(11);
  for (const type of GRID_GGML_TYPES) {
    const s = steps(rng);
    const L = randomLevels(rng, type);
    const bytes = encodeGridRows(type, s, L, N, K, type);
    assert.equal(bytes.length, ((N * K) / GGML_TYPES[type].blockSize) * GGML_TYPES[type].typeSize);
    const y = dequantizeGgml(type, bytes, N * K);
    for (let n = 0; n < N; n++) {
      for (let k = 0; k < K; k++) {
        const i = n * K + k;
        assert.equal(y[i], Math.fround(s[n] * L[i]), `${type} [${n}, ${k}] level ${L[i]}`);
      }
    }
    assert.deepEqual(gridLevels(y, s, N, K), L, `${type}: levels recovered from the values`);
  }
});

test('grid encoders: byte-identical to ggml where its quantizer reproduces the grid', () => {
  const rng = new Rng(12);
  const cases: [GridGgmlType, number][] = [['TQ2_0', 1], ['TQ1_0', -1], ['Q4_0', -8]];
  for (const [type, force] of cases) {
    const s = steps(rng);
    const L = randomLevels(rng, type, force);
    const x = Float32Array.from(L, (l, i) => s[Math.floor(i / K)] * l);
    assert.deepEqual(encodeGridRows(type, s, L, N, K), quantizeGgml(type, x, N, K), type);
  }
});

test('grid encoders: ggml requantizes the K-quant blocks to the codes written', () => {
  const rng = new Rng(13);
  for (const type of ['Q2_K', 'Q3_K', 'Q4_K'] as const) {
    const s = steps(rng);
    const L = randomLevels(rng, type);
    const bytes = encodeGridRows(type, s, L, N, K);
    const y = dequantizeGgml(type, bytes, N * K);
    const h = GGML_BLOCK_HOOKS[type] as (typeof GGML_BLOCK_HOOKS)['Q2_K'] & (typeof GGML_BLOCK_HOOKS)['Q4_K'];
    const codes = new Uint8Array(256);
    for (let b = 0; b < (N * K) / 256; b++) {
      const n = Math.floor((b * 256) / K);
      const p = type === 'Q4_K' ? { d: s[n], dmin: s[n], sc: new Uint8Array(8).fill(1), mn: new Uint8Array(8).fill(8) } : { d: s[n], dmin: type === 'Q2_K' ? s[n] : 0, sc: new Int16Array(16).fill(type === 'Q2_K' ? 2 : 33), mn: new Int16Array(16).fill(type === 'Q2_K' ? 3 : 0) };
      h.codes(y, b * 256, p as never, codes);
      for (let j = 0; j < 256; j++) {
        const l = L[b * 256 + j];
        const want = type === 'Q2_K' ? (l + 3) >> 1 : type === 'Q3_K' ? l + 4 : l + 8;
        if (s[n] !== 0) assert.equal(codes[j], want, `${type} block ${b} value ${j}`);
      }
    }
  }
});

test('grid encoders: typed errors for levels a container cannot hold, non-fp16 steps, partial blocks', () => {
  const s = new Float32Array(N).fill(0.5);
  const L = new Int8Array(N * K);
  L[7] = 2;
  assert.throws(() => encodeGridRows('TQ2_0', s, L, N, K), (e: Error & { code?: string }) => e.code === 'unsupported' && /index 7|7/.test(e.message));
  L[7] = 0;
  assert.throws(() => encodeGridRows('Q2_K', s, L, N, K), { code: 'unsupported' });
  assert.throws(() => encodeGridRows('Q4_0', Float32Array.of(0.1, 0.5, 0.5, 0.5, 0.5, 0.5), L, N, K), { code: 'mismatch' });
  assert.throws(() => encodeGridRows('Q3_K', s, new Int8Array(N * 96), N, 96), { code: 'shape_mismatch' });
  assert.throws(() => gridLevels(Float32Array.of(0.3), [0.5], 1, 1), { code: 'mismatch' });
});
