// `bitscale qat`: quantization-aware fine-tuning of a loaded model (ParetoQ LSQ for 1/3/4 bits,
// SEQ for 1.58/2 bits, or BitNet b1.58), then a packed export (GGUF ggml blocks or GPTQ
// safetensors written exactly from the grid, pipeline/qat/export.ts; ONNX MatMulNBits) and a check that the
// exported file, loaded back, scores the same validation loss as the QAT model.
// Legend: N = rows (output features), K = columns, D = head dim.

import { ConfigError } from '../../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../../core/progress.js';
import type { ModelConfig } from '../../model/config.js';
import type { HostModel } from '../../engine/host.js';
import { loadModel } from '../../model/load.js';
import { modelInputFiles } from '../../model/inputs.js';
import { checkOutput } from '../../formats/io/index.js';
import { exportOnnx, hostWithRowGridCodes, type RowGrid } from '../export/onnx.js';
import { onnxValidationLoss } from '../../eval/onnx-loss.js';
import type { ModelWeights } from '../../model/weights.js';
import { loadCorpus, tokenize } from '../../train/data.js';
import { checkTrainable, paramSpecs } from '../../train/graph.js';
import { projectAlphaToF16, projectBitnetToF16, QAT_METHOD_NAME } from '../../train/qat.js';
import { GRID_GGML_TYPES, type GridGgmlType } from '../../quant/ggml/index.js';
import { exportQatGguf, exportQatGptq, type QatExportInput } from './export.js';
import { isQatBits, type QatBits } from '../../train/quantizers.js';
import { ACT_EPS } from '../../train/lowprec.js';
import { ALPHA_SUFFIX, Trainer, TRAIN_DEFAULTS, type LogRecord, type TrainSettings } from '../../train/trainer.js';
import { permuteRotaryRows } from '../../model/permute.js';

export type QatFormat = 'gguf' | 'onnx' | 'safetensors';

export interface QatJob {
  model: string;
  bits: number;
  bitnet?: boolean;
  text: string[];
  steps?: number;
  tokens?: number;
  format: QatFormat;
  out: string;
  settings?: Partial<TrainSettings>;
  valFraction?: number;
  overwrite?: boolean;
  /** GGUF container for the linears instead of qatGgmlType's choice (it must hold the grid) */
  ggmlType?: GridGgmlType;
  onProgress?: ProgressFn;
  onLog?: (r: LogRecord) => void;
  signal?: AbortSignal;
}

export interface QatSummary {
  method: string;
  bits: QatBits;
  steps: number;
  tokens: number;
  /** validation loss (nats/token) of the full-precision model */
  lossFp: number;
  /** of the quantized model before QAT (codec with the initial scales: PTQ) */
  lossPtq: number;
  /** of the QAT model (after the export projection of the scales, if any) */
  lossQat: number;
  /** of the exported file, loaded back */
  lossExported: number;
  /** ggml types used for the linear weights (GGUF) */
  ggmlTypes: string[];
  files: string[];
  /** GGUF/safetensors: the packed containers ("TQ2_0", "GPTQ int2", …) */
  packing?: string[];
  /** GGUF/safetensors: what was stored unpacked (F32), and why */
  notes?: string[];
  /** ONNX only: transformers.js dtype, file bytes (model + external data), and how each linear is
   * stored (MatMulNBits with its bits, or a float initializer) */
  onnx?: { dtype: string; bytes: number; linears: { name: string; op: string; bits?: number; floatZeroPoints?: boolean }[] };
}

/** A model's training parameters as F32 in the rotate-half layout. */
async function readParams(m: ModelWeights): Promise<{ config: ModelConfig; params: Map<string, Float32Array> }> {
  const config: ModelConfig = { ...m.config, ropeLayout: 'half' };
  checkTrainable(config);
  const params = new Map<string, Float32Array>();
  for (const p of paramSpecs(config)) {
    const src = m.tensors.get(p.name);
    if (!src) throw new ConfigError('bad_config', 'the model lacks a tensor the trainer needs', { file: m.source.path, tensor: p.name });
    let w = await src.readF32();
    if (m.config.ropeLayout === 'interleaved' && /self_attn\.(q|k)_proj\.weight$/.test(p.name)) {
      const heads = p.name.includes('q_proj') ? config.nHeads : config.nKvHeads;
      w = permuteRotaryRows(w, heads, config.headDim, 'interleaved', 'half');
    }
    params.set(p.name, w);
  }
  return { config, params };
}

