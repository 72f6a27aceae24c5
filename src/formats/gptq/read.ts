// GPTQ-packed linears of a Hugging Face checkpoint (config.json quantization_config.quant_method
// "gptq"; AutoGPTQ / transformers layout, quant/pack.ts): `<base>.qweight`, `.qzeros`, `.scales`,
// `.g_idx` are checked and read as one linear `<base>.weight` (formats/packed-int.ts; the model
// layer makes it a lazy tensor that dequantizes on read),
//   W[n, k] = fround(scales[g, n] · (code[n, k] − zero[n, g])),  g = g_idx[k],
// which is the value GPTQ kernels compute (zeros stored as zero − 1 in checkpoint_format "gptq",
// as is in "gptq_v2"). byteLength is the packed size, so bits per weight read as stored.
// Legend: N = rows (output features), K = input features, nG = groups, b = bits.

import { ConfigError, FormatError } from '../../core/errors.js';
import type { SafetensorsView } from '../safetensors/sharded.js';
import { scalesToF32, type PackedIntCodes, type PackedLinear } from '../packed-int.js';
import { unpackGptqWeight, unpackGptqZeros } from './pack.js';

export interface GptqConfig {
  bits: 2 | 3 | 4 | 8;
  /** values per group; -1 = one group per row */
  groupSize: number;
  /** checkpoint_format "gptq_v2": zero points stored without the −1 */
  v2: boolean;
}

/** The GPTQ settings of a raw config.json, or null when it declares no GPTQ quantization. */
export function gptqConfigOf(raw: unknown, file: string): GptqConfig | null {
  const qc = (raw as { quantization_config?: Record<string, unknown> } | null)?.quantization_config;
  if (!qc || typeof qc !== 'object' || qc.quant_method !== 'gptq') return null;
  const bits = qc.bits;
  if (bits !== 2 && bits !== 3 && bits !== 4 && bits !== 8) {
    throw new ConfigError('bad_config', 'GPTQ checkpoints store 2, 3, 4 or 8 bits', { file, field: 'quantization_config.bits', expected: '2 | 3 | 4 | 8', found: String(bits) });
  }
  const g = qc.group_size ?? -1;
  if (typeof g !== 'number' || !Number.isInteger(g) || (g !== -1 && g <= 0)) {
    throw new ConfigError('bad_config', 'bad GPTQ group size', { file, field: 'quantization_config.group_size', expected: '-1 or a positive integer', found: String(g) });
  }
  const fmt = qc.checkpoint_format ?? 'gptq';
  if (fmt !== 'gptq' && fmt !== 'gptq_v2') {
    throw new ConfigError('unsupported', 'unknown GPTQ checkpoint format', { file, field: 'quantization_config.checkpoint_format', expected: 'gptq | gptq_v2', found: String(fmt) });
  }
  return { bits, groupSize: g, v2: fmt === 'gptq_v2' };
}

/** Whether the checkpoint stores `name` (a `<base>.weight`) GPTQ-packed. */
export function hasGptqTensor(st: SafetensorsView, name: string): boolean {
  return name.endsWith('.weight') && st.has(name.replace(/\.weight$/, '.qweight'));
}

/** The four stored names of a packed `<base>.weight`. */
export function gptqPartNames(name: string): string[] {
  const base = name.replace(/\.weight$/, '');
  return ['qweight', 'qzeros', 'scales', 'g_idx'].map((p) => `${base}.${p}`);
}

/** The GPTQ-packed `name` of shape [N, K]; shapes and dtypes are checked here, before any read. */
export function readGptqLinear(st: SafetensorsView, name: string, shape: number[], q: GptqConfig): PackedLinear {
  const [N, K] = shape;
  const b = q.bits;
  const [qwN, qzN, scN, giN] = gptqPartNames(name);
  const nG = q.groupSize === -1 ? 1 : Math.ceil(K / q.groupSize);
  const expect = (part: string, dtypes: string[], dims: number[]) => {
    if (!st.has(part)) throw new FormatError('missing_tensor', 'a GPTQ linear lacks one of its tensors', { file: st.name, tensor: part, expected: `shape [${dims.join(', ')}]`, found: 'absent' });
    const info = st.info(part);
    if (!dtypes.includes(info.dtype)) throw new FormatError('mismatch', 'GPTQ tensor has the wrong dtype', { file: st.name, tensor: part, expected: dtypes.join(' | '), found: info.dtype });
    if (info.shape.join() !== dims.join()) {
      throw new FormatError('shape_mismatch', `GPTQ tensor shape does not match config.json (${b}-bit, group size ${q.groupSize})`, { file: st.name, tensor: part, expected: `[${dims.join(', ')}]`, found: `[${info.shape.join(', ')}]` });
    }
    return info.byteLength;
  };
  if ((K * b) % 32 !== 0 || (N * b) % 32 !== 0) {
    throw new FormatError('shape_mismatch', 'GPTQ packing needs K·bits and N·bits to be multiples of 32', { file: st.name, tensor: name, expected: `[N, K] with N·${b} and K·${b} multiples of 32`, found: `[${N}, ${K}]` });
  }
  let byteLength = expect(qwN, ['I32'], [(K * b) / 32, N]) + expect(qzN, ['I32'], [nG, (N * b) / 32]) + expect(scN, ['F16', 'BF16', 'F32'], [nG, N]);
  const hasGIdx = st.has(giN);
  if (hasGIdx) byteLength += expect(giN, ['I32'], [K]);
  const readCodes = async (): Promise<PackedIntCodes> => {
    const codes = unpackGptqWeight((await st.readTensor(qwN)).data as Int32Array, N, K, b);
    const zeros = unpackGptqZeros((await st.readTensor(qzN)).data as Int32Array, N, nG, b);
    if (q.v2) for (let i = 0; i < zeros.length; i++) zeros[i] = (zeros[i] - 1) & ((1 << b) - 1);
    const stored = scalesToF32(await st.readTensor(scN)); // [nG, N]
    const scales = new Float32Array(N * nG);
    for (let g = 0; g < nG; g++) for (let n = 0; n < N; n++) scales[n * nG + g] = stored[g * N + n];
    const gIdx = hasGIdx ? Int32Array.from((await st.readTensor(giN)).data as Int32Array) : null;
    if (gIdx) {
      for (let k = 0; k < K; k++) {
        if (!(gIdx[k] >= 0 && gIdx[k] < nG)) throw new FormatError('out_of_bounds', 'g_idx names a group that does not exist', { file: st.name, tensor: giN, index: k, expected: `0..${nG - 1}`, found: gIdx[k] });
      }
    }
    return { bits: b, groupSize: q.groupSize === -1 ? K : q.groupSize, codes, zeros, scales, gIdx };
  };
  return { packing: `GPTQ int${b}${q.groupSize === -1 ? '' : `-g${q.groupSize}`}`, byteLength, readCodes };
}
