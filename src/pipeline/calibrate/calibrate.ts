// Calibration: text → seeded token windows → per-layer statistics of every linear layer's input,
// gathered by running the model block by block on the engine (engine/block-runner.ts). Used by
// `bitscale quantize` (GPTQ Hessians, AWQ magnitudes, imatrix for ggml types) and
// `bitscale imatrix` (llama.cpp-compatible importance matrix files).
// Legend: W = windows, T = tokens per window, E = hidden size, K = a linear's input features.

import { ConfigError } from '../../core/errors.js';
import { ProgressTracker, checkAborted, type ProgressFn } from '../../core/progress.js';
import { ActivationStats } from '../../algorithms/stats.js';
import type { Tokenizer } from '../../formats/tokenizer/types.js';
import type { Imatrix } from '../../formats/imatrix/types.js';
import { writeImatrixGguf, writeImatrixLegacy } from '../../formats/imatrix/index.js';
import { atomicWriteFile, OutputTxn, readImatrixFile } from '../../formats/io/index.js';
import { modelInputFiles } from '../../model/inputs.js';
import { loadModel } from '../../model/load.js';
import { prepareHostModel } from '../../engine/host.js';
import type { HostModel } from '../../engine/host.js';
import { hfToGguf } from '../../model/names.js';
import { calibrationSize, calibrationWindows, isSelfCalibration, resolveCalibration, type CalibrationSource } from './windows.js';
import { checkCalibrationBudget } from '../limits.js';
import { CalibrationRunner, embedWindowStates, newGraphSiteStats, type SiteStats } from './batch.js';
import { BlockRunner } from '../../engine/block-runner.js';
import type { OrtRuntime } from '../../engine/session.js';
import { LINEAR_SITE, SITES, type Site } from '../../engine/decoder-block.js';

export { calibrationSource, calibrationWindows, type CalibrationSource, type WindowOptions } from './windows.js';

/** Hidden states entering layer 0: the embedding rows of each window, [T, E] each. */
export function embedWindows(host: HostModel, windows: number[][]): Float32Array[] {
  const E = host.config.hiddenSize;
  const emb = host.tensors.get('model.embed_tokens.weight')!;
  return windows.map((w) => {
    const x = new Float32Array(w.length * E);
    w.forEach((t, i) => x.set(emb.subarray(t * E, (t + 1) * E), i * E));
    return x;
  });
}

/** Statistics of the four linear-input sites of one layer. */
export type { SiteStats } from './batch.js';

export function newSiteStats(host: HostModel, withGram: boolean): SiteStats {
  const c = host.config;
  const K: Record<Site, number> = { attn_in: c.hiddenSize, attn_out: c.nHeads * c.headDim, ffn_in: c.hiddenSize, ffn_down: c.intermediateSize };
  return Object.fromEntries(SITES.map((s) => [s, new ActivationStats(K[s], withGram)])) as SiteStats;
}

/**
 * Runs layer `layer` over all windows (inputs `xs`, replaced by the layer outputs), adding the
 * site inputs to `stats` when given. Weights come from `host` as they are now.
 */
export async function runLayer(runner: BlockRunner, host: HostModel, layer: number, xs: Float32Array[], stats: SiteStats | null, signal?: AbortSignal): Promise<void> {
  const get = (n: string) => host.tensors.get(n)!;
  for (let w = 0; w < xs.length; w++) {
    checkAborted(signal);
    const r = await runner.run(layer, get, xs[w], !!stats);
    if (stats) for (const s of SITES) stats[s].add(r.sites[s]!);
    xs[w] = r.y;
  }
}

