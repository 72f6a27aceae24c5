// --target-bpw: per-tensor ggml types chosen from measured sensitivity. One float pass over the
// calibration windows gives each linear's input Gram matrix; every candidate type's error
// ‖(W − Ŵ)‖²_H is measured, and the knapsack allocator (algorithms/mixed.ts) picks the types that
// meet the bits-per-weight target over the linear weights with the least total error.
// Legend: N/K = a linear's rows/columns.

import { GGML_TYPES, type GgmlType } from '../core/dtype.js';
import { ProgressTracker, type ProgressFn } from '../core/progress.js';
import type { HostModel } from '../engine/host.js';
import { ggmlSupports } from '../quant/ggml/index.js';
import type { QuantScheme } from '../quant/scheme.js';
import { allocateBits, type AllocationPlan, type TensorSensitivity } from '../algorithms/mixed.js';
import { measureSensitivity } from '../algorithms/sensitivity.js';
import { BlockRunner, LINEAR_SITE } from './calibrate-block.js';
import { embedWindows, newSiteStats, runLayer } from './calibrate.js';
import type { Target } from './quantize-layer.js';

/** Candidate types, cheapest first (those the codecs can quantize are kept). */
export const MIXED_CANDIDATES: GgmlType[] = ['Q2_K', 'Q3_K', 'IQ4_NL', 'Q4_0', 'Q4_K', 'Q5_0', 'Q5_K', 'Q6_K', 'Q8_0', 'F16'];

export interface MixedPlanResult {
  plan: AllocationPlan;
  targets: Map<string, Target>;
}

export async function planMixedPrecision(floatHost: HostModel, wins: number[][], _base: QuantScheme, targetBpw: number, signal?: AbortSignal, onProgress?: ProgressFn): Promise<MixedPlanResult> {
  const c = floatHost.config;
  const runner = await BlockRunner.create(c, wins[0].length);
  const sens: TensorSensitivity[] = [];
  const track = new ProgressTracker('sensitivity', c.nLayers, onProgress, 'layer');
  try {
    const xs = embedWindows(floatHost, wins);
    for (let l = 0; l < c.nLayers; l++) {
      const st = newSiteStats(floatHost, true);
      await runLayer(runner, floatHost, l, xs, st, signal);
      for (const [lin, site] of Object.entries(LINEAR_SITE)) {
        const name = `model.layers.${l}.${lin}.weight`;
        const w = floatHost.tensors.get(name)!;
        const K = st[site].k;
        const types = MIXED_CANDIDATES.filter((t) => K % GGML_TYPES[t].blockSize === 0 && ggmlSupports(t).quantize);
        sens.push(measureSensitivity(name, w, w.length / K, K, types, { hessian: st[site].gramFull(), imatrix: Float32Array.from(st[site].meanSq()) }));
      }
      track.tick(`layer ${l}`);
    }
  } finally {
    await runner.close();
  }
  const plan = allocateBits(sens, { bitsPerWeight: targetBpw });
  const targets = new Map<string, Target>(plan.tensors.map((t) => [t.name, { kind: 'ggml', type: t.type as GgmlType }]));
  return { plan, targets };
}
