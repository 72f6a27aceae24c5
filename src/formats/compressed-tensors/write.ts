// compressed-tensors "pack-quantized" safetensors tensors and config (the checkpoint format of llm-compressor, read
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
// Codes are stored unsigned: u = q + 2^(b−1) for symmetric schemes, zero point z = zp + 2^(b−1)
// (symmetric: z = 2^(b−1), i.e. zp = 0, and no zero-point tensor). The model-level writer is
// pipeline/quantize/write-packed.ts; the reader is read.ts beside this file.
// Not checked here: loading by Python transformers/vLLM (no Python in this environment).
// Legend: N = rows (output features), K = input features, G = group size, nG = ceil(K/G), b = bits.

import type { SafetensorsWriteTensor } from '../safetensors/writer.js';
import { encodeF16Array } from '../../numerics/float16.js';
import { packCtColumns, packCtRows } from './pack.js';

/** The tensors of one quantized linear (rows already in the file's order; zeros null when symmetric). */
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

/** config.json's quantization_config of a weight-only pack-quantized checkpoint (groupSize null: per channel). */
export function ctQuantizationConfig(o: { bits: number; symmetric: boolean; groupSize: number | null; actOrder: boolean }): Record<string, unknown> {
  return {
    quant_method: 'compressed-tensors',
    format: 'pack-quantized',
    quantization_status: 'compressed',
    config_groups: {
      group_0: {
        targets: ['Linear'],
        weights: {
          num_bits: o.bits,
          type: 'int',
          symmetric: o.symmetric,
          strategy: o.groupSize === null ? 'channel' : 'group',
          group_size: o.groupSize,
          dynamic: false,
          actorder: o.actOrder ? 'group' : null,
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
}
