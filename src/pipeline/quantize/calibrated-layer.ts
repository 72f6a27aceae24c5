// One decoder layer of calibrated quantization, shared by the whole-model and the streaming paths
// of `bitscale quantize`: statistics of the layer's float weights over all calibration windows
// (batched graph, Gram matrices accumulated in it), AWQ scaling, RTN/GPTQ of the seven linears
// (GPTQ's matrix products on onnxruntime), then the windows run again through the quantized layer
// to become the next layer's inputs. Progress is reported inside the layer (calibration runs,
// tensors, column blocks) with an ETA weighted by each step's estimated flops.
// Legend: W = windows, T = tokens per window, E = hidden, F = ffn, K/N = a linear's columns/rows.

import { checkAborted, WorkProgress, type ProgressFn } from '../../core/progress.js';
import type { HostModel } from '../../engine/host.js';
import type { ModelConfig } from '../../model/config.js';
import type { Gemm } from '../../numerics/gemm.js';
import { blockWeightShapes, LINEAR_SITE, SITES } from '../../engine/decoder-block.js';
import { newGraphSiteStats, siteWidths, type CalibrationRunner, type WindowStates } from '../calibrate/batch.js';
import { awqLayer, gptqWork, quantizeLayerLinears, type AwqRecord, type LayerBuffers, type LayerOptions, type LinearResult } from './layer.js';

/** Estimated flops of one layer's steps: the two calibration passes and the linears. */
export function layerWork(c: ModelConfig, tokens: number, stats: boolean, gram: boolean): { pass1: number; pass2: number; linears: number } {
  let params = 0;
  let down = 0;
  for (const [n, s] of blockWeightShapes(c)) {
    if (s.length !== 2) continue;
    params += s[0] * s[1];
    if (n === 'mlp.down_proj.weight') down = s[0] * s[1];
  }
  const K = siteWidths(c);
  let gramFlops = 0;
  if (gram) for (const s of SITES) gramFlops += tokens * K[s] * K[s];
  let linears = 0;
  for (const [lin, site] of Object.entries(LINEAR_SITE)) {
    const shape = blockWeightShapes(c).find(([n]) => n === `${lin}.weight`)![1];
    linears += gptqWork(shape[0], K[site]);
  }
  return { pass1: stats ? 2 * tokens * (params - down) + gramFlops : 0, pass2: 2 * tokens * params, linears };
}

export interface CalibratedLayerOptions {
  runner: CalibrationRunner;
  /** the windows' states entering this layer (replaced by its outputs) */
  xs: WindowStates;
  layer: number;
  layers: number;
  /** per-linear options; method 'awq' scales first, then rounds by RTN */
  lo: LayerOptions;
  /** gather Gram matrices (GPTQ, AWQ, and the per-tensor SQNR) */
  gram: boolean;
  gemm?: Gemm;
  /** buffers kept from one layer to the next (filled on first use): see LayerBuffers */
  buffers?: LayerBuffers;
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

/** Calibrates, quantizes and runs one layer of `host` (which holds at least this layer's tensors). */
export async function quantizeCalibratedLayer(host: HostModel, o: CalibratedLayerOptions): Promise<{ results: LinearResult[]; awq: AwqRecord[] }> {
  const c = host.config;
  const { runner, xs, layer: l } = o;
  checkAborted(o.signal);
  const gram = o.gram;
  const work = layerWork(c, xs.windows * xs.tokens, true, gram);
  const prog = new WorkProgress(`quantize layer ${l + 1}/${o.layers}`, work.pass1 + work.pass2 + work.linears, o.onProgress);
  prog.advance(0, 'layer start');
  const get = (n: string) => host.tensors.get(n)!;
  // the statistics live only until the linears are quantized (not through the forward pass after)
  const { results, awq } = await (async () => {
    const stats = newGraphSiteStats(c, gram, runner.panelWidth, o.buffers?.stats);
    if (o.buffers) o.buffers.stats = stats;
    let seen = 0;
    await runner.run(l, get, xs, {
      stats, forward: false, signal: o.signal,
      onBatch: (done, total) => {
        prog.advance((work.pass1 * (done - seen)) / total, `calibration statistics: windows ${done}/${total}`);
        seen = done;
      },
    });
    const awq = o.lo.method === 'awq' ? awqLayer(host, l, stats, o.lo) : [];
    const results = await quantizeLayerLinears(host, l, stats, { ...o.lo, method: o.lo.method === 'awq' ? 'rtn' : o.lo.method, gemm: o.gemm, buffers: o.buffers, onStep: (w, d) => prog.advance(w, d) });
    return { results, awq };
  })();
  let seen = 0;
  await runner.run(l, get, xs, {
    forward: true, signal: o.signal,
    onBatch: (done, total) => {
      prog.advance((work.pass2 * (done - seen)) / total, `next layer's inputs: windows ${done}/${total}`);
      seen = done;
    },
  });
  return { results, awq };
}
