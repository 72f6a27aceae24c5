// The browser app against Node on the same jobs (npm run bench web):
// 1. time: the default model quantized to Q4_0 (RTN) and int4-g128 (GPTQ on the built-in text) and
//    both evaluated against the float model, in Chromium (the page, onnxruntime-web WASM, one
//    thread) and in Node (the same pipeline calls, onnxruntime-node): wall times and their ratio;
// 2. memory: generated Llamas of 7, 14 and 56 layers (≈50M, ≈100M and ≈400M parameters, F32 GGUF
//    ≈200 MB, ≈400 MB and ≈1.6 GB) opened and quantized to Q4_0 in the page (RTN, no verification: the pipeline's
//    streaming path, one decoder block at a time). The resident memory of the tab's renderer
//    processes (the page and its worker; /proc VmRSS summed, sampled every 100 ms) and of the
//    browser process (where Blobs end up): the growth during the job against the model's size,
//    one block and the output's size. If it follows the block and the output, not the model, the
//    page streams. Per thread (page, job worker, kernel workers): the peak V8 heap and ArrayBuffer
//    backing stores over the DevTools protocol (cdp-heaps.ts), the breakdown of that growth; and
//    Chromium's memory-infra dumps (memory-infra.ts): the renderers' and the browser's memory by
//    owner (malloc, PartitionAlloc partitions, V8 per thread, Oilpan, compositor, shared memory, Blob
//    storage) loaded, at the job's peak, after it and after a full GC (BITSCALE_BENCH_WEB_TRACE_DIR
//    keeps the traces).
//    The 100M job again with Threads 2 (two kernel Web Workers): RTN time 1 vs 2. A table at the end:
//    per model, one tensor's bytes, the output's bytes, and the renderers' and browser's growth.
//    BITSCALE_BENCH_WEB_LAYERS=14,56 runs those models alone (1 thread); BITSCALE_BENCH_WEB_REPEATS=N
//    sets the time job's repeats (default 2).
// Linux only (reads /proc). Needs Debian's chromium.
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ModelConfig } from '../src/model/config.js';
import { quantizeModel } from '../src/pipeline/quantize/quantize.js';
import { runEval } from '../src/pipeline/eval.js';
import { BUILTIN_CALIBRATION_TEXT } from '../src/pipeline/calibrate/text.table.js';
import { buildApp, evaluate, openApp, openFiles, openFolder, quantize } from '../test/web/harness.js';
import { chromiumMissing } from '../test/report/browser.js';
import { writeGeneratedGguf } from './gen-llama.js';
import { TabHeaps, freePort } from './cdp-heaps.js';
import { allocatorTable, dumpIds, dumpOf, dumpSeries, dumpsFromTrace, topAllocators, type ProcessDump } from './memory-infra.js';
import { fmt, median } from './util.js';

const MODEL = 'assets/default-model';
// the time job's size: evaluation on 512 tokens (4 windows of 128), two repeats of page and Node
// taken alternately. With 2,048 tokens and three repeats the job did not finish its first repeat in
// 7 minutes on the shared 2-core VM at a load average of 29
const MAX_TOKENS = 512;
const CTX = 128;
const REPEATS = Number(process.env.BITSCALE_BENCH_WEB_REPEATS) || 2;

function procStatus(pid: number): Record<string, number> {
  const out: Record<string, number> = {};
  try {
    for (const line of readFileSync(`/proc/${pid}/status`, 'utf8').split('\n')) {
      const m = /^(VmRSS|VmHWM):\s+(\d+) kB/.exec(line);
      if (m) out[m[1]] = Number(m[2]) * 1024;
    }
  } catch {
    // the process ended
  }
  return out;
}

/** The kinds of resident memory of a process (/proc/PID/status, bytes): anonymous (heaps: V8, malloc, WebAssembly, ArrayBuffers), file-backed (code pages), shared memory (SharedArrayBuffers, Blob transport). */
interface Rollup {
  rss: number;
  anon: number;
  file: number;
  shmem: number;
}

