// bitscale qat --format onnx: every QAT grid runs as MatMulNBits in the transformers.js folder (2-bit for
// binary, ternary, SEQ 2-bit and BitNet; 4-bit for LSQ 3/4-bit), the file's logits match the engine on
// the QAT weights in onnxruntime, and the file itself, run in onnxruntime over the trainer's validation
// windows, scores the QAT validation loss. BitNet's 8-bit per-token activations are in the graph too
// (without them the file's loss differed by 4.7e-5 here, above the tolerance).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodeModel } from '../../../src/formats/onnx/proto.js';
import { llamaConfig, initParams } from '../../../src/train/graph.js';
import { TrainedBpeTokenizer, trainBpe } from '../../../src/train/bpe-trainer.js';
import { mobyDickText } from '../../../src/train/data.js';
import { writeHfModel } from '../../../src/train/save-hf.js';
import { runQat } from '../../../src/pipeline/qat/qat.js';
import { tempDir } from '../../helpers.js';

/**
 * |loss of the ONNX file in onnxruntime − QAT loss in the trainer| (nats/token): the same weights bit for
 * bit, fp32 in both; only the kernels and the order of accumulation differ (measured ≤ 2e-7 here).
 */
const QAT_ONNX_LOSS_ATOL = 1e-5;
const ONNX_F32 = 1;

const dir = tempDir('bitscale-qat-onnx-');
const modelDir = join(dir, 'fp');
const textFile = join(dir, 'text.txt');
const settings = { batch: 2, context: 16, threads: 1, valBatches: 2 };

const ready = (async () => {
  const text = mobyDickText(3);
  const tok = new TrainedBpeTokenizer(trainBpe(text, { vocabSize: 300 }));
  // K = 128 (q/k/v/gate/up) and 256 (down): blocks of 128
  const cfg = { ...llamaConfig({ vocabSize: 300, hiddenSize: 128, intermediateSize: 256, nLayers: 1, nHeads: 4, context: 16 }), bosTokenId: tok.bosId, eosTokenId: tok.eosId };
  await writeHfModel({ dir: modelDir, config: cfg, weights: initParams(cfg, 3), tokenizerJson: tok.toHfJson() });
  writeFileSync(textFile, text.slice(0, 20000));
})();

const CASES: { label: string; bits: number; bitnet?: boolean; nbits: number; floatZp: boolean }[] = [
  { label: '1-bit LSQ (binary)', bits: 1, nbits: 2, floatZp: false },
  { label: '1.58-bit SEQ (ternary)', bits: 1.58, nbits: 2, floatZp: false },
  { label: '2-bit SEQ', bits: 2, nbits: 2, floatZp: true },
  { label: '3-bit LSQ', bits: 3, nbits: 4, floatZp: false },
  { label: '4-bit LSQ', bits: 4, nbits: 4, floatZp: false },
  { label: 'BitNet b1.58', bits: 1.58, bitnet: true, nbits: 2, floatZp: false },
];

for (const c of CASES) {
  test(`bitscale qat --format onnx (${c.label}): 7 linears as ${c.nbits}-bit MatMulNBits, logits match, the file scores the QAT loss`, async () => {
    await ready;
    const out = join(dir, `q-${c.label.replace(/\W+/g, '-')}`);
    const r = await runQat({ model: modelDir, bits: c.bits, bitnet: c.bitnet, text: [textFile], steps: 2, format: 'onnx', out, settings });
    const file = join(out, 'onnx', c.nbits === 2 ? 'model_q2.onnx' : 'model_q4.onnx');
    assert.ok(existsSync(file), file);
    assert.ok(existsSync(join(out, 'tokenizer.json')));
    // what runQat reports …
    assert.equal(r.onnx?.dtype, c.nbits === 2 ? 'q2' : 'q4');
    assert.equal(r.onnx!.linears.length, 8, '7 linears + lm_head');
    for (const l of r.onnx!.linears) {
      if (l.name === 'lm_head.weight') assert.equal(l.op, 'float');
      else assert.deepEqual([l.op, l.bits, !!l.floatZeroPoints], ['MatMulNBits', c.nbits, c.floatZp], l.name);
    }
    // … is what the file holds, read back from the model proto
    const m = decodeModel(readFileSync(file));
    const nodes = m.graph.node.filter((n) => n.op_type === 'MatMulNBits');
    assert.equal(nodes.length, 7);
    const inits = new Map(m.graph.initializer.map((t) => [t.name, t]));
    for (const n of nodes) {
      const a = Object.fromEntries((n.attribute ?? []).map((x) => [x.name, Number(x.i)]));
      assert.deepEqual([a.bits, a.block_size, a.accuracy_level], [c.nbits, 128, 0]);
      if (c.floatZp) {
        const zp = inits.get(n.input[3])!;
        assert.equal(zp.data_type, ONNX_F32);
        const v = new Float32Array(Uint8Array.from(zp.raw_data!).buffer);
        assert.ok(v.length > 0 && v.every((x) => x === 1.5), 'SEQ 2-bit float zero points 1.5');
      } else assert.equal(n.input.length, 3, 'default zero point 2^(bits−1), no zero-point input');
    }
    const man = JSON.parse(readFileSync(join(out, 'bitscale-manifest.json'), 'utf8'));
    assert.equal(man.command, 'qat');
    assert.equal(man.linears.matMulNBits, 7);
    assert.ok(man.check.maxAbsLogitDiff <= man.check.tolerance, `logits ${man.check.maxAbsLogitDiff} > ${man.check.tolerance}`);
    assert.ok(Number.isFinite(r.lossExported) && r.lossExported !== r.lossFp);
    const d = Math.abs(r.lossExported - r.lossQat);
    assert.ok(d <= QAT_ONNX_LOSS_ATOL, `|lossExported − lossQat| = ${d}`);
    // BitNet: one per-token absmax quantizer per distinct linear input (q/k/v share one), none otherwise
    assert.equal(m.graph.node.filter((n) => n.op_type === 'Round').length, c.bitnet ? 4 : 0);
  });
}

test('bitscale qat --format onnx refuses to overwrite its input model', async () => {
  await ready;
  assert.ok(Object.keys(JSON.parse(readFileSync(join(dir, 'q-4-bit-LSQ', 'bitscale-manifest.json'), 'utf8')).input.sha256).some((f) => f.endsWith('model.safetensors')), 'input hashes');
  await assert.rejects(runQat({ model: modelDir, bits: 4, text: [textFile], steps: 1, format: 'onnx', out: modelDir, overwrite: true, settings }), (e: Error & { code?: string }) => e.code === 'would_overwrite_input');
});
