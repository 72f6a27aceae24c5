// The cost of `--calib-runtime portable` (onnxruntime-web's WebAssembly kernels in Node, the page's
// runtime) against the native runtime (onnxruntime-node), on the same GPTQ job in the same run:
// int4-g128, --no-verify, safetensors. (1) the default model (assets/default-model, 1.1M
// parameters) with the built-in text at the CLI's default calibration size; (2) a generated Llama
// (E 512, F 1536, 4 layers, vocab 2048: 15.7M parameters) on 32 windows of 256 synthetic token ids.
// Each run is its own process; native at onnxruntime's default threads (one per core), portable at
// 1 and 2 threads. Prints each run's seconds (the pipeline's own clock), CPU seconds, the ratio
// portable/native and whether the portable runs' bytes are equal (they must be, at any thread count).
// Usage: npm run bench calib-runtime. CALIB_RT_REPEATS=N (default 1) repeats each run, medians printed.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { writeGeneratedGguf } from './gen-llama.js';
import { fmt, median } from './util.js';
import type { ModelConfig } from '../src/model/config.js';

const GENERATED: ModelConfig = {
  architecture: 'llama', vocabSize: 2048, hiddenSize: 512, intermediateSize: 1536, nLayers: 4, nHeads: 8, nKvHeads: 8, headDim: 64,
  maxSeqLen: 512, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeLayout: 'half', attentionBias: false, qkNorm: false,
  bosTokenId: 1, eosTokenId: 2, tiedEmbeddings: false,
};

interface Run { runtime: string; threads: number; seconds: number; cpuSeconds: number; sha256: string }

function child(args: string[]): Run {
  const r = spawnSync(process.execPath, ['--import', 'tsx', resolve('bench/calib-runtime-child.ts'), ...args], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } });
  if (r.status !== 0) throw new Error(`child failed (status ${r.status}): ${r.stderr.slice(-2000)}`);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as Run;
}

async function job(name: string, model: string, extra: string[], dir: string): Promise<void> {
  const repeats = Number(process.env.CALIB_RT_REPEATS ?? 1);
  const configs: [string, number][] = [['native', 0], ['portable', 1], ['portable', 2]];
  const res = new Map<string, Run[]>();
  for (let i = 0; i < repeats; i++) {
    for (const [rt, th] of configs) {
      const key = `${rt}${th ? ` ${th} thread${th > 1 ? 's' : ''}` : ''}`;
      const r = child([model, join(dir, `${name}-${rt}-${th}`), rt, String(th), ...extra]);
      res.set(key, [...(res.get(key) ?? []), r]);
    }
  }
  const native = median(res.get('native')!.map((r) => r.seconds));
  console.log(`${name} (load ${loadavg()[0].toFixed(1)}):`);
  for (const [key, rs] of res) {
    const s = median(rs.map((r) => r.seconds));
    console.log(`  ${key.padEnd(20)} ${fmt(s, 2)} s (CPU ${fmt(median(rs.map((r) => r.cpuSeconds)), 2)} s)  ×${fmt(s / native, 2)} vs native  sha256 ${rs[0].sha256.slice(0, 12)}`);
  }
  const shas = new Set([...res].filter(([k]) => k.startsWith('portable')).flatMap(([, rs]) => rs.map((r) => r.sha256)));
  console.log(`  portable runs give ${shas.size === 1 ? 'the same bytes' : 'DIFFERENT bytes'} at 1 and 2 threads; native ${res.get('native')![0].sha256 === [...shas][0] ? 'equal' : 'differs'}`);
}

export default async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-calibrt-bench-'));
  try {
    await job('default model GPTQ int4-g128 (built-in text, default windows)', resolve('assets/default-model'), [], dir);
    const gen = join(dir, 'generated.gguf');
    await writeGeneratedGguf(gen, GENERATED);
    await job('generated 15.7M GPTQ int4-g128 (32 × 256 tokens)', gen, ['32', '256', String(GENERATED.vocabSize)], dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