function rollup(pid: number): Rollup {
  const out: Rollup = { rss: 0, anon: 0, file: 0, shmem: 0 };
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const kb = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? 0) * 1024;
    return { rss: kb('VmRSS'), anon: kb('RssAnon'), file: kb('RssFile'), shmem: kb('RssShmem') };
  } catch {
    return out; // the process ended
  }
}

const addRollups = (a: Rollup, b: Rollup): Rollup => ({ rss: a.rss + b.rss, anon: a.anon + b.anon, file: a.file + b.file, shmem: a.shmem + b.shmem });

/** Threads of a process (each worker is one, plus Chromium's own). */
function threadCount(pid: number): number {
  try {
    return Number(/^Threads:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
  } catch {
    return 0;
  }
}

/** Chromium's processes under `root` (by parent pid), with their --type (browser for the root). */
function chromiumProcs(root: number): { pid: number; type: string }[] {
  const parent = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      parent.set(Number(d), Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]));
    } catch {
      // gone
    }
  }
  const under = (pid: number): boolean => pid === root || (parent.has(pid) && pid !== 1 && under(parent.get(pid)!));
  const out: { pid: number; type: string }[] = [];
  for (const pid of parent.keys()) {
    if (!under(pid)) continue;
    let type = 'browser';
    try {
      type = /--type=(\S+)/.exec(readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' '))?.[1] ?? (pid === root ? 'browser' : 'other');
    } catch {
      continue;
    }
    out.push({ pid, type });
  }
  return out;
}

/** Peaks of the tab while a job runs: the renderers' kinds of memory when their sum was largest, the browser process's RSS, the renderers' threads. */
interface TabPeaks {
  renderer: Rollup;
  browser: number;
  threads: number;
}

/** Samples `now()` every `ms` until the returned stop() (which gives the peaks). */
function samplePeaks(now: () => TabPeaks, ms = 100): { start: TabPeaks; stop: () => TabPeaks } {
  const start = now();
  const peak = { ...start };
  const timer = setInterval(() => {
    const t = now();
    if (t.renderer.rss > peak.renderer.rss) peak.renderer = t.renderer;
    peak.browser = Math.max(peak.browser, t.browser);
    peak.threads = Math.max(peak.threads, t.threads);
  }, ms);
  return {
    start,
    stop: () => {
      clearInterval(timer);
      return peak;
    },
  };
}

/** One model's line of the summary table (bytes). */
interface MemoryRow {
  label: string;
  params: number;
  modelBytes: number;
  largest: number;
  out: number;
  renderer: number;
  browser: number;
  again: number | null;
  seconds: number;
}

/** The Chromium that playwright started: a child of this process. */
function browserPid(): number {
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid && /chrom/i.test(readFileSync(`/proc/${d}/cmdline`, 'utf8'))) return Number(d);
    } catch {
      // gone
    }
  }
  throw new Error('the browser process was not found');
}

async function nodeJob(dir: string, text: string): Promise<number> {
  const t0 = performance.now();
  await quantizeModel({ model: MODEL, out: join(dir, 'q4.gguf'), scheme: 'q4_0', method: 'rtn', seed: 0, checkLlamaCpp: false, overwrite: true });
  await quantizeModel({ model: MODEL, out: join(dir, 'g4'), scheme: 'int4-g128', method: 'gptq', seed: 0, checkLlamaCpp: false, overwrite: true });
  for (const m of ['q4.gguf', 'g4']) await runEval({ model: join(dir, m), text, base: MODEL, maxTokens: MAX_TOKENS, ctx: CTX });
  return (performance.now() - t0) / 1000;
}

