// The quantize step of `bitscale quantize` on a model in memory: decoder layers in order (each
// calibrated on the outputs of the already-quantized layers before it when the method needs
// statistics: calibrated-layer.ts; else RTN per linear: layer.ts), then the token embedding and the
// output as the recipe has them. The host model's tensors are replaced by their quantized values.

import { ProgressTracker, checkAborted } from '../../core/progress.js';
import type { HostModel } from '../../engine/host.js';
import { OrtGemm } from '../../engine/gemm.js';
import { assertFinite } from '../../numerics/finite.js';
import { formatScheme } from '../../quant/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { CalibrationRunner, embedWindowStates } from '../calibrate/batch.js';
import { quantizeCalibratedLayer } from './calibrated-layer.js';
import { quantizeLayerLinears, quantizeOtherTensors, type AwqRecord, type LayerBuffers, type LinearResult, type Target } from './layer.js';
import type { QuantizeOptions } from './types.js';

export interface ModelQuantizeInput {
  host: HostModel;
  scheme: QuantScheme;
  /** calibration windows (token ids), used when `needStats` */
  wins: number[][];
  seqLen: number;
  needStats: boolean;
  /** each linear's target (mixed precision first, then the recipe) */
  targetOf: (name: string) => Target | undefined;
  /** the recipe's targets for the tensors outside the decoder layers */
  otherTargets: ReadonlyMap<string, Target>;
  /** importance per column from --imatrix, if given */
  imatrix?: (name: string) => Float32Array | undefined;
}

/** Quantizes every planned tensor of `a.host` in place; the per-tensor results and AWQ's scales. */
export async function quantizeHostModel(o: QuantizeOptions, a: ModelQuantizeInput): Promise<{ results: LinearResult[]; awq: AwqRecord[] }> {
  const { host, scheme, wins, seqLen, needStats, targetOf } = a;
  const c = host.config;
  const imFor = a.imatrix;
  const results: LinearResult[] = [];
  const awq: AwqRecord[] = [];
  const track = new ProgressTracker('quantize', c.nLayers, o.onProgress, 'layer');
  const runtime = o.calibRuntime ?? 'native';
  const runner = needStats ? new CalibrationRunner(c, seqLen, { runtime }) : null;
  // GPTQ interleaves short GEMMs with its column loop: idle pool threads must not spin through it
  const gemm = new OrtGemm({ spinning: false, runtime });
  const buffers: LayerBuffers = {};
  try {
    const xs = runner ? embedWindowStates(host.tensors.get('model.embed_tokens.weight')!, c.hiddenSize, wins) : null;
    for (let l = 0; l < c.nLayers; l++) {
      checkAborted(o.signal);
      const lo = { method: o.method, scheme, targetOf, imatrix: imFor, actOrder: o.actOrder, percdamp: o.percdamp, signal: o.signal };
      if (runner && xs) {
        const r = await quantizeCalibratedLayer(host, { runner, xs, layer: l, layers: c.nLayers, lo, gram: true, gemm: gemm.gemm, buffers, onProgress: o.onProgress, signal: o.signal });
        results.push(...r.results);
        awq.push(...r.awq);
      } else {
        results.push(...(await quantizeLayerLinears(host, l, null, lo)));
      }
      track.tick(`layer ${l}`);
    }
  } finally {
    await runner?.close();
    await gemm.close();
  }

  // the token embedding and the output, as the recipe has them (the host keeps the decoded values)
  results.push(...quantizeOtherTensors(host, a.otherTargets, imFor));
  // the quantized weights are finite (a scheme whose range a weight overflows gives ±Inf)
  for (const r of results) assertFinite(host.tensors.get(r.name)!, { file: o.displayOut ?? o.model, tensor: r.name, hint: `the ${formatScheme(scheme)} grid cannot hold this weight; nothing was written` }, 'the quantized weights hold a non-finite value');
  return { results, awq };
}
