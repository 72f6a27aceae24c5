// The last step of `bitscale quantize`: the report returned to the caller and the manifest written
// beside the output (input hashes, calibration, settings, files, per-tensor types, measured quality,
// the recipe), built here for all three paths (whole model, streaming RTN, streaming GPTQ/AWQ).

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { IoError } from '../../core/errors.js';
import { atomicWriteFile, sha256Cached, sha256File } from '../../formats/io/index.js';
import { hashFilesOffThread } from './rtn-stream.js';
import { TOOL_VERSION, type QuantizeOptions, type QuantizeReport } from './types.js';

/** The files a model input is made of that identify it (one file, or a folder's weights, configs and tokenizer). */
async function inputFiles(path: string): Promise<string[]> {
  const st = await stat(path);
  if (st.isFile()) return [path];
  return (await readdir(path)).sort().filter((f) => /\.(safetensors|json|model)$/.test(f)).map((f) => join(path, f));
}

/** The input's digests as the manifest records them: sha256 by path, and the paths whose digest came from the digest cache. */
export interface InputDigests {
  inputSha256: Record<string, string>;
  inputSha256Cached: string[];
}

async function digests(path: string, compute: (files: string[]) => Promise<string[]>): Promise<InputDigests> {
  const files = await inputFiles(path);
  // an input quantized before (one model, many types) is not read again: formats/io/digest-cache.ts
  const d = await sha256Cached(files, compute);
  return { inputSha256: Object.fromEntries(files.map((f, i) => [f, d.hex[i]])), inputSha256Cached: files.filter((_, i) => d.cached[i]) };
}

/** sha256 of each input file, by path (read on this thread where the digest cache has none). */
export async function hashInput(path: string): Promise<InputDigests> {
  return digests(path, async (files) => {
    const out: string[] = [];
    for (const f of files) out.push(await sha256File(f));
    return out;
  });
}

/**
 * hashInput with the files read on a worker thread (the same hashes), for the streaming path that
 * overlaps it with the work; `signal` ends the thread (the hash is not needed after all).
 */
export async function hashInputOffThread(path: string, signal?: AbortSignal): Promise<InputDigests> {
  return digests(path, async (files) => {
    try {
      return await hashFilesOffThread(files, signal);
    } catch (e) {
      throw new IoError('io', `cannot hash: ${(e as Error).message}`, { file: path, found: (e as { code?: string }).code });
    }
  });
}

/** What a quantize manifest records beyond the report (fields in the order they are written). */
export interface QuantizeManifestParts {
  model: string;
  inputSha256: Record<string, string>;
  /** the input files whose sha256 came from the digest cache (not read in this run) */
  inputSha256Cached: string[];
  /** null when nothing was calibrated (streaming RTN) */
  calibration: Record<string, unknown> | null;
  settings: Record<string, unknown>;
  /** the report's `quality`, or a note when nothing was measured */
  quality: QuantizeReport['quality'] | string;
  recipe: unknown;
  /** whether the manifest lists AWQ scales and the mixed-precision plan (the paths that can make them) */
  withAwqAndPlan: boolean;
}

/** The manifest object of a quantize run. */
export function quantizeManifest(r: QuantizeReport, m: QuantizeManifestParts): Record<string, unknown> {
  return {
    tool: 'bitscale',
    version: TOOL_VERSION,
    command: 'quantize',
    input: { model: m.model, sha256: m.inputSha256, sha256FromCache: m.inputSha256Cached },
    calibration: m.calibration,
    settings: m.settings,
    output: { files: r.files },
    tensors: r.tensors,
    fallbacks: r.fallbacks,
    ...(m.withAwqAndPlan ? { awq: r.awq, plan: r.plan ? r.plan.plan : null } : {}),
    quality: m.quality,
    recipe: m.recipe ?? null,
  };
}

/** Writes the manifest at `r.manifest` (replacing a previous run's). */
export async function writeQuantizeManifest(r: QuantizeReport, m: QuantizeManifestParts): Promise<void> {
  await atomicWriteFile(r.manifest, JSON.stringify(quantizeManifest(r, m), null, 2) + '\n', { overwrite: true });
}

/** The report of a quantize run (what quantizeModel returns and the CLI prints). */
export function quantizeReport(
  o: QuantizeOptions,
  p: Pick<QuantizeReport, 'manifest' | 'scheme' | 'fileType' | 'tensors' | 'fallbacks' | 'quality' | 'files'> & Partial<Pick<QuantizeReport, 'method' | 'awq' | 'plan' | 'seconds' | 'host'>>,
): QuantizeReport {
  return {
    out: o.out,
    manifest: p.manifest,
    format: o.format,
    scheme: p.scheme,
    method: p.method ?? o.method,
    fileType: p.fileType,
    tensors: p.tensors,
    fallbacks: p.fallbacks,
    awq: p.awq ?? [],
    plan: p.plan ?? null,
    quality: p.quality,
    seconds: p.seconds ?? 0,
    files: p.files,
    ...(p.host ? { host: p.host } : {}),
  };
}
