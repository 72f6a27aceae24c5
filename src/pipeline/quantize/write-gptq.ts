// GPTQ-packed safetensors (AutoGPTQ / transformers "gptq" checkpoint format, v1 zero points):
// per linear `<base>.qweight` int32 [K·b/32, N], `<base>.qzeros` int32 [nG, N·b/32] (zero − 1),
// `<base>.scales` f16 [nG, N], `<base>.g_idx` int32 [K]; every other tensor f16; config.json with
// `quantization_config` {quant_method: "gptq", bits, group_size, desc_act, sym, …}; generation_config.json
// and the tokenizer (tokenizer.json + tokenizer_config.json) when the model has one. The codes are the
// scheme's (quant/affine.ts); GPTQ stores them unsigned with a zero point, so symmetric codes q go
// through quant's toUnsignedCodes (u = q + 2^(b−1), zero 2^(b−1), what `sym: true` loaders assume).
// Rows of q/k are
// put in Hugging Face's rotate-half order before packing (codes, scales and zeros move together).
// The directory is staged and renamed into place (formats/io/output.ts).
// Legend: N = rows (output features), K = input features, nG = groups per row, b = bits.

import { join } from 'node:path';
import { ConfigError } from '../../core/errors.js';
import type { HostModel } from '../../engine/host.js';
import { atomicWriteFile, withOutput, writeSafetensorsFile } from '../../formats/io/index.js';
import type { SafetensorsWriteTensor } from '../../formats/safetensors/index.js';
import { generationConfigJson } from '../../formats/hf/json.js';
import { hfConfigJson } from '../../model/hf-config.js';
import { hfTokenizerFiles } from '../../model/save.js';
import { isRotaryProjection } from '../../model/names.js';
import { rotaryRowOrder } from '../../model/permute.js';
import type { ModelWeights } from '../../model/weights.js';
import { encodeF16Array } from '../../numerics/float16.js';
import { packGptqWeight, packGptqZeros, toUnsignedCodes } from '../../quant/pack.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { gridQuantized, type LinearResult } from './layer.js';

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

/** model.safetensors + config.json (+ extra text files) staged and put in place (formats/io/output.ts). */
export async function writeGptqDir(
  out: string,
  tensors: SafetensorsWriteTensor[],
  cfg: Record<string, unknown>,
  o: { overwrite?: boolean; inputs?: readonly (string | null | undefined)[]; signal?: AbortSignal; metadata?: Record<string, string>; files?: { name: string; text: string }[] },
): Promise<string[]> {
  return withOutput(out, { kind: 'dir', force: o.overwrite, inputs: o.inputs, command: 'quantize' }, async (txn) => {
    const tmp = txn.staged;
    const written = [join(out, 'model.safetensors'), join(out, 'config.json')];
    await writeSafetensorsFile(join(tmp, 'model.safetensors'), tensors, { metadata: { format: 'pt', quantized_by: 'bitscale', ...o.metadata }, signal: o.signal });
    await atomicWriteFile(join(tmp, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
    for (const f of o.files ?? []) {
      await atomicWriteFile(join(tmp, f.name), f.text);
      written.push(join(out, f.name));
    }
    return written;
  });
}

export async function writeGptqSafetensors(
  weights: ModelWeights,
  host: HostModel,
  results: LinearResult[],
  scheme: QuantScheme,
  o: { out: string; overwrite?: boolean; actOrder?: boolean; percdamp?: number; signal?: AbortSignal },
): Promise<string[]> {
  if (scheme.kind !== 'int') throw new ConfigError('bad_option', 'GPTQ packing needs an int scheme', { field: 'scheme', found: scheme.kind });
  const c = host.config;
  const bits = scheme.bits;
  const byName = new Map(results.map((r) => [r.name, r]));
  const tensors: SafetensorsWriteTensor[] = [];
  let groupSize = -1;
  for (const name of weights.tensors.keys()) {
    const r = byName.get(name);
    const rot = isRotaryProjection(name);
    const order = rot && c.ropeLayout !== 'half' ? rotaryRowOrder(rot === 'q' ? c.nHeads : c.nKvHeads, c.headDim, c.ropeLayout, 'half') : null;
    const data = host.tensors.get(name)!;
    const shape = weights.tensors.get(name)!.shape;
    if (!r) {
      tensors.push({ name, dtype: 'F16', shape, data: encodeF16Array(order ? permuteRows(data, order) : data) });
      continue;
    }
    const q = gridQuantized(r);
    const [N, K] = q.shape;
    const nG = q.scales.length / N;
    const G = K / nG;
    groupSize = nG === 1 ? -1 : G;
    const u = toUnsignedCodes(q);
    const ord = order ?? Int32Array.from({ length: N }, (_, i) => i);
    const codes = new Uint8Array(N * K);
    const zeros = new Uint8Array(N * nG);
    const scales = new Float32Array(N * nG);
    for (let rOut = 0; rOut < N; rOut++) {
      const rIn = ord[rOut];
      codes.set(u.codes.subarray(rIn * K, rIn * K + K), rOut * K);
      zeros.set(u.zeros.subarray(rIn * nG, rIn * nG + nG), rOut * nG);
      scales.set(q.scales.subarray(rIn * nG, rIn * nG + nG), rOut * nG);
    }
    tensors.push(...gptqLinearTensors({ name, N, K, bits, groupSize: G, codes, zeros, scales, gIdx: r.gIdx }));
  }
  const cfg = hfConfigJson({ ...c, ropeLayout: 'half' }, 'float16') as Record<string, unknown>;
  cfg.quantization_config = {
    quant_method: 'gptq',
    bits,
    group_size: groupSize,
    desc_act: !!o.actOrder,
    sym: scheme.symmetric,
    static_groups: false,
    true_sequential: false,
    damp_percent: o.percdamp ?? 0.01,
    checkpoint_format: 'gptq',
  };
  // a complete folder, as transformers/vLLM (and bitscale eval/generate) expect: tokenizer and generation config beside the weights
  const files: { name: string; text: string }[] = [];
  const gen = generationConfigJson({ bosTokenId: c.bosTokenId, eosTokenIds: c.eosTokenId === null ? [] : [c.eosTokenId] });
  files.push({ name: 'generation_config.json', text: JSON.stringify(gen, null, 2) + '\n' });
  const tok = hfTokenizerFiles(weights.tokenizer, c.maxSeqLen);
  if (tok) files.push({ name: 'tokenizer.json', text: JSON.stringify(tok.tokenizer) }, { name: 'tokenizer_config.json', text: JSON.stringify(tok.config, null, 2) + '\n' });
  return writeGptqDir(o.out, tensors, cfg, { ...o, files });
}

function permuteRows(x: Float32Array, order: Int32Array): Float32Array {
  const R = order.length;
  const w = x.length / R;
  const out = new Float32Array(x.length);
  for (let r = 0; r < R; r++) out.set(x.subarray(order[r] * w, order[r] * w + w), r * w);
  return out;
}
