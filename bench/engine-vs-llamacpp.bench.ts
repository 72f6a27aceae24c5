// Perplexity throughput (tokens evaluated per second, medians over repeats) of the engine vs
// llama.cpp (node-llama-cpp) on the same GGUF, text and context, measured in the same run and
// printed as a ratio. Both get the same thread count (BENCH_THREADS, default 2). llama.cpp runs
// with F32 KV cache and flash attention off (the settings under which its logits are exact), and
// returns only the target and top logits per position (the cheap perplexity request).
// Cases: stories260K F32, and a generated 21M Llama as F32, Q8_0 and Q4_0 GGUFs.
// Usage: npm run bench engine-vs-llamacpp     (needs ../shared for the model, tokenizer and text)
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { loadModel } from '../src/model/load.js';
import { saveModel } from '../src/model/save.js';
import { LlamaEngine } from '../src/engine/model.js';
import { engineModel, makeWindows, perplexity } from '../src/eval/index.js';
import type { ModelWeights } from '../src/model/weights.js';
import type { GgmlType } from '../src/core/dtype.js';
import type { QuantTensor } from '../src/core/tensor.js';
import { quantizeGgml } from '../src/quant/ggml/index.js';
import { randomWeights, tinyConfig } from '../test/engine/fixtures.js';
import { openLlamaCpp } from '../src/eval/llamacpp.js';
import { fmt, median } from './util.js';

const SHARED = resolve('..', 'shared');
const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const REPEATS = 3;

const LINEAR = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

/**
 * Writes `w` as GGUF (linear weights in `ggml` when given, quantized by our bit-exact ggml codec)
 * and times both runtimes on it. The engine evaluates quantized GGUFs on dequantized float weights;
 * llama.cpp runs its quantized kernels (and quantizes activations to 8 bits inside them).
 */
async function compare(label: string, w: ModelWeights, gguf: string, ids: number[], ctx: number, windows: number, ggml?: GgmlType): Promise<void> {
  await saveModel(w, gguf, {
    format: 'gguf',
    overwrite: true,
    tensorType: (n) => (ggml && LINEAR.test(n) ? ggml : undefined),
    tensor: async (n, src): Promise<QuantTensor | null> => {
      if (!ggml || !LINEAR.test(n)) return null;
      const [N, K] = src.shape;
      return { type: ggml, shape: src.shape, bytes: quantizeGgml(ggml, await src.readF32(), N, K) };
    },
  });
  const m = await loadModel(gguf);
  const eng = await LlamaEngine.create(m, { session: { threads: THREADS } });
  const ref = await openLlamaCpp(gguf, ctx, m.config.vocabSize, THREADS);
  const win = { ctx, bosId: 1, maxWindows: windows };
  const wins = makeWindows(ids, win);
  const fed = wins.reduce((a, x) => a + x.tokens.length, 0);
  await perplexity(engineModel(eng), ids, { ...win, maxWindows: 1 }); // build and warm the session
  const tE: number[] = [];
  const tL: number[] = [];
  let nllE = 0;
  let nllL = 0;
  for (let r = 0; r < REPEATS; r++) {
    let t0 = performance.now();
    nllE = (await perplexity(engineModel(eng), ids, win)).nll;
    tE.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    let s = 0;
    let n = 0;
    for (const x of wins) {
      const lp = await ref.logProbs(x.tokens);
      for (const row of x.rows) {
        s -= lp[row];
        n++;
      }
    }
    nllL = s / n;
    tL.push((performance.now() - t0) / 1000);
  }
  const e = fed / median(tE);
  const l = fed / median(tL);
  console.log(
    `${label}: ctx ${ctx}, ${wins.length} windows, ${fed} tokens, ${THREADS} threads | engine ${fmt(e, 0)} tok/s (nll ${nllE.toFixed(5)}) | ` +
      `llama.cpp ${fmt(l, 0)} tok/s (nll ${nllL.toFixed(5)}) | engine/llama.cpp = ${fmt(e / l, 2)}x`,
  );
  // prompt processing alone (llama.cpp returns no logits; the engine returns all of them)
  const tFe: number[] = [];
  const tFl: number[] = [];
  for (let r = 0; r < REPEATS; r++) {
    let t0 = performance.now();
    for (const x of wins) await eng.forward(x.tokens);
    tFe.push((performance.now() - t0) / 1000);
    t0 = performance.now();
    for (const x of wins) await ref.evaluate(x.tokens);
    tFl.push((performance.now() - t0) / 1000);
  }
  const fe = fed / median(tFe);
  const fl = fed / median(tFl);
  console.log(`${label}: forward only | engine ${fmt(fe, 0)} tok/s | llama.cpp ${fmt(fl, 0)} tok/s | engine/llama.cpp = ${fmt(fe / fl, 2)}x`);
  await ref.close();
  await eng.close();
  await m.close();
}

export default async function (): Promise<void> {
  if (!existsSync(SHARED)) {
    console.log('skipped: needs ../shared (stories260K model, tokenizer and text)');
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-bench-'));
  try {
    const stories = await loadModel(resolve(SHARED, 'models/stories260K/stories260K.bin'));
    const text = readFileSync(resolve(SHARED, 'data/tinystories-valid-excerpt.txt'), 'utf8');
    const ids = stories.tokenizer!.encode(text, { bos: false });
    await compare('stories260K (0.26M params)', stories, join(dir, 's.gguf'), ids, 256, 8);
    // a generated 8-layer Llama, E = 512, F = 1536, GQA 8/4, the stories vocabulary (~21M params)
    const c = tinyConfig({ vocabSize: 512, hiddenSize: 512, intermediateSize: 1536, nLayers: 8, nHeads: 8, nKvHeads: 4, headDim: 64, ropeLayout: 'half', maxSeqLen: 512 });
    const gen = { ...randomWeights(c, 5), tokenizer: stories.tokenizer };
    await compare('generated Llama (21M params), F32', gen, join(dir, 'g.gguf'), ids, 512, 4);
    await compare('generated Llama (21M params), Q8_0 linears', gen, join(dir, 'g8.gguf'), ids, 512, 4, 'Q8_0');
    await compare('generated Llama (21M params), Q4_0 linears', gen, join(dir, 'g4.gguf'), ids, 512, 4, 'Q4_0');
    await stories.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
