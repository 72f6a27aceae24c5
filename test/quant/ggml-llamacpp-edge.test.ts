// llama.cpp's own quantizer (llama_model_quantize in the bundled libllama, through koffi) is the
// judge of the ggml codecs on adversarial rows (test/quant/adversarial-rows.ts): a tiny F32 GGUF
// whose attn_v holds them is quantized by llama.cpp (pure, one thread, with and without an
// importance matrix) and by us (WebAssembly kernels and the TypeScript reference); the bytes of
// that tensor must be identical (rows whose fp16 scales overflow are left out: llama.cpp refuses them). This pins the C semantics the golden vectors do not reach:
// nearest_int's bit trick, (int8_t) casts of ±Inf, `!d` on a NaN scale.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type { GgmlType } from '../../src/core/dtype.js';
import { openGgufFile } from '../../src/formats/io/index.js';
import type { Tokenizer } from '../../src/formats/tokenizer/types.js';
import { saveModel } from '../../src/model/save.js';
import { quantizeGgml, quantizeGgmlReference, hasGgmlKernel } from '../../src/quant/ggml/index.js';
import { shapeConfig, syntheticSpmVocab } from '../../bench/gen-llama.js';
import { generatedModel } from '../../bench/util.js';
import { llamaCppQuantize, type LlamaFtypeName } from '../reference/llamacpp-quantize.js';
import { adversarialImatrix, adversarialRows, ROW_KINDS, SCALE_OVERFLOW_KINDS } from './adversarial-rows.js';
import { tempDir } from '../helpers.js';

function available(): string | false {
  try {
    const require = createRequire(import.meta.url);
    require.resolve('koffi');
    require.resolve('@node-llama-cpp/linux-x64');
    return false;
  } catch {
    return 'koffi or node-llama-cpp is not installed';
  }
}

// [our type, llama.cpp file type whose pure recipe is that type, needs an imatrix]
const TYPES: [GgmlType, LlamaFtypeName, boolean][] = [
  ['Q4_0', 'Q4_0', false], ['Q4_1', 'Q4_1', false], ['Q5_0', 'Q5_0', false], ['Q5_1', 'Q5_1', false], ['Q8_0', 'Q8_0', false],
  ['Q2_K', 'Q2_K', false], ['Q3_K', 'Q3_K_S', false], ['Q4_K', 'Q4_K_S', false], ['Q5_K', 'Q5_K_S', false], ['Q6_K', 'Q6_K', false],
  ['IQ4_NL', 'IQ4_NL', false], ['IQ4_XS', 'IQ4_XS', false], ['TQ1_0', 'TQ1_0', false], ['TQ2_0', 'TQ2_0', false],
  // one grid type (llama.cpp's IQ2 grid set-up alone takes ~10 s, too slow for CI)
  ['IQ3_XXS', 'IQ3_XXS', true],
];

// attn_v is [KV heads · head dim = 128, hidden = K]: 128 rows cycling through the adversarial kinds
const K = 256;

test('ggml codecs equal llama.cpp byte for byte on adversarial rows (with and without imatrix)', { skip: available(), timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-edge-');
  const c = shapeConfig('llama-3.2-1b', { nLayers: 1, vocabSize: 300, hiddenSize: K, intermediateSize: 512, nHeads: 4, nKvHeads: 2, headDim: 64 });
  const m = generatedModel(c);
  const vocab = syntheticSpmVocab(c.vocabSize);
  const tok: Tokenizer = { kind: 'spm', vocabSize: c.vocabSize, bosId: 1, eosId: 2, unkId: 0, encode: () => [], decode: () => '', tokenPiece: (i) => vocab.tokens[i], exportVocab: () => vocab };
  const name = 'model.layers.0.self_attn.v_proj.weight';
  const src = m.tensors.get(name)!;
  const [N] = src.shape;
  const x = adversarialRows(N, K, 21, 0, ROW_KINDS.filter((k) => !SCALE_OVERFLOW_KINDS.includes(k)));
  m.tensors.set(name, { ...src, read: async () => ({ dtype: 'F32', shape: src.shape, data: x.slice() }), readF32: async () => x.slice() });
  const inp = join(dir, 'in.gguf');
  await saveModel({ ...m, tokenizer: tok }, inp, { format: 'gguf', dtype: 'F32' });
  const im = adversarialImatrix(K, 5);
  // an importance matrix for every weight matrix (llama.cpp refuses the IQ types without one)
  const imatrix = new Map<string, Float32Array>();
  imatrix.set('blk.0.attn_v.weight', im);
  for (const [l, n] of [['attn_q', 256], ['attn_k', 256], ['attn_output', 256], ['ffn_gate', 256], ['ffn_up', 256], ['ffn_down', 512]] as const) imatrix.set(`blk.0.${l}.weight`, new Float32Array(n).fill(1));
  imatrix.set('token_embd.weight', new Float32Array(256).fill(1));
  const failures: string[] = [];
  for (const [type, ftype, needsIm] of TYPES) {
    for (const withIm of needsIm ? [true] : [false, true]) {
      const out = join(dir, `${type}-${withIm}.gguf`);
      await llamaCppQuantize(inp, out, { ftype, pure: true, nthread: 1, imatrix: withIm ? imatrix : undefined });
      const g = await openGgufFile(out);
      const t = (await g.readTensor('blk.0.attn_v.weight')) as { type: string; bytes: Uint8Array };
      await g.close();
      rmSync(out);
      assert.equal(t.type, type, `llama.cpp ${ftype} pure wrote attn_v as ${t.type}`);
      const label = `${type}${withIm ? ' imatrix' : ''}`;
      const ref = quantizeGgmlReference(type, x, N, K, withIm ? im : undefined);
      const fast = quantizeGgml(type, x, N, K, withIm ? im : undefined);
      for (const [who, b] of [['TypeScript', ref], [hasGgmlKernel(type, withIm) ? 'WebAssembly' : 'quantizeGgml', fast]] as const) {
        const at = b.findIndex((v, i) => v !== t.bytes[i]);
        if (at >= 0 || b.length !== t.bytes.length) failures.push(`${label} (${who}): first differing byte ${at} of ${b.length}`);
      }
    }
  }
  assert.deepEqual(failures, []);
});
