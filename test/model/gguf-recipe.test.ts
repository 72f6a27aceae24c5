// The recipe table against llama.cpp itself: for every file type, the type bitscale's planner gives
// each tensor equals the type libllama's own selection (llama_quant_compute_types, the function
// llama_model_quantize calls) gives, over models of 1 to 40 layers and 80 (llama.cpp's "70B"), with
// and without grouped-query attention, 4 and 8 experts, tied and untied output, rows that are and
// are not whole 256-value blocks, and with llama-quantize's options. No tensor data is involved
// (the bytes are checked in test/pipeline/quantize/gguf-recipes-llamacpp.test.ts, which also covers the
// rules that depend on an importance matrix: compute_types cannot see one).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GGML_TYPES, type GgmlType } from '../../src/core/dtype.js';
import { ftypeByName, ftypeForTensorType, LLAMA_FTYPES, type LlamaFtype } from '../../src/core/ftype.js';
import { planGgufTypes, rowFallback, type RecipeModel, type RecipeOptions, type RecipeTensor } from '../../src/model/gguf-recipe.js';
import { ROW_FALLBACK } from '../../src/model/gguf-recipe-rules.js';
import { ggufTensorRole } from '../../src/model/names.js';

type Ref = typeof import('../reference/llamacpp-quant-types.js');
let ref: Ref | null = null;
let skip: string | false = false;
try {
  ref = await import('../reference/llamacpp-quant-types.js');
  ref.llamaCppDefaultType(2);
} catch (e) {
  skip = `libllama not loadable: ${(e as Error).message.split('\n')[0]}`;
}

interface Shape {
  layers: number;
  embd: number;
  ff: number;
  heads: number;
  kvHeads: number;
  headDim: number;
  vocab: number;
  tied: boolean;
  experts?: number;
}

/** A dense Llama's tensors (GGUF names, row-major shapes) as bitscale writes them. */
function tensorsOf(s: Shape): RecipeTensor[] {
  const E = s.embd;
  const q = s.heads * s.headDim;
  const kv = s.kvHeads * s.headDim;
  const t: RecipeTensor[] = [{ name: 'token_embd.weight', shape: [s.vocab, E] }, { name: 'output_norm.weight', shape: [E] }];
  if (!s.tied) t.push({ name: 'output.weight', shape: [s.vocab, E] });
  for (let l = 0; l < s.layers; l++) {
    const p = `blk.${l}.`;
    t.push(
      { name: `${p}attn_norm.weight`, shape: [E] }, { name: `${p}attn_q.weight`, shape: [q, E] }, { name: `${p}attn_k.weight`, shape: [kv, E] },
      { name: `${p}attn_v.weight`, shape: [kv, E] }, { name: `${p}attn_output.weight`, shape: [E, q] }, { name: `${p}ffn_norm.weight`, shape: [E] },
      { name: `${p}ffn_gate.weight`, shape: [s.ff, E] }, { name: `${p}ffn_up.weight`, shape: [s.ff, E] }, { name: `${p}ffn_down.weight`, shape: [E, s.ff] },
    );
  }
  return t;
}

const modelOf = (s: Shape): RecipeModel => ({ arch: 'llama', nLayers: s.layers, nHeads: s.heads, nKvHeads: s.kvHeads, nExperts: s.experts ?? 0 });

/** Compares planner and llama.cpp on one shape and option set; returns the number of tensors checked. */
function compare(s: Shape, opts: RecipeOptions): number {
  const tensors = tensorsOf(s);
  let ours: Map<string, { type: GgmlType | null }>;
  try {
    ours = planGgufTypes(modelOf(s), tensors, opts);
  } catch (e) {
    // llama.cpp throws an uncaught C++ exception here (it would abort this process); the byte
    // test checks that llama_model_quantize refuses the same cases
    assert.match((e as Error).message, /no tensor type fallback/);
    return 0;
  }
  const theirs = ref!.llamaCppTensorTypes(
    { arch: 'llama', nEmbd: s.embd, nFf: s.ff, nLayer: s.layers, nHead: s.heads, nHeadKv: s.kvHeads, nExpert: s.experts ?? 0, headDim: s.headDim },
    tensors.map((t) => ({ name: t.name, ne: [...t.shape].reverse() })),
    { ftype: opts.ftype, pure: opts.pure, outputTensorType: opts.outputTensorType, tokenEmbeddingType: opts.tokenEmbeddingType, quantizeOutputTensor: !opts.leaveOutputTensor, tensorTypes: opts.tensorTypes },
  );
  const bad: string[] = [];
  for (const t of tensors) {
    const a = ours.get(t.name)?.type ?? null;
    const b = theirs.get(t.name) ?? null;
    if (a !== b) bad.push(`${t.name}: bitscale ${a}, llama.cpp ${b}`);
  }
  assert.deepEqual(bad, [], `${opts.ftype} ${JSON.stringify({ ...s, ...opts, ftype: undefined })}`);
  return tensors.length;
}