async function timeRatio(appDir: string, dir: string): Promise<void> {
  const text = join(dir, 'eval.txt');
  // the evaluation text: the built-in calibration text repeated (the job is about time, not quality)
  await writeFile(text, Array.from({ length: 4 }, () => BUILTIN_CALIBRATION_TEXT).join('\n\n'));
  const app = await openApp(appDir);
  const page: number[] = [];
  const node: number[] = [];
  try {
    for (let rep = 0; rep < REPEATS; rep++) {
      const t0 = performance.now();
      if (await openFolder(app.page, MODEL)) throw new Error('open failed');
      for (const q of [
        { scheme: 'q4_0', method: 'rtn' as const, out: 'q4.gguf' },
        { scheme: 'int4-g128', method: 'gptq' as const, out: 'g4' },
      ]) {
        const m = await quantize(app.page, { ...q, verify: true });
        if (m) throw new Error(`page quantize: ${m}`);
      }
      const ev = await evaluate(app.page, text, MAX_TOKENS, CTX);
      if (ev.message) throw new Error(`page eval: ${ev.message}`);
      page.push((performance.now() - t0) / 1000);
      node.push(await nodeJob(dir, text));
      console.log(`run ${rep + 1}: page ${fmt(page[rep], 1)} s, node ${fmt(node[rep], 1)} s`);
    }
  } finally {
    await app.close();
  }
  console.log(`quantize Q4_0 + GPTQ int4-g128 (verified) and evaluate both (${MAX_TOKENS} tokens, ctx ${CTX}) on the default model:`);
  console.log(`  browser (Chromium, onnxruntime-web WASM, 1 thread) ${fmt(median(page), 1)} s, Node (onnxruntime-node) ${fmt(median(node), 1)} s: browser / Node ${fmt(median(page) / median(node), 2)}×`);
}


