// `bitscale quantize` RTN throughput on a generated multi-GB model (llama2.c float32 checkpoint,
// random weights written tensor by tensor) against a plain file copy of the same bytes, the floor
// for any tool that reads the model once and writes it once. Usage: npm run bench quantize-model
// Size: BITSCALE_BENCH_LAYERS (default 32 → ≈1.8 GB; hidden 1024, ffn 2816, vocab 32000).
// Q4_K is measured on a 4-layer model of the same width (its quantizer is far slower, see output).
import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelConfig } from '../src/model/config.js';
import { saveModel } from '../src/model/save.js';
import { quantizeModel } from '../src/pipeline/quantize/quantize.js';
import { fmt, generatedModel } from './util.js';

function config(nLayers: number): ModelConfig {
  return {
    architecture: 'llama', vocabSize: 32000, hiddenSize: 1024, intermediateSize: 2816, nLayers, nHeads: 16, nKvHeads: 16, headDim: 64,
    maxSeqLen: 2048, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeLayout: 'interleaved', tiedEmbeddings: true,
    attentionBias: false, qkNorm: false, bosTokenId: 1, eosTokenId: 2,
  };
}


async function timed(fn: () => Promise<unknown>): Promise<number> {
  const t = performance.now();
  await fn();
  return (performance.now() - t) / 1000;
}

export default async function (): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'bitscale-bench-'));
  try {
    const layers = Number(process.env.BITSCALE_BENCH_LAYERS ?? 32);
    const src = join(dir, 'model.bin');
    const tGen = await timed(() => saveModel(generatedModel(config(layers)), src, { format: 'llama2c' }));
    const bytes = (await stat(src)).size;
    const gb = bytes / 1e9;
    console.log(`generated ${fmt(gb, 2)} GB llama2.c model (${layers} layers) in ${fmt(tGen)} s`);
    const tCopy = await timed(() => copyFile(src, join(dir, 'copy.bin')));
    await rm(join(dir, 'copy.bin'));
    console.log(`plain file copy: ${fmt(tCopy, 2)} s (${fmt(gb / tCopy, 2)} GB/s)`);
    for (const scheme of ['q8_0', 'q4_0']) {
      const out = join(dir, `${scheme}.gguf`);
      const t = await timed(() => quantizeModel({ model: src, out, format: 'gguf', scheme, method: 'rtn', verify: false, tokenizer: null }));
      const ob = (await stat(out)).size;
      console.log(`RTN ${scheme}: ${fmt(t, 2)} s (${fmt(gb / t, 3)} GB/s in; ${fmt(t / tCopy, 1)}× the copy; output ${fmt(ob / 1e9, 2)} GB; includes sha256 of the input for the manifest)`);
      await rm(out);
    }
    const small = join(dir, 'small.bin');
    await saveModel(generatedModel(config(4)), small, { format: 'llama2c' });
    const sgb = (await stat(small)).size / 1e9;
    const tq = await timed(() => quantizeModel({ model: small, out: join(dir, 'k.gguf'), format: 'gguf', scheme: 'q4_k', method: 'rtn', verify: false, tokenizer: null }));
    console.log(`RTN q4_k on a ${fmt(sgb, 2)} GB 4-layer model: ${fmt(tq, 1)} s (${fmt(sgb / tq, 4)} GB/s in; projected ${fmt((gb / sgb) * tq, 0)} s for the ${fmt(gb, 2)} GB model)`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
