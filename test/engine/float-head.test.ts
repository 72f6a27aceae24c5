// The float output head scored in token chunks (llama.ts targetLogProbs), the path of every head
// that is not stored in row parts: (1) several token chunks (the last one short) against
// log-softmax computed in float64 in JS from the same weights; (2) the chunks are chained: each
// chunk's head matmul waits for the previous chunk's result, so onnxruntime (which runs nodes in
// readiness order) cannot compute every chunk's logits first and hold them all at once.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { GraphBuilder, type Graph } from '../../src/engine/ir.js';
import { chainDepths } from './fixtures.js';
import { targetLogProbs } from '../../src/engine/llama.js';
import { EngineSession } from '../../src/engine/session.js';

/** float32 logits summed in another order than the reference: well below this per token */
const LOGPROB_ATOL = 2e-5;

const B = 2, T = 7, E = 16, V = 24;
/** 2 tokens of both sequences per chunk: 4 chunks, the last of 1 token */
const CHUNK_FLOATS = B * 2 * V;

function build(rng: Rng): { g: Graph; x: Float32Array; W: Float32Array } {
  const x = Float32Array.from({ length: B * T * E }, () => rng.normal());
  const W = Float32Array.from({ length: V * E }, () => 2 * rng.normal()); // [V, E]
  const wT = new Float32Array(E * V); // [E, V]
  for (let v = 0; v < V; v++) for (let k = 0; k < E; k++) wT[k * V + v] = W[v * E + k];
  const b = new GraphBuilder('float-head');
  const xv = b.input('x', 'F32', [B, T, E]);
  const c = b.constant({ dtype: 'F32', shape: [E, V], data: wT });
  b.output('lp', targetLogProbs(b, xv, (h) => b.matmul(h, c), b.input('targets', 'I64', [B, T]), V, CHUNK_FLOATS));
  return { g: b.build(), x, W };
}

test('float head in token chunks: per-token log-probs = float64 log-softmax', async () => {
  const rng = new Rng(11);
  const { g, x, W } = build(rng);
  const tg = Array.from({ length: B * T }, (_, i) => (i < 2 ? [0, V - 1][i] : rng.int(V)));
  const s = await EngineSession.fromGraph(g);
  const r = await s.run({ x: { dtype: 'F32', shape: [B, T, E], data: x }, targets: { dtype: 'I64', shape: [B, T], data: BigInt64Array.from(tg, BigInt) } });
  await s.release();
  const lp = r.lp.data as Float64Array;
  for (let i = 0; i < B * T; i++) {
    const l = Array.from({ length: V }, (_, v) => {
      let a = 0;
      for (let k = 0; k < E; k++) a += x[i * E + k] * W[v * E + k];
      return a;
    });
    const m = Math.max(...l);
    const want = l[tg[i]] - m - Math.log(l.reduce((s2, a) => s2 + Math.exp(a - m), 0));
    assert.ok(Math.abs(lp[i] - want) < LOGPROB_ATOL, `row ${i} target ${tg[i]}: ${lp[i]} vs ${want}`);
  }
});

test('float head chunks are chained: the k-th chunk\'s head matmul depends on the k − 1 before it', () => {
  const { g } = build(new Rng(12));
  assert.deepEqual(chainDepths(g, 'MatMul'), [0, 1, 2, 3]);
});
