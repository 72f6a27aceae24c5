// The MatMulNBits layout checked by onnxruntime itself (the independent reference): a graph with a
// com.microsoft MatMulNBits node fed our packed B / scales / zero points must give x · dequantize(q)ᵀ.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { GraphBuilder, makeTensor } from '../../src/engine/ir.js';
import { EngineSession } from '../../src/engine/session.js';
import { quantize, dequantize, parseScheme } from '../../src/quant/index.js';
import type { IntQuantized } from '../../src/quant/index.js';
import { toMatMulNBits } from '../../src/quant/pack.js';

/** fp32 GEMM of K = 64 terms of size ~0.05·1: accumulation-order differences only */
const ORT_GEMM_ATOL = 1e-5;

for (const s of ['int4-g32', 'int4-g16-asym', 'int2-g32-asym', 'int8-g64', 'int8-g32-asym']) {
  test(`onnxruntime MatMulNBits with our ${s} packing = x · dequantize(q)ᵀ`, async () => {
    const rng = new Rng(s.length);
    const N = 8;
    const K = 64;
    const M = 3;
    const w = rng.fillNormal(new Float32Array(N * K), 0, 0.05);
    const q = quantize(w, [N, K], parseScheme(s)) as IntQuantized;
    const m = toMatMulNBits(q);
    const kb = K / m.blockSize;
    const b = new GraphBuilder('nbits');
    const x = b.input('x', 'F32', [M, K]);
    const B = b.constant({ dtype: 'U8', shape: [N, kb, (m.blockSize * m.bits) / 8], data: m.B });
    const sc = b.constant(makeTensor('F32', [N * kb], m.scales));
    const zp = m.zeroPoints ? b.constant({ dtype: 'U8', shape: [m.zeroPoints.length], data: m.zeroPoints }) : null;
    b.output('y', b.matmulNBits(x, B, sc, zp, { K, N, bits: m.bits, blockSize: m.blockSize }));
    const sess = await EngineSession.fromGraph(b.build(), { threads: 1 });
    const xv = rng.fillNormal(new Float32Array(M * K));
    const y = (await sess.run({ x: makeTensor('F32', [M, K], xv) })).y.data as Float32Array;
    await sess.release();
    const d = dequantize(q);
    for (let i = 0; i < M; i++) {
      for (let n = 0; n < N; n++) {
        let want = 0;
        for (let k = 0; k < K; k++) want += xv[i * K + k] * d[n * K + k];
        assert.ok(Math.abs(y[i * N + n] - want) <= ORT_GEMM_ATOL, `${s} y[${i},${n}] ort ${y[i * N + n]} vs ${want}`);
      }
    }
  });
}
