// GGUF reader (versions 2 and 3, little-endian) over a ByteSource.
//
// Byte layout (all integers little-endian):
//   1. magic    4 bytes  "GGUF" (0x47 0x47 0x55 0x46)
//   2. version  u32      3 (2 is read too: same layout; 1 used u32 counts and is rejected)
//   3. n_tensors u64, n_kv u64
//   4. n_kv key/value pairs: key = string; value type = u32 (gguf_type); value:
//        u8 i8 u16 i16 u32 i32 f32 bool(1 byte, 0|1) u64 i64 f64 | string = u64 length + UTF-8 bytes
//        (no terminator) | array = u32 item type + u64 count + items (items may be arrays)
//   5. n_tensors tensor infos: name = string; n_dims u32 (<= 4); ne[n_dims] u64 (ne[0] varies
//      fastest, i.e. row-major shape = ne reversed); type u32 (ggml_type); offset u64 (relative
//      to the data block, a multiple of the alignment)
//   6. padding to `general.alignment` (u32 key; default 32), then the data block: each tensor's
//      bytes at its offset, each padded to the alignment.
// Legend: ne = ggml dims (fastest first), shape = row-major dims (ne reversed).
//
// Every count and length is checked against the bytes left in the file before anything is
// allocated; the header is parsed from a prefix read that grows until it fits, the parse resumed
// from the last whole key/value or tensor info.

import { GGML_TYPES, ggmlTypeFromId, type GgmlType } from '../../core/dtype.js';
import { FormatError } from '../../core/errors.js';
import type { QuantTensor, Tensor } from '../../core/tensor.js';
import { tensorFromBytes, type ByteSource } from '../bytes.js';
import { GENERAL, GGUF_DEFAULT_ALIGNMENT } from './keys.js';
import { GGUF_SCALAR_BYTES, GGUF_SCALAR_ARRAYS, LITTLE_ENDIAN_HOST, ggufPlain, ggufValueTypeFromId, type GgufArray, type GgufMetadata, type GgufValue, type GgufValueType } from './types.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
/** ggml's GGML_MAX_DIMS */
export const GGUF_MAX_DIMS = 4;
/** nesting bound for arrays of arrays (real files use 1 level; this stops stack exhaustion) */
export const GGUF_MAX_ARRAY_DEPTH = 8;
// First header read; grown ×4 (the parse resumed) when a header is larger, e.g. a 150k vocabulary.
const FIRST_READ = 4 << 20;

export interface GgufTensorInfo {
  name: string;
  type: GgmlType;
  /** ggml order, ne[0] fastest */
  ne: number[];
  /** row-major shape (ne reversed) */
  shape: number[];
  /** offset relative to the data block, as stored */
  offset: number;
  /** absolute file offset */
  absoluteOffset: number;
  byteLength: number;
  numel: number;
}

export interface GgufFile {
  readonly name: string;
  readonly source: ByteSource;
  readonly version: number;
  readonly metadata: GgufMetadata;
  readonly alignment: number;
  /** absolute offset of the data block */
  readonly dataStart: number;
  /** in file order */
  readonly tensors: readonly GgufTensorInfo[];
  /** plain JS value of a metadata key (bigint for 64-bit ints), undefined if absent */
  get(key: string): unknown;
  has(name: string): boolean;
  info(name: string): GgufTensorInfo;
  readBytes(name: string): Promise<Uint8Array>;
  /** the stored bytes of `name` into `dst` (exactly its byte length; may be shared memory) */
  readBytesInto(name: string, dst: Uint8Array): Promise<void>;
  /** element types (F32, F16, BF16, F64, I8…I64) → Tensor; block types → QuantTensor (raw bytes) */
  readTensor(name: string): Promise<Tensor | QuantTensor>;
  close(): Promise<void>;
}

function label(field: string, index: number): string {
  return index < 0 ? field : `${field}[${index}]`;
}

