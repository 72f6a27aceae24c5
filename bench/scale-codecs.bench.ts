// RTN at real size onto the int / float / code-book codecs (issue 12): the generated model with
// Llama-3.2-1B's full shape (F16, bench/gen-llama.ts, cached as for scale.bench.ts), then for each
// scheme the whole `bitscale quantize MODEL --method rtn --no-verify` command (a child process on the
// built CLI: start-up, imports, input hashing and writing included) at --threads 1 and 2, into the
// folder that scheme is written as by default (GPTQ-packed safetensors for int schemes, fake-quant
// float32 safetensors for NF4 and FP8). Seconds (median), CPU seconds (user + system, all threads),
// peak RSS and the 1→2 thread speed-up. No peer: llama.cpp has no int-g128 / NF4 / FP8 safetensors
// writer to time against, so the figures stand alone (compare with the same command on an earlier
// commit for before/after).
// Usage: npm run bench scale-codecs. Environment (all optional):
//   BITSCALE_SCALE_SCHEMES=int4-g128,int8-channel,fp8-e4m3,nf4-g64   BITSCALE_SCALE_THREADS=1,2
//   BITSCALE_SCALE_REPEATS=1   BITSCALE_SCALE_DIR=/tmp/… (where the model is cached)
//   BITSCALE_SCALE_SHAPE, BITSCALE_SCALE_LAYERS, BITSCALE_SCALE_VOCAB as in scale.bench.ts
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { shapeConfig, writeGeneratedGguf, type ShapeName } from './gen-llama.js';
import { runTimedCli, type TimedRun } from './timed-cli.js';
import { fmt, median } from './util.js';

const env = process.env;
const list = (v: string | undefined, d: string): string[] => (v ?? d).split(',').map((s) => s.trim()).filter(Boolean);

type Run = TimedRun;

/** bitscale's whole command, RTN into the scheme's default container. */
function runBitscale(model: string, out: string, scheme: string, threads: number): Promise<Run> {
  rmSync(out, { recursive: true, force: true });
  // every run cold: its own empty digest cache, so each one hashes the input as a first run does
  const digests = `${out}.digests`;
  rmSync(digests, { recursive: true, force: true });
  const args = ['quantize', model, '--out', out, '--scheme', scheme, '--method', 'rtn', '--no-verify', '--threads', String(threads), '--quiet'];
  return runTimedCli(args, `bitscale quantize ${scheme} --threads ${threads}`, { ...process.env, BITSCALE_DIGEST_CACHE: digests });
}

export default async function (): Promise<void> {
  const shape = (env.BITSCALE_SCALE_SHAPE ?? 'llama-3.2-1b') as ShapeName;
  const layers = env.BITSCALE_SCALE_LAYERS ? Number(env.BITSCALE_SCALE_LAYERS) : undefined;
  const vocab = env.BITSCALE_SCALE_VOCAB ? Number(env.BITSCALE_SCALE_VOCAB) : undefined;
  const cfg = shapeConfig(shape, { ...(layers ? { nLayers: layers } : {}), ...(vocab ? { vocabSize: vocab } : {}) });
  const schemes = list(env.BITSCALE_SCALE_SCHEMES, 'int4-g128,int8-channel,fp8-e4m3,nf4-g64');
  const threads = list(env.BITSCALE_SCALE_THREADS, '1,2').map(Number);
  const repeats = Number(env.BITSCALE_SCALE_REPEATS ?? 1);
  const dir = env.BITSCALE_SCALE_DIR ?? join(tmpdir(), 'bitscale-scale');
  mkdirSync(dir, { recursive: true });
  const build = spawnSync('npm', ['run', 'build', '--silent'], { stdio: 'inherit' });
  if (build.status !== 0) throw new Error('npm run build failed');
  // the same file name as scale.bench.ts, so both reuse one generated model
  const model = join(dir, `${shape}${layers ? `-L${layers}` : ''}${vocab ? `-V${vocab}` : ''}-f16.gguf`);
  if (!existsSync(model)) {
    console.log(`generating ${model} …`);
    await writeGeneratedGguf(model, cfg, 'F16');
  }
  console.log(`model: ${shape}, F16 GGUF of ${fmt(statSync(model).size / 1e9, 2)} GB; ${repeats} run(s) per figure (median); no peer (llama.cpp writes none of these formats)`);
  console.log(`machine: load average ${loadavg().map((x) => fmt(x, 1)).join(' ')} at start (shared)`);
  const out = join(dir, 'bitscale-codec-out');
  const rows: string[][] = [];
  try {
    for (const scheme of schemes) {
      const secs = new Map<number, number>();
      for (const t of threads) {
        const runs: Run[] = [];
        for (let r = 0; r < repeats; r++) runs.push(await runBitscale(model, out, scheme, t));
        const s = median(runs.map((x) => x.seconds));
        secs.set(t, s);
        const cpu = runs.every((x) => x.cpu !== null) ? median(runs.map((x) => x.cpu!)) : NaN;
        const rss = runs.map((x) => x.rssMb).filter((x): x is number => x !== null);
        const up = t !== threads[0] && secs.has(threads[0]) ? `${fmt(secs.get(threads[0])! / s, 2)}×` : '';
        rows.push([scheme, String(t), fmt(s, 1), fmt(cpu, 1), rss.length ? fmt(Math.max(...rss), 0) : '?', up]);
        console.log(`  ${rows[rows.length - 1].join(' | ')}  (load ${fmt(loadavg()[0], 1)})`);
      }
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  console.log(`\n| scheme | threads | seconds | CPU s | peak RSS MB | speed-up from ${threads[0]} thread(s) |`);
  console.log('|---|---|---|---|---|---|');
  for (const r of rows) console.log(`| ${r.join(' | ')} |`);
  console.log(`machine: load average ${loadavg().map((x) => fmt(x, 1)).join(' ')} at the end`);
}
