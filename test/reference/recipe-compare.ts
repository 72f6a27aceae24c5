// One comparison of bitscale's GGUF quantizer with llama.cpp's on the same input: a generated
// Llama written as an F32 GGUF, quantized by llama_model_quantize (through koffi) and by
// `quantizeModel` (RTN, the same options), then every tensor's type and bytes and every metadata
// key compared. Used by test/pipeline/quantize/gguf-recipes-llamacpp.test.ts (small shapes) and
// bench/recipes.bench.ts (the whole table). Legend: E = hidden, F = FFN width, L = layers, V = vocab.

import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Rng } from '../../src/core/rng.js';
import type { LlamaFtype } from '../../src/core/ftype.js';
import { ggufPlain } from '../../src/formats/gguf/index.js';
import { writeImatrixGguf, type Imatrix } from '../../src/formats/imatrix/index.js';
import { openGgufFile } from '../../src/formats/io/index.js';
import type { ModelConfig } from '../../src/model/config.js';
import { hfToGguf } from '../../src/model/names.js';
import { saveModel } from '../../src/model/save.js';
import { quantizeModel, type QuantizeOptions } from '../../src/pipeline/quantize/quantize.js';
import { syntheticModel, tinyConfig } from '../model/synthetic.js';
import { llamaCppQuantize } from './llamacpp-quantize.js';
import { ggmlTypeByName, parseTensorTypes } from '../../src/pipeline/quantize/plan.js';

export interface RecipeShape {
  layers: number;
  embd: number;
  ff: number;
  heads: number;
  kvHeads: number;
  vocab: number;
  tied: boolean;
}

export function shapeLabel(s: RecipeShape): string {
  return `L${s.layers} E${s.embd} F${s.ff} H${s.heads}/${s.kvHeads} V${s.vocab}${s.tied ? ' tied' : ''}`;
}

/** Writes the generated model of this shape (seeded Gaussian weights, a few outliers) as an F32 GGUF. */
export async function writeShape(dir: string, s: RecipeShape, seed = 1): Promise<string> {
  const c: ModelConfig = tinyConfig({
    vocabSize: s.vocab, hiddenSize: s.embd, intermediateSize: s.ff, nLayers: s.layers, nHeads: s.heads, nKvHeads: s.kvHeads,
    headDim: s.embd / s.heads, tiedEmbeddings: s.tied, ropeLayout: 'interleaved',
  });
  const m = syntheticModel(c, seed);
  const path = join(dir, `in-${seed}.gguf`);
  await saveModel(m, path, { format: 'gguf', dtype: 'F32', overwrite: true });
  return path;
}

/** A seeded importance matrix (positive, spread over two decades) for every linear of the shape, by GGUF name. */
export function syntheticImatrix(s: RecipeShape, seed = 7): Map<string, Float32Array> {
  const rng = new Rng(seed);
  const out = new Map<string, Float32Array>();
  const kOf: Record<string, number> = { q_proj: s.embd, k_proj: s.embd, v_proj: s.embd, o_proj: s.embd, gate_proj: s.embd, up_proj: s.embd, down_proj: s.ff };
  for (let l = 0; l < s.layers; l++) {
    for (const [lin, k] of Object.entries(kOf)) {
      const sub = lin.endsWith('_proj') && ['gate_proj', 'up_proj', 'down_proj'].includes(lin) ? 'mlp' : 'self_attn';
      const name = hfToGguf(`model.layers.${l}.${sub}.${lin}.weight`)!;
      out.set(name, Float32Array.from({ length: k }, () => Math.exp(4.6 * rng.next() - 2.3)));
    }
  }
  return out;
}

/** Writes `im` as a GGUF imatrix file whose importance (sums / count) is exactly `im`. */
export async function writeImatrixFile(path: string, im: Map<string, Float32Array>): Promise<void> {
  const x: Imatrix = { entries: new Map([...im].map(([n, v]) => [n, { sums: v, counts: [1] }])), chunkCount: 1, chunkSize: 1, datasets: ['synthetic'] };
  await writeFile(path, await writeImatrixGguf(x));
}

export interface CompareOptions {
  ftype: LlamaFtype;
  imatrix?: { file: string; data: Map<string, Float32Array> };
  pure?: boolean;
  outputTensorType?: string;
  tokenEmbeddingType?: string;
  leaveOutputTensor?: boolean;
  tensorTypes?: string[];
}

export interface CompareResult {
  tensors: number;
  /** "name: what differs" for every tensor whose type or bytes differ */
  mismatches: string[];
  /** metadata keys whose presence or value differs */
  metadata: string[];
  types: Map<string, string>;
  bytes: number;
  msLlamaCpp: number;
  msBitscale: number;
}

