// GPTQ Q4_K of a generated model of Llama-3.2-1B's shape (bench/gen-llama.ts: hidden 2048, FFN
// 8192, 32/8 heads, vocab 128,256, tied embeddings; F16 GGUF written tensor by tensor) with the
// default calibration (128 windows × 512 tokens, fed as token ids: the synthetic vocabulary cannot
// encode text), as `bitscale quantize --method gptq --scheme q4_k --no-verify` runs it (streaming,
// one decoder block in memory). Reported: whole-run time; time, flops and GFLOPS of each phase
// (calibration forward, Hessian accumulation, GPTQ solve) next to onnxruntime MatMul's GFLOPS
// measured in the same run; peak RSS of the quantize process. The floor is the issue's: one
// forward pass (2·tokens·parameters) plus symmetric Hessians (tokens·K² per input) per layer,
// divided by MatMul's GFLOPS.
// Usage: npm run bench scale-gptq. Smaller runs: SCALE_GPTQ_LAYERS (default 16),
// SCALE_GPTQ_WINDOWS (128), SCALE_GPTQ_SEQ (512); SCALE_GPTQ_MODEL=path reuses a generated GGUF of
// that many layers (kept), otherwise one is written under the OS temp folder and removed.
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { GraphBuilder } from '../src/engine/ir.js';
import { EngineSession } from '../src/engine/session.js';
import { reverseCholeskyFlops } from '../src/numerics/cholesky-blocked.js';
import { UpperPanels } from '../src/numerics/panels.js';
import { GRAPH_GRAM_PANEL as GRAM_PANEL } from '../src/pipeline/calibrate/batch.js';
import { SQNR_MAX_K } from '../src/pipeline/quantize/layer.js';
import { GPTQ_GGUF_MALLOC_TUNABLES, cliAllocatorEnv } from '../src/cli/relaunch.js';
import { shapeConfig, writeGeneratedGguf } from './gen-llama.js';
import { fmt, timeMs } from './util.js';

