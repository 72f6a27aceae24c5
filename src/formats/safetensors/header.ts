// safetensors header parsing and validation (pure; no I/O).
//
// Byte layout of a .safetensors file:
//   1. u64 little-endian N: header length in bytes (the reference implementation caps N at 100 MB)
//   2. N bytes: a UTF-8 JSON object (writers pad it with trailing spaces so 8 + N is a multiple of 8):
//        { "__metadata__": { "k": "v", … },                 (optional, string → string)
//          "<tensor name>": { "dtype": "F32", "shape": [d0, d1, …], "data_offsets": [begin, end] }, … }
//      data_offsets are relative to the start of the data block (byte 8 + N), end exclusive.
//   3. the data block: tensors packed back to back; together they must cover it exactly
//      (no gaps, no overlaps, nothing after the last tensor). Element data is little-endian,
//      row-major. Nothing requires alignment; writers sort by element size so data stays aligned.

import { DTYPES, isDType, type DType } from '../../core/dtype.js';
import { FormatError } from '../../core/errors.js';

/** The reference implementation's cap on the JSON header (N). */
export const SAFETENSORS_MAX_HEADER_BYTES = 100_000_000;

export interface SafetensorsTensorInfo {
  name: string;
  dtype: DType;
  /** row-major shape in elements */
  shape: number[];
  /** [begin, end) relative to the data block, as stored */
  dataOffsets: [number, number];
  /** absolute byte offset of the first byte in the file */
  offset: number;
  byteLength: number;
}

export interface SafetensorsHeader {
  /** N, the JSON header length */
  headerLength: number;
  /** absolute offset of the data block (8 + N) */
  dataStart: number;
  metadata: Record<string, string>;
  /** ordered by data offset (for files written by the reference implementation, write order) */
  tensors: SafetensorsTensorInfo[];
}

/** Top-level keys of a JSON object text in source order (so duplicates can be detected). */
export function topLevelKeys(json: string): string[] {
  const keys: string[] = [];
  let depth = 0;
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22 /* " */) {
      const start = i;
      i++;
      while (i < json.length && json.charCodeAt(i) !== 0x22) {
        if (json.charCodeAt(i) === 0x5c /* \ */) i++;
        i++;
      }
      if (depth === 1 && expectKey) {
        keys.push(JSON.parse(json.slice(start, i + 1)) as string);
        expectKey = false;
      }
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      depth++;
      if (depth === 1 && c === 0x7b) expectKey = true;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      depth--;
    } else if (c === 0x2c /* , */ && depth === 1) {
      expectKey = true;
    }
  }
  return keys;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Validates the JSON header (given as raw bytes, without the 8-byte length) against a data block
 * of `dataLength` bytes. `file` labels errors.
 */