const FTYPES = Object.keys(LLAMA_FTYPES) as LlamaFtype[];

test('file type table: ids and base types are libllama\'s; llama-quantize names and aliases parse', { skip }, () => {
  for (const f of FTYPES) assert.equal(ref!.llamaCppDefaultType(LLAMA_FTYPES[f].id), LLAMA_FTYPES[f].base, f);
  assert.equal(ref!.llamaCppDefaultType(39), null, 'NVFP4 has no default type in this release (so no recipe)');
  assert.equal(ftypeByName('q4_k_m'), 'Q4_K_M');
  assert.equal(ftypeByName('Q4_K'), 'Q4_K_M');
  assert.equal(ftypeByName('iq2_s'), 'IQ2_S');
  assert.equal(ftypeByName('q4_k_x'), undefined);
});

test('every file type: per-tensor types equal llama.cpp\'s on 1–40 layers, GQA and not, tied and untied, whole and partial 256-blocks', { skip, timeout: 120_000 }, () => {
  let n = 0;
  const shapes: Shape[] = [];
  // depth: every layer count 1–40 (the layer-band rules change with depth) on a GQA-4 model with whole blocks
  for (let L = 1; L <= 40; L++) shapes.push({ layers: L, embd: 256, ff: 512, heads: 8, kvHeads: 2, headDim: 32, vocab: 320, tied: L % 2 === 0 });
  // GQA factors 1, 2, 8; rows of 64/96/160/320 values (not whole 256-blocks; 96 and 160 not whole 64-blocks)
  for (const [E, F, H, Hk] of [[256, 768, 4, 4], [512, 1024, 8, 4], [256, 512, 8, 1], [64, 172, 4, 2], [96, 256, 3, 3], [320, 160, 10, 2], [128, 352, 4, 4]]) {
    for (const L of [3, 8, 17]) for (const tied of [true, false]) shapes.push({ layers: L, embd: E, ff: F, heads: H, kvHeads: Hk, headDim: E / H, vocab: 300, tied });
  }
  for (const s of shapes) for (const ftype of FTYPES) n += compare(s, { ftype });
  assert.ok(n > 100_000, `${n} tensors compared`);
});

test('experts (4 and 8) and llama.cpp\'s 70B rule change the choice as in llama.cpp', { skip, timeout: 60_000 }, () => {
  const shapes: Shape[] = [
    { layers: 8, embd: 256, ff: 512, heads: 8, kvHeads: 8, headDim: 32, vocab: 256, tied: false, experts: 8 },
    { layers: 12, embd: 256, ff: 512, heads: 8, kvHeads: 4, headDim: 32, vocab: 256, tied: true, experts: 4 },
    { layers: 80, embd: 256, ff: 512, heads: 8, kvHeads: 1, headDim: 32, vocab: 256, tied: false },
    { layers: 80, embd: 256, ff: 512, heads: 8, kvHeads: 8, headDim: 32, vocab: 256, tied: false },
  ];
  for (const s of shapes) for (const ftype of FTYPES) compare(s, { ftype });
});

