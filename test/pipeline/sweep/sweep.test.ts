// The sweep end to end on the real stories260K model, its point planner, and resume.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { planPoints, defaultGroupSize } from '../../../src/pipeline/sweep/plan.js';
import { runSweep } from '../../../src/pipeline/sweep/sweep.js';
import type { ModelConfig } from '../../../src/model/config.js';
import { sharedPath, sharedSkip, tempDir } from '../../helpers.js';

const MODEL = sharedPath('models', 'stories260K', 'stories260K.bin');
const TEXT = sharedPath('data', 'tinystories-valid-excerpt.txt');
const noShared = sharedSkip('models/stories260K/stories260K.bin', 'data/tinystories-valid-excerpt.txt');

function cfg(hidden: number, inter: number): ModelConfig {
  return {
    architecture: 'llama', vocabSize: 512, hiddenSize: hidden, intermediateSize: inter, nLayers: 2, nHeads: 4, nKvHeads: 4, headDim: hidden / 4,
    maxSeqLen: 256, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeLayout: 'half', tiedEmbeddings: true, attentionBias: false, qkNorm: false,
    bosTokenId: 1, eosTokenId: 2,
  };
}

test('planner: K-quants only where every row is a multiple of 256; GPTQ on every K-quant and legacy type', () => {
  const big = planPoints(cfg(256, 768), { bits: [2, 4, 8], methods: ['rtn', 'gptq'], formats: ['gguf'] }).map((p) => p.id);
  assert.deepEqual(big, ['base-f32', 'rtn-q2_k', 'gptq-q2_k', 'rtn-q4_k', 'gptq-q4_k', 'rtn-q8_0', 'gptq-q8_0']);
  const small = planPoints(cfg(128, 384), { bits: [2, 4], methods: ['rtn'], formats: ['gguf', 'safetensors'] }).map((p) => p.id);
  // no 2-bit ggml type exists for 128-wide rows; the int point stands in
  assert.deepEqual(small, ['base-f32', 'rtn-int2-g128', 'rtn-q4_0', 'rtn-int4-g128']);
  assert.equal(defaultGroupSize(cfg(64, 172)), 0);
  assert.throws(() => planPoints(cfg(128, 384), { bits: [7], methods: ['rtn'], formats: ['gguf'] }), /unsupported bit width/);
});

