// Window protocols worked out by hand, perplexity/KLD on a model whose distribution is known in
// closed form, and the sampler's determinism and top-k / top-p semantics.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Rng } from '../../src/core/rng.js';
import { compareModels, makeWindows, meanCi, perplexity, type LogitsModel } from '../../src/eval/perplexity.js';
import { sampleToken } from '../../src/eval/generate.js';

const ids = Array.from({ length: 10 }, (_, i) => 100 + i); // t0 … t9

test('windows protocol with BOS: non-overlapping, every text token scored once', () => {
  const w = makeWindows(ids, { ctx: 4, bosId: 1 });
  assert.deepEqual(w.map((x) => x.tokens), [[1, 100, 101, 102], [1, 103, 104, 105], [1, 106, 107, 108], [1, 109]]);
  assert.deepEqual(w.map((x) => x.rows), [[0, 1, 2], [0, 1, 2], [0, 1, 2], [0]]);
  assert.deepEqual(w.flatMap((x) => x.targets), ids);
  assert.equal(makeWindows(ids, { ctx: 4, bosId: 1, dropLast: true }).length, 3);
});

test('windows protocol without BOS, and a stride that overlaps (context reused, tokens scored once)', () => {
  const w = makeWindows(ids, { ctx: 4, bos: false, bosId: null });
  assert.deepEqual(w.map((x) => x.tokens), [[100, 101, 102, 103], [104, 105, 106, 107], [108, 109]]);
  assert.deepEqual(w.flatMap((x) => x.targets), ids.slice(1, 4).concat(ids.slice(5, 8), ids.slice(9)));
  const s = makeWindows(ids, { ctx: 4, bos: false, stride: 2 });
  assert.deepEqual(s.map((x) => x.tokens[0]), [100, 102, 104, 106]);
  // window 2 ([102..105]) scores only 104 and 105, from rows 1 and 2
  assert.deepEqual(s[1].rows, [1, 2]);
  assert.deepEqual(s[1].targets, [104, 105]);
  assert.deepEqual(s.flatMap((x) => x.targets), ids.slice(1));
});

test('llamacpp protocol: BOS-led stream, chunks of ctx, second half scored, tail dropped', () => {
  const w = makeWindows(ids, { ctx: 4, protocol: 'llamacpp', bosId: 1 });
  // stream = [1, t0 … t9] (11 tokens) → 2 chunks; the first token of each chunk becomes BOS
  assert.deepEqual(w.map((x) => x.tokens), [[1, 100, 101, 102], [1, 104, 105, 106]]);
  // ctx/2 = 2 → row 2 predicts position 3
  assert.deepEqual(w.map((x) => x.rows), [[2], [2]]);
  assert.deepEqual(w.map((x) => x.targets), [[102], [106]]);
  const w6 = makeWindows(ids, { ctx: 6, protocol: 'llamacpp', bosId: 1 });
  assert.deepEqual(w6[0].rows, [3, 4]);
});

test('bad window options are typed errors', () => {
  assert.throws(() => makeWindows(ids, { ctx: 1, bosId: 1 }), (e: Error & { code?: string }) => e.code === 'bad_option');
  assert.throws(() => makeWindows(ids, { ctx: 4, bos: true, bosId: null }), (e: Error & { code?: string }) => e.code === 'bad_option');
  assert.throws(() => makeWindows(ids, { ctx: 4, bosId: 1, stride: 9 }), (e: Error & { code?: string }) => e.code === 'bad_option');
});

/** Logits independent of context: row r is `row` for every position. */
function constantModel(row: number[]): LogitsModel {
  return { vocabSize: row.length, logits: async (t) => Float32Array.from({ length: t.length * row.length }, (_, i) => row[i % row.length]) };
}

