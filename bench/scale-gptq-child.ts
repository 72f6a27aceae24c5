// Child process of scale-gptq.bench.ts: one `quantize --method gptq --scheme q4_k --no-verify` run
// on a generated model, in a fresh process so that its peak RSS is its own. Prints one JSON line:
// wall and CPU time, time per phase (attributed from the pipeline's progress events: the time up to an
// event belongs to the step it reports), peak RSS, and a side measurement on layer 0 that splits
// the statistics pass into forward and Hessian accumulation (up to 16 of the windows through the
// graph with and without Gram matrices), taken after the peak RSS was read, and the allocator
// settings in effect (the bench starts it with the CLI's: src/cli/relaunch.ts).
// Usage: node --import tsx bench/scale-gptq-child.ts <model.gguf> <out.gguf> <windows> <seqLen>
import { loadModel } from '../src/model/load.js';
import { quantizeModel } from '../src/pipeline/quantize/quantize.js';
import { CalibrationRunner, embedWindowStates, newGraphSiteStats } from '../src/pipeline/calibrate/batch.js';
import { Worker } from 'node:worker_threads';
import { allocatorSettings } from '../src/cli/relaunch.js';
import { syntheticTokens } from './gen-llama.js';

const [model, out, windowsArg, seqArg] = process.argv.slice(2);
const W = Number(windowsArg), T = Number(seqArg);
const V = 128256;
const ids = syntheticTokens(W * (T - 1), V, 7);
const calibTokens = Array.from({ length: W }, (_, w) => [1, ...ids.slice(w * (T - 1), (w + 1) * (T - 1))]);

type Phase = 'pass1' | 'pass2' | 'solve' | 'other';
const phases: Record<Phase, number> = { pass1: 0, pass2: 0, solve: 0, other: 0 };
// CPU seconds of the process (all its threads: onnxruntime's included) per phase, since on a shared
// machine wall time measures the other tenants as much as this run
const phasesCpu: Record<Phase, number> = { pass1: 0, pass2: 0, solve: 0, other: 0 };
const cpuS = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};
const phaseOf = (detail: string): Phase =>
  detail.startsWith('calibration statistics') ? 'pass1' : detail.startsWith("next layer's inputs") ? 'pass2' : /columns|factoring|rounded/.test(detail) ? 'solve' : 'other';
// resident memory sampled every 10 ms by a worker thread (so that long synchronous stretches of the
// main thread are seen too), the maximum kept per phase (the phase of the last progress event)
const labels: string[] = ['start'];
const shared = new Int32Array(new SharedArrayBuffer(8));
const sampler = new Worker(
  `const { parentPort, workerData } = require('node:worker_threads');
   const cur = new Int32Array(workerData);
   const max = {};
   const t = setInterval(() => { const r = process.memoryUsage.rss(); const l = Atomics.load(cur, 0); if (!(max[l] >= r)) max[l] = r; }, 10);
   parentPort.on('message', () => { clearInterval(t); parentPort.postMessage(max); });`,
  { eval: true, workerData: shared.buffer },
);
let current = 'start';
const setPhase = (label: string): void => {
  if (label === current) return;
  current = label;
  let i = labels.indexOf(label);
  if (i < 0) i = labels.push(label) - 1;
  Atomics.store(shared, 0, i);
};
const t0 = performance.now();
const c0 = cpuS();
let last = t0;
let lastCpu = c0;
let lastLayerLine = '';
const r = await quantizeModel({
  model, out, format: 'gguf', scheme: process.env.SCALE_GPTQ_SCHEME ?? 'q4_k', method: 'gptq', calibTokens, verify: false, overwrite: true,
  onProgress: (e) => {
    const now = performance.now();
    const ph = e.task.startsWith('quantize layer') ? phaseOf(e.detail ?? '') : 'other';
    phases[ph] += (now - last) / 1000;
    last = now;
    const cpu = cpuS();
    phasesCpu[ph] += cpu - lastCpu;
    lastCpu = cpu;
    if (process.env.SCALE_GPTQ_GC && typeof (globalThis as { gc?: () => void }).gc === 'function' && /layer start|factoring/.test(e.detail ?? '')) (globalThis as { gc?: () => void }).gc!();
    if (process.env.SCALE_GPTQ_MEM_TRACE) {
      const m = process.memoryUsage();
      process.stderr.write(`${((now - t0) / 1000).toFixed(1)} ${e.detail ?? e.task}: rss ${m.rss >> 20} heap ${m.heapUsed >> 20}/${m.heapTotal >> 20} external ${m.external >> 20} arrayBuffers ${m.arrayBuffers >> 20}\n`);
    }
    setPhase(e.task.startsWith('quantize layer') ? (ph === 'solve' ? `solve ${(e.detail ?? '').split(' ')[0]}` : ph) : e.task);
    if (e.task === 'quantize' && e.detail !== lastLayerLine) {
      lastLayerLine = e.detail ?? '';
      process.stderr.write(`  ${e.detail} done at ${((now - t0) / 1000).toFixed(0)} s\n`);
    }
  },
});
const seconds = (performance.now() - t0) / 1000;
phases.other += (performance.now() - last) / 1000;
phasesCpu.other += cpuS() - lastCpu;
const cpuSeconds = cpuS() - c0;
setPhase('manifest');
const maxRssBytes = process.resourceUsage().maxRSS * 1024;
const byIndex = await new Promise<Record<number, number>>((res) => {
  sampler.once('message', res);
  sampler.postMessage('stop');
});
await sampler.terminate();
const rssMax = Object.fromEntries(Object.entries(byIndex).map(([i, v]) => [labels[Number(i)], v]));

// split of the statistics pass: layer 0, same windows, with and without Gram matrices
// (SCALE_GPTQ_SPLIT=0 leaves it out: memory runs need only the figures above)
let statsGram = NaN, statsNoGram = NaN, statsGramCpu = NaN, statsNoGramCpu = NaN, windowsPerRun = NaN;
if (process.env.SCALE_GPTQ_SPLIT !== '0') {
  const w = await loadModel(model);
  const c = w.config;
  const emb = await w.tensors.get('model.embed_tokens.weight')!.readF32();
  // the split is a ratio: 16 windows are enough to measure it
  const xs = embedWindowStates(emb, c.hiddenSize, calibTokens.slice(0, Math.min(W, 16)));
  const layer = new Map<string, Float32Array>();
  for (const [n, s] of w.tensors) if (n.startsWith('model.layers.0.')) layer.set(n, await s.readF32());
  await w.close();
  const runner = new CalibrationRunner(c, T);
  const timeStats = async (gram: boolean): Promise<[number, number]> => {
    const t = performance.now(), cpu = cpuS();
    await runner.run(0, (n) => layer.get(n)!, xs, { stats: newGraphSiteStats(c, gram), forward: false });
    return [(performance.now() - t) / 1000, cpuS() - cpu];
  };
  await timeStats(false); // warm-up: sessions opened
  [statsNoGram, statsNoGramCpu] = await timeStats(false);
  [statsGram, statsGramCpu] = await timeStats(true);
  windowsPerRun = runner.windowsPerRun;
  await runner.close();
}
console.log(JSON.stringify({ seconds, cpuSeconds, phases, phasesCpu, maxRssBytes, rssMax, statsGram, statsNoGram, statsGramCpu, statsNoGramCpu, windowsPerRun, tensors: r.tensors.length, allocator: allocatorSettings() }));
