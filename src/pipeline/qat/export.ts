// Packed exports of QAT weights, exact: every linear's effective weights are step_row · level with
// an fp16 step (the scales were projected, train/qat.ts) and integer levels, and both containers
// store exactly that.
//   GGUF: ggml blocks written from (step, level) by quant/ggml/grid-encode.ts in the type
//         qatGgmlType picks (TQ2_0 / Q2_K / Q3_K / Q4_0, Q4_0 for rows that are not 256-blocks,
//         F32 when rows are not even 32-blocks); everything else F32.
//   safetensors: a GPTQ checkpoint (symmetric, one group per row, code = level + 2^(b−1)):
//         ternary/binary/BitNet as 2-bit, 2-bit SEQ and 3-bit LSQ as 3-bit (2-bit GPTQ cannot hold
//         the half-integer SEQ levels ±α/4, ±3α/4 around a zero point), 4-bit LSQ as 4-bit;
//         every other tensor F32, so the loaded model is the QAT model bit for bit.
// Q/K rows stay in the rotate-half order the QAT parameters use (Hugging Face's); saveModel
// permutes GGUF rows for llama.cpp.
// Legend: N = rows (output features), K = input features.

import type { GgmlType } from '../../core/dtype.js';
import { LLAMA_FTYPES, ftypeForTensorType } from '../../core/ftype.js';
import { resolve } from 'node:path';
import { ConfigError, IoError } from '../../core/errors.js';
import type { QuantTensor, Tensor } from '../../core/tensor.js';
import type { SafetensorsWriteTensor } from '../../formats/safetensors/index.js';
import type { Tokenizer } from '../../formats/tokenizer/types.js';
import type { ModelConfig } from '../../model/config.js';
import { hfConfigJson } from '../../model/hf-config.js';
import { hfSideFiles, saveModel } from '../../model/save.js';
import type { ModelWeights, TensorSource } from '../../model/weights.js';
import { encodeGridRows, gridLevels, isF16Exact, type GridGgmlType } from '../../quant/ggml/index.js';
import { paramSpecs } from '../../train/graph.js';
import { qatGgmlType, qatGptqBits, qatRowSteps } from '../../train/qat.js';
import type { QatBits } from '../../train/quantizers.js';
import { gptqLinearTensors, gptqPackable, gptqQuantizationConfig } from '../../formats/gptq/write.js';
import { writeHfSafetensorsDir } from '../../formats/io/index.js';

export interface QatExportInput {
  /** rotate-half layout */
  config: ModelConfig;
  tokenizer: Tokenizer | null;
  bits: QatBits;
  bitnet: boolean;
  method: string;
  /** effective (dequantized) weights of every parameter, scales already fp16-projected */
  eff: Map<string, Float32Array>;
  /** learned per-row α of a linear (ParetoQ), null for BitNet */
  alpha: (name: string) => Float32Array | null;
  /** the model path the weights came from (the writer refuses to overwrite it) */
  source: string;
  out: string;
  ggmlType?: GridGgmlType;
  overwrite?: boolean;
  signal?: AbortSignal;
}

export interface QatExportResult {
  files: string[];
  /** GGUF: block types of the linears; safetensors: ["GPTQ int<b>"] */
  types: string[];
  /** what was not stored packed, and why */
  notes: string[];
}

/** Steps and levels of one linear's QAT weights (throws if a weight is off its row grid). */
function gridOf(x: QatExportInput, name: string, N: number, K: number): { steps: Float32Array; levels: Int8Array } {
  const w = x.eff.get(name)!;
  const steps = qatRowSteps(x.bits, x.bitnet, x.alpha(name), w, N);
  for (let n = 0; n < N; n++) {
    if (!isF16Exact(steps[n])) throw new ConfigError('internal', 'QAT grid step was not projected to fp16', { tensor: name, index: n, found: steps[n] });
  }
  return { steps, levels: gridLevels(w, steps, N, K, name) };
}

function f32Source(name: string, shape: number[], data: Float32Array): TensorSource {
  const t: Tensor<'F32'> = { dtype: 'F32', shape, data };
  return { name, shape, dtype: 'F32', byteLength: data.byteLength, read: async () => t, readF32: async () => data };
}