test('perplexity of a uniform model is the vocabulary size; CI brackets the mean', async () => {
  const r = await perplexity(constantModel([0, 0, 0, 0, 0, 0, 0, 0]), [1, 2, 3, 4, 5, 6, 7], { ctx: 4, bosId: 0 });
  assert.equal(r.count, 7);
  assert.ok(Math.abs(r.ppl - 8) < 1e-9);
  assert.ok(Math.abs(r.nll - Math.log(8)) < 1e-12);
  assert.equal(r.nllStderr, 0);
  // a skewed model: p(token 1) = e²/(e² + 3)
  const s = await perplexity(constantModel([0, 2, 0, 0]), [1, 1, 2, 1], { ctx: 3, bosId: 0 });
  const l1 = -(2 - Math.log(Math.exp(2) + 3));
  const l2 = -(0 - Math.log(Math.exp(2) + 3));
  assert.ok(Math.abs(s.nll - (3 * l1 + l2) / 4) < 1e-9);
  assert.ok(s.nllCi95[0] < s.nll && s.nll < s.nllCi95[1]);
  const m = meanCi([1, 2, 3, 4]);
  assert.ok(Math.abs(m.stderr - Math.sqrt(5 / 3 / 4)) < 1e-12);
});

test('KL divergence and top-1 agreement in closed form', async () => {
  const base = constantModel([0, 1, 2]);
  const same = await compareModels(base, constantModel([5, 6, 7]), [0, 1, 2, 0], { ctx: 5, bosId: 0 });
  assert.ok(Math.abs(same.kld) < 1e-12);
  assert.equal(same.top1Agreement, 1);
  const other = await compareModels(base, constantModel([2, 1, 0]), [0, 1, 2, 0], { ctx: 5, bosId: 0 });
  const p = [0, 1, 2].map((x) => Math.exp(x));
  const zp = p.reduce((a, b) => a + b);
  const q = [2, 1, 0].map((x) => Math.exp(x));
  const zq = q.reduce((a, b) => a + b);
  const kl = p.reduce((acc, pi, i) => acc + (pi / zp) * Math.log(pi / zp / (q[i] / zq)), 0);
  assert.ok(Math.abs(other.kld - kl) < 1e-9, `${other.kld} vs ${kl}`);
  assert.equal(other.top1Agreement, 0);
  assert.equal(other.count, 4);
});

test('sampling: greedy takes the first maximum; same seed same tokens; top-k 1 and tiny top-p are greedy', () => {
  const logits = Float32Array.from([0.5, 3, 1, 3, -2]);
  assert.equal(sampleToken(logits, { temperature: 0 }, new Rng(0)), 1);
  const draw = (seed: number, o = {}) => {
    const r = new Rng(seed);
    return Array.from({ length: 50 }, () => sampleToken(logits, { temperature: 1, ...o }, r));
  };
  assert.deepEqual(draw(7), draw(7));
  assert.notDeepEqual(draw(7), draw(8));
  assert.ok(draw(1).every((t) => t !== undefined));
  assert.ok(draw(3, { topK: 1 }).every((t) => t === 1));
  assert.ok(draw(3, { topP: 0.01 }).every((t) => t === 1));
  // top-k 2 keeps the two 3-logit tokens only
  assert.ok(draw(4, { topK: 2 }).every((t) => t === 1 || t === 3));
  // top-p 0.9 keeps {1, 3, 2} (cumulative 0.42, 0.84, 0.96)
  const tp = draw(5, { topP: 0.9 });
  assert.ok(tp.every((t) => t === 1 || t === 3 || t === 2) && tp.includes(2));
  // frequencies follow softmax at temperature 1
  const r = new Rng(11);
  let ones = 0;
  const N = 20000;
  for (let i = 0; i < N; i++) if (sampleToken(logits, { temperature: 1 }, r) === 1) ones++;
  const z = Array.from(logits).reduce((a, b) => a + Math.exp(b), 0);
  assert.ok(Math.abs(ones / N - Math.exp(3) / z) < 0.015);
});