/** Validation loss of fixed weights; `bitnetActs`: with BitNet's 8-bit per-token activations, as the BitNet model runs. */
async function evalWeights(config: ModelConfig, s: TrainSettings, w: Map<string, Float32Array>, val: Int32Array, bitnetActs = false): Promise<number> {
  const lowPrecision = bitnetActs ? { ...s.lowPrecision, activations: { bits: 8, granularity: 'token' as const } } : s.lowPrecision;
  const tr = await Trainer.create(config, { ...s, qat: null, lowPrecision }, w);
  try {
    return await tr.evaluate(val);
  } finally {
    await tr.release();
  }
}

export async function runQat(job: QatJob): Promise<QatSummary> {
  if (!isQatBits(job.bits)) throw new ConfigError('bad_option', 'unsupported QAT bit width', { field: '--bits', expected: '1, 1.58, 2, 3 or 4', found: job.bits });
  const bits = job.bits;
  const bitnet = job.bitnet ?? false;
  if (bitnet && bits !== 1.58) throw new ConfigError('bad_option', '--bitnet is ternary', { field: '--bits', expected: 1.58, found: bits });
  if (job.ggmlType && !GRID_GGML_TYPES.includes(job.ggmlType)) throw new ConfigError('bad_option', 'unknown --ggml-type', { field: '--ggml-type', expected: GRID_GGML_TYPES.join(' | ').toLowerCase(), found: job.ggmlType });
  if (job.ggmlType && job.format !== 'gguf') throw new ConfigError('bad_option', '--ggml-type applies to GGUF output', { field: '--ggml-type', expected: '--format gguf', found: job.format });
  const m = await loadModel(job.model);
  try {
    if (!m.tokenizer) throw new ConfigError('bad_config', 'the model has no tokenizer to encode the training text', { file: job.model });
    // the output may be written (place, inputs, --force), checked before the training it would follow
    const inputs = [...(await modelInputFiles(m)), ...job.text.filter((t) => t !== 'moby-dick')];
    await checkOutput(job.out, { kind: job.format === 'gguf' ? 'file' : 'dir', force: job.overwrite, inputs });
    const { config, params } = await readParams(m);
    const split = tokenize(loadCorpus(job.text), m.tokenizer, job.valFraction ?? 0.05);
    const context = Math.min(job.settings?.context ?? 128, config.maxSeqLen);
    const base: TrainSettings = { ...TRAIN_DEFAULTS, lr: 1e-3, warmupSteps: 0, weightDecay: 0, minLrRatio: 0, valEvery: 0, ...job.settings, context };
    const perStep = base.batch * base.context * base.accum;
    const steps = job.steps ?? (job.tokens ? Math.max(1, Math.ceil(job.tokens / perStep)) : 200);
    const s: TrainSettings = { ...base, steps, qat: { bits, bitnet } };
    const lossFp = await evalWeights(config, s, params, split.val);

    const tr = await Trainer.create(config, s, params);
    let lossPtq: number;
    let lossQat: number;
    try {
      lossPtq = await tr.evaluate(split.val);
      const progress = new ProgressTracker('qat', steps, job.onProgress, 'step');
      const t0 = Date.now();
      while (tr.stepDone < steps) {
        checkAborted(job.signal);
        const r = await tr.step(split.train);
        const elapsedS = (Date.now() - t0) / 1000;
        const rec: LogRecord = { step: tr.stepDone, loss: r.loss, lr: r.lr, gradNorm: r.gradNorm, tokens: tr.stepDone * perStep, tokensPerS: (tr.stepDone * perStep) / elapsedS, elapsedS, etaS: (elapsedS / tr.stepDone) * (steps - tr.stepDone) };
        job.onLog?.(rec);
        progress.tick(`loss ${r.loss.toFixed(4)} | ${Math.round(rec.tokensPerS)} tok/s`);
      }
      // GGUF block scales and GPTQ scales are fp16: move each learned scale's grid step onto the
      // nearest fp16 value first, so the exported file holds exactly the weights the QAT model is
      // evaluated with (BitNet's data-derived γ is projected below, on the weights)
      if (job.format !== 'onnx' && !bitnet) {
        for (const p of paramSpecs(config)) if (p.linear) tr.setParam(p.name + ALPHA_SUFFIX, projectAlphaToF16(tr.params.get(p.name + ALPHA_SUFFIX)!, bits));
      }
      lossQat = await tr.evaluate(split.val);
    } finally {
      await tr.release();
    }
    const eff = tr.effectiveWeights();

    if (job.format === 'onnx') {
      // every QAT grid is a per-row (BitNet: per-tensor) step times an integer level, so the linears run
      // as MatMulNBits: ternary/binary/BitNet 2-bit u = level + 2 (default zero point 2); SEQ 2-bit
      // u ∈ 0..3 with step α/2 and float zero point 1.5; LSQ 3/4-bit on 4 bits (onnxruntime has no
      // 3-bit MatMulNBits). A weight whose codes do not reproduce it bit for bit stays float.
      const host0: HostModel = { config, tensors: new Map(paramSpecs(config).map((p) => [p.name, eff.get(p.name)!])), lowBit: new Map() };
      const rowSteps = new Map<string, Float32Array>();
      for (const p of paramSpecs(config)) {
        if (!p.linear) continue;
        const w = eff.get(p.name)!;
        if (bitnet) {
          // γ·{−1, 0, 1}: γ is the largest magnitude (0 for an all-zero tensor, which any step holds)
          let g = 0;
          for (let i = 0; i < w.length; i++) g = Math.max(g, Math.abs(w[i]));
          rowSteps.set(p.name, new Float32Array(p.shape[0]).fill(g));
        } else {
          const div = bits === 1.58 ? 1.5 : bits === 2 ? 2 : 1;
          rowSteps.set(p.name, Float32Array.from(tr.params.get(p.name + ALPHA_SUFFIX)!, (a) => Math.fround(a) / div));
        }
      }
      const grid: RowGrid = bits === 2 && !bitnet ? { bits: 2, zeroPoint: 1.5 } : bits <= 2 ? { bits: 2 } : { bits: 4 };
      const host = hostWithRowGridCodes(host0, rowSteps, grid);
      // BitNet trains with 8-bit per-token absmax activations: the graph quantizes every linear's input the same way
      const activations = bitnet ? { kind: 'absmax' as const, bits: 8, eps: ACT_EPS } : null;
      const ox = await exportOnnx(host, m.tokenizer, job.out, { inputs: [job.model], overwrite: job.overwrite, signal: job.signal, activations, manifest: { command: 'qat', scheme: QAT_METHOD_NAME(bits, bitnet), settings: { bits, bitnet, steps } } });
      // the file itself, in onnxruntime, over the validation windows the trainer scored
      const lossOnnx = await onnxValidationLoss(ox.modelFile, config, split.val, { batch: s.batch, context: s.context, maxBatches: s.valBatches, threads: s.threads, signal: job.signal });
      const onnx = { dtype: ox.dtype, bytes: ox.bytes.model + ox.bytes.externalData, linears: ox.linears.map(({ name, op, bits: b, floatZeroPoints }) => ({ name, op, ...(b ? { bits: b } : {}), ...(floatZeroPoints ? { floatZeroPoints } : {}) })) };
      return { method: QAT_METHOD_NAME(bits, bitnet), bits, steps, tokens: steps * perStep, lossFp, lossPtq, lossQat, lossExported: lossOnnx, ggmlTypes: [], files: ox.files, onnx };
    }

    // packed and exact (pipeline/qat/export.ts): GGUF ggml blocks or GPTQ safetensors from (fp16 step, level)
    let effX = eff;
    if (bitnet) {
      // γ = mean|W| is f32; the fp16 γ is the model from here on, scored with its 8-bit activations
      const linear = new Set(paramSpecs(config).filter((p) => p.linear).map((p) => p.name));
      effX = new Map([...eff].map(([k, w]) => [k, linear.has(k) ? projectBitnetToF16(w) : w]));
      lossQat = await evalWeights(config, s, effX, split.val, true);
    }
    const xin: QatExportInput = {
      config,
      tokenizer: m.tokenizer,
      bits,
      bitnet,
      method: QAT_METHOD_NAME(bits, bitnet),
      eff: effX,
      alpha: (name) => (bitnet ? null : ((tr.params.get(name + ALPHA_SUFFIX) as Float32Array | undefined) ?? null)),
      source: job.model,
      out: job.out,
      ggmlType: job.ggmlType,
      overwrite: job.overwrite,
      signal: job.signal,
    };
    const ex = job.format === 'gguf' ? await exportQatGguf(xin) : await exportQatGptq(xin);

    // the exported file, loaded back, must score what the QAT model scored
    const back = await loadModel(job.out);
    let lossExported: number;
    try {
      lossExported = await evalWeights(config, s, (await readParams(back)).params, split.val, bitnet);
    } finally {
      await back.close();
    }
    return { method: QAT_METHOD_NAME(bits, bitnet), bits, steps, tokens: steps * perStep, lossFp, lossPtq, lossQat, lossExported, ggmlTypes: job.format === 'gguf' ? ex.types : [], packing: ex.types, notes: ex.notes, files: ex.files };
  } finally {
    await m.close();
  }
}
