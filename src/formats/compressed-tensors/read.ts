// compressed-tensors "pack-quantized" linears of a Hugging Face checkpoint (config.json
// quantization_config.quant_method "compressed-tensors", format "pack-quantized"; layout in
// write.ts beside this file and docs/safetensors-formats.md): `<base>.weight_packed`,
// `.weight_scale`, `.weight_zero_point` (asymmetric), `.weight_shape`, `.weight_g_idx` (act-order)
// are checked and read as one linear `<base>.weight` (formats/packed-int.ts; the model layer makes
// it a lazy tensor that dequantizes on read),
//   W[n, k] = fround(scale[n, g] · (u[n, k] − z[n, g])),  g = g_idx[k] or ⌊k / G⌋,
// u the stored unsigned code, z the stored zero point (2^(b−1) when symmetric: signed zero 0).
// Legend: N = rows (output features), K = input features, G = group size, nG = groups, b = bits, pf = 32/b.

import { ConfigError, FormatError } from '../../core/errors.js';
import type { SafetensorsView } from '../safetensors/sharded.js';
import { scalesToF32, type PackedIntCodes, type PackedLinear } from '../packed-int.js';
import { unpackCtColumns, unpackCtRows } from './pack.js';

export interface CtConfig {
  bits: 4 | 8;
  /** values per group; -1 = strategy "channel" (one group per row) */
  groupSize: number;
  symmetric: boolean;
}

/** The pack-quantized settings of a raw config.json, or null when it declares no compressed-tensors quantization. */
export function ctConfigOf(raw: unknown, file: string): CtConfig | null {
  const qc = (raw as { quantization_config?: Record<string, unknown> } | null)?.quantization_config;
  if (!qc || typeof qc !== 'object' || qc.quant_method !== 'compressed-tensors') return null;
  const bad = (field: string, expected: string, found: unknown, msg: string) =>
    new ConfigError('unsupported', msg, { file, field: `quantization_config.${field}`, expected, found: JSON.stringify(found) ?? 'absent' });
  if (qc.format !== 'pack-quantized') throw bad('format', '"pack-quantized"', qc.format, 'only the pack-quantized compressed-tensors format is read');
  const groups = qc.config_groups as Record<string, { weights?: Record<string, unknown> | null; input_activations?: unknown }> | undefined;
  const keys = groups && typeof groups === 'object' ? Object.keys(groups) : [];
  if (keys.length !== 1) throw bad('config_groups', 'exactly one group', keys, 'mixed compressed-tensors schemes are not supported');
  const g = groups![keys[0]];
  const w = g.weights;
  if (!w || typeof w !== 'object') throw bad(`config_groups.${keys[0]}.weights`, 'an object', w, 'the compressed-tensors group quantizes no weights');
  if (g.input_activations) throw bad(`config_groups.${keys[0]}.input_activations`, 'null (weight-only)', g.input_activations, 'activation quantization is not supported');
  const f = (k: string) => `config_groups.${keys[0]}.weights.${k}`;
  if ((w.type ?? 'int') !== 'int') throw bad(f('type'), '"int"', w.type, 'pack-quantized weights must be int');
  if (w.num_bits !== 4 && w.num_bits !== 8) throw bad(f('num_bits'), '4 | 8', w.num_bits, 'pack-quantized stores 4 or 8 bits');
  let groupSize: number;
  if (w.strategy === 'channel') groupSize = -1;
  else if (w.strategy === 'group') {
    const gs = w.group_size;
    if (typeof gs !== 'number' || !Number.isInteger(gs) || gs <= 0) throw bad(f('group_size'), 'a positive integer', gs, 'bad compressed-tensors group size');
    groupSize = gs;
  } else throw bad(f('strategy'), '"group" | "channel"', w.strategy, 'unsupported compressed-tensors weight strategy');
  if (w.dynamic) throw bad(f('dynamic'), 'false', w.dynamic, 'dynamic weight quantization is not a stored format');
  return { bits: w.num_bits, groupSize, symmetric: w.symmetric !== false };
}