async function memory(appDir: string, dir: string, nLayers: number, threads = 1, again = true): Promise<MemoryRow> {
  // 14 layers: ≈100M parameters (hidden 768, FFN 2048, vocabulary 1024, tied); 7 layers: half of it,
  // to show that the peak follows the largest block, not the model's size
  const c: ModelConfig = {
    architecture: 'llama', vocabSize: 1024, hiddenSize: 768, intermediateSize: 2048, nLayers, nHeads: 12, nKvHeads: 12, headDim: 64,
    maxSeqLen: 512, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeLayout: 'half', tiedEmbeddings: true, attentionBias: false, qkNorm: false, bosTokenId: 1, eosTokenId: 2,
  };
  const params = c.vocabSize * c.hiddenSize + c.nLayers * (4 * c.hiddenSize * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize + 2 * c.hiddenSize) + c.hiddenSize;
  const path = join(dir, `gen-${nLayers}l.gguf`);
  const bytes = await writeGeneratedGguf(path, c, 'F32');
  const largest = c.hiddenSize * c.intermediateSize * 4;
  const block = (4 * c.hiddenSize * c.hiddenSize + 3 * c.hiddenSize * c.intermediateSize) * 4;
  console.log(`generated model: ${nLayers} layers, ${fmt(params / 1e6, 1)}M parameters, F32 GGUF ${fmt(bytes / 1e6, 0)} MB, largest tensor ${fmt(largest / 1e6, 1)} MB, one decoder block ${fmt(block / 1e6, 1)} MB`);
  // the DevTools endpoint: per-target heaps (page, job worker, kernel workers) during the job
  const port = await freePort();
  const app = await openApp(appDir, [`--remote-debugging-port=${port}`]);
  try {
    if (threads !== 1) {
      // the Threads setting: onnxruntime-web's threads and the kernel Web Workers of the streaming RTN path
      await app.page.fill('#threads', String(threads));
      await app.page.dispatchEvent('#threads', 'change');
      await app.page.waitForFunction((t) => document.getElementById('backend')!.textContent!.includes(`${t} thread`), threads);
    }
    const root = browserPid();
    const rssOf = (type: string) => chromiumProcs(root).filter((p) => p.type === type).map((p) => procStatus(p.pid).VmRSS ?? 0).reduce((a, b) => a + b, 0);
    // sampled every 100 ms: the renderers hold the page and its worker; Blobs live in the browser process
    // one scan of /proc per sample
    const tab = (): TabPeaks => {
      const ps = chromiumProcs(root);
      const renderers = ps.filter((p) => p.type === 'renderer');
      return {
        renderer: renderers.map((p) => rollup(p.pid)).reduce(addRollups, { rss: 0, anon: 0, file: 0, shmem: 0 }),
        browser: ps.filter((p) => p.type === 'browser').map((p) => procStatus(p.pid).VmRSS ?? 0).reduce((a, b) => a + b, 0),
        threads: renderers.reduce((a, p) => a + threadCount(p.pid), 0),
      };
    };
    await new Promise((r) => setTimeout(r, 1000));
    const heaps = await TabHeaps.connect(port);
    // BITSCALE_BENCH_WEB_ALLOC=1: the job's allocations by site in each thread (collected ones too)
    heaps.allocations = process.env.BITSCALE_BENCH_WEB_ALLOC === '1';
    heaps.start();
    // Chromium's memory-infra: a dump of the loaded tab, dumps during the job (the one at the
    // renderers' highest resident set is reported as the peak), and one after the job
    const traced = await heaps.startMemoryTrace();
    if (traced) await heaps.dump();
    const series = traced ? dumpSeries(heaps) : null;
    const first = samplePeaks(tab);
    const t0 = performance.now();
    let seconds = 0;
    let p1: TabPeaks;
    try {
      const m1 = await openFiles(app.page, path);
      if (m1) throw new Error(`open: ${m1}`);
      const m2 = await quantize(app.page, { scheme: 'q4_0', method: 'rtn', out: `gen-${nLayers}l-q4_0.gguf`, verify: false });
      if (m2) throw new Error(`quantize: ${m2}`);
      seconds = (performance.now() - t0) / 1000;
    } finally {
      p1 = first.stop();
    }
    const peaks = heaps.stop();
    if (heaps.allocations) {
      for (const t of await heaps.allocationSites()) {
        console.log(`  allocations in ${t.target}: ${fmt(t.totalMb, 1)} MB sampled`);
        for (const x of t.sites) console.log(`    ${fmt(x.mb, 1).padStart(7)} MB  ${x.site}`);
      }
    }
    await series?.stop();
    await new Promise((r) => setTimeout(r, 2000));
    if (traced) {
      // after the job, then after a full GC of every thread: what the job left live, against what was garbage not yet collected
      await heaps.dump();
      // twice: objects freed by the first (finalizers, Blink wrappers of V8 objects) go in the second
      await heaps.collectGarbage();
      await heaps.collectGarbage();
      await new Promise((r) => setTimeout(r, 1000));
      await heaps.dump();
    }
    const events = traced ? await heaps.endMemoryTrace() : [];
    // BITSCALE_BENCH_WEB_TRACE_DIR=dir keeps each job's trace (loads in chrome://tracing or Perfetto)
    if (process.env.BITSCALE_BENCH_WEB_TRACE_DIR) await writeFile(join(process.env.BITSCALE_BENCH_WEB_TRACE_DIR, `memory-infra-${nLayers}l.json`), JSON.stringify({ traceEvents: events }));
    const dumps = dumpsFromTrace(events as Parameters<typeof dumpsFromTrace>[0]);
    heaps.close();
    const after = rssOf('renderer');
    const before = first.start.renderer.rss;
    const peak = p1.renderer.rss;
    const out = await app.page.evaluate(() => (window as unknown as { bitscale: { state: { outputs: { output: { files: { blob: Blob }[] } }[] } } }).bitscale.state.outputs[0].output.files[0].blob.size);
    const lag = await app.page.evaluate(() => (window as unknown as { bitscale: { state: { maxLagMs: number } } }).bitscale.state.maxLagMs);
    const mbs = (x: number) => `${fmt(x / 1e6, 0)} MB`;
    const ranOn = await app.page.evaluate(() => (window as unknown as { bitscale: { state: { outputs: { ranOn: string }[] } } }).bitscale.state.outputs[0].ranOn);
    console.log(`open + RTN Q4_0 in the page (${ranOn}): ${fmt(seconds, 1)} s; output ${fmt(out / 1e6, 1)} MB; the page's longest event-loop stall during the job ${fmt(lag, 0)} ms`);
    console.log(`renderer RSS (page + worker, all renderer processes): ${mbs(before)} loaded, peak ${mbs(peak)} during the job (+${mbs(peak - before)}), ${mbs(after)} after`);
    const d = (k: keyof Rollup) => `${mbs(p1.renderer[k] - first.start.renderer[k])}`;
    console.log(`renderer growth by kind (/proc status at the sampled peak vs loaded): anonymous +${d('anon')} (heaps: V8, malloc, WebAssembly, ArrayBuffers), file-backed +${d('file')} (code), shared memory +${d('shmem')} (SharedArrayBuffers, Blob transport); threads ${first.start.threads} → ${p1.threads}`);
    console.log(`browser process RSS (Blob storage): ${mbs(first.start.browser)} loaded, peak ${mbs(p1.browser)} (+${mbs(p1.browser - first.start.browser)})`);
    // the breakdown: what V8 holds per thread (JS objects; ArrayBuffer backing stores, which include
    // WebAssembly memories); the rest of the renderers' growth is outside V8 (threads' stacks,
    // Blob data on its way to the browser process, the allocator's retained pages)
    for (const p of peaks) console.log(`  ${p.target}: JS heap used peak ${fmt(p.usedJs / 1e6, 1)} MB, ArrayBuffers (and WebAssembly memory) peak ${fmt(p.arrayBuffers / 1e6, 1)} MB`);
    printOwners(dumps);
    // the same job again in the same tab: what a job costs once the tab has done one (code pages
    // touched, isolates and allocator pools grown the first time stay), against the first job's cost
    let againGrowth: number | null = null;
    if (again) {
      const second = samplePeaks(tab);
      let p2: TabPeaks;
      try {
        const m3 = await quantize(app.page, { scheme: 'q4_0', method: 'rtn', out: `gen-${nLayers}l-q4_0-again.gguf`, verify: false });
        if (m3) throw new Error(`quantize again: ${m3}`);
      } finally {
        p2 = second.stop();
      }
      const d2 = (k: keyof Rollup) => `${mbs(p2.renderer[k] - second.start.renderer[k])}`;
      againGrowth = p2.renderer.rss - second.start.renderer.rss;
      console.log(`the same RTN job again in the tab: renderers +${d2('rss')} at peak over the first job's end (anonymous +${d2('anon')}, file-backed +${d2('file')}, shared +${d2('shmem')}), browser process +${mbs(p2.browser - second.start.browser)} (its output's Blob)`);
    }
    console.log(`peak growth of the tab: ${mbs(peak - before)} for a ${mbs(bytes)} model (${fmt((peak - before) / bytes, 2)}× its size; largest tensor ${mbs(largest)}, one block ${mbs(block)}, output ${mbs(out)})`);
    return { label: `${fmt(params / 1e6, 0)}M, ${nLayers} layers${threads !== 1 ? `, ${threads} threads` : ''}`, params, modelBytes: bytes, largest, out, renderer: peak - before, browser: p1.browser - first.start.browser, again: againGrowth, seconds };
  } finally {
    await app.close();
    await rm(path, { force: true });
  }
}

