// Peak memory of `bitscale quantize --method gptq --format gguf` on a generated model: the
// streaming path (--no-verify: one decoder block in memory, pipeline/quantize/block-stream.ts) against the
// whole-model path (the same run with keepHost, which loads every tensor as float32 first). Each
// variant runs in a fresh child process (bench/quantize-memory-child.ts) and reports its own
// process.resourceUsage().maxRSS. Usage: npm run bench quantize-memory
// Size: BITSCALE_BENCH_LAYERS (default 96) × BITSCALE_BENCH_HIDDEN (default 256; ffn 2.75×, heads of
// 64) → ≈0.31 GB float32; vocab 1024 so that the default model's tokenizer serves. Narrow and deep
// because GPTQ's time per byte grows with the width (N·K² work for N·K weights) while the memory
// question is about the model's size. GPTQ Q4_0 on 2 windows of 32 tokens.
import { spawnSync } from 'node:child_process';
import { copyFile, mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ModelConfig } from '../src/model/config.js';
import { saveModel } from '../src/model/save.js';
import { fmt, generatedModel } from './util.js';

function config(nLayers: number, E: number): ModelConfig {
  return {
    architecture: 'llama', vocabSize: 1024, hiddenSize: E, intermediateSize: (E * 11) / 4, nLayers, nHeads: E / 64, nKvHeads: E / 64, headDim: 64,
    maxSeqLen: 2048, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeLayout: 'interleaved', tiedEmbeddings: true,
    attentionBias: false, qkNorm: false, bosTokenId: 1023, eosTokenId: 1023,
  };
}


export default async function (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bitscale-bench-mem-'));
  try {
    const layers = Number(process.env.BITSCALE_BENCH_LAYERS ?? 96);
    const E = Number(process.env.BITSCALE_BENCH_HIDDEN ?? 256);
    const c = config(layers, E);
    const model = join(dir, 'model');
    await saveModel(generatedModel(c), model, { format: 'hf', dtype: 'F32' });
    await copyFile(resolve('assets/default-model/tokenizer.json'), join(model, 'tokenizer.json'));
    const f32 = (await stat(join(model, 'model.safetensors'))).size;
    const block = (4 * E * E + 3 * E * c.intermediateSize) * 4;
    console.log(`generated model: ${layers} layers, hidden ${E}, ffn ${c.intermediateSize}, vocab 1024; float32 safetensors ${fmt(f32 / 1e6, 0)} MB (one block ${fmt(block / 1e6, 1)} MB)`);
    const rows: Record<string, { seconds: number; maxRssBytes: number }> = {};
    for (const variant of ['streaming', 'whole']) {
      const out = join(dir, `${variant}.gguf`);
      const r = spawnSync(process.execPath, ['--import', 'tsx', resolve('bench/quantize-memory-child.ts'), variant, model, out, '2', '32'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
      if (r.status !== 0) throw new Error(`${variant} child failed: ${r.stderr}`);
      const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as { seconds: number; maxRssBytes: number };
      rows[variant] = res;
      console.log(`GPTQ Q4_0 ${variant.padEnd(9)}: peak RSS ${fmt(res.maxRssBytes / 1e6, 0)} MB, ${fmt(res.seconds, 1)} s`);
    }
    const same = (await readFile(join(dir, 'streaming.gguf'))).equals(await readFile(join(dir, 'whole.gguf')));
    console.log(`peak RSS whole / streaming: ${fmt(rows.whole.maxRssBytes / rows.streaming.maxRssBytes, 2)}×; outputs byte-identical: ${same}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