const cpuS = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * onnxruntime MatMul at a forward-pass shape, [M, K]·[K, N] with both operands fed: GFLOPS per wall
 * second (median of 5) and per CPU second of the process (all 5 runs; onnxruntime's threads count).
 */
async function matmulGflops(M: number, K: number, N: number): Promise<{ wall: number; cpu: number }> {
  const b = new GraphBuilder('matmul');
  b.output('y', b.matmul(b.input('a', 'F32', [M, K]), b.input('b', 'F32', [K, N])));
  const s = await EngineSession.fromGraph(b.build());
  const a = { dtype: 'F32' as const, shape: [M, K], data: Float32Array.from({ length: M * K }, (_, i) => ((i * 7919) % 1000) / 1000 - 0.5) };
  const w = { dtype: 'F32' as const, shape: [K, N], data: Float32Array.from({ length: K * N }, (_, i) => ((i * 104729) % 1000) / 1000 - 0.5) };
  try {
    await s.run({ a, b: w });
    const c0 = cpuS();
    const ms = await timeMs(() => s.run({ a, b: w }), 5, 0);
    const cpu = (cpuS() - c0) / 5;
    return { wall: (2 * M * K * N) / ms / 1e6, cpu: (2 * M * K * N) / cpu / 1e9 };
  } finally {
    await s.release();
  }
}

export default async function (): Promise<void> {
  const L = Number(process.env.SCALE_GPTQ_LAYERS ?? 16);
  const W = Number(process.env.SCALE_GPTQ_WINDOWS ?? 128);
  const T = Number(process.env.SCALE_GPTQ_SEQ ?? 512);
  const c = shapeConfig('llama-3.2-1b', { nLayers: L });
  const dir = await mkdtemp(join(tmpdir(), 'bitscale-scale-gptq-'));
  try {
    let model = process.env.SCALE_GPTQ_MODEL;
    if (!model) {
      model = join(dir, 'model.gguf');
      const t = performance.now();
      await writeGeneratedGguf(model, c, 'F16');
      console.log(`generated ${model} in ${fmt((performance.now() - t) / 1000, 0)} s`);
    }
    const size = (await stat(model)).size;
    const E = c.hiddenSize, F = c.intermediateSize, H = c.nHeads, Hk = c.nKvHeads, D = c.headDim;
    const tok = W * T;
    console.log(`model: Llama-3.2-1B shape, ${L} layers, vocab ${c.vocabSize}, tied; F16 GGUF ${fmt(size / 1e9, 2)} GB; calibration ${W} windows × ${T} tokens = ${tok} tokens`);

    const mmBefore = await matmulGflops(2048, E, F);
    console.log(`onnxruntime MatMul [2048, ${E}]·[${E}, ${F}]: ${fmt(mmBefore.wall, 1)} GFLOPS, ${fmt(mmBefore.cpu, 1)} GFLOP per CPU second (before the run)`);
    const out = join(dir, 'q4k.gguf');
    const child = spawnSync(process.execPath, ['--import', 'tsx', resolve('bench/scale-gptq-child.ts'), model, out, String(W), String(T)], {
      // the allocator settings `bitscale quantize --method gptq` into a GGUF runs under (src/cli/relaunch.ts)
      encoding: 'utf8', env: { ...cliAllocatorEnv(process.env, GPTQ_GGUF_MALLOC_TUNABLES), NODE_OPTIONS: '' }, stdio: ['ignore', 'pipe', 'inherit'], maxBuffer: 1 << 24,
    });
    if (child.status !== 0) throw new Error(`quantize child failed (status ${child.status})`);
    type Phases = Record<'pass1' | 'pass2' | 'solve' | 'other', number>;
    const line = child.stdout.trim().split('\n').pop()!;
    console.log(`child: ${line}`);
    const r = JSON.parse(line) as {
      seconds: number; cpuSeconds: number; phases: Phases; phasesCpu: Phases; maxRssBytes: number; rssMax: Record<string, number>;
      statsGram: number; statsNoGram: number; statsGramCpu: number; statsNoGramCpu: number; windowsPerRun: number; allocator: string;
    };
    // NaN went through JSON as null (SCALE_GPTQ_SPLIT=0 leaves the split out)
    for (const k of ['statsGram', 'statsNoGram', 'statsGramCpu', 'statsNoGramCpu', 'windowsPerRun'] as const) r[k] ??= NaN;
    console.log(`quantize process: ${r.allocator}`);
    const mmAfter = await matmulGflops(2048, E, F);
    const mm = (mmBefore.wall + mmAfter.wall) / 2;
    const mmCpu = (mmBefore.cpu + mmAfter.cpu) / 2;
    console.log(`onnxruntime MatMul: ${fmt(mmAfter.wall, 1)} GFLOPS, ${fmt(mmAfter.cpu, 1)} GFLOP per CPU second (after the run); means ${fmt(mm, 1)} and ${fmt(mmCpu, 1)}`);

    // flops per layer
    const lin: [number, number][] = [[H * D, E], [Hk * D, E], [Hk * D, E], [E, H * D], [F, E], [F, E], [E, F]]; // [N, K]
    const P = lin.reduce((s, [n, k]) => s + n * k, 0);
    const Pdown = E * F;
    const att = W * 4 * T * T * H * D; // QKᵀ and PV per pass, the whole T×T computed
    const sites = [E, H * D, E, F];
    const fwd = 2 * tok * (P - Pdown) + att + 2 * tok * P + att; // statistics pass (no down_proj) + forward pass
    const hess = sites.reduce((s, k) => s + 2 * tok * UpperPanels.size(k, GRAM_PANEL), 0); // as computed (panels)
    const G = 256; // Q4_K super-blocks: groups fitted as GPTQ reaches them, one small solve each after the first
    const solve =
      sites.reduce((s, k) => s + reverseCholeskyFlops(k, GRAM_PANEL), 0) +
      lin.reduce((s, [n, k]) => s + n * k * (k - 1) + 2 * n * G * G * (k / G - 1) + (k <= SQNR_MAX_K ? 2 * 2 * n * UpperPanels.size(k, GRAM_PANEL) : 0), 0);
    const floorFlops = L * (2 * tok * P + sites.reduce((s, k) => s + tok * k * k, 0));

    // wall figures, then the same per CPU second (the machine is shared: CPU time counts this run's
    // work only, and MatMul's GFLOP per CPU second is measured the same way)
    const report = (label: string, seconds: number, ph: Phases, gramS: number, noGramS: number, mmG: number, unit: string): void => {
      const hessFrac = Math.max(0, (gramS - noGramS) / gramS);
      const hessS = ph.pass1 * hessFrac;
      const fwdS = ph.pass1 - hessS + ph.pass2;
      const floorS = floorFlops / (mmG * 1e9);
      const row = (name: string, flops: number, t: number) =>
        console.log(`  ${name.padEnd(22)} ${fmt(flops / 1e12, 2).padStart(6)} TFLOP in ${fmt(t, 0).padStart(5)} ${unit} = ${fmt(flops / t / 1e9, 1).padStart(5)} GFLOPS (${fmt((100 * flops) / t / 1e9 / mmG, 0)}% of MatMul)`);
      console.log(`${label}: ${fmt(seconds, 0)} ${unit} (${fmt(seconds / 60, 1)} min); floor ${fmt(floorS, 0)} ${unit} = ${fmt(floorFlops / 1e12, 2)} TFLOP / ${fmt(mmG, 1)} GFLOPS; run / floor ${fmt(seconds / floorS, 2)}× (target ≤ 2×)`);
      row('calibration forward', L * fwd, fwdS);
      row('Hessian accumulation', L * hess, hessS);
      row('GPTQ solve', L * solve, ph.solve);
      console.log(`  other (reading F16 tensors, embedding, writing the GGUF): ${fmt(ph.other, 0)} ${unit}; statistics pass split on layer 0 (up to 16 windows): ${fmt(gramS, 1)} ${unit} with Hessians, ${fmt(noGramS, 1)} without`);
    };
    console.log(`${r.windowsPerRun} windows per calibration run`);
    report('whole run (wall)', r.seconds, r.phases, r.statsGram, r.statsNoGram, mm, 's');
    report('whole run (CPU time, all threads)', r.cpuSeconds, r.phasesCpu, r.statsGramCpu, r.statsNoGramCpu, mmCpu, 'CPU s');
    const block = 4 * P + 4 * 2 * E;
    const acts = 4 * tok * E;
    const target = block + acts + 2 ** 30;
    console.log(`  resident memory by phase (MiB, sampled): ${Object.entries(r.rssMax).map(([k, v]) => `${k} ${fmt(v / 2 ** 20, 0)}`).join(', ')}`);
    console.log(`peak RSS ${fmt(r.maxRssBytes / 2 ** 20, 0)} MiB; target ≤ one block ${fmt(block / 2 ** 20, 0)} MiB + activations ${fmt(acts / 2 ** 20, 0)} MiB + 1 GiB = ${fmt(target / 2 ** 20, 0)} MiB (${r.maxRssBytes <= target ? 'met' : 'over'})`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
