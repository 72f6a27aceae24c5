// bitscale qat --format onnx: the transformers.js folder holds the QAT model's effective weights; the
// file's logits match the engine in onnxruntime and the weights score the QAT validation loss exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { llamaConfig, initParams } from '../../src/train/model.js';
import { BpeTokenizer, trainBpe } from '../../src/train/bpe.js';
import { mobyDickText } from '../../src/train/data.js';
import { writeHfModel } from '../../src/train/export.js';
import { runQat } from '../../src/pipeline/qat.js';

test('bitscale qat --format onnx (4-bit LSQ): folder loads in onnxruntime, logits match, loss equals the QAT loss', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-qat-onnx-'));
  try {
    const text = mobyDickText(3);
    const tok = new BpeTokenizer(trainBpe(text, { vocabSize: 300 }));
    const cfg = { ...llamaConfig({ vocabSize: 300, hiddenSize: 128, intermediateSize: 256, nLayers: 1, nHeads: 4, context: 16 }), bosTokenId: tok.bosId, eosTokenId: tok.eosId };
    const modelDir = join(dir, 'fp');
    await writeHfModel({ dir: modelDir, config: cfg, weights: initParams(cfg, 3), tokenizerJson: tok.toHfJson() });
    const textFile = join(dir, 'text.txt');
    writeFileSync(textFile, text.slice(0, 20000));
    const out = join(dir, 'q4-onnx');
    const r = await runQat({ model: modelDir, bits: 4, text: [textFile], steps: 2, format: 'onnx', out, settings: { batch: 2, context: 16, threads: 1, valBatches: 2 } });
    assert.equal(r.lossExported, r.lossQat);
    assert.ok(existsSync(join(out, 'onnx', 'model_q4.onnx')));
    assert.ok(existsSync(join(out, 'tokenizer.json')));
    const man = JSON.parse(readFileSync(join(out, 'bitscale-manifest.json'), 'utf8'));
    assert.equal(man.command, 'qat');
    // every linear's LSQ codes reproduce the QAT weights bit for bit, so all 7 run as MatMulNBits
    assert.equal(man.linears.matMulNBits, 7);
    assert.ok(Object.keys(man.input.sha256).some((f) => f.endsWith('model.safetensors')), 'input hashes');
    assert.ok(man.check.maxAbsLogitDiff <= man.check.tolerance);
    await assert.rejects(runQat({ model: modelDir, bits: 4, text: [textFile], steps: 1, format: 'onnx', out: modelDir, overwrite: true, settings: { batch: 2, context: 16, threads: 1, valBatches: 2 } }), (e: Error & { code?: string }) => e.code === 'would_overwrite_input');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
