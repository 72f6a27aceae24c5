// One side of `npm run bench scale-eval`, in its own process so that its peak RSS is its own:
//   node --import tsx bench/scale-eval-child.ts engine|llamacpp GGUF CTX WINDOWS THREADS [ACCURACY_LEVEL]
// Evaluates perplexity on the same synthetic windows (BOS + ctx − 1 seeded token ids each, every
// token scored) and prints one JSON line: seconds to load/prepare, seconds and tokens/s of the
// evaluation, mean NLL, peak RSS (VmHWM), the allocator settings in effect and, for the engine, how
// its weights ran.
import { readFileSync } from 'node:fs';
import { LlamaEngine } from '../src/engine/model.js';
import { summarizeWeightPaths } from '../src/engine/native-host.js';
import { engineModel, makeWindows, perplexity } from '../src/eval/index.js';
import { loadModel } from '../src/model/load.js';
import { openLlamaCpp } from '../src/eval/llamacpp.js';
import { allocatorSettings } from '../src/cli/relaunch.js';
import { syntheticTokens } from './gen-llama.js';

function peakRssMb(): number {
  return Number(/VmHWM:\s+(\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))![1]) / 1024;
}

const [side, gguf, ctxS, windowsS, threadsS, accS] = process.argv.slice(2);
const ctx = Number(ctxS);
const windows = Number(windowsS);
const threads = Number(threadsS);
const t0 = performance.now();
const m = await loadModel(gguf);
const V = m.config.vocabSize;
const ids = syntheticTokens(windows * (ctx - 1), V);
const win = { ctx, bosId: 1, maxWindows: windows };
const fed = makeWindows(ids, win).reduce((a, w) => a + w.tokens.length, 0);
let result: Record<string, unknown>;
if (side === 'engine') {
  // SCALE_EVAL_SCORE_CHUNK: tokens per scoring run (default: the engine's, 128 on this model; 512 = one run per window)
  const scoreChunk = process.env.SCALE_EVAL_SCORE_CHUNK ? Number(process.env.SCALE_EVAL_SCORE_CHUNK) : undefined;
  const e = await LlamaEngine.create(m, { native: true, session: { threads }, accuracyLevel: Number(accS ?? 0), scoreChunk });
  const prepareS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  const r = await perplexity(engineModel(e), ids, win);
  const evalS = (performance.now() - t1) / 1000;
  result = { side, prepareS, evalS, tokens: fed, tokS: fed / evalS, nll: r.nll, paths: summarizeWeightPaths(e.host.weightPaths!) };
  await e.close();
} else {
  const ref = await openLlamaCpp(gguf, ctx, V, threads);
  const prepareS = (performance.now() - t0) / 1000;
  const t1 = performance.now();
  let s = 0;
  let n = 0;
  for (const w of makeWindows(ids, win)) {
    const lp = await ref.logProbs(w.tokens);
    for (const row of w.rows) {
      s -= lp[row];
      n++;
    }
  }
  const evalS = (performance.now() - t1) / 1000;
  result = { side, prepareS, evalS, tokens: fed, tokS: fed / evalS, nll: s / n };
  await ref.close();
}
await m.close();
console.log(JSON.stringify({ ...result, peakRssMb: peakRssMb(), allocator: allocatorSettings() }));
