// RTN at real size against llama.cpp (issue 12): a generated model with Llama-3.2-1B's full shape
// (16 layers, vocab 128,256, tied embeddings; F16, bench/gen-llama.ts, cached between runs), then
// for each type the whole `bitscale quantize MODEL --method rtn --no-verify --format gguf` command
// (a child process on the built CLI: Node start-up, imports, hashing and writing included) at
// --threads 1 and 2, and llama.cpp's whole llama_model_quantize call (test/reference/
// llamacpp-quantize.ts; nthread 1 and 2) on the same file: plain types with --pure on both sides
// (every tensor, token embedding included, in the one type), named mixtures with each tool's recipe. Runs alternate between the two tools; figures are medians. Reports the speed ratio
// (llama.cpp seconds ÷ bitscale seconds: ≥ 1 means bitscale is at least as fast), bitscale's 1→2
// thread speed-up, the CPU seconds of each (user + system, all threads), peak RSS, and whether the
// tensor data of the two files is identical.
// Usage: npm run bench scale. Environment (all optional):
//   BITSCALE_SCALE_SHAPE=llama-3.2-1b|llama-3.1-8b   BITSCALE_SCALE_LAYERS=N (fewer layers)
//   BITSCALE_SCALE_VOCAB=N (smaller vocabulary)   BITSCALE_SCALE_DTYPE=F16|F32 (the model's storage)
//   (issue 12's first table: BITSCALE_SCALE_LAYERS=1 BITSCALE_SCALE_VOCAB=512 BITSCALE_SCALE_DTYPE=F32)
//   BITSCALE_SCALE_TYPES=Q4_0,Q8_0,Q4_K,Q6_K,Q4_K_M (also Q5_K_M, Q3_K_M, the other plain types)   BITSCALE_SCALE_THREADS=1,2   BITSCALE_SCALE_REPEATS=3
//   BITSCALE_SCALE_PEER=0 (bitscale only)   BITSCALE_SCALE_DIR=/tmp/… (where the model is cached)
//   BITSCALE_SCALE_KEEP=0 (delete the generated model at the end)
//   BITSCALE_SCALE_WARMUP=0 (no untimed run of each tool before the timed ones: a model already in
//   the page cache, when time is short)
//   BITSCALE_SCALE_DIGEST=cold|warm|both (default cold): bitscale's input digest cache
//   (src/formats/io/digest-cache.ts, kept in BITSCALE_SCALE_DIR/digests for the bench) emptied
//   before every timed run (cold: the 2.47 GB input is hashed, as on a first run) or kept (warm:
//   the input was quantized before, the common "one model, many types" case); warm rows reuse the
//   llama.cpp medians of the cold rows when both run
//   BITSCALE_SCALE_PIN=1: each run confined to as many cores as its thread count (taskset; Linux):
//   bitscale's --threads N counts its quantizing workers, while its main thread and the input-hash
//   thread run beside them, so unpinned "1 thread" uses up to ≈1.6 cores; pinned rows compare one
//   core with one core and give the honest 1→2-core speed-up (llama.cpp is pinned the same way)
// For plain types the table also gives the speed-up of the type's kernel alone on the worker pool
// (bench/kernel-scaling-child.ts: shared memory in and out, no file, hash or writer; pinned like the
// command when BITSCALE_SCALE_PIN=1), measured in the same run: the ceiling this machine puts on the
// command's own speed-up (BITSCALE_SCALE_KERNEL=0 leaves it out).
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openGgufFile } from '../src/formats/io/index.js';
import { llamaCppQuantize, type LlamaFtypeName } from '../test/reference/llamacpp-quantize.js';
import { shapeConfig, writeGeneratedGguf, type ShapeName } from './gen-llama.js';
import { runTimedCli, type TimedRun } from './timed-cli.js';
import { fmt, median } from './util.js';

/**
 * What is compared: bitscale's --scheme and llama.cpp's file type. Plain types run both tools with
 * `pure` (every tensor in the one type, the token embedding too); a named
 * mixture is one more line, e.g. { name: 'Q4_K_M', scheme: 'q4_k_m', ftype: 'Q4_K_M', pure: false }.
 */
