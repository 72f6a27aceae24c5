// File-level entry points for the pure container readers/writers: open by path (positional
// reads, handle closed by close()), write atomically (temporary file + fsync + rename).

import { dirname, join } from 'node:path';
import { FormatError, IoError } from '../../core/errors.js';
import { readImatrix, type Imatrix } from '../imatrix/index.js';
import { readGguf, type GgufFile } from '../gguf/reader.js';
import { writeGguf, type GgufLayout, type GgufMetadataInput, type GgufWriteOptions, type GgufWriteTensor } from '../gguf/writer.js';
import { readSafetensors, type SafetensorsFile, type SafetensorsReadOptions } from '../safetensors/reader.js';
import { openShardedSafetensors, parseShardIndex, planShards, type SafetensorsView, type ShardedSafetensors, type ShardPlan } from '../safetensors/sharded.js';
import { writeSafetensors, type SafetensorsLayout, type SafetensorsWriteOptions, type SafetensorsWriteTensor } from '../safetensors/writer.js';
import { withOutput } from './output.js';
import { atomicWriteFile, checkOutputPath, fileExists, openFileSource, readJsonFile, withAtomicFile, type AtomicWriteOptions } from './file.js';

async function openWith<T>(path: string, parse: (src: Awaited<ReturnType<typeof openFileSource>>) => Promise<T>): Promise<T> {
  const src = await openFileSource(path);
  try {
    return await parse(src);
  } catch (e) {
    await src.close();
    throw e;
  }
}

/** Opens one .safetensors file (header parsed, tensors lazy). */
export function openSafetensorsFile(path: string, opts: SafetensorsReadOptions = {}): Promise<SafetensorsFile> {
  return openWith(path, (src) => readSafetensors(src, opts));
}

/** Opens a sharded checkpoint from its `model.safetensors.index.json`. */
export async function openShardedSafetensorsFile(indexPath: string, opts: SafetensorsReadOptions = {}): Promise<ShardedSafetensors> {
  const index = parseShardIndex(await readJsonFile(indexPath), indexPath);
  const dir = dirname(indexPath);
  return openShardedSafetensors(index, indexPath, (f) => openFileSource(join(dir, f)), opts);
}

/**
 * Opens a Hugging Face directory's weights as one view: `model.safetensors.index.json` if
 * present, else `model.safetensors`.
 */
export async function openSafetensorsDir(dir: string, opts: SafetensorsReadOptions = {}): Promise<SafetensorsView> {
  const index = join(dir, 'model.safetensors.index.json');
  if (await fileExists(index)) return openShardedSafetensorsFile(index, opts);
  const single = join(dir, 'model.safetensors');
  if (await fileExists(single)) return openSafetensorsFile(single, opts);
  throw new IoError('missing_file', 'no model.safetensors or model.safetensors.index.json', { file: dir });
}

export type WriteFileOptions = AtomicWriteOptions;

/** Writes a .safetensors file atomically (see writeSafetensors for ordering and metadata). */
export function writeSafetensorsFile(
  path: string,
  tensors: readonly SafetensorsWriteTensor[],
  opts: SafetensorsWriteOptions & WriteFileOptions = {},
): Promise<SafetensorsLayout> {
  return withAtomicFile(path, opts, (sink) => writeSafetensors(sink, tensors, opts));
}

/**
 * Writes a sharded checkpoint into `dir`: `<base>-0000i-of-0000N.safetensors` (each atomic)
 * and then `<base>.safetensors.index.json` (written last, so its presence means every shard is
 * complete). Every path is checked against the refusal rules before anything is written.
 */
export async function writeShardedSafetensorsFiles(
  dir: string,
  tensors: readonly SafetensorsWriteTensor[],
  opts: SafetensorsWriteOptions & WriteFileOptions & { maxShardBytes: number; base?: string },
): Promise<ShardPlan> {
  const base = opts.base ?? 'model';
  const plan = planShards(tensors, opts.maxShardBytes, base);
  const indexPath = join(dir, `${base}.safetensors.index.json`);
  for (const p of [...plan.shards.map((s) => join(dir, s.file)), indexPath]) await checkOutputPath(p, opts);
  for (const s of plan.shards) {
    await withAtomicFile(join(dir, s.file), opts, (sink) => writeSafetensors(sink, s.tensors, opts));
  }
  await atomicWriteFile(indexPath, `${JSON.stringify(plan.index, null, 2)}\n`, opts);
  return plan;
}

/** Largest importance-matrix file read whole (llama.cpp's for a 70B model is a few hundred MB). */
const MAX_IMATRIX_BYTES = 4 * 2 ** 30;

/** Reads an importance matrix (GGUF or legacy .dat) by path; errors name the file. */
export async function readImatrixFile(path: string): Promise<Imatrix> {
  const src = await openFileSource(path);
  try {
    if (src.size > MAX_IMATRIX_BYTES) throw new IoError('too_large', 'importance matrix file too large', { file: path, expected: `<= ${MAX_IMATRIX_BYTES} bytes`, found: src.size });
    if (src.size === 0) throw new FormatError('truncated', 'importance matrix file is empty', { file: path });
    return await readImatrix(await src.read(0, src.size), path);
  } finally {
    await src.close();
  }
}

/** Opens a GGUF file (header parsed, tensors lazy). */
export function openGgufFile(path: string): Promise<GgufFile> {
  return openWith(path, (src) => readGguf(src));
}

/** Writes a GGUF file atomically. */
export function writeGgufFile(
  path: string,
  metadata: GgufMetadataInput,
  tensors: readonly GgufWriteTensor[],
  opts: GgufWriteOptions & WriteFileOptions = {},
): Promise<GgufLayout> {
  return withAtomicFile(path, opts, (sink) => writeGguf(sink, metadata, tensors, opts));
}

/**
 * A Hugging Face safetensors folder: model.safetensors + config.json (+ extra text files such as the
 * tokenizer), staged and put in place as one output (output.ts). Returns the paths written.
 */
export async function writeHfSafetensorsDir(
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
