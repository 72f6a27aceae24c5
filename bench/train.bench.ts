// Training throughput: tokens/s and achieved GFLOPS of one optimizer step (forward + backward on
// onnxruntime, AdamW on the host) for the ≈0.5M, 2M and 8M presets, batch 8 × context 128.
// GFLOPS counts matmul work only: 3 × forward (the backward is two matmuls per forward matmul),
// forward = 2·T·(linear weights + E·V) + 4·L·B·H·S²·D (QKᵀ and AV, causal mask not discounted).
// Also: the same step with the ParetoQ 2-bit QAT quantizers on the host, as a peer in the same run.
import { Rng } from '../src/core/rng.js';
import { PRESETS } from '../src/pipeline/train.js';
import { llamaConfig, paramSpecs } from '../src/train/graph.js';
import { Trainer, TRAIN_DEFAULTS, type TrainSettings } from '../src/train/trainer.js';
import { fmt, timeMs } from './util.js';

const B = 8;
const S = 128;

function matmulFlopsPerStep(c: ReturnType<typeof llamaConfig>): number {
  const T = B * S;
  const linear = paramSpecs(c).filter((p) => p.linear).reduce((a, p) => a + p.shape[0] * p.shape[1], 0);
  const fwd = 2 * T * (linear + c.hiddenSize * c.vocabSize) + 4 * c.nLayers * B * c.nHeads * S * S * c.headDim;
  return 3 * fwd;
}

export default async function bench(): Promise<void> {
  const rng = new Rng(1);
  const rows: string[] = [];
  for (const name of ['0.5m', '2m', '8m']) {
    const p = PRESETS[name];
    const cfg = llamaConfig({ ...p, context: S });
    const data = Int32Array.from({ length: 50000 }, () => rng.int(p.vocabSize));
    const nParams = paramSpecs(cfg).reduce((a, q) => a + q.shape.reduce((x, d) => x * d, 1), 0);
    for (const qat of [null, { bits: 2 as const, bitnet: false }]) {
      const s: TrainSettings = { ...TRAIN_DEFAULTS, batch: B, context: S, steps: 1000, qat };
      const tr = await Trainer.create(cfg, s);
      const ms = await timeMs(() => tr.step(data), 3, 1);
      await tr.release();
      const tokS = (B * S) / (ms / 1000);
      const gflops = matmulFlopsPerStep(cfg) / (ms / 1000) / 1e9;
      rows.push(`${name.padEnd(5)} ${String(nParams).padStart(9)} params  ${qat ? 'QAT 2-bit' : 'fp32     '}  step ${fmt(ms, 0).padStart(6)} ms  ${fmt(tokS, 0).padStart(6)} tok/s  ${fmt(gflops, 1).padStart(6)} GFLOPS`);
      console.log(rows[rows.length - 1]);
    }
  }
}
