// One sweep point, measured: quantize (or QAT) the model at one spec, then perplexity with its
// interval, KL divergence and top-1 agreement against the base model on the same tokens. The
// sweep runs these in its own process (pipeline/sweep/sweep.ts) or hands them to queue workers
// (pipeline/queue/exec.ts); both call the same functions on the same inputs, so a point measured
// by a worker is the point a local run measures, bit for bit.
// Legend: T = evaluation tokens, V = vocab, N = out features, K = in features.

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from '../../core/errors.js';
import { GGML_TYPES, ggmlBitsPerWeight, isGgmlType, type GgmlType } from '../../core/dtype.js';
import { ProgressTracker, checkAborted, type ProgressFn } from '../../core/progress.js';
import { LlamaEngine } from '../../engine/model.js';
import type { OrtRuntime } from '../../engine/session.js';
import { prepareHostModel, isLinearWeight, type HostModel } from '../../engine/host.js';
import { compareModels, engineModel, perplexity, type LogitsModel, type WindowOptions } from '../../eval/index.js';
import type { SensitivityRow, SweepPointResult, SweepPointSpec } from '../../eval/sweep-types.js';
import { readTextFile, sha256File } from '../../formats/io/index.js';
import { loadModel } from '../../model/load.js';
import type { ModelWeights } from '../../model/weights.js';
import { bitsPerWeight, fakeQuant, parseScheme } from '../../quant/index.js';
import { quantizeModel } from '../quantize/quantize.js';
import { runQat } from '../qat/qat.js';

/** What a point's measurement depends on (paths as this process sees them). */
export interface SweepPointSettings {
  model: string;
  /** evaluation text */
  text: string;
  tokenizer?: string;
  ctx?: number;
  /** evaluate on at most this many text tokens (default 8192) */
  maxTokens?: number;
  calib?: string;
  /** calibration windows for GPTQ/AWQ/mixed (default: the quantizer's, calibrationSize in pipeline/calibrate/windows.ts) */
  calibWindows?: number;
  seed?: number;
  /** the onnxruntime of calibration's float results (quantize's --calib-runtime; default 'native') */
  calibRuntime?: OrtRuntime;
  /** training text for QAT points (files, or 'moby-dick') */
  qatText?: string[];
  /** QAT steps per point (default 100) */
  qatSteps?: number;
  /** reload every written file in its runtime and compare logits (default true) */
  verify?: boolean;
  signal?: AbortSignal;
}

/** The model (headers and tokenizer), the evaluation tokens and the hashes that identify them. */
export interface SweepInputs {
  weights: ModelWeights;
  ids: number[];
  win: WindowOptions;
  modelSha: string;
  textSha: string;
}

/** The base model on the engine, with its logits cached by window (evaluated once per process). */
export interface SweepBase {
  host: HostModel;
  engine: LlamaEngine;
  model: LogitsModel;
}

/** Logits cached by window: the base model is evaluated once for the whole sweep. */
function cached(m: LogitsModel): LogitsModel {
  const memo = new Map<string, Float32Array>();
  return {
    vocabSize: m.vocabSize,
    async logits(tokens) {
      const key = tokens.join(',');
      let l = memo.get(key);
      if (!l) {
        l = await m.logits(tokens);
        memo.set(key, l);
      }
      return l;
    },
  };
}

/** sha256 of a file, or of `name:sha256` lines over a directory's files (sorted by name). */
export async function hashPath(path: string): Promise<string> {
  const st = await stat(path);
  if (st.isFile()) return sha256File(path);
  const parts: string[] = [];
  for (const f of (await readdir(path)).sort()) {
    const p = join(path, f);
    if ((await stat(p)).isFile()) parts.push(`${f}:${await sha256File(p)}`);
  }
  const { createHash } = await import('node:crypto');
  return createHash('sha256').update(parts.join('\n')).digest('hex');
}