export interface ImatrixOptions {
  host: HostModel;
  tokenizer: Tokenizer;
  source: CalibrationSource;
  /** windows already chosen (e.g. self-generated); otherwise cut from `source` */
  tokens?: number[][];
  windows: number;
  seqLen: number;
  seed: number;
  /** the onnxruntime of the forward passes (default 'native'; engine/session.ts) */
  runtime?: OrtRuntime;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

/**
 * llama.cpp-style importance matrix of the float model: Σ x_j² and token counts at the input of
 * every linear layer, keyed by GGUF tensor names (the output layer is left out, as llama-imatrix
 * does by default).
 */
export async function collectImatrix(o: ImatrixOptions): Promise<Imatrix> {
  const c = o.host.config;
  const wins = o.tokens ?? calibrationWindows(o.tokenizer, o.source.text, o);
  const xs = embedWindowStates(o.host.tensors.get('model.embed_tokens.weight')!, c.hiddenSize, wins);
  const runner = new CalibrationRunner(c, wins[0].length, { runtime: o.runtime });
  const entries: Imatrix['entries'] = new Map();
  const track = new ProgressTracker('imatrix', c.nLayers, o.onProgress, 'layer');
  try {
    for (let l = 0; l < c.nLayers; l++) {
      const st = newGraphSiteStats(c, false);
      await runner.run(l, (n) => o.host.tensors.get(n)!, xs, { stats: st, forward: true, signal: o.signal });
      for (const [lin, site] of Object.entries(LINEAR_SITE)) {
        const name = hfToGguf(`model.layers.${l}.${lin}.weight`) ?? `model.layers.${l}.${lin}.weight`;
        entries.set(name, { sums: Float32Array.from(st[site].sumSq), counts: [st[site].nTokens] });
      }
      track.tick(`layer ${l}`);
    }
  } finally {
    await runner.close();
  }
  return { entries, chunkCount: wins.length, chunkSize: o.seqLen, datasets: [o.source.name] };
}

export interface RunImatrixOptions {
  model: string;
  out: string;
  /** 'gguf' (llama.cpp's current default) or 'dat' (legacy) */
  format?: 'gguf' | 'dat';
  calib?: string;
  windows?: number;
  seqLen?: number;
  seed?: number;
  tokenizer?: string;
  overwrite?: boolean;
  /** 'portable': the same bytes on every machine (quantize's --calib-runtime) */
  calibRuntime?: OrtRuntime;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

/**
 * `bitscale imatrix`: collects an importance matrix and writes it (checked before any work, staged,
 * read back, then put in place: formats/io/output.ts); returns a summary.
 */
export async function runImatrix(o: RunImatrixOptions): Promise<{ out: string; entries: number; tokens: number; source: string }> {
  const weights = await loadModel(o.model, { tokenizer: o.tokenizer });
  try {
    if (!weights.tokenizer) throw new ConfigError('bad_option', 'the model has no tokenizer; pass --tokenizer', { field: '--tokenizer' });
    const size = calibrationSize(weights.config, o);
    checkCalibrationBudget(size.windows, size.seqLen, weights.config);
    const inputs = [...(await modelInputFiles(weights, o.tokenizer)), isSelfCalibration(o.calib) ? null : o.calib];
    const txn = await OutputTxn.begin(o.out, { kind: 'file', force: o.overwrite, inputs });
    try {
      const host = await prepareHostModel(weights);
      const w = { ...size, seed: o.seed ?? 0, onProgress: o.onProgress, signal: o.signal, runtime: o.calibRuntime };
      const calib = await resolveCalibration(o.calib, weights.tokenizer, host, w);
      const source = { name: calib.source, text: '' };
      const im = await collectImatrix({ host, tokenizer: weights.tokenizer, source, tokens: calib.windows, ...w });
      const bytes = (o.format ?? 'gguf') === 'dat' ? writeImatrixLegacy(im) : await writeImatrixGguf(im);
      await atomicWriteFile(txn.staged, bytes);
      // read back: the file parses and every value is finite (a NaN activation would poison quantize)
      await readImatrixFile(txn.staged);
      await txn.commit();
      const first = im.entries.values().next().value;
      return { out: o.out, entries: im.entries.size, tokens: first ? first.counts[0] : 0, source: source.name };
    } catch (e) {
      await txn.abort();
      throw e;
    }
  } finally {
    await weights.close();
  }
}
