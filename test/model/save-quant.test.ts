// saveModel with per-tensor quantized overrides (the quantize pipeline's path to GGUF): Q8_0
// blocks produced by the ggml codec are written as given, their rows permuted with the rotary
// layout when the source is a Hugging Face model, and llama.cpp loads and runs the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { saveModel } from '../../src/model/save.js';
import { dequantizeGgml, quantizeGgml } from '../../src/quant/ggml/index.js';
import { permuteRotaryRows } from '../../src/model/permute.js';
import type { QuantTensor } from '../../src/core/tensor.js';
import type { TensorSource } from '../../src/model/weights.js';
import { SHARED, sharedSkip, tempDir } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin');
const CKPT = resolve(SHARED, 'models/stories260K/stories260K.bin');

const q8able = (src: TensorSource) => src.shape.length === 2 && src.shape[1] % 32 === 0;

test('Q8_0 overrides from an HF source: bytes kept, rows permuted, llama.cpp runs it', { skip, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-q8-');
  const m = await loadModel(CKPT);
  try {
    await saveModel(m, join(dir, 'hf'), { format: 'hf' });
    const h = await loadModel(join(dir, 'hf'));
    const given = new Map<string, QuantTensor>();
    const out = join(dir, 'q8.gguf');
    await saveModel(h, out, {
      format: 'gguf',
      fileType: 7, // MOSTLY_Q8_0
      tensorType: (_n, src) => (q8able(src) ? 'Q8_0' : undefined),
      tensor: async (name, src) => {
        if (!q8able(src)) return null;
        const q: QuantTensor = { type: 'Q8_0', shape: src.shape, bytes: quantizeGgml('Q8_0', await src.readF32(), src.shape[0], src.shape[1]) };
        given.set(name, q);
        return q;
      },
    });
    const g = await loadModel(out);
    assert.equal(g.tensors.get('model.layers.0.mlp.gate_proj.weight')!.dtype, 'Q8_0');
    assert.equal(g.tensors.get('model.layers.0.mlp.down_proj.weight')!.dtype, 'F32'); // 172 columns: no whole blocks
    const up = (await g.tensors.get('model.layers.1.mlp.up_proj.weight')!.read()) as QuantTensor;
    assert.deepEqual(up.bytes, given.get('model.layers.1.mlp.up_proj.weight')!.bytes);
    // q_proj: the HF (rotate-half) blocks, rows moved to llama.cpp's interleaved layout
    const qh = given.get('model.layers.2.self_attn.q_proj.weight')!;
    const want = permuteRotaryRows(dequantizeGgml('Q8_0', qh.bytes, 64 * 64), 8, 8, 'half', 'interleaved');
    assert.deepEqual(await g.tensors.get('model.layers.2.self_attn.q_proj.weight')!.readF32(), want);
    await g.close();
    await h.close();

    const { getLlama } = await import('node-llama-cpp');
    const llama = await getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
    const model = await llama.loadModel({ modelPath: out });
    const ctx = await model.createContext({ contextSize: 64, threads: 1, flashAttention: false } as never);
    const seq = ctx.getSequence();
    const ids: number[] = [];
    let tok = 1;
    for (let i = 0; i < 8; i++) {
      const res = await seq.controlledEvaluate([[tok as never, { generateNext: { token: true, options: { temperature: 0 } } }]] as never);
      tok = (res[0] as { next: { token: number } }).next.token;
      ids.push(tok);
    }
    // 8-bit weights leave this model's greedy opening unchanged
    assert.match(m.tokenizer!.decode([1, ...ids]), /^Once upon a time/);
    await ctx.dispose();
    await model.dispose();
  } finally {
    await m.close();
  }
});
