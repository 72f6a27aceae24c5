// compressed-tensors "pack-quantized" safetensors (the checkpoint format of llm-compressor, read
// by transformers' compressed-tensors integration and vLLM). Format facts as read on 2026-11-23 in
// github.com/vllm-project/compressed-tensors (formerly neuralmagic/compressed-tensors):
//  - src/compressed_tensors/compressors/quantized_compressors/pack_quantized.py and
//    compressors/pack_quantized/base.py: per quantized Linear `<base>.weight_packed` int32
//    [N, ceil(K·b/32)] (pack_to_int32, packed_dim 1: along the input dimension, zero-padded,
//    value i of a word at bit i·b, i.e. low bits first); the signed codes q ∈ [−2^(b−1), 2^(b−1)−1]
//    are offset by 2^(b−1) before packing; `<base>.weight_shape` = torch.tensor(weight.shape)
//    (int64 [2]); `<base>.weight_scale` [N, nG] (per channel [N, 1]) in the model dtype; for
//    asymmetric group/channel strategies `<base>.weight_zero_point` packed the same way with
//    packed_dim 0 (along the output dimension): int32 [ceil(N·b/32), nG]; symmetric schemes store
//    no zero point (quantized_compressors/base.py `_skip_zp`). The compressor matches weight-only
//    int schemes of 4 or 8 bits only (so we write no 2-bit pack-quantized files).
//  - dequantization (quantization/lifecycle/forward.py `dequantize`): W = (q − zp) · scale per group.
//  - config.json quantization_config as llm-compressor writes it (seen in several public
//    checkpoints/tests): {quant_method: "compressed-tensors", format: "pack-quantized",
//    quantization_status: "compressed", config_groups: {group_0: {targets: ["Linear"], weights:
//    {num_bits, type: "int", symmetric, strategy: "group" | "channel", group_size (null for
//    channel), dynamic: false, actorder, observer, observer_kwargs, block_structure: null},
//    input_activations: null, output_activations: null}}, ignore: ["lm_head"], kv_cache_scheme: null}.
//    With act-order ("group") the group of each input column is stored as `<base>.weight_g_idx`.
// The grid's codes are quant's (signed for symmetric schemes, quant/affine.ts); quant's toUnsignedCodes
// gives u = q + 2^(b−1) and zero points z = zp + 2^(b−1) (symmetric: z = 2^(b−1), i.e. zp = 0), which
// is the stored form.
// Not checked here: loading by Python transformers/vLLM (no Python in this environment).
// Legend: N = rows (output features), K = input features, G = group size, nG = ceil(K/G), b = bits.

import { ConfigError, NumericError } from '../../core/errors.js';
import type { HostModel } from '../../engine/host.js';
import { generationConfigJson } from '../../formats/hf/json.js';
import type { SafetensorsWriteTensor } from '../../formats/safetensors/index.js';
import { hfConfigJson } from '../../model/hf-config.js';
import { isRotaryProjection } from '../../model/names.js';
import { rotaryRowOrder } from '../../model/permute.js';
import { hfTokenizerFiles } from '../../model/save.js';
import type { ModelWeights } from '../../model/weights.js';
import { encodeF16Array } from '../../numerics/float16.js';
import { packCtColumns, packCtRows } from '../../quant/pack-ct.js';
import { toUnsignedCodes } from '../../quant/pack.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { gridQuantized, type LinearResult } from './layer.js';
import { writeGptqDir } from './write-gptq.js';

const LINEAR = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

/** The rotate-half row order of a q/k projection whose model keeps another layout, else null. */
function hfRowOrder(host: HostModel, name: string): Int32Array | null {
  const c = host.config;
  const rot = isRotaryProjection(name);
  return rot && c.ropeLayout !== 'half' ? rotaryRowOrder(rot === 'q' ? c.nHeads : c.nKvHeads, c.headDim, c.ropeLayout, 'half') : null;
}

