// Child process of calib-runtime.bench.ts: one `quantize --method gptq --scheme int4-g128
// --no-verify` run with the given calibration runtime and thread count, in a fresh process (the
// portable runtime fixes its thread pool when its first session opens). Prints one JSON line: the
// run's own seconds (quantizeModel's report), the process's CPU seconds, and the output's sha256.
// Usage: node --import tsx bench/calib-runtime-child.ts <model> <out> <native|portable> <threads> [windows seqLen vocab]
// (with windows/seqLen/vocab: calibration windows of synthetic token ids, for generated models,
// whose vocabulary cannot encode text; otherwise the built-in text at the CLI's default size)
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { setPortableThreads } from '../src/engine/ort-portable.js';
import { quantizeModel } from '../src/pipeline/quantize/quantize.js';
import { syntheticTokens } from './gen-llama.js';

const [model, out, runtime, threadsArg, windowsArg, seqArg, vocabArg] = process.argv.slice(2);
const threads = Number(threadsArg);
if (runtime === 'portable') setPortableThreads(threads);
let calibTokens: number[][] | undefined;
if (windowsArg) {
  const W = Number(windowsArg), T = Number(seqArg);
  const ids = syntheticTokens(W * (T - 1), Number(vocabArg), 7);
  calibTokens = Array.from({ length: W }, (_, w) => [1, ...ids.slice(w * (T - 1), (w + 1) * (T - 1))]);
}
const cpu0 = process.cpuUsage();
const r = await quantizeModel({
  model, out, scheme: 'int4-g128', method: 'gptq', format: 'safetensors', seed: 0, verify: false, overwrite: true,
  calibRuntime: runtime as 'native' | 'portable', calibTokens,
});
const cpu = process.cpuUsage(cpu0);
const sha = createHash('sha256').update(readFileSync(join(out, 'model.safetensors'))).digest('hex');
console.log(JSON.stringify({ runtime, threads, seconds: r.seconds, cpuSeconds: (cpu.user + cpu.system) / 1e6, sha256: sha }));
