// GPTQ-packed safetensors tensors and config (AutoGPTQ / transformers "gptq" checkpoint format,
// v1 zero points; packing in pack.ts): per linear `<base>.qweight` int32 [K·b/32, N], `<base>.qzeros`
// int32 [nG, N·b/32] (zero − 1), `<base>.scales` f16 [nG, N], `<base>.g_idx` int32 [K]; config.json's
// `quantization_config` {quant_method: "gptq", bits, group_size, desc_act, sym, …}. The model-level
// writer (every other tensor f16, q/k rows in rotate-half order, tokenizer and configs) is
// pipeline/quantize/write-packed.ts.
// Legend: N = rows (output features), K = input features, nG = groups per row, b = bits.

import type { SafetensorsWriteTensor } from '../safetensors/writer.js';
import { encodeF16Array } from '../../numerics/float16.js';
import { packGptqWeight, packGptqZeros } from './pack.js';

/** One linear in GPTQ terms, rows in output order: unsigned codes [N, K], zero points and scales [N, nG]. */
export interface GptqLinear {
  /** canonical `<base>.weight` name */
  name: string;
  N: number;
  K: number;
  bits: number;
  /** values per group (K for one group per row) */
  groupSize: number;
  codes: Uint8Array;
  zeros: Uint8Array;
  scales: Float32Array;
  /** group of each input column (default k / groupSize) */
  gIdx?: Int32Array;
}

/** qweight, qzeros, scales (f16, transposed to [nG, N]) and g_idx of one linear. */
export function gptqLinearTensors(l: GptqLinear): SafetensorsWriteTensor[] {
  const { N, K, bits } = l;
  const nG = l.scales.length / N;
  const scales = new Float32Array(nG * N);
  for (let n = 0; n < N; n++) for (let g = 0; g < nG; g++) scales[g * N + n] = l.scales[n * nG + g];
  const base = l.name.replace(/\.weight$/, '');
  const gIdx = l.gIdx ?? Int32Array.from({ length: K }, (_, j) => Math.floor(j / l.groupSize));
  return [
    { name: `${base}.qweight`, dtype: 'I32', shape: [(K * bits) / 32, N], data: packGptqWeight(l.codes, N, K, bits) },
    { name: `${base}.qzeros`, dtype: 'I32', shape: [nG, (N * bits) / 32], data: packGptqZeros(l.zeros, N, nG, bits) },
    { name: `${base}.scales`, dtype: 'F16', shape: [nG, N], data: encodeF16Array(scales) },
    { name: `${base}.g_idx`, dtype: 'I32', shape: [K], data: gIdx },
  ];
}

/** Whether GPTQ can pack an [N, K] weight at `bits` (qweight needs K·b, qzeros N·b to fill 32-bit words). */
export function gptqPackable(N: number, K: number, bits: number): boolean {
  return (K * bits) % 32 === 0 && (N * bits) % 32 === 0;
}

/** config.json's quantization_config of a GPTQ checkpoint (groupSize −1: one group per row; damp_percent only for GPTQ runs). */
export function gptqQuantizationConfig(o: { bits: number; groupSize: number; descAct: boolean; sym: boolean; dampPercent?: number }): Record<string, unknown> {
  return {
    quant_method: 'gptq',
    bits: o.bits,
    group_size: o.groupSize,
    desc_act: o.descAct,
    sym: o.sym,
    static_groups: false,
    true_sequential: false,
    ...(o.dampPercent === undefined ? {} : { damp_percent: o.dampPercent }),
    checkpoint_format: 'gptq',
  };
}