interface ScaleCase {
  name: string;
  scheme: string;
  ftype: LlamaFtypeName;
  pure: boolean;
}
const CASES: ScaleCase[] = [
  { name: 'Q4_0', scheme: 'q4_0', ftype: 'Q4_0', pure: true },
  { name: 'Q8_0', scheme: 'q8_0', ftype: 'Q8_0', pure: true },
  { name: 'Q4_K', scheme: 'q4_k', ftype: 'Q4_K_S', pure: true },
  { name: 'Q6_K', scheme: 'q6_k', ftype: 'Q6_K', pure: true },
  // the other types with kernels (BITSCALE_SCALE_TYPES=…)
  { name: 'Q5_K', scheme: 'q5_k', ftype: 'Q5_K_S', pure: true },
  { name: 'Q3_K', scheme: 'q3_k', ftype: 'Q3_K_S', pure: true },
  { name: 'Q2_K', scheme: 'q2_k', ftype: 'Q2_K', pure: true },
  { name: 'IQ4_XS', scheme: 'iq4_xs', ftype: 'IQ4_XS', pure: true },
  { name: 'IQ4_NL', scheme: 'iq4_nl', ftype: 'IQ4_NL', pure: true },
  { name: 'IQ3_XXS', scheme: 'iq3_xxs', ftype: 'IQ3_XXS', pure: true },
  { name: 'IQ3_S', scheme: 'iq3_s', ftype: 'IQ3_S', pure: true },
  { name: 'Q5_0', scheme: 'q5_0', ftype: 'Q5_0', pure: true },
  { name: 'Q4_1', scheme: 'q4_1', ftype: 'Q4_1', pure: true },
  // llama.cpp's named mixtures: each tool's own recipe (the types per tensor must agree)
  { name: 'Q4_K_M', scheme: 'q4_k_m', ftype: 'Q4_K_M', pure: false },
  { name: 'Q5_K_M', scheme: 'q5_k_m', ftype: 'Q5_K_M', pure: false },
  { name: 'Q3_K_M', scheme: 'q3_k_m', ftype: 'Q3_K_M', pure: false },
];

const env = process.env;
const list = (v: string | undefined, d: string): string[] => (v ?? d).split(',').map((s) => s.trim()).filter(Boolean);

type Run = TimedRun;

/** bitscale's whole command (the cold digest case empties the digest cache first). */
function runBitscale(model: string, out: string, c: ScaleCase, threads: number, digests: { dir: string; cold: boolean }, pin: boolean, settle = false): Promise<Run> {
  if (settle) settleWrites();
  const scheme = c.scheme;
  rmSync(out, { force: true });
  if (digests.cold) rmSync(digests.dir, { recursive: true, force: true });
  rmSync(`${out}.manifest.json`, { force: true });
  const args = ['quantize', model, '--out', out, '--scheme', scheme, '--method', 'rtn', '--no-verify', '--format', 'gguf', '--threads', String(threads), '--quiet', ...(c.pure ? ['--pure'] : [])];
  return runTimedCli(args, `bitscale quantize ${scheme} --threads ${threads}`, { ...process.env, BITSCALE_DIGEST_CACHE: digests.dir }, pin ? coreList(threads) : undefined);
}

/** Milliseconds of the kernel-alone job (kernel-scaling-child.ts) on `threads` workers; pinned to as many cores when `pin`. */
function kernelAloneMs(type: string, threads: number, pin: boolean): number {
  const node = [process.execPath, '--import', 'tsx', resolve('bench/kernel-scaling-child.ts'), String(threads), type];
  const [cmd, ...args] = pin ? ['taskset', '-c', coreList(threads), ...node] : node;
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`kernel-scaling-child ${threads} ${type} failed (status ${r.status}): ${r.stderr}`);
  return (JSON.parse(r.stdout.trim().split('\n').pop()!) as { ms: number }).ms;
}

/** cores 0 … n−1 as a taskset list */
const coreList = (n: number): string => (n === 1 ? '0' : `0-${n - 1}`);

/** Confines every thread of this process (libllama's threads are created inside the call, inheriting it). */
function pinSelf(cpus: string): void {
  const r = spawnSync('taskset', ['-a', '-p', '-c', cpus, String(process.pid)], { stdio: 'ignore' });
  if (r.status !== 0) throw new Error(`taskset -a -p -c ${cpus} failed (BITSCALE_SCALE_PIN=1 needs util-linux's taskset)`);
}

/** Waits (untimed) until every dirty page on the machine is written: the previous run's output included. */
function settleWrites(): void {
  spawnSync('sync', [], { stdio: 'ignore' });
}

async function runLlamaCpp(model: string, out: string, c: ScaleCase, threads: number, pin: boolean, settle = false): Promise<Run> {
  rmSync(out, { force: true });
  if (settle) settleWrites();
  if (pin) pinSelf(coreList(threads));
  try {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    await llamaCppQuantize(model, out, { ftype: c.ftype, pure: c.pure, nthread: threads });
    const c1 = process.cpuUsage(c0); // this process: llama.cpp's threads (and an idle event loop)
    return { seconds: (performance.now() - t0) / 1000, cpu: (c1.user + c1.system) / 1e6, rssMb: null };
  } finally {
    if (pin) pinSelf(coreList(availableParallelism()));
  }
}

