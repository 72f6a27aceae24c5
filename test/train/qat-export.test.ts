import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { llamaConfig, initParams } from '../../src/train/model.js';
import { BpeTokenizer, trainBpe } from '../../src/train/bpe.js';
import { mobyDickText } from '../../src/train/data.js';
import { writeHfModel } from '../../src/train/export.js';
import { runQat } from '../../src/pipeline/qat.js';

test('bitscale qat: ternary → GGUF TQ2_0 and 4-bit → safetensors; the exported file scores the QAT loss exactly', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-qat-'));
  try {
    const text = mobyDickText(3);
    const tok = new BpeTokenizer(trainBpe(text, { vocabSize: 300 }));
    const cfg = { ...llamaConfig({ vocabSize: 300, hiddenSize: 256, intermediateSize: 256, nLayers: 1, nHeads: 4, context: 16 }), bosTokenId: tok.bosId, eosTokenId: tok.eosId };
    const modelDir = join(dir, 'fp');
    await writeHfModel({ dir: modelDir, config: cfg, weights: initParams(cfg, 3), tokenizerJson: tok.toHfJson() });
    const textFile = join(dir, 'text.txt');
    writeFileSync(textFile, text.slice(0, 20000));
    const settings = { batch: 2, context: 16, threads: 1, valBatches: 2 };
    const t = await runQat({ model: modelDir, bits: 1.58, text: [textFile], steps: 2, format: 'gguf', out: join(dir, 'q.gguf'), settings });
    assert.deepEqual(t.ggmlTypes, ['TQ2_0']);
    assert.ok(Number.isFinite(t.lossPtq) && Number.isFinite(t.lossFp));
    assert.equal(t.lossExported, t.lossQat);
    const f = await runQat({ model: modelDir, bits: 4, text: [textFile], steps: 2, format: 'safetensors', out: join(dir, 'q4'), settings });
    assert.equal(f.lossExported, f.lossQat);
    assert.ok(f.lossQat < t.lossQat + 1, 'sane losses');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
