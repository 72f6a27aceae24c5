// llama2.c → Hugging Face directory → back: the tensors come back identical (the Q/K rotary
// permutation is undone exactly), the written tokenizer.json reproduces run.c's token ids when
// loaded by @huggingface/tokenizers, and HF → GGUF matches llama2.c → GGUF.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { saveModel } from '../../src/model/save.js';
import { rotaryRowOrder } from '../../src/model/permute.js';
import { FormatError } from '../../src/core/errors.js';
import { SHARED, sharedSkip, tempDir } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin', 'models/stories260K/tok512.bin', 'data/tinystories-valid-excerpt.txt', 'golden/stories260K/tinystories-excerpt.tokens.i32');
const CKPT = resolve(SHARED, 'models/stories260K/stories260K.bin');

test('llama2.c → HF → llama2.c: identical tensors and the same file bytes', { skip }, async () => {
  const dir = tempDir('bitscale-hf-');
  const m = await loadModel(CKPT);
  try {
    await saveModel(m, join(dir, 'hf'), { format: 'hf' });
    const config = JSON.parse(readFileSync(join(dir, 'hf', 'config.json'), 'utf8'));
    assert.equal(config.architectures[0], 'LlamaForCausalLM');
    assert.equal(config.num_key_value_heads, 4);
    assert.equal(config.tie_word_embeddings, true);
    const h = await loadModel(join(dir, 'hf'));
    assert.equal(h.config.ropeLayout, 'half');
    assert.deepEqual({ ...h.config, ropeLayout: 'interleaved' }, m.config);
    // HF q rows are the interleaved rows permuted per head
    const q = await m.tensors.get('model.layers.2.self_attn.q_proj.weight')!.readF32();
    const qh = await h.tensors.get('model.layers.2.self_attn.q_proj.weight')!.readF32();
    const order = rotaryRowOrder(8, 8, 'interleaved', 'half');
    for (let r = 0; r < 64; r++) assert.deepEqual(qh.subarray(r * 64, r * 64 + 64), q.subarray(order[r] * 64, order[r] * 64 + 64));
    // …and back to llama2.c: byte-identical to the original except the recomputed RoPE table
    await saveModel(h, join(dir, 'back.bin'), { format: 'llama2c' });
    const back = await loadModel(join(dir, 'back.bin'), { tokenizer: resolve(SHARED, 'models/stories260K/tok512.bin') });
    for (const [name, t] of m.tensors) assert.deepEqual(await back.tensors.get(name)!.readF32(), await t.readF32(), name);
    const a = readFileSync(CKPT);
    const b = readFileSync(join(dir, 'back.bin'));
    assert.equal(b.length, a.length);
    const ropeAt = a.length - 4 * 4096;
    assert.ok(a.subarray(0, ropeAt).equals(b.subarray(0, ropeAt)));
    await back.close();

    // the tokenizer.json we wrote, run by @huggingface/tokenizers, gives run.c's ids
    const text = readFileSync(resolve(SHARED, 'data/tinystories-valid-excerpt.txt'), 'utf8');
    const g = readFileSync(resolve(SHARED, 'golden/stories260K/tinystories-excerpt.tokens.i32'));
    const golden = Array.from(new Int32Array(g.buffer.slice(g.byteOffset, g.byteOffset + g.length)));
    assert.equal(h.tokenizer!.kind, 'hf');
    const ids = h.tokenizer!.encode(text);
    assert.deepEqual(ids.slice(0, golden.length), golden);
    assert.deepEqual(ids, m.tokenizer!.encode(text)); // all 15k tokens, through the chunked path
    assert.equal(h.tokenizer!.decode(ids), text);

    // HF → GGUF equals llama2.c → GGUF tensor for tensor
    await saveModel(h, join(dir, 'h.gguf'), { format: 'gguf' });
    await saveModel(m, join(dir, 'm.gguf'), { format: 'gguf' });
    const gh = await loadModel(join(dir, 'h.gguf'));
    const gm = await loadModel(join(dir, 'm.gguf'));
    for (const [name, t] of gm.tensors) assert.deepEqual(await gh.tensors.get(name)!.readF32(), await t.readF32(), name);
    assert.deepEqual(gh.tokenizer!.encode(text.slice(0, 2000)), gm.tokenizer!.encode(text.slice(0, 2000)));
    await gh.close();
    await gm.close();
    await h.close();
  } finally {
    await m.close();
  }
});

test('an HF directory missing a tensor its config implies fails naming the tensor', { skip }, async () => {
  const dir = tempDir('bitscale-hf-');
  const m = await loadModel(CKPT);
  try {
    const { tensors } = m;
    const cut = { ...m, tensors: new Map([...tensors].filter(([n]) => n !== 'model.layers.3.mlp.up_proj.weight')) };
    await saveModel(cut, join(dir, 'hf'), { format: 'hf' });
    await assert.rejects(loadModel(join(dir, 'hf')), (e: unknown) => e instanceof FormatError && e.code === 'missing_tensor' && e.context.tensor === 'model.layers.3.mlp.up_proj.weight');
  } finally {
    await m.close();
  }
});
