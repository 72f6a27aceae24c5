// Hugging Face directories as ModelWeights: config.json (hf-config.ts), model.safetensors or a
// sharded model.safetensors.index.json, and tokenizer.json + tokenizer_config.json when present.
// Names are already canonical; q/k rows are in the rotate-half layout. GPTQ-packed linears
// (quantization_config.quant_method "gptq", formats/gptq/read.ts) read as `<base>.weight`,
// dequantized on read (packed-source.ts); so do compressed-tensors "pack-quantized" linears
// (formats/compressed-tensors/read.ts).

import { join } from 'node:path';
import { FormatError } from '../core/errors.js';
import { parseGenerationConfig } from '../formats/hf/json.js';
import { fileExists, openSafetensorsDir, openSafetensorsFile, openShardedSafetensorsFile, readJsonFile } from '../formats/io/index.js';
import { HfTokenizer } from '../formats/tokenizer/hf.js';
import type { Tokenizer } from '../formats/tokenizer/types.js';
import { configFromHfJson } from './hf-config.js';
import { ctConfigOf, ctPartNames, hasCtTensor, readCtLinear } from '../formats/compressed-tensors/read.js';
import { gptqConfigOf, gptqPartNames, hasGptqTensor, readGptqLinear } from '../formats/gptq/read.js';
import { packedTensorSource } from './packed-source.js';
import { canonicalTensors, checkLayerCount } from './names.js';
import { lazyTensor } from './tensor-source.js';
import type { ModelWeights, TensorSource } from './weights.js';

/** tokenizer.json (+ tokenizer_config.json beside it), or null if the file is absent. */
export async function loadHfTokenizer(tokenizerJson: string): Promise<HfTokenizer | null> {
  if (!(await fileExists(tokenizerJson))) return null;
  const cfgPath = join(tokenizerJson, '..', 'tokenizer_config.json');
  const cfg = (await fileExists(cfgPath)) ? await readJsonFile<Record<string, unknown>>(cfgPath) : {};
  return new HfTokenizer(await readJsonFile<Record<string, unknown>>(tokenizerJson), cfg, tokenizerJson);
}

/** `weights`: one .safetensors file or an index.json to read instead of the directory's default. */
export async function loadHf(dir: string, opts: { tokenizer?: Tokenizer | null; weights?: string } = {}): Promise<ModelWeights> {
  const cfgPath = join(dir, 'config.json');
  const rawConfig = await readJsonFile(cfgPath);
  const config = configFromHfJson(rawConfig, cfgPath);
  const gptq = gptqConfigOf(rawConfig, cfgPath);
  const ct = ctConfigOf(rawConfig, cfgPath);
  const metadata: Record<string, unknown> = {};
  const genPath = join(dir, 'generation_config.json');
  if (await fileExists(genPath)) metadata['hf.generation_config'] = parseGenerationConfig(await readJsonFile(genPath), genPath);
  const tokenizer = opts.tokenizer !== undefined ? opts.tokenizer : await loadHfTokenizer(join(dir, 'tokenizer.json'));
  const w = opts.weights;
  const st = w === undefined ? await openSafetensorsDir(dir) : w.endsWith('.json') ? await openShardedSafetensorsFile(w) : await openSafetensorsFile(w);
  try {
    Object.assign(metadata, st.metadata);
    if (gptq || ct) metadata['hf.quantization_config'] = (rawConfig as { quantization_config: unknown }).quantization_config;
    checkLayerCount(config.nLayers, st.names().length, cfgPath, 'num_hidden_layers');
    const tensors = new Map<string, TensorSource>();
    const packedParts = new Set<string>();
    for (const { name, shape } of canonicalTensors(config)) {
      if (gptq && !st.has(name) && hasGptqTensor(st, name)) {
        tensors.set(name, packedTensorSource(name, shape, readGptqLinear(st, name, shape, gptq)));
        for (const p of gptqPartNames(name)) packedParts.add(p);
        continue;
      }
      if (ct && !st.has(name) && hasCtTensor(st, name)) {
        tensors.set(name, packedTensorSource(name, shape, readCtLinear(st, name, shape, ct)));
        for (const p of ctPartNames(name)) packedParts.add(p);
        continue;
      }
      if (!st.has(name)) {
        throw new FormatError('missing_tensor', 'the checkpoint lacks a tensor config.json implies', { file: st.name, tensor: name, expected: `shape [${shape.join(', ')}]`, found: 'absent' });
      }
      const info = st.info(name);
      if (info.shape.join() !== shape.join()) {
        throw new FormatError('shape_mismatch', 'tensor shape does not match config.json', { file: st.name, tensor: name, expected: `[${shape.join(', ')}]`, found: `[${info.shape.join(', ')}]` });
      }
      const into = st.readBytesInto?.bind(st);
      const file = st.location?.(name) ?? undefined;
      tensors.set(name, lazyTensor(name, info.shape, info.dtype, info.byteLength, () => st.readBytes(name), into ? (dst) => into(name, dst) : undefined, undefined, file));
    }
    const extra = st.names().filter((n) => !tensors.has(n) && !packedParts.has(n) && !(n === 'lm_head.weight' && config.tiedEmbeddings));
    if (extra.length) {
      metadata['bitscale.unmapped_tensors'] = extra.map((n) => ({ name: n, shape: st.info(n).shape, dtype: st.info(n).dtype, bytes: st.info(n).byteLength }));
    }
    return { config, tokenizer, tensors, source: { format: 'hf', path: dir }, metadata, close: () => st.close() };
  } catch (e) {
    await st.close();
    throw e;
  }
}