test('llama-quantize options: --pure, --output-tensor-type, --token-embedding-type, --leave-output-tensor, --tensor-type', { skip, timeout: 60_000 }, () => {
  const sets: Omit<RecipeOptions, 'ftype'>[] = [
    { pure: true },
    { outputTensorType: 'Q8_0' },
    { tokenEmbeddingType: 'Q4_K' },
    { outputTensorType: 'IQ4_NL', tokenEmbeddingType: 'Q5_0' },
    { leaveOutputTensor: true },
    { tensorTypes: [{ pattern: 'attn_v', type: 'Q8_0' }, { pattern: 'ffn_down', type: 'Q5_K' }] },
    // a partial override skips llama.cpp's running attn_v count for that tensor
    { tensorTypes: [{ pattern: 'blk\\.0\\.attn_v', type: 'Q6_K' }, { pattern: 'blk\\.[0-3]\\.ffn_(up|gate)', type: 'IQ4_XS' }] },
    { pure: true, tensorTypes: [{ pattern: 'attn_q', type: 'Q2_K' }], outputTensorType: 'Q4_K' },
  ];
  const shapes: Shape[] = [
    { layers: 10, embd: 256, ff: 512, heads: 8, kvHeads: 2, headDim: 32, vocab: 300, tied: true },
    { layers: 9, embd: 256, ff: 512, heads: 4, kvHeads: 4, headDim: 64, vocab: 300, tied: false },
    { layers: 5, embd: 64, ff: 160, heads: 4, kvHeads: 2, headDim: 16, vocab: 300, tied: true },
  ];
  for (const s of shapes) for (const o of sets) for (const ftype of FTYPES) compare(s, { ftype, ...o });
});

test('row fallback table: each entry is what llama.cpp picks for a tensor whose rows are not whole blocks', { skip }, () => {
  // a --pure file of the type itself, one [4, 96] tensor: 96 is not a multiple of 256 (and not of 64)
  const want: [GgmlType, number][] = (Object.keys(ROW_FALLBACK) as GgmlType[]).map((t) => [t, GGML_TYPES[t].blockSize === 64 ? 96 : 64]);
  for (const [type, k] of want) {
    const shape = { layers: 1, embd: k, ff: 256, heads: 2, kvHeads: 2, headDim: k / 2, vocab: 64, tied: false };
    const tensors = tensorsOf(shape);
    const theirs = ref!.llamaCppTensorTypes({ arch: 'llama', nEmbd: k, nFf: 256, nLayer: 1, nHead: 2, nHeadKv: 2, headDim: k / 2 }, tensors.map((t) => ({ name: t.name, ne: [...t.shape].reverse() })), {
      ftype: 'Q8_0', pure: true, tensorTypes: [{ pattern: 'attn_q', type }],
    });
    assert.equal(theirs.get('blk.0.attn_q.weight'), rowFallback(type, k), `${type} on rows of ${k}`);
  }
  assert.throws(() => rowFallback('Q1_0', 64, 't'), /no tensor type fallback is defined for type Q1_0/);
});

test('roles follow llama.cpp\'s categories (substrings, exact names for embedding and output)', () => {
  assert.equal(ggufTensorRole('blk.3.ffn_down_exps.weight'), 'ffn_down');
  assert.equal(ggufTensorRole('blk.0.attn_qkv.weight'), 'attn_qkv');
  assert.equal(ggufTensorRole('output.weight'), 'output');
  assert.equal(ggufTensorRole('output_norm.weight'), 'other');
  assert.equal(ggufTensorRole('token_embd.weight'), 'token_embd');
});

test('the file type that labels a file of one tensor type (QAT exports): same name, else the _S mix, else none', () => {
  assert.equal(ftypeForTensorType('Q4_0'), 'Q4_0');
  assert.equal(ftypeForTensorType('TQ2_0'), 'TQ2_0');
  assert.equal(ftypeForTensorType('Q2_K'), 'Q2_K');
  assert.equal(ftypeForTensorType('Q3_K'), 'Q3_K_S');
  assert.equal(ftypeForTensorType('Q4_K'), 'Q4_K_S');
  // IQ3_S is a file type of its own (IQ3_XS, whose base is also IQ3_S, is not chosen)
  assert.equal(ftypeForTensorType('IQ3_S'), 'IQ3_S');
  assert.equal(ftypeForTensorType('Q8_1'), undefined);
  for (const t of Object.keys(GGML_TYPES) as GgmlType[]) {
    const f = ftypeForTensorType(t);
    if (f) assert.equal(LLAMA_FTYPES[f].base, t, t);
  }
});
