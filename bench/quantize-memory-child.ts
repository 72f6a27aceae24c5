// Child process of quantize-memory.bench.ts: one quantizeModel run in a fresh process, printing
// its peak resident set size (so each variant's figure is its own, not the parent's high-water mark).
// Usage: node --import tsx bench/quantize-memory-child.ts <streaming|whole> <model dir> <out.gguf> <windows> <seqLen>
import { quantizeModel } from '../src/pipeline/quantize/quantize.js';

const [variant, model, out, windows, seqLen] = process.argv.slice(2);
const t = performance.now();
// verify off in both; keepHost sends the run down the whole-model path (one float copy of the model)
const r = await quantizeModel({
  model, out, format: 'gguf', scheme: 'q4_0', method: 'gptq', windows: Number(windows), seqLen: Number(seqLen), verify: false, overwrite: true,
  keepHost: variant === 'whole',
});
const seconds = (performance.now() - t) / 1000;
console.log(JSON.stringify({ variant, seconds, maxRssBytes: process.resourceUsage().maxRSS * 1024, tensors: r.tensors.length }));
