// safetensors reader over a ByteSource: reads only the 8-byte length and the JSON header up
// front; tensor bytes are read lazily by offset. Layout and validation rules: ./header.ts.

import { DTYPES } from '../../core/dtype.js';
import { FormatError } from '../../core/errors.js';
import type { Tensor } from '../../core/tensor.js';
import { tensorFromBytes, type ByteSource } from '../bytes.js';
import { parseSafetensorsHeader, SAFETENSORS_MAX_HEADER_BYTES, type SafetensorsTensorInfo } from './header.js';

export interface SafetensorsReadOptions {
  /** cap on the JSON header length N (default 100 MB, the reference implementation's cap) */
  maxHeaderBytes?: number;
  /**
   * Reject tensors whose absolute file offset is not a multiple of their element size
   * ('misaligned'). Off by default: the format does not require it and reads copy when
   * needed, but a consumer that maps the file (mmap, zero-copy views) does need it.
   */
  requireAlignment?: boolean;
}

/** One opened safetensors file (or one shard). Tensor reads are lazy. */
export interface SafetensorsFile {
  readonly name: string;
  readonly source: ByteSource;
  readonly headerLength: number;
  readonly dataStart: number;
  readonly metadata: Record<string, string>;
  /** ordered by data offset */
  readonly tensors: readonly SafetensorsTensorInfo[];
  /** tensor names in data order */
  names(): string[];
  has(name: string): boolean;
  /** info for `name`; throws 'missing_tensor' if absent */
  info(name: string): SafetensorsTensorInfo;
  /** the raw little-endian bytes of a tensor */
  readBytes(name: string): Promise<Uint8Array>;
  /** the raw bytes of `name` into `dst` (exactly its byte length; may be shared memory) */
  readBytesInto(name: string, dst: Uint8Array): Promise<void>;
  /** where the bytes of `name` lie in a local file (null when the source is not a file) */
  location(name: string): { path: string; offset: number } | null;
  /** a tensor decoded into its typed-array storage (F16/BF16/F8 stay as bit patterns) */
  readTensor(name: string): Promise<Tensor>;
  close(): Promise<void>;
}

export function missingTensor(file: string, name: string, available: readonly string[]): FormatError {
  const near = available.filter((n) => n.includes(name) || (n.length >= 4 && name.includes(n))).slice(0, 3);
  return new FormatError('missing_tensor', 'no such tensor', {
    file,
    tensor: name,
    hint: near.length ? `similar names: ${near.join(', ')}` : `the file holds ${available.length} tensors`,
  });
}

/** Parses and validates the header of a safetensors source. */
export async function readSafetensors(src: ByteSource, opts: SafetensorsReadOptions = {}): Promise<SafetensorsFile> {
  const file = src.name;
  const cap = opts.maxHeaderBytes ?? SAFETENSORS_MAX_HEADER_BYTES;
  if (src.size < 8) {
    throw new FormatError('truncated', 'file is shorter than the 8-byte header length', { file, field: 'header_length', offset: 0, expected: '>= 8 bytes', found: `${src.size} bytes` });
  }
  const lenBytes = await src.read(0, 8);
  const dv = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const n = dv.getBigUint64(0, true);
  if (n > BigInt(cap)) {
    throw new FormatError('too_large', 'header length exceeds the cap', {
      file,
      field: 'header_length',
      offset: 0,
      expected: `<= ${cap}`,
      found: n,
      hint: n > BigInt(src.size) ? 'this may not be a safetensors file' : undefined,
    });
  }
  const headerLength = Number(n);
  if (8 + headerLength > src.size) {
    throw new FormatError('truncated', 'header length exceeds the file size', {
      file,
      field: 'header_length',
      offset: 0,
      expected: `<= ${src.size - 8}`,
      found: headerLength,
    });
  }
  const headerBytes = await src.read(8, headerLength);
  const h = parseSafetensorsHeader(headerBytes, src.size - 8 - headerLength, file);
  if (opts.requireAlignment) {
    for (const t of h.tensors) {
      const width = DTYPES[t.dtype].bytes;
      if (t.offset % width !== 0) {
        throw new FormatError('misaligned', 'tensor data is not aligned to its element size', {
          file,
          tensor: t.name,
          offset: t.offset,
          expected: `multiple of ${width} for ${t.dtype}`,
          found: t.offset,
          hint: 'rewrite the file with a writer that pads the header to 8 bytes and sorts by dtype',
        });
      }
    }
  }
  const byName = new Map(h.tensors.map((t) => [t.name, t]));
  const names = h.tensors.map((t) => t.name);

  const info = (name: string): SafetensorsTensorInfo => {
    const t = byName.get(name);
    if (!t) throw missingTensor(file, name, names);
    return t;
  };
  const readBytes = async (name: string): Promise<Uint8Array> => {
    const t = info(name);
    return src.read(t.offset, t.byteLength);
  };
  const readBytesInto = async (name: string, dst: Uint8Array): Promise<void> => {
    const t = info(name);
    if (dst.length !== t.byteLength) throw new FormatError('shape_mismatch', 'destination size differs from the tensor', { file, tensor: name, expected: t.byteLength, found: dst.length });
    if (src.readInto) await src.readInto(t.offset, dst);
    else dst.set(await src.read(t.offset, t.byteLength));
  };
  return {
    name: file,
    source: src,
    headerLength: h.headerLength,
    dataStart: h.dataStart,
    metadata: h.metadata,
    tensors: h.tensors,
    names: () => [...names],
    has: (name) => byName.has(name),
    info,
    readBytes,
    readBytesInto,
    location: (name) => (src.filePath !== undefined ? { path: src.filePath, offset: info(name).offset } : null),
    async readTensor(name: string): Promise<Tensor> {
      const t = info(name);
      return tensorFromBytes(t.dtype, t.shape, await readBytes(name));
    },
    close: async () => {
      await src.close?.();
    },
  };
}
