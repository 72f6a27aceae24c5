// Streaming safetensors writer: the header is computed from names, dtypes and shapes alone, then
// each tensor's bytes are written in turn (given up front or produced on demand), so only one
// tensor needs to be in memory at a time. Output is deterministic for the same inputs.

import { DTYPES, isDType, type DType } from '../../core/dtype.js';
import { FormatError } from '../../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../../core/progress.js';
import { numel, type Tensor } from '../../core/tensor.js';
import { asBytes, MemorySink, tensorBytes, type ByteSink } from '../bytes.js';
import { SAFETENSORS_MAX_HEADER_BYTES, type SafetensorsTensorInfo } from './header.js';

export type TensorData = Uint8Array | ArrayBufferView | ArrayBuffer;

export interface SafetensorsWriteTensor {
  name: string;
  dtype: DType;
  /** row-major shape in elements */
  shape: number[];
  /** little-endian element bytes or a typed array of the dtype's storage */
  data?: TensorData;
  /** called when this tensor's turn comes (for streaming large models) */
  produce?: () => Promise<TensorData> | TensorData;
}

export interface SafetensorsWriteOptions {
  /** `__metadata__` (string → string) */
  metadata?: Record<string, string>;
  /**
   * 'aligned' (default): the reference writer's order (dtype rank descending, i.e. widest
   * elements first, then name), so every tensor is aligned to its element size and the bytes
   * match the reference implementation's.
   * 'given': the order of the list.
   */
  order?: 'aligned' | 'given';
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

/** A tensor entry from a host Tensor. */
export function tensorEntry(name: string, t: Tensor): SafetensorsWriteTensor {
  return { name, dtype: t.dtype, shape: [...t.shape], data: tensorBytes(t) };
}

export interface SafetensorsLayout {
  /** the 8-byte length plus the space-padded JSON header */
  header: Uint8Array;
  /** in write order, with absolute offsets */
  tensors: SafetensorsTensorInfo[];
  /** total file size */
  size: number;
}

/**
 * The reference writer's dtype order (its Dtype enum, "in increasing alignment order"); tensors
 * are written by this rank descending, then by name (UTF-8 bytes), which keeps every tensor
 * aligned to its element size and makes our output byte-identical to the reference writer's.
 */
const REFERENCE_DTYPE_RANK: Record<DType, number> = {
  BOOL: 0,
  U8: 1,
  I8: 2,
  F8_E5M2: 3,
  F8_E4M3: 4,
  I16: 5,
  U16: 6,
  F16: 7,
  BF16: 8,
  I32: 9,
  U32: 10,
  F32: 11,
  F64: 12,
  I64: 13,
  U64: 14,
};

function compareUtf8(a: string, b: string): number {
  const enc = new TextEncoder();
  const x = enc.encode(a);
  const y = enc.encode(b);
  const n = Math.min(x.length, y.length);
  for (let i = 0; i < n; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return x.length - y.length;
}

function orderTensors(tensors: readonly SafetensorsWriteTensor[], order: 'aligned' | 'given'): SafetensorsWriteTensor[] {
  const list = [...tensors];
  if (order === 'aligned') {
    list.sort((a, b) => REFERENCE_DTYPE_RANK[b.dtype] - REFERENCE_DTYPE_RANK[a.dtype] || compareUtf8(a.name, b.name));
  }
  return list;
}

/** Computes the header bytes and every tensor's offsets without touching tensor data. */
export function safetensorsLayout(tensors: readonly SafetensorsWriteTensor[], opts: SafetensorsWriteOptions = {}): SafetensorsLayout {
  const seen = new Set<string>();
  for (const t of tensors) {
    if (t.name === '__metadata__') throw new FormatError('bad_header', "'__metadata__' is reserved", { tensor: t.name });
    if (seen.has(t.name)) throw new FormatError('duplicate_name', 'tensor name given twice', { tensor: t.name });
    seen.add(t.name);
    if (!isDType(t.dtype)) throw new FormatError('dtype_unknown', 'unknown dtype', { tensor: t.name, found: t.dtype });
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError('bad_header', 'shape must be non-negative integers', { tensor: t.name, found: t.shape });
    }
  }
  const ordered = orderTensors(tensors, opts.order ?? 'aligned');
  const parts: string[] = [];
  if (opts.metadata) {
    for (const [k, v] of Object.entries(opts.metadata)) {
      if (typeof v !== 'string') throw new FormatError('bad_header', 'metadata values must be strings', { field: k, found: typeof v });
    }
    parts.push(`"__metadata__":${metadataJson(opts.metadata)}`);
  }
  let pos = 0;
  const rel: [number, number][] = [];
  for (const t of ordered) {
    const n = numel(t.shape) * DTYPES[t.dtype].bytes;
    rel.push([pos, pos + n]);
    parts.push(`${JSON.stringify(t.name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${pos},${pos + n}]}`);
    pos += n;
  }
  const json = new TextEncoder().encode(`{${parts.join(',')}}`);
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded > SAFETENSORS_MAX_HEADER_BYTES) {
    throw new FormatError('too_large', 'header would exceed the 100 MB cap', { field: 'header', expected: `<= ${SAFETENSORS_MAX_HEADER_BYTES}`, found: padded });
  }
  const header = new Uint8Array(8 + padded).fill(0x20);
  new DataView(header.buffer).setBigUint64(0, BigInt(padded), true);
  header.set(json, 8);
  const dataStart = 8 + padded;
  const infos = ordered.map((t, i) => ({
    name: t.name,
    dtype: t.dtype,
    shape: [...t.shape],
    dataOffsets: rel[i],
    offset: dataStart + rel[i][0],
    byteLength: rel[i][1] - rel[i][0],
  }));
  return { header, tensors: infos, size: dataStart + pos };
}

