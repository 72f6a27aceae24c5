// `bitscale quantize --format gptq | compressed-tensors`: a quantize run's int linears as a packed
// Hugging Face folder. The per-linear tensors and the quantization_config come from the format's
// folder (formats/gptq/write.ts, formats/compressed-tensors/write.ts); this file adds what needs the
// model: every other tensor in f16, q/k rows put in Hugging Face's rotate-half order before packing
// (codes, scales and zeros move together), config.json from the model config, generation_config.json
// and the tokenizer (tokenizer.json + tokenizer_config.json) when the model has one, so the folder is
// complete for transformers/vLLM (and bitscale eval/generate). The codes are the scheme's
// (quant/affine.ts), stored unsigned through quant's toUnsignedCodes (u = q + 2^(b−1), zero 2^(b−1)
// for symmetric schemes). The folder is staged and renamed into place (formats/io).
// Legend: N = rows (output features), K = input features, G = group size, nG = groups per row, b = bits.

import { ConfigError, NumericError } from '../../core/errors.js';
import type { HostModel } from '../../engine/host.js';
import { ctLinearTensors, ctQuantizationConfig } from '../../formats/compressed-tensors/write.js';
import { gptqLinearTensors, gptqQuantizationConfig } from '../../formats/gptq/write.js';
import { writeHfSafetensorsDir } from '../../formats/io/index.js';
import type { SafetensorsWriteTensor } from '../../formats/safetensors/index.js';
import { hfConfigJson } from '../../model/hf-config.js';
import { isRotaryProjection } from '../../model/names.js';
import { rotaryRowOrder } from '../../model/permute.js';
import { hfSideFiles } from '../../model/save.js';
import type { ModelWeights } from '../../model/weights.js';
import type { ModelConfig } from '../../model/config.js';
import { encodeF16Array } from '../../numerics/float16.js';
import { toUnsignedCodes } from '../../quant/pack.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { gridQuantized, type LinearResult } from './layer.js';

const LINEAR = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

/** The rotate-half row order of a q/k projection whose model keeps another layout, else null. */
export function hfRowOrder(c: ModelConfig, name: string): Int32Array | null {
  const rot = isRotaryProjection(name);
  return rot && c.ropeLayout !== 'half' ? rotaryRowOrder(rot === 'q' ? c.nHeads : c.nKvHeads, c.headDim, c.ropeLayout, 'half') : null;
}

export function permuteRows<T extends Float32Array | Uint8Array | Uint16Array | Float64Array | Int32Array>(x: T, order: Int32Array | null): T {
  if (!order) return x;
  const w = x.length / order.length;
  const out = new (x.constructor as new (n: number) => T)(x.length);
  for (let r = 0; r < order.length; r++) out.set(x.subarray(order[r] * w, order[r] * w + w) as never, r * w);
  return out;
}

/** One quantized linear in the file's row order: unsigned codes [N, K], zero points and scales [N, nG]. */
interface PackedRows {
  N: number;
  K: number;
  G: number;
  codes: Uint8Array;
  zeros: Uint8Array;
  scales: Float32Array;
}

function packedRows(host: HostModel, r: LinearResult): PackedRows {
  const q = gridQuantized(r);
  const [N, K] = q.shape;
  const order = hfRowOrder(host.config, r.name);
  const u = toUnsignedCodes(q);
  return { N, K, G: (K * N) / q.scales.length, codes: permuteRows(u.codes, order), zeros: permuteRows(u.zeros, order), scales: permuteRows(q.scales, order) };
}

/**
 * The folder's tensors in the checkpoint's order: quantized linears through `linear`, every other
 * tensor f16 (q/k rows in rotate-half order).
 */
function folderTensors(weights: ModelWeights, host: HostModel, results: LinearResult[], linear: (r: LinearResult, p: PackedRows) => SafetensorsWriteTensor[]): SafetensorsWriteTensor[] {
  const byName = new Map(results.map((r) => [r.name, r]));
  const tensors: SafetensorsWriteTensor[] = [];
  for (const name of weights.tensors.keys()) {
    const r = byName.get(name);
    if (r) tensors.push(...linear(r, packedRows(host, r)));
    else tensors.push({ name, dtype: 'F16', shape: weights.tensors.get(name)!.shape, data: encodeF16Array(permuteRows(host.tensors.get(name)!, hfRowOrder(host.config, name))) });
  }
  return tensors;
}