export function parseSafetensorsHeader(headerBytes: Uint8Array, dataLength: number, file: string): SafetensorsHeader {
  const headerLength = headerBytes.length;
  const dataStart = 8 + headerLength;
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(headerBytes);
  } catch {
    throw new FormatError('bad_string', 'header is not valid UTF-8', { file, field: 'header', offset: 8 });
  }
  if (!text.startsWith('{')) {
    throw new FormatError('bad_header', 'header is not a JSON object', {
      file,
      field: 'header',
      offset: 8,
      expected: "'{'",
      found: JSON.stringify(text.slice(0, 16)),
    });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new FormatError('bad_header', 'header is not valid JSON', { file, field: 'header', offset: 8, found: (e as Error).message });
  }
  if (!isPlainObject(json)) {
    throw new FormatError('bad_header', 'header is not a JSON object', { file, field: 'header', offset: 8 });
  }
  const keys = topLevelKeys(text);
  const seen = new Set<string>();
  for (const k of keys) {
    if (seen.has(k)) throw new FormatError('duplicate_name', 'name appears twice in the header', { file, tensor: k, offset: 8 });
    seen.add(k);
  }

  let metadata: Record<string, string> = {};
  const tensors: SafetensorsTensorInfo[] = [];
  for (const name of keys.length === Object.keys(json).length ? keys : Object.keys(json)) {
    const v = json[name];
    if (name === '__metadata__') {
      if (v === null) continue;
      if (!isPlainObject(v)) throw new FormatError('bad_header', '__metadata__ is not an object', { file, field: name });
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') {
          throw new FormatError('bad_header', 'metadata values must be strings', { file, field: `__metadata__.${k}`, found: typeof s });
        }
      }
      metadata = { ...(v as Record<string, string>) };
      continue;
    }
    tensors.push(parseEntry(name, v, file, dataStart));
  }

  // Data must be covered exactly: sorted by begin, each tensor starts where the previous ended.
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1]);
  let expectedBegin = 0;
  for (const t of tensors) {
    const [begin, end] = t.dataOffsets;
    if (begin < expectedBegin) {
      throw new FormatError('overlap', 'tensor data overlaps the previous tensor', {
        file,
        tensor: t.name,
        offset: dataStart + begin,
        expected: `data_offsets[0] >= ${expectedBegin}`,
        found: begin,
      });
    }
    if (begin > expectedBegin) {
      throw new FormatError('bad_header', 'gap in the data block before this tensor', {
        file,
        tensor: t.name,
        offset: dataStart + expectedBegin,
        expected: `data_offsets[0] = ${expectedBegin}`,
        found: begin,
      });
    }
    if (end > dataLength) {
      throw new FormatError('out_of_bounds', 'tensor data extends past the end of the file', {
        file,
        tensor: t.name,
        offset: dataStart + begin,
        expected: `data_offsets[1] <= ${dataLength}`,
        found: end,
      });
    }
    expectedBegin = end;
  }
  if (expectedBegin !== dataLength) {
    throw new FormatError('bad_header', 'tensors do not cover the data block (trailing bytes)', {
      file,
      field: 'data_offsets',
      offset: dataStart + expectedBegin,
      expected: `data block of ${expectedBegin} bytes`,
      found: `${dataLength} bytes`,
    });
  }
  return { headerLength, dataStart, metadata, tensors };
}

function parseEntry(name: string, v: unknown, file: string, dataStart: number): SafetensorsTensorInfo {
  if (!isPlainObject(v)) throw new FormatError('bad_header', 'tensor entry is not an object', { file, tensor: name });
  const { dtype, shape, data_offsets: offs } = v;
  if (typeof dtype !== 'string' || !isDType(dtype)) {
    throw new FormatError('dtype_unknown', 'unknown dtype', {
      file,
      tensor: name,
      field: 'dtype',
      expected: Object.keys(DTYPES).join('|'),
      found: dtype,
    });
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && (d as number) >= 0)) {
    throw new FormatError('bad_header', 'shape must be an array of non-negative integers', { file, tensor: name, field: 'shape', found: shape });
  }
  if (
    !Array.isArray(offs) ||
    offs.length !== 2 ||
    !offs.every((d) => Number.isSafeInteger(d) && (d as number) >= 0) ||
    (offs[0] as number) > (offs[1] as number)
  ) {
    throw new FormatError('bad_header', 'data_offsets must be [begin, end] with 0 <= begin <= end', {
      file,
      tensor: name,
      field: 'data_offsets',
      found: offs,
    });
  }
  const [begin, end] = offs as [number, number];
  let n = 1;
  for (const d of shape as number[]) n *= d;
  const bytes = n * DTYPES[dtype].bytes;
  if (!Number.isSafeInteger(bytes) || bytes !== end - begin) {
    throw new FormatError('shape_mismatch', 'shape × dtype size does not match the byte span', {
      file,
      tensor: name,
      field: 'data_offsets',
      offset: dataStart + begin,
      expected: `${bytes} bytes for ${dtype}[${(shape as number[]).join(', ')}]`,
      found: `${end - begin} bytes`,
    });
  }
  return { name, dtype, shape: [...(shape as number[])], dataOffsets: [begin, end], offset: dataStart + begin, byteLength: end - begin };
}