export async function exportQatGguf(x: QatExportInput): Promise<QatExportResult> {
  const specs = paramSpecs(x.config);
  const types = new Map<string, GgmlType>();
  const notes: string[] = [];
  for (const p of specs) {
    if (!p.linear) continue;
    const t = qatGgmlType(x.bits, x.bitnet, p.shape[1], x.ggmlType);
    if (t === 'F32') notes.push(`${p.name}: rows of ${p.shape[1]} are not whole 32-value blocks, stored F32 (exact, unpacked)`);
    else types.set(p.name, t);
  }
  const tensors = new Map<string, TensorSource>();
  for (const p of specs) tensors.set(p.name, f32Source(p.name, p.shape, x.eff.get(p.name)!));
  const m: ModelWeights = { config: x.config, tokenizer: x.tokenizer, tensors, source: { format: 'safetensors', path: x.source }, metadata: {}, close: async () => {} };
  // general.file_type as llama.cpp would label it: the file type of the linears' type (F32 if none)
  const counts = new Map<GgmlType, number>();
  for (const t of types.values()) counts.set(t, (counts.get(t) ?? 0) + 1);
  const main = [...counts].sort((a, b) => b[1] - a[1])[0]?.[0];
  const ftype = main ? ftypeForTensorType(main) : undefined;
  const saved = await saveModel(m, x.out, {
    format: 'gguf',
    overwrite: x.overwrite,
    ...(ftype ? { fileType: LLAMA_FTYPES[ftype].id } : {}),
    signal: x.signal,
    ggufMetadata: { 'bitscale.qat.method': { type: 'string', value: x.method } },
    tensorType: (name) => types.get(name),
    tensor: async (name, src): Promise<QuantTensor | null> => {
      const type = types.get(name);
      if (!type) return null;
      const [N, K] = src.shape;
      const { steps, levels } = gridOf(x, name, N, K);
      return { type, shape: src.shape, bytes: encodeGridRows(type as GridGgmlType, steps, levels, N, K, name) };
    },
  });
  return { files: saved.files, types: [...new Set(types.values())], notes };
}

export async function exportQatGptq(x: QatExportInput): Promise<QatExportResult> {
  const a = resolve(x.out);
  const b = resolve(x.source);
  // the directory would replace the input model (or the directory holding it)
  if (a === b || b.startsWith(a + '/')) throw new IoError('would_overwrite_input', 'the output path is the model being read', { file: x.out, found: x.source, hint: 'choose a different output path' });
  const bits = qatGptqBits(x.bits, x.bitnet);
  const zero = 1 << (bits - 1);
  const notes: string[] = [];
  const tensors: SafetensorsWriteTensor[] = [];
  for (const p of paramSpecs(x.config)) {
    const w = x.eff.get(p.name)!;
    const [N, K] = p.shape;
    if (!p.linear || !gptqPackable(N, K, bits)) {
      if (p.linear) notes.push(`${p.name}: [${N}, ${K}] cannot be GPTQ-packed at ${bits} bits (N·b and K·b must be multiples of 32), stored F32`);
      tensors.push({ name: p.name, dtype: 'F32', shape: p.shape, data: w });
      continue;
    }
    const { steps, levels } = gridOf(x, p.name, N, K);
    const codes = Uint8Array.from(levels, (l) => l + zero);
    tensors.push(...gptqLinearTensors({ name: p.name, N, K, bits, groupSize: K, codes, zeros: new Uint8Array(N).fill(zero), scales: steps }));
  }
  const cfg = hfConfigJson(x.config, 'float32') as Record<string, unknown>;
  cfg.quantization_config = {
    ...gptqQuantizationConfig({ bits, groupSize: -1, descAct: false, sym: true }),
    // not a GPTQ run: the codes are the QAT model's (GPTQ here is only the container)
    quantized_by: `bitscale qat (${x.method})`,
  };
  const files = hfSideFiles(x.config, x.tokenizer);
  const written = await writeHfSafetensorsDir(x.out, tensors, cfg, { overwrite: x.overwrite, signal: x.signal, files, metadata: { 'bitscale.qat.method': x.method, 'bitscale.qat.bits': String(x.bits) } });
  return { files: written, types: [`GPTQ int${bits}`], notes };
}