/**
 * The renderers' memory by owner (memory-infra): loaded tab, the dump of the job with the renderers'
 * largest resident set, and after the job; the browser process's owners likewise.
 */
function printOwners(dumps: ProcessDump[]): void {
  // the trace numbers its dumps in the order taken: the loaded tab's first, then those during the
  // job, then one after it and one after a full GC
  const ids = dumpIds(dumps);
  if (ids.length < 4) {
    console.log(`memory-infra: ${ids.length} dumps in the trace, too few (tracing refused, or no dump during the job)`);
    return;
  }
  const [loaded, after, gced, during] = [ids[0], ids[ids.length - 2], ids[ids.length - 1], ids.slice(1, -2)];
  const total = (g: string) => dumpOf(dumps, g).reduce((a, p) => a + p.privateFootprint, 0);
  const peak = during.reduce((best, g) => (total(g) > total(best) ? g : best), during[0]);
  for (const proc of ['Renderer', 'Browser']) {
    const col = (label: string, g: string) => ({ label, owners: topAllocators(dumpOf(dumps, g, proc)) });
    const pf = (g: string) => dumpOf(dumps, g, proc).reduce((a, p) => a + p.privateFootprint, 0);
    const mb = (x: number) => fmt(x / 1e6, 1);
    console.log(`\nmemory-infra, ${proc} processes (${dumpOf(dumps, peak, proc).length}) by owner (${during.length} dumps during the job; peak = the one with the renderers' largest private footprint): private footprint ${mb(pf(loaded))} loaded, ${mb(pf(peak))} peak, ${mb(pf(after))} after, ${mb(pf(gced))} after a full GC MB`);
    // the last column's growth is the peak's over the loaded tab (blink_objects is blink_gc by type: counted twice if summed)
    for (const l of allocatorTable([col('loaded', loaded), col('after', after), col('after GC', gced), col('peak', peak)])) console.log(l);
  }
}