test('sweep on stories260K: ordered quality, frontier, files, report, and resume', { skip: noShared }, async () => {
  const dir = tempDir('bitscale-sweep-');
  const opts = {
    model: MODEL,
    text: TEXT,
    outDir: dir,
    grid: { bits: [4, 8], methods: ['rtn' as const], formats: ['gguf' as const] },
    ctx: 128,
    maxTokens: 512,
    sensitivity: false as const,
    verify: false,
  };
  const r = await runSweep(opts);
  const by = new Map(r.record.points.map((p) => [p.id, p]));
  assert.deepEqual([...by.keys()], ['base-f32', 'rtn-q4_0', 'rtn-q8_0']);
  const base = by.get('base-f32')!;
  const q8 = by.get('rtn-q8_0')!;
  const q4 = by.get('rtn-q4_0')!;
  assert.equal(base.kld, 0);
  assert.equal(base.top1, 1);
  // Q8_0 is nearly lossless, Q4_0 is not: KLD orders them and PPL stays within 1% for Q8_0
  assert.ok(q8.kld < q4.kld, `kld q8 ${q8.kld} vs q4 ${q4.kld}`);
  assert.ok(Math.abs(q8.ppl / base.ppl - 1) < 0.01, `q8 ppl ${q8.ppl} vs base ${base.ppl}`);
  assert.ok(q4.fileBytes > 0 && q8.fileBytes > q4.fileBytes);
  // bits per weight over the linears only (the recipe's quantized embedding is in the file size, not
  // here): per layer q 64×64, k and v 32×64, o 64×64, gate and up 172×64 in the file type's base
  // type, down_proj (K = 172, not whole 32-blocks) F16 as llama.cpp falls back
  const lin = (b: number) => (34304 * b + 11008 * 16) / 45312;
  assert.ok(Math.abs(q4.bpw - lin(4.5)) < 1e-12 && Math.abs(q8.bpw - lin(8.5)) < 1e-12, `bpw ${q4.bpw} ${q8.bpw}`);
  // KL divergence: the float model is the reference (0) and Q8_0 measurably closer to it than Q4_0
  assert.ok(base.onFrontierKld && q8.onFrontierKld, 'float and Q8_0 on the KL frontier');
  assert.ok(q8.kldLo! <= q8.kld && q8.kld <= q8.kldHi! && q8.kldHi! < q4.kldLo!, 'Q8_0 and Q4_0 KL intervals do not overlap');
  // perplexity: Q8_0 is within noise of the float model, so the larger float model is not on the PPL frontier
  assert.equal(base.onFrontier, false);
  assert.ok(q8.dnllLo! <= 0, `Q8_0 paired ΔNLL interval ${q8.dnllLo}..${q8.dnllHi} reaches 0`);
  assert.ok(r.record.recommendations?.some((c) => c.runtime === 'gguf' && c.pointId === 'rtn-q8_0'));
  assert.match(q4.evalCommand!, /eval .*rtn-q4_0\.gguf --text .* --ctx 128 --max-tokens 512 --base /);
  assert.ok(q4.pplLo <= q4.ppl && q4.ppl <= q4.pplHi);
  assert.match(readFileSync(r.report, 'utf8'), /<svg[^>]*id="frontier-chart"/);
  assert.match(readFileSync(r.csv, 'utf8').split('\n')[0], /^id,method,scheme/);
  // resume: a second run keeps every finished point (same numbers, no recomputation)
  const written = statSync(join(dir, 'points', 'rtn-q4_0.gguf')).mtimeMs;
  const again = await runSweep(opts);
  assert.deepEqual(again.record.points.map((p) => [p.id, p.nll, p.kld]), r.record.points.map((p) => [p.id, p.nll, p.kld]));
  // no point was quantized again: its file is the one the first run wrote
  assert.equal(statSync(join(dir, 'points', 'rtn-q4_0.gguf')).mtimeMs, written);
});

test('sweep int point: bits per weight are the scheme\'s (codes plus F32 per-channel scales), counted by hand', { skip: noShared, timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-sweep-int-');
  const r = await runSweep({
    model: MODEL, text: TEXT, outDir: dir, grid: { bits: [4], methods: ['rtn' as const], formats: ['safetensors' as const] },
    ctx: 64, maxTokens: 256, sensitivity: false as const, verify: false,
  });
  const p = r.record.points.find((x) => x.id.startsWith('rtn-int4'))!;
  assert.equal(p.scheme, 'int4-channel');
  // stories260K, per layer: q/o [64, 64], k/v [32, 64] (4 KV heads of 8), gate/up [172, 64], down [64, 172]
  // = 45,312 weights at 4 bits plus one F32 scale per row: 32·(64 + 32 + 32 + 64 + 172 + 172 + 64) = 19,200
  // bits → 4 + 19,200/45,312 = 4 + 25/59
  assert.ok(Math.abs(p.bpw - (4 + 25 / 59)) < 1e-12, `bpw ${p.bpw}`);
});

test('sweep QAT point: the packed checkpoint is evaluated and its real size is reported', { skip: noShared, timeout: 180_000 }, async () => {
  const dir = tempDir('bitscale-sweep-qat-');
  const r = await runSweep({
    model: MODEL, text: TEXT, outDir: dir, grid: { bits: [2], methods: ['qat' as const], formats: ['safetensors' as const] },
    ctx: 64, maxTokens: 256, sensitivity: false as const, verify: false, qatText: [TEXT], qatSteps: 2,
  });
  const q = r.record.points.find((p) => p.method === 'qat');
  assert.ok(q, `points: ${r.record.points.map((p) => p.id).join(', ')}`);
  // GPTQ-packed linears (2-bit SEQ in 3-bit words) and F32 embeddings: well under the F32 checkpoint
  assert.ok(q.fileBytes > 0 && q.fileBytes < statSync(MODEL).size, `QAT file ${q.fileBytes} B vs float ${statSync(MODEL).size} B`);
  assert.ok(Number.isFinite(q.ppl) && q.kld > 0);
});
