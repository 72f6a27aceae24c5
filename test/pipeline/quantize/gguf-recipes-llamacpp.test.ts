// bitscale's GGUF quantizer against llama.cpp's own (llama_model_quantize of the libllama that
// node-llama-cpp ships, through koffi) on generated Llamas written as F32 GGUFs: every tensor's
// type and bytes, and every metadata key, equal, for every named file type, with and without an
// importance matrix, on small shapes (GQA 4 with whole 256-value blocks; no GQA, tied, with rows of
// 64 and 96; 8 layers for the rules of the first eighth). The IQ1_S/IQ1_M/IQ2_* file types (and
// IQ3_XXS, which uses IQ2_S) are left to `npm run bench recipes`, with the whole table: the bundled
// ggml takes ~40 s to build their grids. Their tensor types are checked here for every shape by
// test/model/gguf-recipe.test.ts, and their codecs by the ggml golden tests.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LLAMA_FTYPES, type LlamaFtype } from '../../../src/core/ftype.js';
import { openGgufFile } from '../../../src/formats/io/index.js';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import type { RecipeShape } from '../../reference/recipe-compare.js';

type Cmp = typeof import('../../reference/recipe-compare.js');
type Lq = typeof import('../../reference/llamacpp-quantize.js');
let cmp: Cmp | null = null;
let lq: Lq | null = null;
let skip: string | false = false;
try {
  lq = await import('../../reference/llamacpp-quantize.js');
  lq.loadLibllama();
  cmp = await import('../../reference/recipe-compare.js');
} catch (e) {
  skip = `libllama not loadable: ${(e as Error).message.split('\n')[0]}`;
}

/** File types whose tensors use IQ1_S/IQ1_M/IQ2_* somewhere (slow for the bundled ggml to start). */
const SLOW: LlamaFtype[] = ['IQ1_S', 'IQ1_M', 'IQ2_XXS', 'IQ2_XS', 'IQ2_S', 'IQ2_M', 'IQ3_XXS'];
const FAST = (Object.keys(LLAMA_FTYPES) as LlamaFtype[]).filter((f) => !SLOW.includes(f));

const GQA_WHOLE: RecipeShape = { layers: 1, embd: 256, ff: 256, heads: 4, kvHeads: 1, vocab: 64, tied: false };
const TIED_PARTIAL: RecipeShape = { layers: 2, embd: 64, ff: 96, heads: 2, kvHeads: 2, vocab: 64, tied: true };
const DEEP: RecipeShape = { layers: 8, embd: 32, ff: 64, heads: 4, kvHeads: 1, vocab: 64, tied: true };

/** Same bytes and metadata as llama.cpp; or, where llama.cpp refuses, bitscale refuses too. */
async function check(input: string, dir: string, o: Parameters<Cmp['compareQuantize']>[2], what: string): Promise<void> {
  let r;
  try {
    r = await cmp!.compareQuantize(input, dir, o);
  } catch (e) {
    if (!/^llama_model_quantize.*returned 1/.test((e as Error).message)) throw e;
    const log = lq!.llamaCppLog();
    await assert.rejects(quantizeModel({ model: input, out: join(dir, 'refused.gguf'), format: 'gguf', scheme: o.ftype, method: 'rtn', verify: false, tokenizer: null, imatrix: o.imatrix?.file }), `${what} ${o.ftype}: llama.cpp refused (${log.split('\n').filter((l) => /error|failed/i.test(l)).join(' ')}), bitscale did not`);
    return;
  }
  assert.deepEqual(r.mismatches, [], `${what} ${o.ftype}: tensors`);
  assert.deepEqual(r.metadata, [], `${what} ${o.ftype}: metadata`);
}

