// The files a loaded model was read from, so that no output replaces one of them: the checkpoint,
// the tokenizer found beside it (or given), and a Hugging Face folder's config, tokenizer and
// weight files (and the folder itself, which an output folder must not replace or contain).

import { readdir, stat } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { findLlama2cVocab } from './load-llama2c.js';
import type { ModelWeights } from './weights.js';

const HF_FILE = /^(config|generation_config|tokenizer|tokenizer_config|special_tokens_map|added_tokens)\.json$|^tokenizer\.model$|\.safetensors$|\.safetensors\.index\.json$/;

async function hfFiles(dir: string): Promise<string[]> {
  const names = await readdir(dir).catch(() => [] as string[]);
  return names.filter((n) => HF_FILE.test(n)).map((n) => join(dir, n));
}

/**
 * Every path `m` was (or may lazily be) read from. `tokenizer` is the tokenizer option the model
 * was loaded with (a file that overrides the model's own; null: none loaded).
 */
export async function modelInputFiles(m: ModelWeights, tokenizer?: string | null): Promise<string[]> {
  const p = m.source.path;
  const out = new Set<string>([p]);
  if (tokenizer) out.add(tokenizer);
  const isDir = (await stat(p).catch(() => null))?.isDirectory() ?? false;
  if (isDir) for (const f of await hfFiles(p)) out.add(f);
  else if (m.source.format === 'safetensors' || m.source.format === 'hf') for (const f of await hfFiles(dirname(p))) out.add(f);
  else if (m.source.format === 'llama2c' && tokenizer === undefined && m.tokenizer) {
    const { found } = await findLlama2cVocab(p, m.config.vocabSize);
    if (found) out.add(found);
  }
  return [...out];
}