function permuteRows<T extends Float32Array | Uint8Array | Float64Array | Int32Array>(x: T, order: Int32Array | null): T {
  if (!order) return x;
  const w = x.length / order.length;
  const out = new (x.constructor as new (n: number) => T)(x.length);
  for (let r = 0; r < order.length; r++) out.set(x.subarray(order[r] * w, order[r] * w + w) as never, r * w);
  return out;
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

/** The tensors of one quantized linear (rows already in the file's order). */
export function ctLinearTensors(base: string, N: number, K: number, bits: number, codes: Uint8Array, scales: Float32Array, zeros: Uint8Array | null, gIdx?: Int32Array): SafetensorsWriteTensor[] {
  const nG = scales.length / N;
  const t: SafetensorsWriteTensor[] = [
    { name: `${base}.weight_packed`, dtype: 'I32', shape: [N, Math.ceil((K * bits) / 32)], data: packCtRows(codes, N, K, bits) },
    { name: `${base}.weight_scale`, dtype: 'F16', shape: [N, nG], data: encodeF16Array(scales) },
    { name: `${base}.weight_shape`, dtype: 'I64', shape: [2], data: BigInt64Array.from([BigInt(N), BigInt(K)]) },
  ];
  if (zeros) t.push({ name: `${base}.weight_zero_point`, dtype: 'I32', shape: [Math.ceil((N * bits) / 32), nG], data: packCtColumns(zeros, N, nG, bits) });
  if (gIdx) t.push({ name: `${base}.weight_g_idx`, dtype: 'I32', shape: [K], data: gIdx });
  return t;
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
  const c = host.config;
  const bits = scheme.bits;
  const byName = new Map(results.map((r) => [r.name, r]));
  const tensors: SafetensorsWriteTensor[] = [];
  let actOrder = false;
  for (const name of weights.tensors.keys()) {
    const r = byName.get(name);
    const order = hfRowOrder(host, name);
    const shape = weights.tensors.get(name)!.shape;
    if (!r) {
      tensors.push({ name, dtype: 'F16', shape, data: encodeF16Array(permuteRows(host.tensors.get(name)!, order)) });
      continue;
    }
    const q = gridQuantized(r);
    const [N, K] = q.shape;
    const G = (K * N) / q.scales.length;
    const u = toUnsignedCodes(q);
    const zeros = scheme.symmetric ? null : permuteRows(u.zeros, order);
    // only act-order runs reorder groups; the default ⌊k/G⌋ is left implicit, as llm-compressor does
    const gIdx = r.gIdx && r.gIdx.some((v, k) => v !== Math.floor(k / G)) ? r.gIdx : undefined;
    if (gIdx) actOrder = true;
    const base = name.replace(/\.weight$/, '');
    tensors.push(...ctLinearTensors(base, N, K, bits, permuteRows(u.codes, order), permuteRows(q.scales, order), zeros, gIdx));
  }
  const cfg = hfConfigJson({ ...c, ropeLayout: 'half' }, 'float16') as Record<string, unknown>;
  const channel = scheme.granularity.kind !== 'group';
  cfg.quantization_config = {
    quant_method: 'compressed-tensors',
    format: 'pack-quantized',
    quantization_status: 'compressed',
    config_groups: {
      group_0: {
        targets: ['Linear'],
        weights: {
          num_bits: bits,
          type: 'int',
          symmetric: scheme.symmetric,
          strategy: channel ? 'channel' : 'group',
          group_size: channel ? null : (scheme.granularity as { size: number }).size,
          dynamic: false,
          actorder: actOrder || o.actOrder ? 'group' : null,
          observer: 'minmax',
          observer_kwargs: {},
          block_structure: null,
        },
        input_activations: null,
        output_activations: null,
      },
    },
    ignore: ['lm_head'],
    kv_cache_scheme: null,
    quantized_by: 'bitscale',
  };
  const files: { name: string; text: string }[] = [];
  const gen = generationConfigJson({ bosTokenId: c.bosTokenId, eosTokenIds: c.eosTokenId === null ? [] : [c.eosTokenId] });
  files.push({ name: 'generation_config.json', text: JSON.stringify(gen, null, 2) + '\n' });
  const tok = hfTokenizerFiles(weights.tokenizer, c.maxSeqLen);
  if (tok) files.push({ name: 'tokenizer.json', text: JSON.stringify(tok.tokenizer) }, { name: 'tokenizer_config.json', text: JSON.stringify(tok.config, null, 2) + '\n' });
  return writeGptqDir(o.out, tensors, cfg, { overwrite: o.overwrite, signal: o.signal, files, metadata: { 'bitscale.format': 'compressed-tensors/pack-quantized' } });
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
    const want = permuteRows(host.tensors.get(r.name)!, hfRowOrder(host, r.name));
    for (let i = 0; i < want.length; i++) {
      if (got[i] !== want[i]) throw new NumericError('mismatch', `reloaded ${what} weight differs from the quantized weight`, { file: back.source.path, tensor: r.name, index: i, expected: want[i], found: got[i] });
    }
    checked++;
  }
  return checked;
}
