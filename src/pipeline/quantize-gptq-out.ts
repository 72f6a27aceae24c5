// GPTQ-packed safetensors (AutoGPTQ / transformers "gptq" checkpoint format, v1 zero points):
// per linear `<base>.qweight` int32 [K·b/32, N], `<base>.qzeros` int32 [nG, N·b/32] (zero − 1),
// `<base>.scales` f16 [nG, N], `<base>.g_idx` int32 [K]; every other tensor f16; config.json with
// `quantization_config` {quant_method: "gptq", bits, group_size, desc_act, sym, …}. Rows of q/k are
// put in Hugging Face's rotate-half order before packing (codes, scales and zeros move together).
// The directory is written under a temporary name and renamed (atomic).
// Legend: N = rows (output features), K = input features, nG = groups per row, b = bits.

import { mkdir, rename, rm, stat } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { dirname, basename, join } from 'node:path';
import { ConfigError, IoError } from '../core/errors.js';
import type { HostModel } from '../engine/host.js';
import { atomicWriteFile, writeSafetensorsFile } from '../formats/io/index.js';
import type { SafetensorsWriteTensor } from '../formats/safetensors/index.js';
import { hfConfigJson } from '../model/hf-config.js';
import { isRotaryProjection } from '../model/names.js';
import { rotaryRowOrder } from '../model/permute.js';
import type { ModelWeights } from '../model/weights.js';
import { encodeF16Array } from '../numerics/float16.js';
import { packGptqWeight, packGptqZeros } from '../quant/pack.js';
import type { QuantScheme } from '../quant/scheme.js';
import { IntGrid } from '../algorithms/grid.js';
import type { LinearResult } from './quantize-layer.js';

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
    const g = r.grid;
    if (!(g instanceof IntGrid)) throw new ConfigError('internal', 'linear was not quantized on an int grid', { tensor: name });
    const N = g.n, K = g.k, nG = g.numGroups;
    groupSize = g.groupSize >= K ? -1 : g.groupSize;
    const ord = order ?? Int32Array.from({ length: N }, (_, i) => i);
    const codes = new Uint8Array(N * K);
    const zeros = new Uint8Array(N * nG);
    const scales = new Float32Array(nG * N); // [nG, N]
    for (let rOut = 0; rOut < N; rOut++) {
      const rIn = ord[rOut];
      codes.set(g.codes.subarray(rIn * K, rIn * K + K), rOut * K);
      for (let gi = 0; gi < nG; gi++) {
        zeros[rOut * nG + gi] = g.zeros[rIn * nG + gi];
        scales[gi * N + rOut] = g.scales[rIn * nG + gi];
      }
    }
    const base = name.replace(/\.weight$/, '');
    const gIdx = r.gIdx ?? Int32Array.from({ length: K }, (_, j) => Math.floor(j / g.groupSize));
    tensors.push(
      { name: `${base}.qweight`, dtype: 'I32', shape: [(K * bits) / 32, N], data: packGptqWeight(codes, N, K, bits) },
      { name: `${base}.qzeros`, dtype: 'I32', shape: [nG, (N * bits) / 32], data: packGptqZeros(zeros, N, nG, bits) },
      { name: `${base}.scales`, dtype: 'F16', shape: [nG, N], data: encodeF16Array(scales) },
      { name: `${base}.g_idx`, dtype: 'I32', shape: [K], data: gIdx },
    );
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
  const out = o.out;
  const exists = await stat(out).then(() => true, () => false);
  if (exists && !o.overwrite) throw new IoError('exists', 'output exists', { file: out, hint: 'pass --overwrite to replace it' });
  const tmp = join(dirname(out), `.${basename(out)}.tmp-${randomBytes(4).toString('hex')}`);
  await mkdir(tmp, { recursive: true });
  try {
    await writeSafetensorsFile(join(tmp, 'model.safetensors'), tensors, { metadata: { format: 'pt', quantized_by: 'bitscale' }, signal: o.signal });
    await atomicWriteFile(join(tmp, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
    if (exists) await rm(out, { recursive: true, force: true });
    await rename(tmp, out);
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
  return [join(out, 'model.safetensors'), join(out, 'config.json')];
}

function permuteRows(x: Float32Array, order: Int32Array): Float32Array {
  const R = order.length;
  const w = x.length / R;
  const out = new Float32Array(x.length);
  for (let r = 0; r < R; r++) out.set(x.subarray(order[r] * w, order[r] * w + w), r * w);
  return out;
}
