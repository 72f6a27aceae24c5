import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Tokenizer as HfTokenizer } from '@huggingface/tokenizers';
import { AdamW, clipGlobalNorm, GradAccumulator, lrAt } from '../../src/train/optim.js';
import { mobyDickText, tokenize, trainBatch, unigramLoss, valBatches } from '../../src/train/data.js';
import { TrainedBpeTokenizer, trainBpe } from '../../src/train/bpe-trainer.js';
import { ConfigError } from '../../src/core/errors.js';

/** float32 storage of a float64 computation */
const F32_TOL = 1e-7;

test('AdamW: two steps equal the hand-computed update (decoupled decay, bias correction)', () => {
  const p = new Map([['w', Float32Array.from([1, -2])], ['n', Float32Array.from([0.5])]]);
  const info = new Map([['w', { decay: true }], ['n', { decay: false }]]);
  const cfg = { beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0.1 };
  const opt = new AdamW(p, info, cfg);
  const lr = 0.01;
  // step 1, g = [0.5, −1], n g = 2: m̂ = g, v̂ = g² → update lr·sign(g) (up to ε)
  opt.step(new Map([['w', Float32Array.from([0.5, -1])], ['n', Float32Array.from([2])]]), lr);
  const w1 = [1 - lr * 0.1 * 1 - lr * (0.5 / (0.5 + 1e-8)), -2 - lr * 0.1 * -2 + lr * (1 / (1 + 1e-8))];
  assert.ok(Math.abs(p.get('w')![0] - w1[0]) < F32_TOL && Math.abs(p.get('w')![1] - w1[1]) < F32_TOL);
  assert.ok(Math.abs(p.get('n')![0] - (0.5 - lr)) < F32_TOL, 'no decay on n');
  // step 2, g = [0.1, 0.1] for w[0]: m = 0.9·0.05+0.01 = 0.055 (m stored after step 1 was 0.05)
  opt.step(new Map([['w', Float32Array.from([0.1, 0.1])], ['n', Float32Array.from([0])]]), lr);
  const m = 0.9 * 0.05 + 0.1 * 0.1;
  const v = 0.99 * (0.01 * 0.25) + 0.01 * 0.01;
  const mh = m / (1 - 0.9 ** 2);
  const vh = v / (1 - 0.99 ** 2);
  const w0 = Math.fround(w1[0]);
  const w2 = w0 - lr * 0.1 * w0 - (lr * mh) / (Math.sqrt(vh) + 1e-8);
  assert.ok(Math.abs(p.get('w')![0] - w2) < 1e-6, `${p.get('w')![0]} vs ${w2}`);
  assert.equal(opt.t, 2);
});

test('schedule: linear warmup then cosine to the floor', () => {
  const s = { lr: 1, warmupSteps: 4, totalSteps: 14, minLrRatio: 0.1 };
  assert.equal(lrAt(0, s), 0.25);
  assert.equal(lrAt(3, s), 1);
  assert.equal(lrAt(4, s), 1);
  assert.ok(Math.abs(lrAt(9, s) - 0.55) < 1e-12); // half way: 0.1 + 0.45·(1 + cos π/2)
  assert.ok(Math.abs(lrAt(14, s) - 0.1) < 1e-12);
  assert.ok(Math.abs(lrAt(100, s) - 0.1) < 1e-12);
});

test('global-norm clipping and gradient accumulation', () => {
  const g = new Map([['a', Float32Array.from([3])], ['b', Float32Array.from([4])]]);
  assert.equal(clipGlobalNorm(g, 1), 5);
  assert.ok(Math.abs(g.get('a')![0] - 0.6) < 1e-6 && Math.abs(g.get('b')![0] - 0.8) < 1e-6);
  const acc = new GradAccumulator();
  acc.add(new Map([['a', Float32Array.from([1, 2])]]));
  acc.add(new Map([['a', Float32Array.from([3, 6])]]));
  assert.deepEqual(Array.from(acc.mean().get('a')!), [2, 4]);
  assert.equal(acc.count, 0);
});

test('batches are a function of (seed, index); targets are inputs shifted by one', () => {
  const toks = Int32Array.from({ length: 1000 }, (_, i) => i);
  const a = trainBatch(toks, 4, 16, 7, 3);
  const b = trainBatch(toks, 4, 16, 7, 3);
  const c = trainBatch(toks, 4, 16, 7, 4);
  assert.deepEqual(a.inputs, b.inputs);
  assert.notDeepEqual(a.inputs, c.inputs);
  for (let i = 0; i < a.inputs.length; i++) assert.equal(a.targets[i], a.inputs[i] + 1);
  const vb = valBatches(Int32Array.from({ length: 50 }, (_, i) => i), 2, 16);
  assert.equal(vb.length, 2); // 3 windows of 16 → batches of 2 + 1 (second padded with ignored targets)
  assert.equal(vb[1].targets[16], -1);
  assert.throws(() => trainBatch(Int32Array.from([1, 2, 3]), 2, 16, 0, 0), (e: unknown) => e instanceof ConfigError && /smaller than one batch/.test(e.message));
});

test('BPE: deterministic, round-trips, and tokenizer.json encodes identically in @huggingface/tokenizers', () => {
  const text = mobyDickText(6);
  const m1 = trainBpe(text, { vocabSize: 400 });
  const m2 = trainBpe(text, { vocabSize: 400 });
  assert.deepEqual(m1, m2);
  assert.equal(m1.vocab.length, 400);
  assert.equal(new Set(m1.vocab).size, 400, 'token strings are unique');
  const tok = new TrainedBpeTokenizer(m1);
  const sample = `${text.slice(0, 20000)} Ünïcödé 你好 🤗 \n\n  x's they'll 1234`;
  const ids = tok.encode(sample);
  assert.equal(tok.decode(ids), sample);
  const hf = new HfTokenizer(tok.toHfJson() as never, {} as never);
  assert.deepEqual(hf.encode(sample, { add_special_tokens: false }).ids, ids);
  const back = TrainedBpeTokenizer.fromHfJson(tok.toHfJson() as never);
  assert.deepEqual(back.encode(sample), ids);
  assert.ok(ids.length < sample.length / 1.8, 'compresses English');
  const split = tokenize(text, tok, 0.1);
  assert.ok(unigramLoss(split.train, split.val, tok.vocabSize) < Math.log(tok.vocabSize));
  assert.throws(() => trainBpe(text, { vocabSize: 100 }), ConfigError);
});
