// Writes a trained model as a Hugging Face directory: model.safetensors (F32, canonical names,
// [out, in] weights), config.json (LlamaForCausalLM) and tokenizer.json. Each file is written
// atomically; the directory is created if needed.

import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { writeSafetensorsFile } from '../formats/io/containers.js';
import { atomicWriteFile } from '../formats/io/file.js';
import type { ModelConfig } from '../model/config.js';
import { hfConfigJson } from '../model/hf-config.js';
import { paramSpecs } from './graph.js';

/** config.json fields of a Hugging Face LlamaForCausalLM for `c` (the model writer's own mapping). */
export function llamaHfConfig(c: ModelConfig): Record<string, unknown> {
  return hfConfigJson(c, 'float32');
}

export interface HfExport {
  dir: string;
  config: ModelConfig;
  /** canonical name → F32 data (extra entries such as QAT scales are ignored) */
  weights: Map<string, Float32Array>;
  tokenizerJson?: Record<string, unknown> | null;
  metadata?: Record<string, string>;
}

export async function writeHfModel(e: HfExport): Promise<void> {
  mkdirSync(e.dir, { recursive: true });
  const tensors = paramSpecs(e.config).map((p) => ({ name: p.name, dtype: 'F32' as const, shape: p.shape, data: e.weights.get(p.name) as Float32Array }));
  await writeSafetensorsFile(join(e.dir, 'model.safetensors'), tensors, { overwrite: true, metadata: { format: 'pt', ...(e.metadata ?? {}) } });
  await atomicWriteFile(join(e.dir, 'config.json'), JSON.stringify(llamaHfConfig(e.config), null, 2) + '\n', { overwrite: true });
  if (e.tokenizerJson) await atomicWriteFile(join(e.dir, 'tokenizer.json'), JSON.stringify(e.tokenizerJson) + '\n', { overwrite: true });
}
