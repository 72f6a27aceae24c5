// The engine on a real model against llama2.c's own outputs (../shared/golden/stories260K, from
// run.c): logits, mean NLL on 128 and 511 predictions, and greedy text from BOS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { LlamaEngine } from '../../src/engine/model.js';
import { engineModel, generate, perplexity } from '../../src/eval/index.js';
import { SHARED, sharedSkip } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin', 'golden/stories260K', 'data/tinystories-valid-excerpt.txt');
const MODEL = resolve(SHARED, 'models/stories260K/stories260K.bin');
const GOLD = resolve(SHARED, 'golden/stories260K');

/** float32 engine vs llama2.c's float32 C code (README: "about 1e-4 absolute") */
const LOGITS_ATOL = 1e-4;
/** mean NLL vs the golden value printed with 6 decimals */
const NLL_ATOL = 1e-5;

function i32(path: string): number[] {
  const b = readFileSync(path);
  return Array.from(new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4));
}

test('stories260K (llama2.c checkpoint): logits, NLL and greedy text equal llama2.c', { skip }, async () => {
  const w = await loadModel(MODEL);
  const eng = await LlamaEngine.create(w);
  const tokens = i32(resolve(GOLD, 'tinystories-excerpt.tokens.i32'));
  assert.equal(tokens.length, 129);
  const gb = readFileSync(resolve(GOLD, 'tinystories-excerpt.logits.f32'));
  const gold = new Float32Array(gb.buffer, gb.byteOffset, gb.byteLength / 4);
  const logits = await eng.forward(tokens.slice(0, 128));
  assert.equal(logits.length, gold.length);
  let d = 0;
  for (let i = 0; i < gold.length; i++) d = Math.max(d, Math.abs(logits[i] - gold[i]));
  assert.ok(d < LOGITS_ATOL, `max |engine − llama2.c| = ${d}`);

  const model = engineModel(eng);
  const r128 = await perplexity(model, tokens.slice(1), { ctx: 129, bos: true, bosId: 1 });
  assert.equal(r128.count, 128);
  assert.ok(Math.abs(r128.nll - 1.329884) < NLL_ATOL, `NLL over 128 = ${r128.nll}`);

  const text = readFileSync(resolve(SHARED, 'data/tinystories-valid-excerpt.txt'), 'utf8');
  const ids = w.tokenizer!.encode(text, { bos: true });
  assert.deepEqual(ids.slice(0, 129), tokens, 'tokenizer ids equal llama2.c encode');
  const r512 = await perplexity(model, ids.slice(1, 512), { ctx: 512, bos: true, bosId: 1 });
  assert.equal(r512.count, 511);
  assert.ok(Math.abs(r512.nll - 1.635487) < NLL_ATOL, `NLL over 511 = ${r512.nll}`);
  assert.ok(r512.pplCi95[0] < r512.ppl && r512.ppl < r512.pplCi95[1]);

  // run.c -n 256: 256 forward passes from BOS, each emitting one token
  const g = await generate(eng, [1], { maxTokens: 256, temperature: 0 });
  const want = readFileSync(resolve(GOLD, 'greedy-256.txt'), 'utf8');
  assert.equal(w.tokenizer!.decode([1, ...g.tokens]).trimEnd(), want.trimEnd());
  await eng.close();
  await w.close();
});
