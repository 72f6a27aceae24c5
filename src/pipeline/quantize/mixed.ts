// --target-bpw: per-tensor ggml types chosen from measured sensitivity. One float pass over the
// calibration windows gives each linear's input Gram matrix; every candidate type's error
// ‖(W − Ŵ)‖²_H is measured, and the knapsack allocator (algorithms/mixed.ts) picks the types that
// meet the bits-per-weight target over the linear weights with the least total error.
//
// ‖(W − Ŵ)‖²_H is the error at the tensor's own output; how much of it reaches the model's
// prediction differs from tensor to tensor (a v_proj error passes through attention, a down_proj
// error straight into the residual), so the allocator would compare unlike units. With the
// default sensitivity 'kl', each tensor's proxy is put into the units of the model's output: the
// tensor alone is quantized to a reference type (the candidate nearest the target), the whole
// model runs on the calibration windows, and KL(P_float ‖ P_quant) / ‖(W − Ŵ_ref)‖²_H scales all of
// that tensor's candidates. One extra forward pass per linear tensor; 'hessian' skips it.
// Legend: N/K = a linear's rows/columns, W = windows, T = tokens per window, V = vocab.

import { GGML_TYPES, ggmlBitsPerWeight, type GgmlType } from '../../core/dtype.js';
import { ConfigError } from '../../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../../core/progress.js';
import type { HostModel } from '../../engine/host.js';
import { LlamaEngine } from '../../engine/model.js';
import type { OrtRuntime } from '../../engine/session.js';
import { compareLogitRows } from '../../eval/divergence.js';
import { ggmlSupports } from '../../quant/ggml/index.js';
import { gptq } from '../../algorithms/gptq.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { allocateBits, type AllocationPlan, type TensorSensitivity } from '../../algorithms/mixed.js';
import { measureSensitivity } from '../../algorithms/sensitivity.js';
import { LINEAR_SITE } from '../../engine/decoder-block.js';
import { CalibrationRunner, embedWindowStates, newGraphSiteStats } from '../calibrate/batch.js';
import { gridFor, type Target } from './layer.js';

/** Candidate types, cheapest first (those the codecs can quantize are kept). */
export const MIXED_CANDIDATES: GgmlType[] = ['Q2_K', 'Q3_K', 'IQ4_XS', 'IQ4_NL', 'Q4_0', 'Q4_K', 'Q5_0', 'Q5_K', 'Q6_K', 'Q8_0', 'F16'];

export interface MixedPlanResult {
  plan: AllocationPlan;
  targets: Map<string, Target>;
}

/** How tensor sensitivities are compared: the Hessian proxy alone, or calibrated by a measured KL. */
export type MixedSensitivity = 'kl' | 'hessian';

/**
 * The smallest reachable --target-bpw: every linear at its cheapest candidate type (the types whose
 * block divides its row length), averaged over the linears' weights. Checked before any work.
 */
export function minTargetBpw(host: HostModel): { bpw: number; cheapest: Record<string, number> } {
  const c = host.config;
  let bits = 0;
  let n = 0;
  const cheapest: Record<string, number> = {};
  for (let l = 0; l < c.nLayers; l++) {
    for (const lin of Object.keys(LINEAR_SITE)) {
      const w = host.tensors.get(`model.layers.${l}.${lin}.weight`);
      if (!w) continue;
      const K = /down_proj/.test(lin) ? c.intermediateSize : /o_proj/.test(lin) ? c.nHeads * c.headDim : c.hiddenSize;
      const t = MIXED_CANDIDATES.find((x) => K % GGML_TYPES[x].blockSize === 0 && ggmlSupports(x).quantize) ?? 'F16';
      bits += ggmlBitsPerWeight(t) * w.length;
      n += w.length;
      cheapest[t] = (cheapest[t] ?? 0) + 1;
    }
  }
  return { bpw: n ? bits / n : 16, cheapest };
}

/** A typed error when `target` is below minTargetBpw, saying the minimum in bits per weight. */
export function checkTargetBpw(host: HostModel, target: number): void {
  const m = minTargetBpw(host);
  if (target >= m.bpw) return;
  const types = Object.entries(m.cheapest).map(([t, k]) => `${k}× ${t}`).join(', ');
  throw new ConfigError('bad_option', `--target-bpw ${target} is below this model's minimum of ${m.bpw.toFixed(3)} bits per weight`, {
    field: '--target-bpw',
    expected: `≥ ${m.bpw.toFixed(3)} bpw (every linear at its cheapest type: ${types})`,
    found: target,
  });
}