test('every file type: tensor types, bytes and metadata equal llama.cpp\'s (GQA 4, untied, 256-wide rows, with an imatrix)', { skip, timeout: 180_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rc-'));
  try {
    const input = await cmp!.writeShape(dir, GQA_WHOLE);
    const data = cmp!.syntheticImatrix(GQA_WHOLE);
    const file = join(dir, 'im.gguf');
    await cmp!.writeImatrixFile(file, data);
    for (const ftype of FAST) await check(input, dir, { ftype, imatrix: { file, data } }, 'imatrix');
    // without one, where the file type allows it
    for (const ftype of ['Q4_K_M', 'IQ4_XS'] as const) await check(input, dir, { ftype }, 'no imatrix');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('every file type on a tied model with rows of 64 and 96 (fallbacks), without an imatrix', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rc-'));
  try {
    const input = await cmp!.writeShape(dir, TIED_PARTIAL);
    for (const ftype of FAST) await check(input, dir, { ftype }, 'tied 64/96');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('8 layers: the first-eighth rules with and without an imatrix (Q4_0 → Q4_1, Q5_0 → Q5_1, IQ4 → Q5_K, …)', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rc-'));
  try {
    const input = await cmp!.writeShape(dir, DEEP);
    const data = cmp!.syntheticImatrix(DEEP);
    const file = join(dir, 'im.gguf');
    await cmp!.writeImatrixFile(file, data);
    for (const ftype of ['Q4_0', 'Q5_0', 'IQ4_NL', 'IQ4_XS', 'Q4_K_M', 'Q3_K_M', 'Q2_K_S', 'Q5_K_M'] as const) {
      await check(input, dir, { ftype, imatrix: { file, data } }, '8 layers imatrix');
      if (ftype !== 'Q2_K_S') await check(input, dir, { ftype }, '8 layers');
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('llama-quantize options give llama.cpp\'s bytes: --pure, --output-tensor-type, --token-embedding-type, --leave-output-tensor, --tensor-type', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rc-'));
  try {
    const input = await cmp!.writeShape(dir, GQA_WHOLE);
    await check(input, dir, { ftype: 'Q4_K_M', pure: true }, '--pure');
    await check(input, dir, { ftype: 'Q4_K_M', outputTensorType: 'q8_0', tokenEmbeddingType: 'q4_k' }, 'output/embedding types');
    await check(input, dir, { ftype: 'Q3_K_M', leaveOutputTensor: true }, '--leave-output-tensor');
    await check(input, dir, { ftype: 'Q4_K_M', tensorTypes: ['attn_v=q8_0', 'blk\\.0\\.ffn_(up|down)=IQ4_XS'] }, '--tensor-type');
    const tied = await cmp!.writeShape(dir, TIED_PARTIAL, 3);
    await check(tied, dir, { ftype: 'Q5_K_S', outputTensorType: 'q4_0' }, 'tied + --output-tensor-type');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('refusals, as llama.cpp refuses: IQ types without an importance matrix, Q1_0 rows that no fallback holds, requantizing', { skip, timeout: 120_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rc-'));
  try {
    const input = await cmp!.writeShape(dir, GQA_WHOLE);
    const out = join(dir, 'x.gguf');
    const noOutput = () => assert.deepEqual(readdirSync(dir).filter((f) => f.startsWith('x.gguf') || f.startsWith('.x.gguf')), [], 'nothing written');
    for (const ftype of ['IQ2_XXS', 'IQ1_S', 'IQ3_XXS', 'IQ3_XS', 'Q2_K_S'] as const) {
      await assert.rejects(lq!.llamaCppQuantize(input, join(dir, 'l.gguf'), { ftype }), /returned 1/);
      assert.match(lq!.llamaCppLog(), /requires an importance matrix/);
      await assert.rejects(quantizeModel({ model: input, out, format: 'gguf', scheme: ftype.toLowerCase(), method: 'rtn', verify: false, tokenizer: null }), (e: Error & { code?: string; context?: { tensor?: string } }) =>
        e.code === 'bad_option' && /requires an importance matrix/.test(e.message) && /^blk\.0\./.test(e.context?.tensor ?? ''));
      noOutput();
    }
    const narrow = await cmp!.writeShape(dir, TIED_PARTIAL, 5);
    await assert.rejects(lq!.llamaCppQuantize(narrow, join(dir, 'l.gguf'), { ftype: 'Q1_0' }), /returned 1/);
    assert.match(lq!.llamaCppLog(), /no tensor type fallback is defined for type q1_0/);
    await assert.rejects(quantizeModel({ model: narrow, out, format: 'gguf', scheme: 'q1_0', method: 'rtn', verify: false, tokenizer: null }), /no tensor type fallback is defined for type Q1_0/);
    noOutput();

    // a Q4_0 file: to Q8_0 only with --allow-requantize (then the same bytes as llama.cpp); to Q4_0 again, every tensor is copied
    const q4 = join(dir, 'q4.gguf');
    await lq!.llamaCppQuantize(narrow, q4, { ftype: 'Q4_0' });
    await assert.rejects(lq!.llamaCppQuantize(q4, join(dir, 'l.gguf'), { ftype: 'Q8_0' }), /returned 1/);
    assert.match(lq!.llamaCppLog(), /requantizing from type q4_0 is disabled/);
    await assert.rejects(quantizeModel({ model: q4, out, format: 'gguf', scheme: 'q8_0', method: 'rtn', verify: false, tokenizer: null }), (e: Error & { code?: string }) =>
      e.code === 'bad_option' && /requantizing from type Q4_0 is disabled/.test(e.message) && /--allow-requantize/.test(e.message));
    await assert.rejects(quantizeModel({ model: q4, out, format: 'gguf', scheme: 'q8_0', method: 'gptq', windows: 1, seqLen: 8, tokenizer: null }), /requantizing from type Q4_0 is disabled/);
    noOutput();
    for (const [ftype, allow] of [['Q8_0', true], ['Q4_0', false]] as const) {
      const theirs = join(dir, `l-${ftype}.gguf`);
      const ours = join(dir, `b-${ftype}.gguf`);
      await lq!.llamaCppQuantize(q4, theirs, { ftype, allowRequantize: allow });
      await quantizeModel({ model: q4, out: ours, format: 'gguf', scheme: ftype, method: 'rtn', verify: false, tokenizer: null, allowRequantize: allow });
      const r = await cmp!.compareFiles(ours, theirs);
      assert.deepEqual([...r.mismatches, ...r.metadata], [], `Q4_0 → ${ftype}`);
    }
    assert.ok(!existsSync(out));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('general.file_type and general.quantization_version: as llama.cpp writes them, also for float and plain types', { skip, timeout: 60_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-rc-'));
  try {
    const input = await cmp!.writeShape(dir, TIED_PARTIAL);
    for (const ftype of ['Q4_0', 'Q8_0', 'F16', 'BF16', 'Q4_K_M'] as const) {
      const out = join(dir, `${ftype}.gguf`);
      await quantizeModel({ model: input, out, format: 'gguf', scheme: ftype.toLowerCase(), method: 'rtn', verify: false, tokenizer: null });
      const g = await openGgufFile(out);
      try {
        assert.equal(g.get('general.file_type'), LLAMA_FTYPES[ftype].id, ftype);
        assert.equal(g.get('general.quantization_version'), 2);
      } finally {
        await g.close();
      }
    }
    const conv = await openGgufFile(input);
    assert.equal(conv.get('general.quantization_version'), 2, 'converted float files carry it too, as llama.cpp\'s converter writes it');
    await conv.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
