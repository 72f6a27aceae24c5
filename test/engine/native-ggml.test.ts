// Every ggml type with an integer-code form runs on MatMulNBits from the GGUF's stored blocks and
// gives the dequantized engine's perplexity within 1e-4 nats: the legacy types on the default model
// and stories260K (their rows are whole 32-blocks; stories260K's FFN down rows of 172 stay F32), the
// 256-blocks (K-quants, TQ) on a generated Llama with widths of 256, with token embeddings stored
// quantized too (rows gathered from the codes; the tied head of stories260K on the same codes).
// IQ types keep the dequantized path, and the engine says so per tensor.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { sharedPath, sharedSkip } from '../helpers.js';
import type { GgmlType } from '../../src/core/dtype.js';
import { LlamaEngine } from '../../src/engine/model.js';
import { loadModel } from '../../src/model/load.js';
import type { ModelWeights } from '../../src/model/weights.js';
import { randomTokens, randomWeights, tinyConfig } from './fixtures.js';
import { compareNative, writeTypedGguf } from './native-fixtures.js';

const STORIES = sharedPath('models/stories260K/stories260K.bin');
const TEXT = sharedPath('data/tinystories-valid-excerpt.txt');
const NO_STORIES = sharedSkip('models/stories260K/stories260K.bin', 'data/tinystories-valid-excerpt.txt');

async function eachType(w: ModelWeights, types: GgmlType[], ids: number[], ctx: number, embed: boolean, tag: string): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-native-'));
  try {
    for (const t of types) {
      const path = join(dir, `${t}.gguf`);
      const typed = await writeTypedGguf(w, path, t, embed);
      const m = await loadModel(path);
      try {
        const r = await compareNative(`${tag} ${t}`, m, ids, ctx);
        if (process.env.BITSCALE_TEST_VERBOSE) console.log(`${tag} ${t}: native ${r.native} dequantized ${r.dequantized} |Δ| ${Math.abs(r.native - r.dequantized).toExponential(2)}`);
        // every stored linear of the type ran on its codes (the tied head counts once more)
        assert.equal(r.nbits, typed - (embed && !m.config.tiedEmbeddings ? 1 : 0), `${tag} ${t}: linears on MatMulNBits`);
      } finally {
        await m.close();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const DEFAULT_TYPES: GgmlType[] = ['Q4_0', 'Q4_1', 'Q5_0', 'Q5_1', 'Q8_0', 'Q1_0', 'Q2_0'];
for (const t of DEFAULT_TYPES) {
  test(`default model, ${t} GGUF: native = dequantized within 1e-4 nats`, { timeout: 60_000 }, async () => {
    const w = await loadModel('assets/default-model');
    const text = readFileSync(resolve('assets/default-model/README.md'), 'utf8');
    await eachType(w, [t], w.tokenizer!.encode(text, { bos: false }).slice(0, 127), 128, false, 'default');
    await w.close();
  });
}

test('stories260K: Q4_0 / Q8_0 with the tied token embedding quantized (rows and head from the same codes)', { skip: NO_STORIES, timeout: 120_000 }, async () => {
  const w = await loadModel(STORIES);
  const ids = w.tokenizer!.encode(readFileSync(TEXT, 'utf8'), { bos: false }).slice(0, 600);
  await eachType(w, ['Q4_0', 'Q8_0'], ids, 256, true, 'stories260K');
  await w.close();
});

// K-quants and ternary types need 256-wide rows: a generated Llama, embedding stored in the type too
const WIDE_TYPES: GgmlType[] = ['Q2_K', 'Q3_K', 'Q4_K', 'Q5_K', 'Q6_K', 'TQ1_0', 'TQ2_0'];
for (const t of WIDE_TYPES) {
  test(`generated 256-wide Llama, ${t} GGUF with quantized tied embedding: native = dequantized`, { timeout: 60_000 }, async () => {
    const c = tinyConfig({ vocabSize: 300, hiddenSize: 256, intermediateSize: 256, nHeads: 4, nKvHeads: 2, headDim: 64, ropeLayout: 'half', tiedEmbeddings: true });
    await eachType(randomWeights(c, 17), [t], randomTokens(200, c.vocabSize, 18), 100, true, 'generated');
  });
}

test('IQ4_NL keeps the dequantized path, reported per tensor, and still matches', { timeout: 60_000 }, async () => {
  const w = await loadModel('assets/default-model');
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-native-iq-'));
  try {
    const path = join(dir, 'iq.gguf');
    await writeTypedGguf(w, path, 'IQ4_NL');
    const m = await loadModel(path);
    const e = await LlamaEngine.create(m, { native: true });
    const paths = e.host.weightPaths!;
    const iq = paths.filter((p) => p.stored === 'IQ4_NL');
    assert.equal(iq.length, m.config.nLayers * 7 + 1); // and lm_head
    assert.ok(iq.every((p) => p.path === 'float' && /no integer-code form/.test(p.detail)));
    await e.close();
    const ids = w.tokenizer!.encode('It is a way I have of driving off the spleen, and regulating the circulation.', { bos: false });
    await compareNative('IQ4_NL', m, ids, 32);
    await m.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await w.close();
  }
});

test('8-bit weights split into row parts (bounding the unpacked kernel\'s float32 temporary) give the same perplexity', { timeout: 60_000 }, async () => {
  const w = await loadModel('assets/default-model');
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-native-parts-'));
  try {
    const path = join(dir, 'q8.gguf');
    await writeTypedGguf(w, path, 'Q8_0');
    const m = await loadModel(path);
    const native = { maxUnpackedFloats: 128 * 100 };
    const e = await LlamaEngine.create(m, { native });
    const down = e.host.weightPaths!.find((p) => p.name.endsWith('layers.0.mlp.down_proj.weight'))!;
    assert.match(down.detail, /row parts/);
    await e.close();
    const ids = w.tokenizer!.encode('Whenever I find myself growing grim about the mouth; whenever it is a damp, drizzly November in my soul', { bos: false });
    await compareNative('Q8_0 in row parts', m, ids, 32, { native });
    await m.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    await w.close();
  }
});