export default async function (): Promise<void> {
  const missing = chromiumMissing();
  if (missing || !existsSync('/proc/self/status')) {
    console.log(`skipped: ${missing || 'needs Linux /proc'}`);
    return;
  }
  const built = await buildApp();
  const dir = await mkdtemp(join(tmpdir(), 'bitscale-bench-web-'));
  try {
    console.log('(measured on whatever machine runs this; on the shared 2-core VM figures move by ±50%)');
    if (!process.env.BITSCALE_BENCH_WEB_SKIP_TIME) await timeRatio(built.dir, dir);
    if (!process.env.BITSCALE_BENCH_WEB_SKIP_MEMORY) {
      // BITSCALE_BENCH_WEB_LAYERS=14,56 runs those models alone (1 thread)
      const only = process.env.BITSCALE_BENCH_WEB_LAYERS;
      const rows: MemoryRow[] = [];
      // the 400M job is run once (the job again in the same tab is measured on the smaller models)
      for (const layers of only ? only.split(',').map(Number) : [7, 14, 56]) rows.push(await memory(built.dir, dir, layers, 1, layers <= 14));
      // threads 1 vs 2 on the 100M model (the kernel workers; same bytes)
      if (!only) rows.push(await memory(built.dir, dir, 14, 2));
      const mb = (x: number) => fmt(x / 1e6, 1);
      console.log('\ntab memory per model (RTN Q4_0 in the page; growth = sampled peak during open + quantize minus the loaded tab):');
      console.log('| model | F32 GGUF MB | one tensor MB (largest) | output MB | renderers + MB | browser + MB | same job again, renderers + MB | job s |');
      console.log('|---|---|---|---|---|---|---|---|');
      for (const r of rows) console.log(`| ${r.label} | ${mb(r.modelBytes)} | ${mb(r.largest)} | ${mb(r.out)} | ${mb(r.renderer)} | ${mb(r.browser)} | ${r.again === null ? '-' : mb(r.again)} | ${fmt(r.seconds, 1)} |`);
    }
  } finally {
    built.cleanup();
    await rm(dir, { recursive: true, force: true });
  }
}
