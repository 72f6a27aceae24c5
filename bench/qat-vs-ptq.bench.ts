// QAT vs PTQ (issue 6): per model and weight bit width, four validation losses on the SAME held-out
// tokens (runQat's split: the contiguous tail of the training text) with the same evaluator
// (Trainer.evaluate, 8 batches of 8 × 128):
//   fp    the float model
//   RTN   runQat's lossPtq: the ParetoQ quantizer with its initial per-row scales (SEQ max|W| for
//         1.58/2 bits, LSQ max|W|/Qp for 3/4 bits), i.e. round-to-nearest on the QAT grid
//   RTNi  quantizeModel --method rtn onto the symmetric per-channel int grid GPTQ uses
//   GPTQ  quantizeModel --method gptq onto that int grid (int<b>-channel-f16; ternary → int2-channel-f16, the
//         closest grid GPTQ supports: 4 levels {−2,−1,0,1}·s, one more than ternary), calibrated on the
//         training part of the text only (written to a file), format fakequant, loaded back
//   QAT   runQat's lossQat (lr 3e-4 cosine to 0, no warmup, seed 0, batch 8 × 128)
//   fp-ft control: the float model fine-tuned with exactly QAT's settings and steps but no quantizer,
//         so the part of QAT's gain that is plain fine-tuning on this text shows (once per model)
//
// Env: QVP_MODELS (comma list of default, stories260k; default both present), QVP_BITS (default
//      1.58,2,3,4; 'none' runs only the control), QVP_STEPS (default 100), QVP_LR (default 3e-4), QVP_JSON (append rows there).
// Legend: N = rows (output features), K = columns.
import { appendFileSync, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { ModelConfig } from '../src/model/config.js';
import { loadModel } from '../src/model/load.js';
import { defaultModelDir } from '../src/pipeline/sweep/demo.js';
import { runQat } from '../src/pipeline/qat/qat.js';
import { permuteRotaryRows } from '../src/model/permute.js';
import { quantizeModel, type QuantizeMethod } from '../src/pipeline/quantize/quantize.js';
import { loadCorpus, tokenize } from '../src/train/data.js';
import { paramSpecs } from '../src/train/graph.js';
import { Trainer, TRAIN_DEFAULTS, type TrainSettings } from '../src/train/trainer.js';

const CACHE = resolve('.cache', 'qat-vs-ptq');
const SHARED = resolve('..', 'shared');

interface Spec {
  name: string;
  path: string;
  text: string[];
  valFraction: number;
}

interface Row {
  model: string;
  bits: number;
  fp: number;
  rtn: number;
  rtnInt: number;
  gptq: number;
  gptqScheme: string;
  qat: number;
  steps: number;
  minutes: number;
}

function specs(): Spec[] {
  const want = (process.env.QVP_MODELS ?? 'default,stories260k').split(',');
  const out: Spec[] = [];
  if (want.includes('default')) out.push({ name: 'default-model', path: defaultModelDir(), text: ['moby-dick'], valFraction: 0.05 });
  const s = join(SHARED, 'models', 'stories260K', 'stories260K.bin');
  if (want.includes('stories260k')) {
    if (existsSync(s)) {
      // tinystories-sample (3.8 kB) then the valid excerpt (30 kB): the held-out 10% is the excerpt's tail
      out.push({ name: 'stories260K', path: s, text: [join(SHARED, 'data', 'tinystories-sample.txt'), join(SHARED, 'data', 'tinystories-valid-excerpt.txt')], valFraction: 0.1 });
    } else console.log('skip stories260K: ../shared is absent');
  }
  return out;
}

/** The model's linear/norm/embedding params as F32 in the trainer's rotate-half layout (as runQat reads them). */
async function params(path: string): Promise<{ config: ModelConfig; w: Map<string, Float32Array> }> {
  const m = await loadModel(path);
  try {
    const config: ModelConfig = { ...m.config, ropeLayout: 'half' };
    const w = new Map<string, Float32Array>();
    for (const p of paramSpecs(config)) {
      let x = await m.tensors.get(p.name)!.readF32();
      if (m.config.ropeLayout === 'interleaved' && /self_attn\.(q|k)_proj\.weight$/.test(p.name)) {
        x = permuteRotaryRows(x, p.name.includes('q_proj') ? config.nHeads : config.nKvHeads, config.headDim, 'interleaved', 'half');
      }
      w.set(p.name, x);
    }
    return { config, w };
  } finally {
    await m.close();
  }
}

/** The fine-tuning control: runQat's training settings with qat null. */
async function fpFinetune(config: ModelConfig, w: Map<string, Float32Array>, train: Int32Array, val: Int32Array, steps: number, lr: number): Promise<number> {
  const s: TrainSettings = { ...TRAIN_DEFAULTS, lr, warmupSteps: 0, weightDecay: 0, minLrRatio: 0, valEvery: 0, seed: 0, batch: 8, context: Math.min(128, config.maxSeqLen), steps, qat: null };
  const tr = await Trainer.create(config, s, w);
  try {
    while (tr.stepDone < steps) await tr.step(train);
    return await tr.evaluate(val);
  } finally {
    await tr.release();
  }
}

async function evalLoss(config: ModelConfig, w: Map<string, Float32Array>, val: Int32Array): Promise<number> {
  const s: TrainSettings = { ...TRAIN_DEFAULTS, context: Math.min(128, config.maxSeqLen), qat: null };
  const tr = await Trainer.create(config, s, w);
  try {
    return await tr.evaluate(val);
  } finally {
    await tr.release();
  }
}

// f16 scales, as GPTQ checkpoints store them (and as every figure in docs/training.md was measured)
const gptqScheme = (bits: number): string => `int${bits === 1.58 ? 2 : bits}-channel-f16`;

export default async function main(): Promise<void> {
  mkdirSync(CACHE, { recursive: true });
  const bitsSpec = process.env.QVP_BITS ?? '1.58,2,3,4';
  const bitsList = bitsSpec === 'none' ? [] : bitsSpec.split(',').map(Number);
  const steps = Number(process.env.QVP_STEPS ?? 100);
  const lr = Number(process.env.QVP_LR ?? 3e-4);
  const rows: Row[] = [];
  for (const sp of specs()) {
    // the same split runQat makes; GPTQ calibrates on the decoded training part only
    const m = await loadModel(sp.path);
    const split = tokenize(loadCorpus(sp.text), m.tokenizer!, sp.valFraction);
    const calib = join(CACHE, `${sp.name}-train.txt`);
    writeFileSync(calib, m.tokenizer!.decode(Array.from(split.train)));
    await m.close();
    const { config, w: fpW } = await params(sp.path);
    const fp = await evalLoss(config, fpW, split.val);
    const ft = await fpFinetune(config, fpW, split.train, split.val, steps, lr);
    console.log(`${sp.name}: fp ${fp.toFixed(4)}, fp fine-tuned ${steps} steps at lr ${lr}: ${ft.toFixed(4)}`);
    for (const bits of bitsList) {
      const t0 = Date.now();
      const ptq: Record<QuantizeMethod, number> = { rtn: NaN, gptq: NaN, awq: NaN };
      for (const method of ['rtn', 'gptq'] as const) {
        const out = join(CACHE, `${sp.name}-${method}-${bits}`);
        await quantizeModel({ model: sp.path, out, format: 'fakequant', scheme: gptqScheme(bits), method, calib, windows: 16, seqLen: 128, seed: 0, verify: false, overwrite: true }); // the documented calibration (docs/training.md), not today's default
        ptq[method] = await evalLoss(config, (await params(out)).w, split.val);
      }
      const q = await runQat({
        model: sp.path, bits, text: sp.text, steps, format: 'safetensors', out: join(CACHE, `${sp.name}-qat-${bits}`), overwrite: true,
        valFraction: sp.valFraction, settings: { lr, seed: 0, batch: 8, context: 128 },
      });
      const row: Row = { model: sp.name, bits, fp: q.lossFp, rtn: q.lossPtq, rtnInt: ptq.rtn, gptq: ptq.gptq, gptqScheme: gptqScheme(bits), qat: q.lossQat, steps, minutes: (Date.now() - t0) / 60000 };
      rows.push(row);
      console.log(JSON.stringify(row));
      if (process.env.QVP_JSON) appendFileSync(process.env.QVP_JSON, JSON.stringify(row) + '\n');
    }
  }
  console.log('\n| model | bits | fp | RTN (QAT grid) | RTN (int grid) | GPTQ (int grid) | QAT | RTN gap recovered by QAT | QAT ≤ GPTQ? |');
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const rec = (r.rtn - r.qat) / (r.rtn - r.fp);
    console.log(`| ${r.model} | ${r.bits} | ${r.fp.toFixed(4)} | ${r.rtn.toFixed(4)} | ${r.rtnInt.toFixed(4)} | ${r.gptq.toFixed(4)} (${r.gptqScheme}) | ${r.qat.toFixed(4)} | ${(100 * rec).toFixed(0)}% | ${r.qat <= r.gptq ? 'yes' : 'no'} |`);
  }
}