class NeedMore {
  constructor(readonly until: number) {}
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

let wholeArrays = true;
/**
 * Turns the whole-array reads of metadata arrays (Cursor.strings / scalars) off or back on, per
 * thread: off, every item is read on its own, as before them. Tests compare the two.
 */
export function setGgufWholeArrayReads(on: boolean): void {
  wholeArrays = on;
}

/** Synchronous cursor over a prefix of the file. */
class Cursor {
  pos = 0;
  private readonly dv: DataView;

  constructor(
    private readonly buf: Uint8Array,
    readonly fileSize: number,
    readonly file: string,
  ) {
    this.dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  }

  get remaining(): number {
    return this.fileSize - this.pos;
  }

  /** `index` >= 0 names an array item (`field[index]`); the label is built only for errors. */
  need(n: number, field: string, index = -1): void {
    if (this.pos + n > this.buf.length) {
      if (this.pos + n > this.fileSize) {
        throw new FormatError('truncated', 'file ends inside the header', {
          file: this.file,
          field: label(field, index),
          offset: this.pos,
          expected: `${n} more bytes`,
          found: `${this.fileSize - this.pos}`,
        });
      }
      throw new NeedMore(this.pos + n);
    }
  }

  u8(f: string): number {
    this.need(1, f);
    return this.dv.getUint8(this.pos++);
  }
  u32(f: string): number {
    this.need(4, f);
    const v = this.dv.getUint32(this.pos, true);
    this.pos += 4;
    return v;
  }
  /** a u64 that must fit in a JS number and in `max` (read as two u32 words: no BigInt per item) */
  count(f: string, max: number, what: string, index = -1): number {
    const at = this.pos;
    this.need(8, f, index);
    const lo = this.dv.getUint32(at, true);
    const hi = this.dv.getUint32(at + 4, true);
    this.pos += 8;
    const v = hi * 0x100000000 + lo;
    if (hi >= 0x200000 || v > max) {
      throw new FormatError('too_large', `${what} exceeds what the rest of the file can hold`, {
        file: this.file,
        field: label(f, index),
        offset: at,
        expected: `<= ${max}`,
        found: (BigInt(hi) << 32n) | BigInt(lo),
        hint: 'the file is truncated or this field is corrupt',
      });
    }
    return v;
  }
  string(f: string, index = -1): string {
    const at = this.pos;
    const len = this.count(f, Math.max(0, this.remaining - 8), 'string length', index);
    this.need(len, f, index);
    try {
      return utf8.decode(this.buf.subarray(this.pos, (this.pos += len)));
    } catch {
      throw new FormatError('bad_string', 'string is not valid UTF-8', { file: this.file, field: label(f, index), offset: at });
    }
  }
  /**
   * The n items of a string array. A vocabulary has 10^5 strings, and one decoder call (and one
   * view) per string was most of a 150k-token header's parse time: where all n are in this prefix
   * (lengths under 2^32) and none holds a NUL byte, their bytes are joined by NULs, decoded in one
   * call and split. Equivalent, because a NUL cannot continue a multi-byte sequence, so the joined
   * bytes are valid UTF-8 exactly when every string is. Otherwise (a string past the prefix, a
   * NUL, invalid UTF-8) item by item, which raises the precise error (or NeedMore).
   */
  strings(n: number, f: string): string[] {
    const { buf, dv } = this;
    const start = this.pos;
    let pos = start;
    let i = 0;
    for (; i < n; i++) {
      if (pos + 8 > buf.length || dv.getUint32(pos + 4, true) !== 0) break;
      const end = pos + 8 + dv.getUint32(pos, true);
      if (end > buf.length) break;
      pos = end;
    }
    if (wholeArrays && i === n && n > 0) {
      // one native copy of the array's bytes, then each string moved left over its length prefix
      // and followed by a NUL (native moves: a byte loop here runs unoptimised in a one-shot CLI).
      // A copy by construction: the prefix may be a Node Buffer, whose slice() is a view of the
      // caller's bytes, which the moves would overwrite
      const joined = new Uint8Array(buf.subarray(start + 8, pos));
      let q = 0;
      for (let p = start, k = 0; k < n; k++) {
        const len = dv.getUint32(p, true);
        const from = p + 8 - (start + 8);
        if (from !== q) joined.copyWithin(q, from, from + len);
        q += len;
        if (k + 1 < n) joined[q++] = 0;
        p += 8 + len;
      }
      let parts: string[] | null = null;
      try {
        parts = utf8.decode(joined.subarray(0, q)).split('\0');
      } catch {
        parts = null; // invalid UTF-8: the loop below names the string
      }
      // more parts than strings: one of them holds a NUL (the loop below reads it as it is)
      if (parts !== null && parts.length === n) {
        this.pos = pos;
        return parts;
      }
    }
    const value: string[] = [];
    for (let k = 0; k < n; k++) value.push(this.string(f, k));
    return value;
  }

