// Perplexity at real scale: a generated model with Llama-3.2-1B's full shape (16 layers, E 2048,
// F 8192, vocab 128,256, tied embeddings), quantized by llama.cpp itself (pure Q4_K: every matrix
// Q4_K; and llama.cpp's Q4_K_M recipe, which mixes in Q6_K), evaluated on the same 4,096 tokens
// (8 windows of BOS + 511) by bitscale's engine running the weights as stored and by llama.cpp
// (node-llama-cpp: F32 KV cache, flash attention off, the cheap target + top-1 logits request),
// each in a child process with the same thread count: tokens/s, NLL and peak RSS of each.
// Targets (issue 13): engine ≥ 1.0× llama.cpp's tokens/s; engine RSS ≤ 1.3 × file + 300 MB.
// With SCALE_EVAL_8B=1 also a Llama-3.1-8B shape in pure Q4_K, written in Q4_K directly by
// gen-llama.ts's writeGeneratedQ4K (≈ 4.5 GB; bitscale only unless
// SCALE_EVAL_8B_LLAMACPP=1; SCALE_EVAL_8B_WINDOWS windows, default 1): time and peak RSS.
// Environment: BENCH_THREADS (2), SCALE_EVAL_WINDOWS (8), SCALE_EVAL_CTX (512), SCALE_EVAL_TYPES
// (Q4_K,Q4_K_M; 'none' runs only the 8B case), SCALE_EVAL_INT8=1 (also the int8-activation engine mode), SCALE_EVAL_DIR (where the
// GGUFs go; default a temp dir), SCALE_EVAL_KEEP=1 (keep them for the next run; default: deleted).
// Generated F16 file: 1B ≈ 2.5 GB; the run checks free disk space first.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, rmSync, statSync, statfsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { llamaCppQuantize, type LlamaFtypeName } from '../test/reference/llamacpp-quantize.js';
import { cliAllocatorEnv } from '../src/cli/relaunch.js';
import { shapeConfig, writeGeneratedGguf, writeGeneratedQ4K, type ShapeName } from './gen-llama.js';
import { fmt } from './util.js';

const THREADS = Number(process.env.BENCH_THREADS ?? 2);
const WINDOWS = Number(process.env.SCALE_EVAL_WINDOWS ?? 8);
const CTX = Number(process.env.SCALE_EVAL_CTX ?? 512);
const TYPES = (process.env.SCALE_EVAL_TYPES ?? 'Q4_K,Q4_K_M').split(',').filter((t) => t && t !== 'none');
const DIR = process.env.SCALE_EVAL_DIR ?? join(tmpdir(), 'bitscale-scale-eval');
const KEEP = process.env.SCALE_EVAL_KEEP === '1';
/** the RSS target's allowance for the runtime itself */
const RUNTIME_MB = 300;

interface ChildResult {
  side: string;
  prepareS: number;
  evalS: number;
  tokens: number;
  tokS: number;
  nll: number;
  peakRssMb: number;
  paths?: string[];
  allocator: string;
}

