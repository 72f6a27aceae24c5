// Scoring a sequence in chunks through the KV cache (EngineOptions.scoreChunk: each run sees Tc
// tokens, the keys/values written back into the cache arrays it read) equals scoring it in one run:
// native Q4_K weights (with the 8-bit coded mins split into row parts) and float weights, a length
// that leaves a padded last run, two sequences per call.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { LlamaEngine, type EngineOptions } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import { randomTokens, randomWeights, tinyConfig } from './fixtures.js';
import { writeTypedGguf } from './native-fixtures.js';
import { tempDir } from '../helpers.js';

/** per-token log-probability difference allowed between chunked and one-run scoring (float32 sums in another order) */
const SCORE_CHUNK_ATOL = 2e-5;

/** Records the graph shapes the engine opens sessions for. */
function spySessions(e: LlamaEngine): Parameters<LlamaEngine['session']>[0][] {
  const seen: Parameters<LlamaEngine['session']>[0][] = [];
  const orig = e.session.bind(e);
  e.session = (g) => {
    seen.push(g);
    return orig(g);
  };
  return seen;
}

async function compare(m: Parameters<typeof LlamaEngine.create>[0], opts: EngineOptions, label: string): Promise<void> {
  const c = m.config;
  const seqs = [randomTokens(37, c.vocabSize, 5), randomTokens(37, c.vocabSize, 6)];
  const tgs = [randomTokens(37, c.vocabSize, 7), randomTokens(37, c.vocabSize, 8)];
  const whole = await LlamaEngine.create(m, { ...opts, scoreChunk: 1 << 20 });
  const ref = await whole.logProbs(seqs, tgs);
  await whole.close();
  const e = await LlamaEngine.create(m, { ...opts, scoreChunk: 8 });
  const seen = spySessions(e);
  const got = await e.logProbs(seqs, tgs);
  // 37 tokens in runs of 8: 5 runs (the last padded by 3) through one cached graph of 40 slots
  assert.ok(seen.length > 0 && seen.every((g) => g.tokens === 8 && g.cacheCapacity === 40 && g.targets), `${label}: ${JSON.stringify(seen[0])}`);
  let d = 0;
  for (let i = 0; i < ref.length; i++) d = Math.max(d, Math.abs(ref[i] - got[i]));
  assert.ok(d < SCORE_CHUNK_ATOL, `${label}: max |chunked − one run| = ${d}`);
  await e.close();
}

test('scoring in KV-cache chunks equals one run: native Q4_K weights', { timeout: 60_000 }, async () => {
  const c = tinyConfig({ vocabSize: 300, hiddenSize: 256, intermediateSize: 256, nHeads: 4, nKvHeads: 2, headDim: 64, ropeLayout: 'half' });
  const path = join(tempDir('bitscale-score-chunk-'), 'q4k.gguf');
  await writeTypedGguf(randomWeights(c, 31), path, 'Q4_K', true);
  const m = await loadModel(path);
  try {
    await compare(m, { native: { maxUnpackedFloats: 2000 } }, 'native Q4_K');
  } finally {
    await m.close();
  }
});

test('scoring in KV-cache chunks equals one run: float weights', { timeout: 60_000 }, async () => {
  const c = tinyConfig({ vocabSize: 200, hiddenSize: 64, intermediateSize: 96, nHeads: 4, nKvHeads: 2, headDim: 16 });
  await compare(randomWeights(c, 32), {}, 'float');
});

test('a scoring chunk that is not a positive integer is a typed error', async () => {
  const c = tinyConfig({ vocabSize: 50, hiddenSize: 32, intermediateSize: 48, nHeads: 2, nKvHeads: 1, headDim: 16 });
  const e = await LlamaEngine.create(randomWeights(c, 33), { scoreChunk: 0 });
  await assert.rejects(e.logProbs([[1, 2, 3]], [[2, 3, 4]]), /scoring chunk must be a positive integer/);
  await e.close();
});