/**
 * Quantizes `input` (an F32 GGUF) with both tools and compares. Rejects with llama.cpp's error
 * when it refuses (the caller checks that bitscale refuses the same input).
 */
export async function compareQuantize(input: string, dir: string, o: CompareOptions): Promise<CompareResult> {
  const theirs = join(dir, `llama-${o.ftype}.gguf`);
  const ours = join(dir, `bitscale-${o.ftype}.gguf`);
  let t0 = performance.now();
  await llamaCppQuantize(input, theirs, {
    ftype: o.ftype, nthread: 2, imatrix: o.imatrix?.data, pure: o.pure, quantizeOutputTensor: !o.leaveOutputTensor,
    outputTensorType: o.outputTensorType ? ggmlTypeByName(o.outputTensorType, 'x') : undefined,
    tokenEmbeddingType: o.tokenEmbeddingType ? ggmlTypeByName(o.tokenEmbeddingType, 'x') : undefined,
    tensorTypes: parseTensorTypes(o.tensorTypes),
    // what llama-quantize's command line adds for --imatrix FILE (tools/quantize/quantize.cpp)
    kvOverrides: o.imatrix
      ? [{ key: 'quantize.imatrix.file', str: o.imatrix.file }, { key: 'quantize.imatrix.dataset', str: 'synthetic' }, { key: 'quantize.imatrix.entries_count', int: o.imatrix.data.size }, { key: 'quantize.imatrix.chunks_count', int: 1 }]
      : undefined,
  });
  const msLlamaCpp = performance.now() - t0;
  t0 = performance.now();
  const q: QuantizeOptions = {
    model: input, out: ours, format: 'gguf', scheme: o.ftype.toLowerCase(), method: 'rtn', verify: false, overwrite: true, tokenizer: null,
    imatrix: o.imatrix?.file, pure: o.pure, outputTensorType: o.outputTensorType, tokenEmbeddingType: o.tokenEmbeddingType, leaveOutputTensor: o.leaveOutputTensor, tensorTypes: o.tensorTypes,
  };
  await quantizeModel(q);
  const msBitscale = performance.now() - t0;
  return { ...(await compareFiles(ours, theirs)), msLlamaCpp, msBitscale };
}

/** Tensor types/bytes and every metadata key of two GGUFs. */
export async function compareFiles(oursPath: string, theirsPath: string): Promise<Omit<CompareResult, 'msLlamaCpp' | 'msBitscale'>> {
  const a = await openGgufFile(oursPath);
  const b = await openGgufFile(theirsPath);
  try {
    const mismatches: string[] = [];
    const types = new Map<string, string>();
    let bytes = 0;
    const names = new Set([...a.tensors.map((t) => t.name), ...b.tensors.map((t) => t.name)]);
    for (const n of names) {
      if (!a.has(n) || !b.has(n)) {
        mismatches.push(`${n}: only in ${a.has(n) ? 'bitscale' : 'llama.cpp'}`);
        continue;
      }
      const ta = a.info(n);
      const tb = b.info(n);
      types.set(n, tb.type);
      bytes += tb.byteLength;
      if (ta.type !== tb.type) {
        mismatches.push(`${n}: bitscale ${ta.type}, llama.cpp ${tb.type}`);
        continue;
      }
      const [x, y] = [await a.readBytes(n), await b.readBytes(n)];
      if (x.length !== y.length || !Buffer.from(x).equals(Buffer.from(y))) {
        let i = 0;
        while (i < x.length && x[i] === y[i]) i++;
        mismatches.push(`${n} (${ta.type}): bytes differ from offset ${i} of ${y.length}`);
      }
    }
    const metadata: string[] = [];
    const keys = new Set([...a.metadata.keys(), ...b.metadata.keys()]);
    for (const k of keys) {
      if (!a.metadata.has(k) || !b.metadata.has(k)) {
        metadata.push(`${k}: only in ${a.metadata.has(k) ? 'bitscale' : 'llama.cpp'}`);
        continue;
      }
      const va = ggufPlain(a.metadata.get(k));
      const vb = ggufPlain(b.metadata.get(k));
      if (JSON.stringify(va, (_, v) => (typeof v === 'bigint' ? v.toString() : v)) !== JSON.stringify(vb, (_, v) => (typeof v === 'bigint' ? v.toString() : v))) metadata.push(`${k}: bitscale ${String(va)}, llama.cpp ${String(vb)}`);
    }
    return { tensors: names.size, mismatches, metadata, types, bytes };
  } finally {
    await a.close();
    await b.close();
  }
}