/** Opens the model (lazily), tokenizes the text and hashes both. The caller closes `weights`. */
export async function readSweepInputs(o: SweepPointSettings): Promise<SweepInputs> {
  const text = await readTextFile(o.text, 'cannot read the evaluation text');
  const weights = await loadModel(o.model, o.tokenizer ? { tokenizer: o.tokenizer } : {});
  try {
    if (!weights.tokenizer) throw new ConfigError('bad_option', 'the model has no tokenizer; the sweep needs one to read the text', { file: o.model, field: '--tokenizer' });
    const c = weights.config;
    const ctx = Math.min(o.ctx ?? 256, c.maxSeqLen);
    const ids = weights.tokenizer.encode(text, { bos: false }).slice(0, o.maxTokens ?? 8192);
    if (ids.length < ctx) throw new ConfigError('bad_option', 'evaluation text shorter than one window', { file: o.text, expected: `>= ${ctx} tokens`, found: ids.length });
    const win: WindowOptions = { ctx, protocol: 'windows', bosId: c.bosTokenId };
    return { weights, ids, win, modelSha: await hashPath(o.model), textSha: await sha256File(o.text) };
  } catch (e) {
    await weights.close();
    throw e;
  }
}

export async function openSweepBase(inputs: SweepInputs): Promise<SweepBase> {
  const host = await prepareHostModel(inputs.weights);
  const engine = LlamaEngine.fromHost(host);
  return { host, engine, model: cached(engineModel(engine)) };
}

async function sizeOf(files: string[]): Promise<number> {
  let n = 0;
  for (const f of files) n += (await stat(f)).size;
  return n;
}

/** Input features K of a linear weight [N, K]. */
function linearK(host: HostModel, name: string): number {
  const c = host.config;
  return /down_proj/.test(name) ? c.intermediateSize : /o_proj/.test(name) ? c.nHeads * c.headDim : c.hiddenSize;
}

/** Bits per weight of one scheme applied to every linear (the packed size of a QAT model's grid). */
function linearSchemeBpw(host: HostModel, sc: ReturnType<typeof parseScheme>): number {
  let bits = 0;
  let n = 0;
  for (const [name, w] of host.tensors) {
    if (!isLinearWeight(name)) continue;
    const k = linearK(host, name);
    bits += bitsPerWeight(sc, [w.length / k, k]) * w.length;
    n += w.length;
  }
  return n ? bits / n : 32;
}

/**
 * Bits per weight over the quantized linears, from the per-tensor types the quantizer chose. A GGUF's
 * report also lists the token embedding and output its recipe quantized; they are left out, as the
 * float ones of the other formats are (the file size counts them).
 */
function linearBpw(host: HostModel, tensors: { name: string; type: string }[]): number {
  let bits = 0;
  let n = 0;
  for (const t of tensors) {
    if (!isLinearWeight(t.name)) continue;
    const w = host.tensors.get(t.name);
    if (!w) continue;
    const k = linearK(host, t.name);
    const shape = [w.length / k, k];
    const up = t.type.toUpperCase();
    // a ggml type (F16 fallbacks included), else the scheme string the quantizer used (targetLabel)
    const b = isGgmlType(up) ? ggmlBitsPerWeight(up as GgmlType) : bitsPerWeight(parseScheme(t.type), shape);
    bits += b * w.length;
    n += w.length;
  }
  return n ? bits / n : 32;
}

