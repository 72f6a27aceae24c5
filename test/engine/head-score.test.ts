// The output head scored in row parts (head-score.ts), which the native engine uses for a large head:
// (1) the graph alone, with float parts of uneven size, several token chunks and targets on every
//     part boundary, against log-softmax computed in float64 in JS from the same weights;
// (2) the native engine on a generated 256-wide Llama whose tied head is Q4_K (4-bit, one part
//     before) and Q6_K (8-bit), split into vocab parts: per-token log-probs against the dequantized
//     engine's float64 log-softmax, and the path report naming the parts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Rng } from '../../src/core/rng.js';
import { partedTargetLogProbs } from '../../src/engine/head-score.js';
import { GraphBuilder } from '../../src/engine/ir.js';
import { LlamaEngine } from '../../src/engine/model.js';
import { EngineSession } from '../../src/engine/session.js';
import { loadModel } from '../../src/model/load.js';
import { withTempDir } from '../helpers.js';
import { randomTokens, randomWeights, tinyConfig } from './fixtures.js';
import { writeTypedGguf } from './native-fixtures.js';

/** float32 logits summed in another order than the reference: well below this per token */
const LOGPROB_ATOL = 2e-5;
/** native vs dequantized engine (kernel vs MatMul accumulation order), relative to |log p| */
const LOGPROB_RTOL = 2e-6;

function logSoftmaxAt(logits: Float32Array, o: number, V: number, t: number): number {
  let m = -Infinity;
  for (let v = 0; v < V; v++) m = Math.max(m, logits[o + v]);
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - m);
  return logits[o + t] - m - Math.log(s);
}

test('parted head scoring (uneven parts, several token chunks, boundary targets) = float64 log-softmax', async () => {
  const B = 2;
  const T = 7;
  const E = 16;
  const rows = [5, 8, 8, 3]; // V = 24
  const V = rows.reduce((a, r) => a + r, 0);
  const rng = new Rng(5);
  const x = Float32Array.from({ length: B * T * E }, () => rng.normal());
  const W = Float32Array.from({ length: V * E }, () => 2 * rng.normal()); // [V, E]
  // targets on the first and last row of every part, then random
  const edges = [0, 4, 5, 12, 13, 20, 21, 23];
  const tg = Array.from({ length: B * T }, (_, i) => (i < edges.length ? edges[i] : rng.int(V)));
  const b = new GraphBuilder('parted');
  const xv = b.input('x', 'F32', [B, T, E]);
  let v0 = 0;
  const parts = rows.map((r) => {
    const wT = new Float32Array(E * r); // [E, r]
    for (let n = 0; n < r; n++) for (let k = 0; k < E; k++) wT[k * r + n] = W[(v0 + n) * E + k];
    v0 += r;
    const c = b.constant({ dtype: 'F32', shape: [E, r], data: wT });
    return { rows: r, apply: (h: typeof xv) => b.matmul(h, c) };
  });
  // chunk bound of 2 tokens per part of 8 rows (B = 2): 4 token chunks, the last of 1
  b.output('lp', partedTargetLogProbs(b, xv, parts, b.input('targets', 'I64', [B, T]), B * 2 * 8));
  const s = await EngineSession.fromGraph(b.build());
  const r = await s.run({ x: { dtype: 'F32', shape: [B, T, E], data: x }, targets: { dtype: 'I64', shape: [B, T], data: BigInt64Array.from(tg, BigInt) } });
  await s.release();
  const lp = r.lp.data as Float64Array;
  const logits = new Float32Array(B * T * V);
  for (let i = 0; i < B * T; i++) {
    for (let v = 0; v < V; v++) {
      let a = 0;
      for (let k = 0; k < E; k++) a += x[i * E + k] * W[v * E + k];
      logits[i * V + v] = a;
    }
  }
  for (let i = 0; i < B * T; i++) {
    const want = logSoftmaxAt(logits, i * V, V, tg[i]);
    assert.ok(Math.abs(lp[i] - want) < LOGPROB_ATOL, `row ${i} target ${tg[i]}: ${lp[i]} vs ${want}`);
  }
});

for (const type of ['Q4_K', 'Q6_K'] as const) {
  test(`native engine, tied ${type} head in vocab parts: per-token log-probs = dequantized engine's`, { timeout: 60_000 }, async () => {
    const c = tinyConfig({ vocabSize: 300, hiddenSize: 256, intermediateSize: 256, nHeads: 4, nKvHeads: 2, headDim: 64, ropeLayout: 'half', tiedEmbeddings: true });
    await withTempDir('bitscale-head-parts-', async (dir) => {
      const path = join(dir, `${type}.gguf`);
      await writeTypedGguf(randomWeights(c, 23), path, type, true);
      const m = await loadModel(path);
      const ids = randomTokens(49, c.vocabSize, 29);
      const seq = [1, ...ids.slice(0, 47)];
      const targets = ids.slice(0, 48);
      const ref = await LlamaEngine.create(m, { native: false });
      const logits = await ref.forward(seq);
      await ref.close();
      // parts of 64 rows (64·256 floats): 300 = 4 × 64 + 44
      const e = await LlamaEngine.create(m, { native: { maxUnpackedFloats: 64 * 256 } });
      const head = e.host.weightPaths!.find((p) => p.name === 'model.embed_tokens.weight')!;
      assert.match(head.detail, /5 row parts/);
      const lp = await e.logProbs([seq], [targets]);
      await e.close();
      await m.close();
      // random weights make log-probs of −150: float32 logits carry ~1e-6 relative rounding
      for (let t = 0; t < seq.length; t++) {
        const want = logSoftmaxAt(logits, t * c.vocabSize, c.vocabSize, targets[t]);
        assert.ok(Math.abs(lp[t] - want) < LOGPROB_RTOL * Math.max(1, Math.abs(want)), `${type} token ${t}: ${lp[t]} vs ${want}`);
      }
    });
  });
}