export async function writeGptqSafetensors(
  weights: ModelWeights,
  host: HostModel,
  results: LinearResult[],
  scheme: QuantScheme,
  o: { out: string; overwrite?: boolean; actOrder?: boolean; percdamp?: number; signal?: AbortSignal },
): Promise<string[]> {
  if (scheme.kind !== 'int') throw new ConfigError('bad_option', 'GPTQ packing needs an int scheme', { field: 'scheme', found: scheme.kind });
  const bits = scheme.bits;
  let groupSize = -1;
  const tensors = folderTensors(weights, host, results, (r, p) => {
    groupSize = p.G === p.K ? -1 : p.G;
    return gptqLinearTensors({ name: r.name, N: p.N, K: p.K, bits, groupSize: p.G, codes: p.codes, zeros: p.zeros, scales: p.scales, gIdx: r.gIdx });
  });
  const cfg = hfConfigJson({ ...host.config, ropeLayout: 'half' }, 'float16') as Record<string, unknown>;
  cfg.quantization_config = gptqQuantizationConfig({ bits, groupSize, descAct: !!o.actOrder, sym: scheme.symmetric, dampPercent: o.percdamp ?? 0.01 });
  return writeHfSafetensorsDir(o.out, tensors, cfg, { ...o, files: hfSideFiles(host.config, weights.tokenizer) });
}

/**
 * What pack-quantized can hold, checked before any work: an int scheme of 4 or 8 bits, group or
 * per-channel, each linear's K a multiple of the group size.
 */
export function checkCtScheme(scheme: QuantScheme, host?: HostModel): void {
  if (scheme.kind !== 'int') {
    throw new ConfigError('bad_option', 'compressed-tensors output needs an int scheme', { field: '--scheme', expected: 'int4-g128, int4-g128-asym, int8-channel, …', found: scheme.kind, hint: 'use --format fakequant for other schemes' });
  }
  if (scheme.bits !== 4 && scheme.bits !== 8) {
    throw new ConfigError('unsupported', 'compressed-tensors pack-quantized stores 4 or 8 bits', { field: '--scheme', expected: '4 | 8 bits', found: scheme.bits });
  }
  if (!host || scheme.granularity.kind !== 'group') return;
  const G = scheme.granularity.size;
  for (const [name, w] of host.tensors) {
    if (!LINEAR.test(name)) continue;
    const c = host.config;
    const K = /down_proj/.test(name) ? c.intermediateSize : /o_proj/.test(name) ? c.nHeads * c.headDim : c.hiddenSize;
    if (K % G) {
      throw new ConfigError('unsupported', 'compressed-tensors group quantization needs K to be a multiple of the group size', {
        tensor: name, expected: `K a multiple of ${G}`, found: `[${w.length / K}, ${K}]`, hint: 'choose a group size dividing every linear\'s input width, or int<b>-channel',
      });
    }
  }
}

export async function writeCtSafetensors(
  weights: ModelWeights,
  host: HostModel,
  results: LinearResult[],
  scheme: QuantScheme,
  o: { out: string; overwrite?: boolean; actOrder?: boolean; signal?: AbortSignal },
): Promise<string[]> {
  checkCtScheme(scheme);
  if (scheme.kind !== 'int') throw new ConfigError('internal', 'unreachable');
  const bits = scheme.bits;
  let actOrder = false;
  const tensors = folderTensors(weights, host, results, (r, p) => {
    // only act-order runs reorder groups; the default ⌊k/G⌋ is left implicit, as llm-compressor does
    const gIdx = r.gIdx && r.gIdx.some((v, k) => v !== Math.floor(k / p.G)) ? r.gIdx : undefined;
    if (gIdx) actOrder = true;
    return ctLinearTensors(r.name.replace(/\.weight$/, ''), p.N, p.K, bits, p.codes, p.scales, scheme.symmetric ? null : p.zeros, gIdx);
  });
  const cfg = hfConfigJson({ ...host.config, ropeLayout: 'half' }, 'float16') as Record<string, unknown>;
  const groupSize = scheme.granularity.kind === 'group' ? scheme.granularity.size : null;
  cfg.quantization_config = ctQuantizationConfig({ bits, symmetric: scheme.symmetric, groupSize, actOrder: actOrder || !!o.actOrder });
  return writeHfSafetensorsDir(o.out, tensors, cfg, { overwrite: o.overwrite, signal: o.signal, files: hfSideFiles(host.config, weights.tokenizer), metadata: { 'bitscale.format': 'compressed-tensors/pack-quantized' } });
}

/**
 * Requires every quantized linear of a reloaded packed directory (compressed-tensors or GPTQ) to
 * dequantize to exactly the weights the quantize run computed (q/k rows compared in the file's
 * rotate-half order). `back` is the directory as loadModel read it.
 */
export async function checkPackedLinears(back: ModelWeights, host: HostModel, results: LinearResult[], what: string): Promise<number> {
  let checked = 0;
  for (const r of results) {
    const src = back.tensors.get(r.name);
    if (!src) throw new NumericError('mismatch', 'a quantized linear is missing after reload', { file: back.source.path, tensor: r.name });
    const got = await src.readF32();
    const want = permuteRows(host.tensors.get(r.name)!, hfRowOrder(host.config, r.name));
    for (let i = 0; i < want.length; i++) {
      if (got[i] !== want[i]) throw new NumericError('mismatch', `reloaded ${what} weight differs from the quantized weight`, { file: back.source.path, tensor: r.name, index: i, expected: want[i], found: got[i] });
    }
    checked++;
  }
  return checked;
}