function metadataJson(m: Record<string, string>): string {
  return `{${Object.entries(m)
    .map(([k, v]) => `${JSON.stringify(k)}:${JSON.stringify(v)}`)
    .join(',')}}`;
}

/**
 * Streams a safetensors file into `sink` and returns the layout written. The sink is not closed
 * (the caller commits or aborts it; see io's writeSafetensorsFile for the atomic file version).
 */
export async function writeSafetensors(
  sink: ByteSink,
  tensors: readonly SafetensorsWriteTensor[],
  opts: SafetensorsWriteOptions = {},
): Promise<SafetensorsLayout> {
  const layout = safetensorsLayout(tensors, opts);
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const progress = new ProgressTracker('write safetensors', layout.tensors.length, opts.onProgress, 'tensor');
  await sink.write(layout.header);
  for (const info of layout.tensors) {
    checkAborted(opts.signal);
    const t = byName.get(info.name)!;
    let data: TensorData | undefined = t.data;
    if (data === undefined && t.produce) data = await t.produce();
    if (data === undefined) throw new FormatError('missing_tensor', 'tensor has neither data nor produce()', { tensor: t.name });
    const bytes = asBytes(data, DTYPES[t.dtype].bytes);
    if (bytes.length !== info.byteLength) {
      throw new FormatError('shape_mismatch', 'tensor data length does not match shape × dtype size', {
        tensor: t.name,
        expected: `${info.byteLength} bytes for ${t.dtype}[${t.shape.join(', ')}]`,
        found: `${bytes.length} bytes`,
      });
    }
    await sink.write(bytes);
    progress.tick(t.name);
  }
  return layout;
}

/** The whole file in memory (small models, tests). */
export async function encodeSafetensors(tensors: readonly SafetensorsWriteTensor[], opts: SafetensorsWriteOptions = {}): Promise<Uint8Array> {
  const sink = new MemorySink();
  await writeSafetensors(sink, tensors, opts);
  await sink.close();
  return sink.bytes();
}
