// QAT GGUFs in llama.cpp (node-llama-cpp), one per container the exporter writes: TQ2_0 (binary,
// ternary, BitNet), Q2_K (2-bit SEQ), Q3_K (3-bit LSQ), Q4_0 (4-bit LSQ; and ternary on rows that
// are not 256-blocks). llama.cpp loads each file and scores the same tokens with a perplexity
// within a named tolerance of our engine's on the same file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { llamaConfig, initParams } from '../../src/train/graph.js';
import { TrainedBpeTokenizer, trainBpe } from '../../src/train/bpe-trainer.js';
import { mobyDickText } from '../../src/train/data.js';
import { writeHfModel } from '../../src/train/save-hf.js';
import { runQat } from '../../src/pipeline/qat/qat.js';
import { loadModel } from '../../src/model/load.js';
import { LlamaEngine } from '../../src/engine/model.js';
import { engineModel, perplexity } from '../../src/eval/index.js';
import { openLlamaCpp } from '../../src/eval/llamacpp.js';
import { withTempDir } from '../helpers.js';

// llama.cpp's quantized dot products (TQ2_0/Q2_K/Q3_K with Q8_K, Q4_0 with Q8_0) round the
// activations to 8 bits per block of 256 or 32; our engine multiplies the same dequantized weights
// with float activations. Measured on these models: max |Δ logit| 5e-3 … 9e-2, |Δ mean NLL| (log
// perplexity) ≤ 1e-3; the bounds leave about 3× and 10× of room.
const LLAMACPP_Q8_ACT_NLL_ATOL = 0.01;
const LLAMACPP_Q8_ACT_LOGITS_ATOL = 0.3;

let skip: string | false = false;
try {
  await import('node-llama-cpp');
} catch {
  skip = 'node-llama-cpp is not installed';
}

test('QAT GGUFs (TQ2_0, Q2_K, Q3_K, Q4_0) load in llama.cpp with our engine\'s perplexity', { skip, timeout: 180_000 }, async () => {
  await withTempDir('bitscale-qatlc-', async (dir) => {
    const text = mobyDickText(3);
    const tok = new TrainedBpeTokenizer(trainBpe(text, { vocabSize: 300 }));
    const textFile = join(dir, 'text.txt');
    writeFileSync(textFile, text.slice(0, 40000));
    const model = async (hidden: number, inter: number) => {
      const cfg = { ...llamaConfig({ vocabSize: 300, hiddenSize: hidden, intermediateSize: inter, nLayers: 1, nHeads: 4, context: 64 }), bosTokenId: tok.bosId, eosTokenId: tok.eosId };
      const p = join(dir, `fp-${hidden}`);
      await writeHfModel({ dir: p, config: cfg, weights: initParams(cfg, 5), tokenizerJson: tok.toHfJson() });
      return p;
    };
    const wide = await model(256, 512);
    const narrow = await model(128, 384);
    const tokens = [tok.bosId, ...tok.encode(text.slice(50000, 52000)).slice(0, 63)];
    const cases = [
      { m: wide, bits: 1, type: 'TQ2_0' },
      { m: wide, bits: 1.58, type: 'TQ2_0' },
      { m: wide, bits: 1.58, bitnet: true, type: 'TQ2_0' },
      { m: wide, bits: 2, type: 'Q2_K' },
      { m: wide, bits: 3, type: 'Q3_K' },
      { m: wide, bits: 4, type: 'Q4_0' },
      { m: narrow, bits: 1.58, type: 'Q4_0' },
    ];
    for (const c of cases) {
      const label = `${c.bits}${c.bitnet ? ' BitNet' : ''} → ${c.type}`;
      const out = join(dir, 'q.gguf');
      const s = await runQat({ model: c.m, bits: c.bits, bitnet: c.bitnet, text: [textFile], steps: 12, format: 'gguf', out, overwrite: true, settings: { batch: 4, context: 32, lr: 3e-3, threads: 1, valBatches: 2 } });
      assert.deepEqual(s.ggmlTypes, [c.type], label);
      const m = await loadModel(out);
      const eng = await LlamaEngine.create(m);
      const ref = await openLlamaCpp(out, 128, 300, 1);
      try {
        const ours = await eng.forward(tokens);
        const theirs = await ref.logits(tokens);
        let d = 0;
        for (let i = 0; i < ours.length; i++) d = Math.max(d, Math.abs(ours[i] - theirs[i]));
        const lp = await ref.logProbs(tokens);
        const nllRef = -lp.reduce((a, b) => a + b, 0) / lp.length;
        const r = await perplexity(engineModel(eng), tokens.slice(1), { ctx: tokens.length, bosId: tokens[0] });
        assert.ok(r.nll < Math.log(300) - 0.2, `${label}: the QAT model has learned something (NLL ${r.nll})`);
        assert.ok(Math.abs(r.nll - nllRef) < LLAMACPP_Q8_ACT_NLL_ATOL, `${label}: NLL engine ${r.nll} vs llama.cpp ${nllRef}`);
        assert.ok(d < LLAMACPP_Q8_ACT_LOGITS_ATOL, `${label}: max |Δ logit| ${d}`);
        console.log(`${label}: NLL engine ${r.nll.toFixed(5)} llama.cpp ${nllRef.toFixed(5)} max |Δ logit| ${d.toExponential(2)}`);
      } finally {
        await ref.close();
        await eng.close();
        await m.close();
      }
    }
  });
});
