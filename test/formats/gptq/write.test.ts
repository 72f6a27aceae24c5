// The GPTQ tensors the writers store for a quantized weight (quant's unsigned codes through
// gptqLinearTensors, as pipeline/quantize/write-packed.ts and the QAT export call it) decode back to
// exactly dequantize(q): codes and zero points unpacked here, g_idx and the f16 scale layout checked.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../../src/core/rng.js';
import { unpackGptqWeight, unpackGptqZeros } from '../../../src/formats/gptq/pack.js';
import { gptqLinearTensors, gptqPackable, gptqQuantizationConfig } from '../../../src/formats/gptq/write.js';
import { encodeF16Array } from '../../../src/numerics/float16.js';
import { toUnsignedCodes } from '../../../src/quant/pack.js';
import { quantize, dequantize, parseScheme } from '../../../src/quant/index.js';
import type { IntQuantized } from '../../../src/quant/index.js';

test('gptqLinearTensors of a quantized weight decode to exactly dequantize(q) (sym and asym, 2/3/4/8 bits)', () => {
  const rng = new Rng(12);
  const N = 32;
  const K = 128;
  const w = rng.fillNormal(new Float32Array(N * K), 0, 0.05);
  for (const s of ['int4-g32', 'int4-g32-asym', 'int3-g64-asym', 'int2-g32', 'int8-g128-asym', 'int4-channel']) {
    const q = quantize(w, [N, K], parseScheme(s)) as IntQuantized;
    const want = dequantize(q);
    const bits = q.scheme.bits;
    const nG = q.scales.length / N;
    const G = K / nG;
    assert.ok(gptqPackable(N, K, bits), s);
    const u = toUnsignedCodes(q);
    const [qw, qz, sc, gi] = gptqLinearTensors({ name: 'l.weight', N, K, bits, groupSize: G, codes: u.codes, zeros: u.zeros, scales: q.scales });
    assert.deepEqual([qw.name, qz.name, sc.name, gi.name], ['l.qweight', 'l.qzeros', 'l.scales', 'l.g_idx']);
    assert.deepEqual([qw.shape, qz.shape, sc.shape, gi.shape], [[(K * bits) / 32, N], [nG, (N * bits) / 32], [nG, N], [K]]);
    const codes = unpackGptqWeight(qw.data as Int32Array, N, K, bits);
    const zeros = unpackGptqZeros(qz.data as Int32Array, N, nG, bits);
    const gIdx = gi.data as Int32Array;
    const got = new Float32Array(N * K);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) got[n * K + k] = q.scales[n * nG + gIdx[k]] * (codes[n * K + k] - zeros[n * nG + gIdx[k]]);
    assert.deepEqual(got, want, `gptq ${s}`);
    // scales are stored f16 and transposed to [nG, N]
    const t = new Float32Array(nG * N);
    for (let n = 0; n < N; n++) for (let g = 0; g < nG; g++) t[g * N + n] = q.scales[n * nG + g];
    assert.deepEqual(sc.data, encodeF16Array(t), `scales ${s}`);
  }
});

test('gptqQuantizationConfig: the keys transformers reads, damp_percent only for GPTQ runs', () => {
  assert.deepEqual(gptqQuantizationConfig({ bits: 4, groupSize: 128, descAct: true, sym: false, dampPercent: 0.01 }), {
    quant_method: 'gptq', bits: 4, group_size: 128, desc_act: true, sym: false, static_groups: false, true_sequential: false, damp_percent: 0.01, checkpoint_format: 'gptq',
  });
  assert.ok(!('damp_percent' in gptqQuantizationConfig({ bits: 2, groupSize: -1, descAct: false, sym: true })));
});