  /**
   * The n items of a scalar array; the caller has checked that their n·size bytes are present
   * (need). Copied into a typed array of their type and moved into a plain array (per-item
   * DataView reads pushed one by one cost ≈ 100 ns an item on the machines measured), except on
   * a big-endian host, where typed arrays would read them in the wrong byte order, and with
   * whole-array reads off.
   */
  scalars(t: Exclude<GgufValueType, 'string' | 'array'>, n: number, f: string): unknown[] {
    const p = this.pos;
    const size = GGUF_SCALAR_BYTES[t];
    if (!LITTLE_ENDIAN_HOST || !wholeArrays) {
      const out: unknown[] = [];
      for (let i = 0; i < n; i++) out.push(this.scalar(t, label(f, i)));
      return out;
    }
    // copied into a buffer of their own (aligned; a Node Buffer's slice() would be a view)
    const items = new GGUF_SCALAR_ARRAYS[t](new Uint8Array(this.buf.subarray(p, p + n * size)).buffer);
    const out: unknown[] = new Array(n);
    if (t === 'bool') {
      for (let i = 0; i < n; i++) {
        const b = items[i] as number;
        if (b > 1) throw new FormatError('bad_header', 'bool value is not 0 or 1', { file: this.file, field: label(f, i), offset: p + i, found: b });
        out[i] = b === 1;
      }
    } else for (let i = 0; i < n; i++) out[i] = items[i];
    this.pos = p + n * size;
    return out;
  }

