// `inspect`: what a model file holds, from headers only (tensor bytes are never read, so it is
// instant on large files): architecture and hyper-parameters, parameter count, one row per
// tensor (name, shape, dtype, bytes, bits per weight), totals per dtype, metadata, tokenizer.
//
// `parameters` counts every stored element. For llama2.c legacy checkpoints that includes the
// RoPE table the file carries (stories260K: 260,032 weights + 4,096 table floats = 264,128, the
// figure its README gives), and stored tensors outside the model's weights (a GGUF's rope_freqs);
// `weightParameters` counts only the model's weights.

import { stat } from 'node:fs/promises';
import { numel } from '../core/tensor.js';
import type { ModelConfig } from '../model/config.js';
import { detectFormat, loadModel } from '../model/load.js';
import { findLlama2cVocab } from '../model/load-llama2c.js';
import { storedBitsPerWeight } from '../model/tensor-source.js';
import { hfToGguf, hfToLlama2c } from '../model/names.js';

export interface InspectTensorRow {
  /** canonical (Hugging Face) name */
  name: string;
  /** the name inside the file (GGUF blk.N.…, llama2.c array[layer]) */
  stored: string;
  shape: number[];
  dtype: string;
  bytes: number;
  bitsPerWeight: number;
}

export interface InspectReport {
  path: string;
  format: string;
  /** bytes on disk (sum over files for a directory) */
  fileBytes: number;
  config: ModelConfig;
  parameters: number;
  weightParameters: number;
  tensors: InspectTensorRow[];
  dtypeTotals: Record<string, { tensors: number; parameters: number; bytes: number; bitsPerWeight: number }>;
  metadata: Record<string, unknown>;
  tokenizer: { kind: string; vocabSize: number; bosId: number | null; eosId: number | null; unkId: number | null; sample: { text: string; ids: number[] } | null } | null;
}

const SAMPLE = 'Hello world';

async function diskBytes(path: string): Promise<number> {
  const st = await stat(path);
  if (!st.isDirectory()) return st.size;
  const { readdir } = await import('node:fs/promises');
  let n = 0;
  for (const f of await readdir(path)) {
    const s = await stat(`${path}/${f}`);
    if (s.isFile()) n += s.size;
  }
  return n;
}

export async function inspectModel(path: string, opts: { tokenizer?: string } = {}): Promise<InspectReport> {
  let tokenizer: string | null | undefined = opts.tokenizer;
  // a llama2.c checkpoint inspects without its vocabulary (loadModel would insist on one)
  if (tokenizer === undefined && (await detectFormat(path)) === 'llama2c' && !(await findLlama2cVocab(path)).found) tokenizer = null;
  const m = await loadModel(path, { tokenizer });
  try {
    const storedName = (n: string): string => {
      if (m.source.format === 'gguf') return hfToGguf(n) ?? n;
      if (m.source.format === 'llama2c') {
        const a = hfToLlama2c(n);
        return a ? (a.layer === null ? a.array : `${a.array}[${a.layer}]`) : n;
      }
      return n;
    };
    const tensors: InspectTensorRow[] = [...m.tensors.values()].map((t) => ({
      name: t.name,
      stored: storedName(t.name),
      shape: [...t.shape],
      dtype: t.packing ?? String(t.dtype),
      bytes: t.byteLength,
      bitsPerWeight: storedBitsPerWeight(t),
    }));
    const metadata = { ...m.metadata };
    delete metadata['llama2c.labels'];
    // stored tensors outside the canonical set (rope_freqs, …): listed and counted as file content
    const unmapped = (metadata['bitscale.unmapped_tensors'] ?? []) as { name: string; shape: number[]; dtype: string; bytes: number }[];
    delete metadata['bitscale.unmapped_tensors'];
    let extraParams = 0;
    for (const u of unmapped) {
      tensors.push({ name: `${u.name} (not a model weight)`, stored: u.name, shape: u.shape, dtype: u.dtype, bytes: u.bytes, bitsPerWeight: numel(u.shape) ? (u.bytes * 8) / numel(u.shape) : 0 });
      extraParams += numel(u.shape);
    }
    const rope = Number(metadata['llama2c.rope_table_elements'] ?? 0);
    if (rope > 0) tensors.push({ name: 'llama2c.freq_cis (legacy RoPE table, unused)', stored: 'freq_cis_real, freq_cis_imag', shape: [2, m.config.maxSeqLen, m.config.headDim / 2], dtype: 'F32', bytes: 4 * rope, bitsPerWeight: 32 });
    const dtypeTotals: InspectReport['dtypeTotals'] = {};
    for (const t of tensors) {
      const d = (dtypeTotals[t.dtype] ??= { tensors: 0, parameters: 0, bytes: 0, bitsPerWeight: 0 });
      d.tensors++;
      d.parameters += numel(t.shape);
      d.bytes += t.bytes;
    }
    for (const d of Object.values(dtypeTotals)) d.bitsPerWeight = d.parameters ? (d.bytes * 8) / d.parameters : 0;
    const weightParameters = [...m.tensors.values()].reduce((a, t) => a + numel(t.shape), 0);
    const tk = m.tokenizer;
    return {
      path,
      format: m.source.format,
      fileBytes: await diskBytes(path),
      config: m.config,
      parameters: weightParameters + rope + extraParams,
      weightParameters,
      tensors,
      dtypeTotals,
      metadata,
      tokenizer: tk
        ? { kind: tk.kind, vocabSize: tk.vocabSize, bosId: tk.bosId, eosId: tk.eosId, unkId: tk.unkId, sample: { text: SAMPLE, ids: tk.encode(SAMPLE, { bos: false }) } }
        : null,
    };
  } finally {
    await m.close();
  }
}