function child(side: 'engine' | 'llamacpp', gguf: string, windows: number, acc = 0): ChildResult {
  const r = spawnSync(process.execPath, ['--import', 'tsx', join('bench', 'scale-eval-child.ts'), side, gguf, String(CTX), String(windows), String(THREADS), String(acc)], {
    encoding: 'utf8',
    maxBuffer: 1 << 26,
    // the engine runs with the allocator settings the CLI runs under (src/cli/relaunch.ts); llama.cpp
    // as its users run it
    env: { ...(side === 'engine' ? cliAllocatorEnv() : process.env), NODE_OPTIONS: '' },
  });
  const line = r.stdout.trim().split('\n').pop() ?? '';
  if (r.status !== 0 || !line.startsWith('{')) throw new Error(`${side} child failed (${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(line) as ChildResult;
}

function freeGb(dir: string): number {
  const s = statfsSync(dir);
  return (s.bavail * s.bsize) / 1e9;
}

/** The F16 model of `shape` and its llama.cpp quantizations, made once (kept with SCALE_EVAL_KEEP). */
async function ensureModels(shape: ShapeName, tag: string, types: string[], needGb: number): Promise<Map<string, string> | null> {
  mkdirSync(DIR, { recursive: true });
  const f16 = join(DIR, `${tag}-f16.gguf`);
  const out = new Map(types.map((t) => [t, join(DIR, `${tag}-${t}.gguf`)]));
  if ([...out.values()].every((p) => existsSync(p))) return out;
  if (freeGb(DIR) < needGb) {
    console.log(`skipped ${tag}: needs ${needGb} GB free in ${DIR}, has ${fmt(freeGb(DIR), 1)} GB`);
    return null;
  }
  if (!existsSync(f16)) {
    const t0 = performance.now();
    const bytes = await writeGeneratedGguf(f16, shapeConfig(shape), 'F16');
    console.log(`${tag}: generated F16 GGUF (${fmt(bytes / 1e9, 2)} GB) in ${fmt((performance.now() - t0) / 1000, 0)} s`);
  }
  for (const [t, p] of out) {
    if (existsSync(p)) continue;
    const t0 = performance.now();
    // pure Q4_K: llama.cpp's Q4_K_S file type with every 2-D tensor forced to the base type (Q4_K)
    const pure = t === 'Q4_K';
    await llamaCppQuantize(f16, p, { ftype: (pure ? 'Q4_K_S' : t) as LlamaFtypeName, pure, nthread: THREADS });
    console.log(`${tag}: llama.cpp quantized ${t}${pure ? ' (pure)' : ''} in ${fmt((performance.now() - t0) / 1000, 0)} s, ${fmt(statSync(p).size / 1e6, 0)} MB`);
  }
  if (!KEEP) rmSync(f16, { force: true });
  return out;
}

function report(label: string, gguf: string, e: ChildResult, l: ChildResult | null, windows = WINDOWS): void {
  const fileMb = statSync(gguf).size / 1e6;
  const budget = 1.3 * fileMb + RUNTIME_MB;
  console.log(`${label}: file ${fmt(fileMb, 0)} MB, ${e.tokens} tokens (${windows} windows of ${CTX}), ${THREADS} threads`);
  console.log(`  engine weights: ${(e.paths ?? []).join('; ')}`);
  console.log(`  engine ${e.allocator}${l ? `; llama.cpp ${l.allocator}` : ''}`);
  console.log(
    `  engine    ${fmt(e.tokS, 2)} tok/s (eval ${fmt(e.evalS, 1)} s, prepare ${fmt(e.prepareS, 1)} s), nll ${e.nll.toFixed(5)}, peak RSS ${fmt(e.peakRssMb, 0)} MB` +
      ` = ${fmt(e.peakRssMb / fileMb, 2)}× file (target ≤ ${fmt(budget, 0)} MB: ${e.peakRssMb <= budget ? 'met' : 'NOT met'})`,
  );
  if (l) {
    console.log(`  llama.cpp ${fmt(l.tokS, 2)} tok/s (eval ${fmt(l.evalS, 1)} s, load ${fmt(l.prepareS, 1)} s), nll ${l.nll.toFixed(5)}, peak RSS ${fmt(l.peakRssMb, 0)} MB`);
    console.log(`  engine/llama.cpp tokens/s = ${fmt(e.tokS / l.tokS, 2)}x (target ≥ 1.0), |Δ nll| = ${Math.abs(e.nll - l.nll).toExponential(2)}`);
  }
}

export default async function (): Promise<void> {
  const made: string[] = [];
  try {
    const m1 = TYPES.length ? await ensureModels('llama-3.2-1b', '1b', TYPES, 4) : null;
    if (m1) {
      made.push(...m1.values());
      for (const [t, gguf] of m1) {
        const l = child('llamacpp', gguf, WINDOWS);
        const e = child('engine', gguf, WINDOWS);
        report(`Llama-3.2-1B shape, ${t}`, gguf, e, l);
        if (process.env.SCALE_EVAL_INT8 === '1') {
          const e8 = child('engine', gguf, WINDOWS, 4);
          console.log(`  engine, int8-activation MatMulNBits (accuracy level 4): ${fmt(e8.tokS, 2)} tok/s = ${fmt(e8.tokS / l.tokS, 2)}x llama.cpp, nll ${e8.nll.toFixed(5)} (exact ${e.nll.toFixed(5)}), peak RSS ${fmt(e8.peakRssMb, 0)} MB`);
        }
      }
    }
    if (process.env.SCALE_EVAL_8B === '1') {
      const w8 = Number(process.env.SCALE_EVAL_8B_WINDOWS ?? 1);
      // written in Q4_K directly (a 16 GB F16 file first is too slow on a loaded machine)
      mkdirSync(DIR, { recursive: true });
      const gguf = join(DIR, '8b-Q4_K.gguf');
      if (!existsSync(gguf) && freeGb(DIR) < 6) console.log(`skipped 8B: needs 6 GB free in ${DIR}, has ${fmt(freeGb(DIR), 1)} GB`);
      else {
        if (!existsSync(gguf)) {
          const t0 = performance.now();
          const bytes = await writeGeneratedQ4K(gguf, shapeConfig('llama-3.1-8b'));
          console.log(`8b: generated Q4_K GGUF (${fmt(bytes / 1e9, 2)} GB) in ${fmt((performance.now() - t0) / 1000, 0)} s`);
        }
        made.push(gguf);
        const e = child('engine', gguf, w8);
        const l = process.env.SCALE_EVAL_8B_LLAMACPP === '1' ? child('llamacpp', gguf, w8) : null;
        report('Llama-3.1-8B shape, Q4_K', gguf, e, l, w8);
      }
    }
  } finally {
    if (!KEEP) for (const p of made) rmSync(p, { force: true });
  }
}