/** Whether the checkpoint stores `name` (a `<base>.weight`) pack-quantized. */
export function hasCtTensor(st: SafetensorsView, name: string): boolean {
  return name.endsWith('.weight') && st.has(`${name}_packed`);
}

/** The stored names that make up a packed `<base>.weight`. */
export function ctPartNames(name: string): string[] {
  return ['packed', 'scale', 'zero_point', 'shape', 'g_idx'].map((p) => `${name}_${p}`);
}

/** The pack-quantized `name` of shape [N, K]; shapes and dtypes are checked here, before any read. */
export function readCtLinear(st: SafetensorsView, name: string, shape: number[], q: CtConfig): PackedLinear {
  const [N, K] = shape;
  const b = q.bits;
  const pf = 32 / b;
  const [pkN, scN, zpN, shN, giN] = ctPartNames(name);
  const G = q.groupSize === -1 ? K : q.groupSize;
  const nG = Math.ceil(K / G);
  const expect = (part: string, dtypes: string[], dims: number[]) => {
    if (!st.has(part)) throw new FormatError('missing_tensor', 'a pack-quantized linear lacks one of its tensors', { file: st.name, tensor: part, expected: `shape [${dims.join(', ')}]`, found: 'absent' });
    const info = st.info(part);
    if (!dtypes.includes(info.dtype)) throw new FormatError('mismatch', 'compressed-tensors tensor has the wrong dtype', { file: st.name, tensor: part, expected: dtypes.join(' | '), found: info.dtype });
    if (info.shape.join() !== dims.join()) {
      throw new FormatError('shape_mismatch', `compressed-tensors tensor shape does not match config.json (${b}-bit, group size ${q.groupSize})`, { file: st.name, tensor: part, expected: `[${dims.join(', ')}]`, found: `[${info.shape.join(', ')}]` });
    }
    return info.byteLength;
  };
  let byteLength = expect(pkN, ['I32'], [N, Math.ceil(K / pf)]) + expect(scN, ['F16', 'BF16', 'F32'], [N, nG]);
  if (!q.symmetric) byteLength += expect(zpN, ['I32'], [Math.ceil(N / pf), nG]);
  const hasShape = st.has(shN);
  if (hasShape) byteLength += expect(shN, ['I64', 'I32'], [2]);
  const hasGIdx = st.has(giN);
  if (hasGIdx) byteLength += expect(giN, ['I32', 'I64'], [K]);
  const readCodes = async (): Promise<PackedIntCodes> => {
    if (hasShape) {
      const s = Array.from((await st.readTensor(shN)).data as ArrayLike<number | bigint>, Number);
      if (s[0] !== N || s[1] !== K) throw new FormatError('shape_mismatch', 'weight_shape does not match config.json', { file: st.name, tensor: shN, expected: `[${N}, ${K}]`, found: `[${s.join(', ')}]` });
    }
    const codes = unpackCtRows((await st.readTensor(pkN)).data as Int32Array, N, K, b);
    const zeros = q.symmetric ? new Uint8Array(N * nG).fill(1 << (b - 1)) : unpackCtColumns((await st.readTensor(zpN)).data as Int32Array, N, nG, b);
    const scales = scalesToF32(await st.readTensor(scN)); // [N, nG]
    const gIdx = hasGIdx ? Int32Array.from((await st.readTensor(giN)).data as ArrayLike<number | bigint>, Number) : null;
    if (gIdx) {
      for (let k = 0; k < K; k++) {
        if (!(gIdx[k] >= 0 && gIdx[k] < nG)) throw new FormatError('out_of_bounds', 'weight_g_idx names a group that does not exist', { file: st.name, tensor: giN, index: k, expected: `0..${nG - 1}`, found: gIdx[k] });
      }
    }
    return { bits: b, groupSize: G, codes, zeros, scales, gIdx };
  };
  return { packing: `compressed-tensors int${b}${q.groupSize === -1 ? '-channel' : `-g${q.groupSize}`}${q.symmetric ? '' : '-asym'}`, byteLength, readCodes };
}