export async function planMixedPrecision(
  floatHost: HostModel,
  wins: number[][],
  _base: QuantScheme,
  targetBpw: number,
  signal?: AbortSignal,
  onProgress?: ProgressFn,
  sensitivity: MixedSensitivity = 'kl',
  method: 'rtn' | 'gptq' | 'awq' = 'rtn',
  gptqOpts: { actOrder?: boolean; percdamp?: number } = {},
  /** the onnxruntime of the statistics and KL forward passes (engine/session.ts) */
  runtime: OrtRuntime = 'native',
): Promise<MixedPlanResult> {
  const c = floatHost.config;
  const runner = new CalibrationRunner(c, wins[0].length, { runtime });
  const sens: TensorSensitivity[] = [];
  const refWeights = new Map<string, Float32Array>();
  const track = new ProgressTracker('sensitivity', c.nLayers, onProgress, 'layer');
  try {
    const xs = embedWindowStates(floatHost.tensors.get('model.embed_tokens.weight')!, c.hiddenSize, wins);
    for (let l = 0; l < c.nLayers; l++) {
      const st = newGraphSiteStats(c, true);
      await runner.run(l, (n) => floatHost.tensors.get(n)!, xs, { stats: st, forward: true, signal });
      for (const [lin, site] of Object.entries(LINEAR_SITE)) {
        const name = `model.layers.${l}.${lin}.weight`;
        const w = floatHost.tensors.get(name)!;
        const K = st[site].k;
        const types = MIXED_CANDIDATES.filter((t) => K % GGML_TYPES[t].blockSize === 0 && ggmlSupports(t).quantize);
        const imatrix = Float32Array.from(st[site].meanSq());
        const N = w.length / K;
        const gram = st[site].gramFull();
        // with GPTQ, a candidate's error is that of GPTQ onto the type (where GPTQ can target it),
        // so the allocator prices each type as the quantizer will actually use it
        const h = method === 'gptq' ? st[site].hessian() : null;
        // the KL calibration needs the tensor at its reference type only: keep just that one
        const refType = types[referenceIndex(types.map(ggmlBitsPerWeight), targetBpw)];
        const quantize = (type: GgmlType, rtn: () => Float32Array): Float32Array => {
          const grid = h ? gridFor({ kind: 'ggml', type }, N, K, imatrix) : null;
          const wq = grid ? Float32Array.from(gptq(w, N, K, h!, grid, { ...gptqOpts, signal }).weights) : rtn();
          if (sensitivity === 'kl' && type === refType) refWeights.set(name, wq);
          return wq;
        };
        sens.push(measureSensitivity(name, w, N, K, types, { hessian: gram, imatrix, quantize }));
      }
      track.tick(`layer ${l}`);
    }
  } finally {
    await runner.close();
  }
  if (sensitivity === 'kl') await calibrateByKl(floatHost, wins, sens, refWeights, targetBpw, runtime, signal, onProgress);
  const plan = allocateBits(sens, { bitsPerWeight: targetBpw });
  const targets = new Map<string, Target>(plan.tensors.map((t) => [t.name, { kind: 'ggml', type: t.type as GgmlType }]));
  return { plan, targets };
}

/** The candidate a tensor's KL is measured at: the cheapest one at or above the target bpw. */
function referenceIndex(bpws: readonly number[], targetBpw: number): number {
  let best = -1;
  for (let i = 0; i < bpws.length; i++) if (bpws[i] >= targetBpw && (best < 0 || bpws[i] < bpws[best])) best = i;
  return best >= 0 ? best : bpws.length - 1;
}

/** Rescales each tensor's candidate errors into KL units (see the file comment); in place. */
async function calibrateByKl(
  floatHost: HostModel,
  wins: number[][],
  sens: TensorSensitivity[],
  /** each tensor quantized to its reference candidate */
  refWeights: Map<string, Float32Array>,
  targetBpw: number,
  runtime: OrtRuntime,
  signal?: AbortSignal, onProgress?: ProgressFn): Promise<void> {
  const V = floatHost.config.vocabSize;
  const T = wins[0].length;
  const batch = wins.filter((w) => w.length === T);
  const run = async (host: HostModel): Promise<Float32Array> => {
    const e = LlamaEngine.fromHost(host, { session: { runtime } });
    try {
      return await e.forwardBatch(batch);
    } finally {
      await e.close();
    }
  };
  const ref = await run(floatHost);
  const track = new ProgressTracker('sensitivity (KL)', sens.length, onProgress, 'tensor');
  for (const t of sens) {
    checkAborted(signal);
    const i = referenceIndex(t.candidates.map((x) => x.bits / t.numel), targetBpw);
    const c = t.candidates[i];
    const wq = refWeights.get(t.name)!;
    const tensors = new Map(floatHost.tensors);
    tensors.set(t.name, wq);
    const cmp = compareLogitRows(ref, await run({ ...floatHost, tensors }), V);
    const kl = cmp.klSum / cmp.rows;
    // a tensor whose reference error is 0 keeps its proxy (nothing to calibrate against)
    const scale = c.error > 0 ? kl / c.error : 1;
    for (const x of t.candidates) x.error *= scale;
    track.tick(t.name);
  }
}
