// The GPTQ reader on hand-built packed tensors: grouped scales with an act-order g_idx, zero points
// in both checkpoint formats (v1 stores zero − 1, v2 the zero itself), and typed errors for a bad
// g_idx, a wrong dtype and a wrong shape. Values are checked against scale·(code − zero) computed
// here from the unpacked inputs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Rng } from '../../../src/core/rng.js';
import { openSafetensorsFile, writeSafetensorsFile } from '../../../src/formats/io/index.js';
import { gptqConfigOf, readGptqLinear } from '../../../src/formats/gptq/read.js';
import { packedTensorSource } from '../../../src/model/packed-source.js';
import type { SafetensorsView } from '../../../src/formats/safetensors/sharded.js';
import type { GptqConfig } from '../../../src/formats/gptq/read.js';
import { decodeF16Array, encodeF16Array } from '../../../src/numerics/float16.js';
import { packBits32 } from '../../../src/numerics/bitstream.js';
import { packGptqWeight, packGptqZeros } from '../../../src/formats/gptq/pack.js';

import { withTempDir } from '../../helpers.js';

/** The reader as loadModel uses it: a lazy tensor over the checked parts. */
const gptqTensorSource = (st: SafetensorsView, name: string, shape: number[], q: GptqConfig) => packedTensorSource(name, shape, readGptqLinear(st, name, shape, q));

const N = 32;
const K = 64;
const G = 16;
const nG = K / G;

test('GPTQ reader: grouped, act-order g_idx, v1 and v2 zero points, typed errors', async () => {
  await withTempDir('bitscale-gptqr-', async (dir) => {
    for (const bits of [2, 3, 4, 8]) {
      const rng = new Rng(bits);
      const max = (1 << bits) - 1;
      const codes = Uint8Array.from({ length: N * K }, () => rng.int(max + 1));
      const zeros = Uint8Array.from({ length: N * nG }, () => 1 + rng.int(max)); // 1..max (v1 stores zero − 1 ≥ 0)
      const scalesF16 = encodeF16Array(Float32Array.from({ length: nG * N }, () => 0.01 + rng.next()));
      const scales = decodeF16Array(scalesF16);
      const gIdx = Int32Array.from({ length: K }, (_, k) => (k * 7) % nG); // act-order: groups not contiguous
      const want = new Float32Array(N * K);
      for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) want[n * K + k] = scales[gIdx[k] * N + n] * (codes[n * K + k] - zeros[n * nG + gIdx[k]]);
      // v2 zero points: the same bit stream without the −1
      const v2Zeros = new Int32Array(nG * ((N * bits) / 32));
      for (let g = 0; g < nG; g++) {
        const words = packBits32(Array.from({ length: N }, (_, n) => zeros[n * nG + g]), bits);
        v2Zeros.set(Int32Array.from(words, (w) => w | 0), g * ((N * bits) / 32));
      }
      for (const v2 of [false, true]) {
        const file = join(dir, `w${bits}${v2 ? 'v2' : ''}.safetensors`);
        await writeSafetensorsFile(file, [
          { name: 'l.qweight', dtype: 'I32', shape: [(K * bits) / 32, N], data: packGptqWeight(codes, N, K, bits) },
          { name: 'l.qzeros', dtype: 'I32', shape: [nG, (N * bits) / 32], data: v2 ? v2Zeros : packGptqZeros(zeros, N, nG, bits) },
          { name: 'l.scales', dtype: 'F16', shape: [nG, N], data: scalesF16 },
          { name: 'l.g_idx', dtype: 'I32', shape: [K], data: gIdx },
          { name: 'bad.qweight', dtype: 'I32', shape: [(K * bits) / 32, N], data: packGptqWeight(codes, N, K, bits) },
          { name: 'bad.qzeros', dtype: 'I32', shape: [nG, (N * bits) / 32], data: packGptqZeros(zeros, N, nG, bits) },
          { name: 'bad.scales', dtype: 'I32', shape: [nG, N], data: new Int32Array(nG * N) },
          { name: 'oob.qweight', dtype: 'I32', shape: [(K * bits) / 32, N], data: packGptqWeight(codes, N, K, bits) },
          { name: 'oob.qzeros', dtype: 'I32', shape: [nG, (N * bits) / 32], data: packGptqZeros(zeros, N, nG, bits) },
          { name: 'oob.scales', dtype: 'F16', shape: [nG, N], data: scalesF16 },
          { name: 'oob.g_idx', dtype: 'I32', shape: [K], data: gIdx.map((g, k) => (k === 9 ? nG : g)) },
        ]);
        const q = gptqConfigOf({ quantization_config: { quant_method: 'gptq', bits, group_size: G, checkpoint_format: v2 ? 'gptq_v2' : 'gptq' } }, 'config.json')!;
        const st = await openSafetensorsFile(file);
        try {
          const src = gptqTensorSource(st, 'l.weight', [N, K], q);
          assert.equal(src.packing, `GPTQ int${bits}-g${G}`);
          const got = await src.readF32();
          for (let i = 0; i < got.length; i++) if (got[i] !== want[i]) assert.fail(`${bits}-bit ${v2 ? 'v2' : 'v1'} [${i}]: ${got[i]} vs ${want[i]}`);
          assert.throws(() => gptqTensorSource(st, 'bad.weight', [N, K], q), (e: Error & { code?: string }) => e.code === 'mismatch' && e.message.includes('bad.scales'));
          assert.throws(() => gptqTensorSource(st, 'l.weight', [N, 2 * K], q), (e: Error & { code?: string }) => e.code === 'shape_mismatch' && e.message.includes('l.qweight'));
          assert.throws(() => gptqTensorSource(st, 'missing.weight', [N, K], q), { code: 'missing_tensor' });
          await assert.rejects(gptqTensorSource(st, 'oob.weight', [N, K], q).readF32(), (e: Error & { code?: string }) => e.code === 'out_of_bounds' && e.message.includes('oob.g_idx'));
        } finally {
          await st.close();
        }
      }
    }
    assert.equal(gptqConfigOf({ quantization_config: { quant_method: 'awq', bits: 4 } }, 'c'), null);
    assert.throws(() => gptqConfigOf({ quantization_config: { quant_method: 'gptq', bits: 5 } }, 'c'), { code: 'bad_config' });
    assert.throws(() => gptqConfigOf({ quantization_config: { quant_method: 'gptq', bits: 4, checkpoint_format: 'marlin' } }, 'c'), { code: 'unsupported' });
  });
});