/** Quantizes (or QAT-trains) one point into `out` and measures it. `command` is left empty. */
export async function runSweepPoint(o: SweepPointSettings, spec: SweepPointSpec, out: string, inputs: SweepInputs, base: SweepBase): Promise<SweepPointResult> {
  const { ids, win } = inputs;
  const seed = o.seed ?? 0;
  const t0 = Date.now();
  let host: HostModel = base.host;
  let fileBytes = 0;
  let bpw = 32;
  if (spec.method === 'qat') {
    if (!o.qatText?.length) throw new ConfigError('bad_option', 'QAT points need a training text', { field: '--qat-text', hint: 'e.g. --qat-text moby-dick or a text file' });
    const qs = await runQat({ model: o.model, bits: spec.bits, text: o.qatText, steps: o.qatSteps ?? 100, format: 'safetensors', out, overwrite: true, signal: o.signal });
    const back = await loadModel(out);
    try {
      host = await prepareHostModel(back);
    } finally {
      await back.close();
    }
    // the QAT checkpoint is GPTQ-packed (2-bit SEQ in a 3-bit container: see docs/training.md)
    fileBytes = await sizeOf(qs.files);
    const sc = parseScheme(spec.scheme);
    bpw = linearSchemeBpw(host, sc);
  } else if (spec.method !== 'base') {
    const rep = await quantizeModel({
      model: o.model,
      out,
      format: spec.format === 'gguf' || spec.format === 'fakequant' || spec.format === 'onnx' || spec.format === 'compressed-tensors' ? spec.format : 'safetensors',
      scheme: spec.scheme,
      method: spec.method === 'mixed' ? 'rtn' : (spec.method as 'rtn' | 'gptq' | 'awq'),
      targetBpw: spec.targetBpw,
      calib: o.calib,
      windows: o.calibWindows,
      seed,
      calibRuntime: o.calibRuntime,
      tokenizer: o.tokenizer,
      overwrite: true,
      keepHost: true,
      verify: o.verify ?? true,
      signal: o.signal,
    });
    if (rep.host) host = rep.host;
    else {
      // no in-memory model came back: evaluate the written file itself
      const back = await loadModel(out, o.tokenizer ? { tokenizer: o.tokenizer } : {});
      try {
        host = await prepareHostModel(back);
      } finally {
        await back.close();
      }
    }
    // a fake-quant float file says nothing about the packed size: report none rather than a misleading one
    fileBytes = spec.format === 'fakequant' ? 0 : await sizeOf(rep.files);
    bpw = linearBpw(host, rep.tensors);
  } else {
    fileBytes = 0;
  }
  const quantizeS = (Date.now() - t0) / 1000;
  const engine = spec.method === 'base' ? null : LlamaEngine.fromHost(host);
  try {
    const test = engine ? cached(engineModel(engine)) : base.model;
    const t1 = Date.now();
    const ppl = await perplexity(test, ids, win);
    const evalS = (Date.now() - t1) / 1000;
    const cmp = engine ? await compareModels(base.model, test, ids, win) : null;
    return {
      ...spec,
      fileBytes,
      bpw,
      nll: ppl.nll,
      ppl: ppl.ppl,
      pplLo: ppl.pplCi95[0],
      pplHi: ppl.pplCi95[1],
      kld: cmp ? cmp.kld : 0,
      kldLo: cmp ? cmp.kldCi95[0] : 0,
      kldHi: cmp ? cmp.kldCi95[1] : 0,
      dnllLo: cmp ? cmp.deltaNllCi95[0] : 0,
      dnllHi: cmp ? cmp.deltaNllCi95[1] : 0,
      top1: cmp ? cmp.top1Agreement : 1,
      tokensPerS: ppl.count / Math.max(evalS, 1e-9),
      quantizeS,
      onFrontier: false,
      command: '',
    };
  } finally {
    await engine?.close();
  }
}

/** The scheme the sensitivity scan uses by default: the lowest int width in the grid, else its first GGUF type. */
export function sensitivityScheme(specs: SweepPointSpec[]): string | null {
  const ints = specs.filter((s) => /^int\d-(g\d+|channel)$/.test(s.scheme)).sort((a, b) => a.bits - b.bits);
  if (ints.length) return ints[0].scheme;
  const gg = specs.find((s) => s.format === 'gguf');
  return gg ? gg.scheme : null;
}

/** ΔNLL when one linear tensor alone is RTN-quantized with `scheme` (on the first windows of the text). */
export async function sweepSensitivity(inputs: SweepInputs, base: SweepBase, scheme: string, opts: { onProgress?: ProgressFn; signal?: AbortSignal } = {}): Promise<SensitivityRow[]> {
  const { ids, win } = inputs;
  const baseHost = base.host;
  const sc = parseScheme(scheme);
  const few = { ...win, maxWindows: 2 };
  const ref = await perplexity(base.model, ids, few);
  const names = [...baseHost.tensors.keys()].filter(isLinearWeight);
  const track = new ProgressTracker('sensitivity', names.length, opts.onProgress, 'tensor');
  const rows: SensitivityRow[] = [];
  for (const name of names) {
    checkAborted(opts.signal);
    const w = baseHost.tensors.get(name) as Float32Array;
    const k = linearK(baseHost, name);
    const shape = [w.length / k, k];
    if (sc.kind === 'ggml' && k % GGML_TYPES[sc.type].blockSize !== 0) continue;
    const wq = fakeQuant(w, shape, sc, { name });
    let num = 0;
    let den = 0;
    for (let i = 0; i < w.length; i++) {
      num += (w[i] - wq[i]) ** 2;
      den += w[i] * w[i];
    }
    const tensors = new Map(baseHost.tensors);
    tensors.set(name, wq);
    const e = LlamaEngine.fromHost({ ...baseHost, tensors });
    try {
      const r = await perplexity(engineModel(e), ids, few);
      rows.push({ tensor: name, scheme, deltaNll: r.nll - ref.nll, relErr: den > 0 ? num / den : 0 });
    } finally {
      await e.close();
    }
    track.tick(name);
  }
  return rows;
}