/** Tensor data of two GGUF files: same names, types and bytes? (metadata may differ) */
async function sameTensors(a: string, b: string): Promise<string> {
  const [ga, gb] = [await openGgufFile(a), await openGgufFile(b)];
  try {
    if (ga.tensors.length !== gb.tensors.length) return `no: ${ga.tensors.length} vs ${gb.tensors.length} tensors`;
    for (const t of ga.tensors) {
      if (!gb.has(t.name)) return `no: ${t.name} missing`;
      const u = gb.info(t.name);
      if (u.type !== t.type) return `no: ${t.name} is ${t.type} vs ${u.type}`;
      const [x, y] = [await ga.readBytes(t.name), await gb.readBytes(t.name)];
      if (!Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y.buffer, y.byteOffset, y.length))) return `no: ${t.name} differs`;
    }
    return `yes (${ga.tensors.length} tensors)`;
  } finally {
    await ga.close();
    await gb.close();
  }
}

export default async function (): Promise<void> {
  const shape = (env.BITSCALE_SCALE_SHAPE ?? 'llama-3.2-1b') as ShapeName;
  const layers = env.BITSCALE_SCALE_LAYERS ? Number(env.BITSCALE_SCALE_LAYERS) : undefined;
  const vocab = env.BITSCALE_SCALE_VOCAB ? Number(env.BITSCALE_SCALE_VOCAB) : undefined;
  const dtype = env.BITSCALE_SCALE_DTYPE === 'F32' ? 'F32' : 'F16';
  const cfg = shapeConfig(shape, { ...(layers ? { nLayers: layers } : {}), ...(vocab ? { vocabSize: vocab } : {}) });
  const types = list(env.BITSCALE_SCALE_TYPES, 'Q4_0,Q8_0,Q4_K,Q6_K,Q4_K_M');
  const threads = list(env.BITSCALE_SCALE_THREADS, '1,2').map(Number);
  const repeats = Number(env.BITSCALE_SCALE_REPEATS ?? 3);
  const warmup = env.BITSCALE_SCALE_WARMUP !== '0';
  const peer = env.BITSCALE_SCALE_PEER !== '0';
  const digestModes = env.BITSCALE_SCALE_DIGEST === 'both' ? (['cold', 'warm'] as const) : env.BITSCALE_SCALE_DIGEST === 'warm' ? (['warm'] as const) : (['cold'] as const);
  const pin = env.BITSCALE_SCALE_PIN === '1';
  const kernelAlone = env.BITSCALE_SCALE_KERNEL !== '0';
  if (pin && Math.max(...threads) > availableParallelism()) throw new Error(`BITSCALE_SCALE_PIN=1: ${Math.max(...threads)} threads need as many cores; this machine has ${availableParallelism()}`);
  const dir = env.BITSCALE_SCALE_DIR ?? join(tmpdir(), 'bitscale-scale');
  mkdirSync(dir, { recursive: true });

  // the CLI as a user runs it: build it (and the WebAssembly kernels) first
  const build = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');

  const model = join(dir, `${shape}${layers ? `-L${layers}` : ''}${vocab ? `-V${vocab}` : ''}-${dtype.toLowerCase()}.gguf`);
  if (!existsSync(model)) {
    const t0 = performance.now();
    console.log(`generating ${model} …`);
    await writeGeneratedGguf(model, cfg, dtype);
    console.log(`  ${fmt(statSync(model).size / 1e9, 2)} GB in ${fmt((performance.now() - t0) / 1000)} s`);
  }
  const gb = statSync(model).size / 1e9;
  console.log(`model: ${shape}${layers ? ` (${layers} layers)` : ''}${vocab ? `, vocabulary ${vocab}` : ''}, ${dtype} GGUF of ${fmt(gb, 2)} GB; ${repeats} runs per figure (medians)${warmup ? ' after one untimed run of each' : ', no untimed run'}, tools alternating`);
  console.log(`machine: load average ${loadavg().map((x) => fmt(x, 1)).join(' ')} at start (shared; ratios are from the same run)`);
  if (pin) console.log('pinned: each run confined to as many cores as threads (taskset), both tools; "threads" below are cores');

  const outB = join(dir, 'bitscale-out.gguf');
  const digestDir = join(dir, 'digests');
  const outL = join(dir, 'llamacpp-out.gguf');
  if (peer) {
    // load libllama once outside the timings
    const tiny = join(dir, 'tiny.gguf');
    if (!existsSync(tiny)) await writeGeneratedGguf(tiny, shapeConfig('llama-3.2-1b', { nLayers: 1, vocabSize: 300, hiddenSize: 256, intermediateSize: 512, nHeads: 4, nKvHeads: 2, headDim: 64 }), 'F16');
    await llamaCppQuantize(tiny, outL, { ftype: 'Q8_0', pure: true, nthread: 1 });
  }
  const rows: string[][] = [];
  try {
    for (const name of types) {
      const c = CASES.find((x) => x.name === name);
      if (!c) throw new Error(`unknown type ${name}; known: ${CASES.map((x) => x.name).join(', ')}`);
      const secs = new Map<string, number>();
      const secsL = new Map<number, number>();
      for (const mode of digestModes) {
        const digests = { dir: digestDir, cold: mode === 'cold' };
        for (const t of threads) {
          const b: Run[] = [];
          const l: Run[] = [];
          // warm rows after cold ones: llama.cpp's medians of the same thread count are reused
          const runPeer = peer && !(mode === 'warm' && secsL.has(t));
          // one untimed run each (page cache, code caches; a warm row's digest entry), then alternate which tool goes first
          if (warmup || (mode === 'warm' && !existsSync(digestDir))) await runBitscale(model, outB, c, t, digests, pin);
          if (warmup && runPeer) await runLlamaCpp(model, outL, c, t, pin);
          // every timed run starts with no dirty pages of the other tool's output left to write: llama.cpp
          // returns before its file is on disk (bitscale fsyncs its own), and the kernel's write-back of
          // 0.7–1.3 GB then ran during the next run, on the core a one-core run leaves free but on one of
          // a two-core run's (Q4_0 at 2 cores: 4.36 s in the bench, 3.86–4.05 s run alone)
          for (let r = 0; r < repeats; r++) {
            if (runPeer && r % 2) l.push(await runLlamaCpp(model, outL, c, t, pin, true));
            b.push(await runBitscale(model, outB, c, t, digests, pin, true));
            if (runPeer && !(r % 2)) l.push(await runLlamaCpp(model, outL, c, t, pin, true));
          }
          const bs = median(b.map((x) => x.seconds));
          const ls = !peer ? NaN : runPeer ? median(l.map((x) => x.seconds)) : secsL.get(t)!;
          secs.set(`${mode}:${t}`, bs);
          if (runPeer) secsL.set(t, ls);
          const rss = b.map((x) => x.rssMb).filter((x): x is number => x !== null);
          const cpuB = b.every((x) => x.cpu !== null) ? median(b.map((x) => x.cpu!)) : NaN;
          const cpuL = runPeer ? median(l.map((x) => x.cpu!)) : NaN;
          const same = peer ? await sameTensors(outB, outL) : '–';
          const first = secs.get(`${mode}:${threads[0]}`);
          const up = t !== threads[0] && first !== undefined ? `${fmt(first / bs, 2)}×${peer ? ` (llama.cpp ${fmt(secsL.get(threads[0])! / ls, 2)}×)` : ''}` : '';
          // the kernel alone, right after this row's runs (same machine state): 1 → t workers
          const alone = kernelAlone && c.pure && t !== threads[0] ? `${fmt(kernelAloneMs(c.name, threads[0], pin) / kernelAloneMs(c.name, t, pin), 2)}×` : '';
          rows.push([c.name, String(t), mode, fmt(bs, 2), peer ? fmt(ls, 2) : '–', peer ? `${fmt(ls / bs, 2)}×` : '–', up, alone, `${fmt(cpuB, 2)} / ${runPeer ? fmt(cpuL, 2) : '–'}`, rss.length ? fmt(Math.max(...rss), 0) : '?', same]);
          console.log(`  ${rows[rows.length - 1].join(' | ')}`);
        }
      }
    }
  } finally {
    rmSync(outB, { force: true });
    rmSync(`${outB}.manifest.json`, { force: true });
    rmSync(outL, { force: true });
    rmSync(digestDir, { recursive: true, force: true });
    if (env.BITSCALE_SCALE_KEEP === '0') rmSync(model, { force: true });
  }
  console.log(`\n| type | threads | input digest | bitscale s | llama.cpp s | speed vs llama.cpp | speed-up from ${threads[0]} thread(s), bitscale (llama.cpp) | same, kernel alone | CPU s bitscale / llama.cpp | bitscale peak RSS MB | tensor data identical |`);
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(`machine: load average ${loadavg().map((x) => fmt(x, 1)).join(' ')} at the end`);
}
