// llama2.c checkpoints as ModelWeights: the header gives the config (RoPE theta 10000, RMSNorm
// epsilon 1e-5, interleaved rotary rows: run.c's fixed choices), tensors are read lazily by
// offset, and the vocabulary comes from a tokenizer.bin found beside the checkpoint or given.
// A shared classifier is exposed as tiedEmbeddings with no lm_head tensor. Version 2 (Q8_0)
// matrices are exposed as F32 (dequantized on read) since their layout is no ggml type;
// byteLength keeps the stored size, so bits per weight read 8 + 32/GS.

import { dirname, join } from 'node:path';
import { readdir } from 'node:fs/promises';
import { IoError } from '../core/errors.js';
import type { Tensor } from '../core/tensor.js';
import { decodeLlama2cEntry, entryLabel, LLAMA2C_HEADER_PROBE, parseLlama2cLayout, type Llama2cHeader, type Llama2cLayout } from '../formats/llama2c/checkpoint.js';
import { parseLlama2cVocab } from '../formats/llama2c/tokenizer-bin.js';
import { Llama2cTokenizer } from '../formats/tokenizer/llama2c.js';
import type { ModelConfig } from './config.js';
import { canonicalTensors, llama2cToHf } from './names.js';
import type { ModelWeights, TensorSource } from './weights.js';
import { openSource, readWhole, type Source } from './source.js';

export interface Llama2cLoadOptions {
  /** tokenizer.bin path; default: search beside the checkpoint. null: load no tokenizer. */
  tokenizer?: string | null;
}

export function llama2cConfig(h: Llama2cHeader): ModelConfig {
  return {
    architecture: 'llama',
    vocabSize: h.vocabSize,
    hiddenSize: h.dim,
    intermediateSize: h.hiddenDim,
    nLayers: h.nLayers,
    nHeads: h.nHeads,
    nKvHeads: h.nKvHeads,
    headDim: h.dim / h.nHeads,
    maxSeqLen: h.seqLen,
    rmsNormEps: 1e-5,
    ropeTheta: 10000,
    ropeScaling: null,
    ropeLayout: 'interleaved',
    tiedEmbeddings: h.sharedClassifier,
    attentionBias: false,
    qkNorm: false,
    bosTokenId: 1,
    eosTokenId: 2,
  };
}

/** Reads only the header and layout (no tensor bytes). */
export async function readLlama2cLayout(src: Source): Promise<Llama2cLayout> {
  const head = await src.read(0, Math.min(LLAMA2C_HEADER_PROBE, src.size));
  return parseLlama2cLayout(head, src.size, src.name);
}

/** The tokenizer.bin candidates beside a checkpoint: tokenizer.bin first, then tok*.bin sorted. */
export async function findLlama2cVocab(checkpoint: string, vocabSize?: number): Promise<{ found: string | null; searched: string[] }> {
  const dir = dirname(checkpoint);
  let names: string[] = [];
  try {
    names = await readdir(dir);
  } catch {
    names = [];
  }
  // llama2.c names vocabularies tok<V>.bin (tok512.bin, tok4096.bin): the one matching V first
  const exact = vocabSize !== undefined ? names.filter((n) => n === `tok${vocabSize}.bin`) : [];
  const toks = names.filter((n) => /^tok.*\.bin$/.test(n) && n !== 'tokenizer.bin' && !exact.includes(n)).sort();
  const cands = [...names.filter((n) => n === 'tokenizer.bin'), ...exact, ...toks];
  return { found: cands.length ? join(dir, cands[0]) : null, searched: [join(dir, 'tokenizer.bin'), join(dir, 'tok*.bin')] };
}

export async function loadLlama2cTokenizer(path: string, vocabSize?: number): Promise<Llama2cTokenizer> {
  const bytes = await readWhole(path, 64 << 20);
  return new Llama2cTokenizer(parseLlama2cVocab(bytes, path, vocabSize));
}

export async function loadLlama2c(path: string, opts: Llama2cLoadOptions = {}): Promise<ModelWeights> {
  const src = await openSource(path);
  try {
    const layout = await readLlama2cLayout(src);
    const { header } = layout;
    let tokenizer: Llama2cTokenizer | null = null;
    if (opts.tokenizer !== null) {
      let tokPath = opts.tokenizer;
      if (tokPath === undefined) {
        const { found, searched } = await findLlama2cVocab(path, header.vocabSize);
        if (!found) {
          throw new IoError('missing_file', 'no tokenizer found for the llama2.c checkpoint', {
            file: path,
            expected: searched.join(' or '),
            found: 'none',
            hint: 'put tokenizer.bin beside the checkpoint or pass --tokenizer FILE',
          });
        }
        tokPath = found;
      }
      tokenizer = await loadLlama2cTokenizer(tokPath, header.vocabSize);
    }
    const byName = new Map<string, TensorSource>();
    for (const e of layout.entries) {
      const name = llama2cToHf(e.array, e.layer);
      if (name === null) continue; // the legacy RoPE table
      const readF32 = async () => decodeLlama2cEntry(e, await src.read(e.offset, e.byteLength), header.groupSize);
      byName.set(name, {
        name,
        shape: [...e.shape],
        dtype: 'F32',
        byteLength: e.byteLength,
        readF32,
        read: async (): Promise<Tensor> => ({ dtype: 'F32', shape: [...e.shape], data: await readF32() }),
      });
    }
    const config = llama2cConfig(header);
    // ModelWeights order (embedding, layer by layer, final norm, lm_head), not file order
    const tensors = new Map(canonicalTensors(config).map(({ name }) => [name, byName.get(name) as TensorSource]));
    const rope = layout.entries.find((e) => e.array === 'freq_cis');
    return {
      config,
      tokenizer,
      tensors,
      source: { format: 'llama2c', path },
      metadata: {
        'llama2c.version': header.version,
        'llama2c.group_size': header.groupSize,
        'llama2c.shared_classifier': header.sharedClassifier,
        // stored but unused floats (the legacy RoPE table), counted by inspect as file content
        'llama2c.rope_table_elements': rope ? rope.byteLength / 4 : 0,
        'llama2c.labels': layout.entries.map(entryLabel),
      },
      close: () => src.close(),
    };
  } catch (e) {
    await src.close();
    throw e;
  }
}
