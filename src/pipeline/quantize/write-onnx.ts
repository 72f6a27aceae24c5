// ONNX output of `bitscale quantize` for int schemes: the engine's Llama graph with every quantized
// linear as a com.microsoft MatMulNBits node holding the codes GPTQ/RTN chose (real 2/4/8-bit
// weights, not float), lowered to one .onnx file with its weights in `<file>.data` (external data).
// Shapes are static: the graph takes `tokens` and `positions` (int64 [T]) and returns logits [T, V]
// for T = the calibration window length; onnxruntime-node/web run it as is.
// The grids hold quant's codes (quant/affine.ts), so each linear is the IntQuantized of its scheme.
// Legend: N = rows, K = input features, nG = groups per row, T = tokens, V = vocab.

import { writeFile, rename, rm } from 'node:fs/promises';
import { randomBytes } from 'node:crypto';
import { basename } from 'node:path';
import { ConfigError, IoError } from '../../core/errors.js';
import type { HostModel } from '../../engine/host.js';
import { buildLlamaGraph } from '../../engine/llama.js';
import { lowerToOnnx } from '../../engine/lower.js';
import { fileExists } from '../../formats/io/index.js';
import type { QuantScheme } from '../../quant/scheme.js';
import { gridQuantized, type LinearResult } from './layer.js';

/** Writes `out` (.onnx) and `out.data`; returns both paths and the shape of the `tokens` input. */
export async function writeQuantizedOnnx(host: HostModel, results: LinearResult[], scheme: QuantScheme, tokens: number, out: string, overwrite = false): Promise<{ files: string[]; tokensShape: number[] }> {
  if (scheme.kind !== 'int' || scheme.granularity.kind !== 'group') {
    throw new ConfigError('bad_option', 'ONNX output needs an int scheme with groups (MatMulNBits)', { field: '--scheme', expected: 'int4-g32, int4-g128-asym, int8-g64, …', found: scheme.kind });
  }
  if (!overwrite && (await fileExists(out))) throw new IoError('exists', 'output exists', { file: out, hint: 'pass --overwrite to replace it' });
  const lowBit = new Map(host.lowBit);
  for (const r of results) lowBit.set(r.name, { q: gridQuantized(r), mode: 'nbits' });
  const graph = buildLlamaGraph({ ...host, lowBit }, { tokens, maxPositions: tokens });
  const dataName = `${basename(out)}.data`;
  const l = lowerToOnnx(graph, { external: { location: dataName }, docString: 'bitscale quantize', metadata: { quantized_by: 'bitscale', scheme: JSON.stringify(scheme) } });
  const tag = randomBytes(4).toString('hex');
  const tmpModel = `${out}.tmp-${tag}`;
  const tmpData = `${out}.data.tmp-${tag}`;
  try {
    await writeFile(tmpData, Buffer.concat(l.externalData ? l.externalData.parts : []));
    await writeFile(tmpModel, l.model);
    // data first: a model file never points at a missing blob
    await rename(tmpData, `${out}.data`);
    await rename(tmpModel, out);
  } catch (e) {
    await rm(tmpModel, { force: true });
    await rm(tmpData, { force: true });
    throw e;
  }
  const tokensShape = [...graph.inputs.find((i) => i.name === 'tokens')!.value.shape];
  return { files: [out, `${out}.data`], tokensShape };
}