  scalar(t: Exclude<GgufValueType, 'string' | 'array'>, f: string): number | bigint | boolean {
    const n = GGUF_SCALAR_BYTES[t];
    this.need(n, f);
    const p = this.pos;
    this.pos += n;
    const dv = this.dv;
    switch (t) {
      case 'u8':
        return dv.getUint8(p);
      case 'i8':
        return dv.getInt8(p);
      case 'u16':
        return dv.getUint16(p, true);
      case 'i16':
        return dv.getInt16(p, true);
      case 'u32':
        return dv.getUint32(p, true);
      case 'i32':
        return dv.getInt32(p, true);
      case 'f32':
        return dv.getFloat32(p, true);
      case 'f64':
        return dv.getFloat64(p, true);
      case 'u64':
        return dv.getBigUint64(p, true);
      case 'i64':
        return dv.getBigInt64(p, true);
      case 'bool': {
        const b = dv.getUint8(p);
        if (b > 1) throw new FormatError('bad_header', 'bool value is not 0 or 1', { file: this.file, field: f, offset: p, found: b });
        return b === 1;
      }
    }
  }
}

/** Minimum encoded size of one item of a type (used to bound counts before allocating). */
function minItemBytes(t: GgufValueType): number {
  if (t === 'string') return 8;
  if (t === 'array') return 12;
  return GGUF_SCALAR_BYTES[t];
}

function valueType(c: Cursor, f: string): GgufValueType {
  const at = c.pos;
  const id = c.u32(f);
  const t = ggufValueTypeFromId(id);
  if (t === undefined) {
    throw new FormatError('dtype_unknown', 'unknown metadata value type', { file: c.file, field: f, offset: at, expected: '0..12', found: id });
  }
  return t;
}

function readArray(c: Cursor, f: string, depth: number): GgufArray {
  if (depth > GGUF_MAX_ARRAY_DEPTH) {
    throw new FormatError('bad_header', 'arrays nested too deeply', { file: c.file, field: f, offset: c.pos, expected: `<= ${GGUF_MAX_ARRAY_DEPTH} levels` });
  }
  const itemType = valueType(c, f);
  const n = c.count(f, Math.floor(Math.max(0, c.remaining - 8) / minItemBytes(itemType)), 'array length');
  if (itemType === 'array') {
    const value: GgufArray[] = [];
    for (let i = 0; i < n; i++) value.push(readArray(c, `${f}[${i}]`, depth + 1));
    return { type: 'array', itemType, value };
  }
  // No allocation from a count alone: a scalar array is only allocated once its bytes are known
  // to be present, a string array's items once each is. A JS array costs at most 8 bytes per
  // item, so the parsed header stays within a small multiple of the bytes it came from.
  if (itemType === 'string') return { type: 'array', itemType, value: c.strings(n, f) };
  c.need(n * GGUF_SCALAR_BYTES[itemType], f);
  return { type: 'array', itemType, value: c.scalars(itemType, n, f) } as GgufArray;
}

function readValue(c: Cursor, t: GgufValueType, f: string): GgufValue {
  if (t === 'array') return readArray(c, f, 1);
  if (t === 'string') return { type: 'string', value: c.string(f) };
  return { type: t, value: c.scalar(t, f) } as GgufValue;
}

interface ParsedHeader {
  version: number;
  metadata: GgufMetadata;
  alignment: number;
  dataStart: number;
  tensors: GgufTensorInfo[];
}

/** Magic, version and the two counts at the start of the header. */
function parseCounts(c: Cursor): { version: number; nTensors: number; nKv: number } {
  const file = c.file;
  const magic = c.u32('magic');
  if (magic !== GGUF_MAGIC) {
    // the four bytes in file order, printable ones as text (e.g. 'GGML' or 'lmgg' from older formats)
    const b = [0, 8, 16, 24].map((sh) => (magic >>> sh) & 0xff);
    const shown = b.map((x) => (x >= 0x20 && x < 0x7f ? String.fromCharCode(x) : `\\x${x.toString(16).padStart(2, '0')}`)).join('');
    throw new FormatError('bad_magic', 'not a GGUF file', { file, field: 'magic', offset: 0, expected: 'GGUF', found: shown });
  }
  const version = c.u32('version');
  if (version !== 2 && version !== 3) {
    const swapped = ((version & 0xff) << 24) | ((version & 0xff00) << 8) | ((version >>> 8) & 0xff00) | (version >>> 24);
    throw new FormatError('bad_version', 'unsupported GGUF version', {
      file,
      field: 'version',
      offset: 4,
      expected: '2 or 3',
      found: version,
      hint: swapped === 2 || swapped === 3 ? 'this looks like a big-endian GGUF, which is not supported' : version === 1 ? 'GGUF v1 (2023) used 32-bit counts; re-convert the model' : undefined,
    });
  }
  const nTensors = c.count('n_tensors', Math.floor(Math.max(0, c.remaining - 8) / 24), 'tensor count');
  const nKv = c.count('n_kv', Math.floor(Math.max(0, c.remaining - 8) / 13), 'metadata count');
  return { version, nTensors, nKv };
}

/**
 * How far a parse got before its prefix ran out: the counts, and the key/values and tensor infos
 * read whole. A longer prefix resumes from `pos` instead of parsing again from the start (a
 * 150k-token vocabulary with its merges, 6.6 MB, was parsed 1.6 times).
 */
interface ParseProgress {
  pos: number;
  counts?: { version: number; nTensors: number; nKv: number };
  metadata: GgufMetadata;
  tensors: GgufTensorInfo[];
}

function parseHeader(c: Cursor, done: ParseProgress): ParsedHeader {
  const file = c.file;
  c.pos = done.pos;
  done.counts ??= parseCounts(c);
  const { version, nTensors, nKv } = done.counts;
  done.pos = c.pos;

  const metadata = done.metadata;
  for (let i = metadata.size; i < nKv; i++) {
    const at = c.pos;
    const key = c.string(`kv[${i}].key`);
    if (metadata.has(key)) throw new FormatError('duplicate_name', 'metadata key appears twice', { file, field: key, offset: at });
    const t = valueType(c, key);
    metadata.set(key, readValue(c, t, key));
    done.pos = c.pos;
  }

  let alignment = GGUF_DEFAULT_ALIGNMENT;
  const al = metadata.get(GENERAL.alignment);
  if (al !== undefined) {
    if (al.type !== 'u32' || al.value === 0 || (al.value & (al.value - 1)) !== 0) {
      throw new FormatError('bad_header', 'general.alignment must be a u32 power of two', {
        file,
        field: GENERAL.alignment,
        expected: 'u32 power of two',
        found: `${al.type} ${String(ggufPlain(al))}`,
      });
    }
    alignment = al.value;
  }

  const tensors = done.tensors;
  // rebuilt on each resume: an info cut short by the prefix may have added its name
  const names = new Set(tensors.map((t) => t.name));
  for (let i = tensors.length; i < nTensors; i++) {
    tensors.push(readTensorInfo(c, i, names));
    done.pos = c.pos;
  }
  const headerEnd = c.pos;
  const dataStart = Math.ceil(headerEnd / alignment) * alignment;
  for (const t of tensors) t.absoluteOffset = dataStart + t.offset;
  checkTensorData(tensors, dataStart, alignment, c.fileSize, file);
  return { version, metadata, alignment, dataStart, tensors };
}

function readTensorInfo(c: Cursor, i: number, names: Set<string>): GgufTensorInfo {
  const file = c.file;
  const at = c.pos;
  const name = c.string(`tensor[${i}].name`);
  if (names.has(name)) throw new FormatError('duplicate_name', 'tensor name appears twice', { file, tensor: name, offset: at });
  names.add(name);
  const dimsAt = c.pos;
  const nDims = c.u32('n_dims');
  if (nDims > GGUF_MAX_DIMS) {
    throw new FormatError('bad_header', 'too many dimensions', { file, tensor: name, field: 'n_dims', offset: dimsAt, expected: `<= ${GGUF_MAX_DIMS}`, found: nDims });
  }
  const ne: number[] = [];
  let numel = 1;
  for (let d = 0; d < nDims; d++) {
    const n = c.count(`ne[${d}]`, Number.MAX_SAFE_INTEGER, 'dimension');
    ne.push(n);
    numel *= n;
  }
  if (!Number.isSafeInteger(numel)) {
    throw new FormatError('too_large', 'element count overflows', { file, tensor: name, field: 'ne', offset: dimsAt, found: `[${ne.join(', ')}]` });
  }
  const typeAt = c.pos;
  const typeId = c.u32('type');
  const type = ggmlTypeFromId(typeId);
  if (type === undefined) {
    throw new FormatError('dtype_unknown', 'unknown ggml type id', { file, tensor: name, field: 'type', offset: typeAt, found: typeId });
  }
  const { blockSize, typeSize } = GGML_TYPES[type];
  if ((ne[0] ?? 1) % blockSize !== 0) {
    throw new FormatError('shape_mismatch', 'ne[0] is not a multiple of the block size', {
      file,
      tensor: name,
      field: 'ne[0]',
      offset: dimsAt,
      expected: `multiple of ${blockSize} for ${type}`,
      found: ne[0],
    });
  }
  const offset = c.count('offset', Number.MAX_SAFE_INTEGER, 'tensor offset');
  return { name, type, ne, shape: [...ne].reverse(), offset, absoluteOffset: 0, byteLength: (numel / blockSize) * typeSize, numel };
}

function checkTensorData(tensors: GgufTensorInfo[], dataStart: number, alignment: number, fileSize: number, file: string): void {
  for (const t of tensors) {
    if (t.offset % alignment !== 0) {
      throw new FormatError('misaligned', 'tensor data offset is not a multiple of the alignment', {
        file,
        tensor: t.name,
        field: 'offset',
        offset: t.absoluteOffset,
        expected: `multiple of ${alignment}`,
        found: t.offset,
      });
    }
    if (t.absoluteOffset + t.byteLength > fileSize) {
      throw new FormatError('out_of_bounds', 'tensor data extends past the end of the file', {
        file,
        tensor: t.name,
        offset: t.absoluteOffset,
        expected: `end <= ${fileSize}`,
        found: t.absoluteOffset + t.byteLength,
      });
    }
  }
  const sorted = [...tensors].sort((a, b) => a.offset - b.offset);
  for (let i = 1; i < sorted.length; i++) {
    const prev = sorted[i - 1];
    const cur = sorted[i];
    if (cur.byteLength > 0 && cur.offset < prev.offset + prev.byteLength) {
      throw new FormatError('overlap', 'tensor data overlaps another tensor', {
        file,
        tensor: cur.name,
        offset: cur.absoluteOffset,
        expected: `offset >= ${prev.offset + prev.byteLength} (end of '${prev.name}')`,
        found: cur.offset,
      });
    }
  }
}

const ELEMENT_TYPES = new Set<GgmlType>(['F32', 'F16', 'BF16', 'F64', 'I8', 'I16', 'I32', 'I64']);

/** Parses the header of a GGUF source; tensor data is read lazily. */
export async function readGguf(src: ByteSource): Promise<GgufFile> {
  const file = src.name;
  let want = Math.min(src.size, FIRST_READ);
  let h: ParsedHeader;
  const done: ParseProgress = { pos: 0, metadata: new Map(), tensors: [] };
  for (;;) {
    const buf = await src.read(0, want);
    try {
      h = parseHeader(new Cursor(buf, src.size, file), done);
      break;
    } catch (e) {
      if (!(e instanceof NeedMore)) throw e;
      want = Math.min(src.size, Math.max(e.until, want * 4));
    }
  }
  const byName = new Map(h.tensors.map((t) => [t.name, t]));
  const info = (name: string): GgufTensorInfo => {
    const t = byName.get(name);
    if (!t) throw new FormatError('missing_tensor', 'no such tensor', { file, tensor: name, hint: `the file holds ${h.tensors.length} tensors` });
    return t;
  };
  const readBytes = async (name: string): Promise<Uint8Array> => {
    const t = info(name);
    return src.read(t.absoluteOffset, t.byteLength);
  };
  const readBytesInto = async (name: string, dst: Uint8Array): Promise<void> => {
    const t = info(name);
    if (dst.length !== t.byteLength) throw new FormatError('shape_mismatch', 'destination size differs from the tensor', { file, tensor: name, expected: t.byteLength, found: dst.length });
    if (src.readInto) await src.readInto(t.absoluteOffset, dst);
    else dst.set(await src.read(t.absoluteOffset, t.byteLength));
  };
  return {
    name: file,
    source: src,
    version: h.version,
    metadata: h.metadata,
    alignment: h.alignment,
    dataStart: h.dataStart,
    tensors: h.tensors,
    get: (key) => ggufPlain(h.metadata.get(key)),
    has: (name) => byName.has(name),
    info,
    readBytes,
    readBytesInto,
    async readTensor(name: string): Promise<Tensor | QuantTensor> {
      const t = info(name);
      const bytes = await readBytes(name);
      if (ELEMENT_TYPES.has(t.type)) return tensorFromBytes(t.type as 'F32', t.shape, bytes);
      return { type: t.type, shape: [...t.shape], bytes };
    },
    close: async () => {
      await src.close?.();
    },
  };
}
