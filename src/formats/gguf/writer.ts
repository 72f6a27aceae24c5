// Streaming GGUF v3 writer. The header (KV pairs and tensor infos) is computed from metadata,
// names, types and shapes alone; tensor bytes follow one at a time, each padded to the alignment.
// Byte layout: see ./reader.ts. Same inputs → same bytes.

import { GGML_TYPES, isGgmlType, type GgmlType } from '../../core/dtype.js';
import { FormatError } from '../../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../../core/progress.js';
import { asBytes, MemorySink, type ByteSink } from '../bytes.js';
import { GENERAL, GGUF_DEFAULT_ALIGNMENT } from './keys.js';
import { GGUF_MAGIC, GGUF_MAX_DIMS, type GgufTensorInfo } from './reader.js';
import { GGUF_SCALAR_ARRAYS, GGUF_VALUE_TYPE_IDS, LITTLE_ENDIAN_HOST, type GgufArray, type GgufValue, type GgufValueType } from './types.js';

export type GgufTensorData = Uint8Array | ArrayBufferView | ArrayBuffer;

/**
 * A tensor's bytes delivered in consecutive pieces (in file order, together exactly the tensor's
 * length). Each piece is written before the next is asked for, so a producer may reuse a piece's
 * buffer once it has handed out the next: a large tensor then never exists whole in memory.
 */
export interface GgufTensorChunks {
  chunks: AsyncIterable<Uint8Array>;
}

export interface GgufWriteTensor {
  name: string;
  type: GgmlType;
  /** row-major shape in elements (written as ne = shape reversed) */
  shape: number[];
  /** raw bytes exactly as ggml stores them (block types) or element data */
  data?: GgufTensorData;
  produce?: () => Promise<GgufTensorData | GgufTensorChunks> | GgufTensorData | GgufTensorChunks;
}

export interface GgufWriteOptions {
  /** data alignment; default: general.alignment from the metadata, else 32. Written as general.alignment when not 32. */
  alignment?: number;
  /** 3 (default) or 2 */
  version?: 2 | 3;
  signal?: AbortSignal;
  onProgress?: ProgressFn;
}

export type GgufMetadataInput = Map<string, GgufValue> | Iterable<[string, GgufValue]> | Record<string, GgufValue>;

export interface GgufLayout {
  header: Uint8Array;
  alignment: number;
  dataStart: number;
  tensors: GgufTensorInfo[];
  size: number;
}

const LONE_SURROGATE = /\p{Surrogate}/u;
const isWellFormed = (String.prototype as { isWellFormed?: (this: string) => boolean }).isWellFormed;

/** No lone UTF-16 surrogate (String.prototype.isWellFormed where the runtime has it). */
function wellFormed(s: string): boolean {
  return isWellFormed ? isWellFormed.call(s) : !LONE_SURROGATE.test(s);
}

/** Growable little-endian byte writer. */
class Out {
  buf = new Uint8Array(1 << 16);
  dv = new DataView(this.buf.buffer);
  pos = 0;
  private enc = new TextEncoder();

  ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let cap = this.buf.length * 2;
    while (cap < this.pos + n) cap *= 2;
    const b = new Uint8Array(cap);
    b.set(this.buf.subarray(0, this.pos));
    this.buf = b;
    this.dv = new DataView(b.buffer);
  }
  u8(v: number): void {
    this.ensure(1);
    this.dv.setUint8(this.pos++, v);
  }
  u32(v: number): void {
    this.ensure(4);
    this.dv.setUint32(this.pos, v, true);
    this.pos += 4;
  }
  u64(v: bigint | number): void {
    this.ensure(8);
    if (typeof v === 'number' && v >= 0 && v <= 0xffffffff) {
      this.dv.setUint32(this.pos, v, true);
      this.dv.setUint32(this.pos + 4, 0, true);
    } else this.dv.setBigUint64(this.pos, BigInt(v), true);
    this.pos += 8;
  }
  bytes(b: Uint8Array): void {
    this.ensure(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
  }
  /** `ctx` names the key or tensor in the error for a string UTF-8 cannot carry exactly */
  string(s: string, ctx: { field?: string; tensor?: string }): void {
    // a lone surrogate would be replaced by U+FFFD on encoding, so the round trip would not be exact
    if (!wellFormed(s)) throw new FormatError('bad_string', 'string has a lone UTF-16 surrogate (not encodable as UTF-8)', ctx);
    // encoded in place after the 8-byte length (a vocabulary has ~10^5 strings: no copy per string)
    this.ensure(8 + 3 * s.length);
    const n = this.enc.encodeInto(s, this.buf.subarray(this.pos + 8)).written;
    this.u64(n);
    this.pos += n;
  }
  result(): Uint8Array {
    return this.buf.slice(0, this.pos);
  }
}

const INT_RANGE: Record<string, [number, number]> = {
  u8: [0, 0xff],
  i8: [-0x80, 0x7f],
  u16: [0, 0xffff],
  i16: [-0x8000, 0x7fff],
  u32: [0, 0xffffffff],
  i32: [-0x80000000, 0x7fffffff],
};

function badValue(key: string, what: string, found: unknown): FormatError {
  return new FormatError('bad_header', `invalid metadata value: ${what}`, { field: key, found: typeof found === 'bigint' ? found.toString() : found });
}

function writeScalar(o: Out, t: Exclude<GgufValueType, 'string' | 'array'>, v: unknown, key: string): void {
  o.ensure(8);
  const p = o.pos;
  const dv = o.dv;
  if (t in INT_RANGE) {
    const [lo, hi] = INT_RANGE[t];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) throw badValue(key, `${t} out of range`, v);
  }
  switch (t) {
    case 'u8':
      dv.setUint8(p, v as number);
      o.pos += 1;
      return;
    case 'i8':
      dv.setInt8(p, v as number);
      o.pos += 1;
      return;
    case 'u16':
      dv.setUint16(p, v as number, true);
      o.pos += 2;
      return;
    case 'i16':
      dv.setInt16(p, v as number, true);
      o.pos += 2;
      return;
    case 'u32':
      dv.setUint32(p, v as number, true);
      o.pos += 4;
      return;
    case 'i32':
      dv.setInt32(p, v as number, true);
      o.pos += 4;
      return;
    case 'f32':
    case 'f64':
      if (typeof v !== 'number') throw badValue(key, `${t} must be a number`, v);
      if (t === 'f32') dv.setFloat32(p, v, true);
      else dv.setFloat64(p, v, true);
      o.pos += t === 'f32' ? 4 : 8;
      return;
    case 'u64':
    case 'i64': {
      if (typeof v !== 'bigint') throw badValue(key, `${t} must be a bigint`, v);
      if (t === 'u64' ? BigInt.asUintN(64, v) !== v : BigInt.asIntN(64, v) !== v) throw badValue(key, `${t} out of range`, v);
      if (t === 'u64') dv.setBigUint64(p, v, true);
      else dv.setBigInt64(p, v, true);
      o.pos += 8;
      return;
    }
    case 'bool':
      if (typeof v !== 'boolean') throw badValue(key, 'bool must be a boolean', v);
      dv.setUint8(p, v ? 1 : 0);
      o.pos += 1;
      return;
  }
}

function writeArray(o: Out, a: GgufArray, key: string): void {
  if (!(a.itemType in GGUF_VALUE_TYPE_IDS)) throw badValue(key, 'unknown array item type', a.itemType);
  if (!Array.isArray(a.value)) throw badValue(key, 'array value must be an array', typeof a.value);
  o.u32(GGUF_VALUE_TYPE_IDS[a.itemType]);
  o.u64(a.value.length);
  if (a.itemType === 'array') {
    for (const x of a.value) {
      if (x?.type !== 'array') throw badValue(key, 'nested array items must be arrays', x);
      writeArray(o, x, key);
    }
  } else if (a.itemType === 'string') {
    for (const s of a.value) {
      if (typeof s !== 'string') throw badValue(key, 'string array item is not a string', s);
      o.string(s, { field: key });
    }
  } else if (!writeTypedScalars(o, a.itemType, a.value as unknown[])) {
    for (const x of a.value as unknown[]) writeScalar(o, a.itemType, x, key);
  }
}

/**
 * A numeric array's items through a typed array of their type (one check per item, one copy),
 * the same bytes as writeScalar item by item. False (nothing written) for 64-bit and bool items,
 * on a big-endian host, or where an item is out of its type's range: the caller then writes item
 * by item, raising the precise error.
 */
function writeTypedScalars(o: Out, t: Exclude<GgufValueType, 'string' | 'array'>, items: readonly unknown[]): boolean {
  if (!LITTLE_ENDIAN_HOST || t === 'bool' || t === 'u64' || t === 'i64') return false;
  const n = items.length;
  const typed = new GGUF_SCALAR_ARRAYS[t](n) as unknown as Float64Array;
  const range = INT_RANGE[t];
  for (let i = 0; i < n; i++) {
    const v = items[i];
    if (typeof v !== 'number') return false;
    if (range && (!Number.isInteger(v) || v < range[0] || v > range[1])) return false;
    typed[i] = v;
  }
  o.bytes(new Uint8Array(typed.buffer, 0, typed.byteLength));
  return true;
}

function writeValue(o: Out, v: GgufValue, key: string): void {
  if (!(v?.type in GGUF_VALUE_TYPE_IDS)) throw badValue(key, 'unknown value type', v?.type);
  o.u32(GGUF_VALUE_TYPE_IDS[v.type]);
  if (v.type === 'array') writeArray(o, v, key);
  else if (v.type === 'string') {
    if (typeof v.value !== 'string') throw badValue(key, 'string value is not a string', (v as { value: unknown }).value);
    o.string(v.value, { field: key });
  } else writeScalar(o, v.type, v.value, key);
}

function metadataEntries(m: GgufMetadataInput): [string, GgufValue][] {
  if (m instanceof Map) return [...m.entries()];
  if (Symbol.iterator in (m as object)) return [...(m as Iterable<[string, GgufValue]>)];
  return Object.entries(m as Record<string, GgufValue>);
}

/** Computes the header bytes and tensor offsets (no tensor data needed). */
export function ggufLayout(metadata: GgufMetadataInput, tensors: readonly GgufWriteTensor[], opts: GgufWriteOptions = {}): GgufLayout {
  const entries = metadataEntries(metadata);
  const keys = new Set<string>();
  for (const [k] of entries) {
    if (keys.has(k)) throw new FormatError('duplicate_name', 'metadata key given twice', { field: k });
    keys.add(k);
  }
  const alEntry = entries.find(([k]) => k === GENERAL.alignment)?.[1];
  let alignment = opts.alignment ?? (alEntry?.type === 'u32' ? alEntry.value : GGUF_DEFAULT_ALIGNMENT);
  if (!Number.isInteger(alignment) || alignment <= 0 || (alignment & (alignment - 1)) !== 0) {
    throw new FormatError('bad_header', 'alignment must be a power of two', { field: GENERAL.alignment, found: alignment });
  }
  if (alEntry !== undefined && (alEntry.type !== 'u32' || alEntry.value !== alignment)) {
    throw new FormatError('bad_header', 'general.alignment disagrees with the alignment option', {
      field: GENERAL.alignment,
      expected: `u32 ${alignment}`,
      found: `${alEntry.type} ${String(alEntry.value)}`,
    });
  }
  alignment = alignment >>> 0;
  if (alEntry === undefined && alignment !== GGUF_DEFAULT_ALIGNMENT) entries.push([GENERAL.alignment, { type: 'u32', value: alignment }]);

  const o = new Out();
  o.u32(GGUF_MAGIC);
  o.u32(opts.version ?? 3);
  o.u64(tensors.length);
  o.u64(entries.length);
  for (const [k, v] of entries) {
    o.string(k, { field: k });
    writeValue(o, v, k);
  }
  const names = new Set<string>();
  const infos: GgufTensorInfo[] = [];
  let off = 0;
  for (const t of tensors) {
    if (names.has(t.name)) throw new FormatError('duplicate_name', 'tensor name given twice', { tensor: t.name });
    names.add(t.name);
    if (!isGgmlType(t.type)) throw new FormatError('dtype_unknown', 'unknown ggml type', { tensor: t.name, found: t.type });
    if (t.shape.length > GGUF_MAX_DIMS || !t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      throw new FormatError('bad_header', `shape must be at most ${GGUF_MAX_DIMS} non-negative integers`, { tensor: t.name, found: t.shape });
    }
    const ne = [...t.shape].reverse();
    const { blockSize, typeSize } = GGML_TYPES[t.type];
    if ((ne[0] ?? 1) % blockSize !== 0) {
      throw new FormatError('shape_mismatch', 'the last (fastest) dimension is not a multiple of the block size', {
        tensor: t.name,
        expected: `multiple of ${blockSize} for ${t.type}`,
        found: ne[0],
      });
    }
    let numel = 1;
    for (const d of ne) numel *= d;
    const byteLength = (numel / blockSize) * typeSize;
    o.string(t.name, { tensor: t.name });
    o.u32(ne.length);
    for (const d of ne) o.u64(d);
    o.u32(GGML_TYPES[t.type].id);
    o.u64(off);
    infos.push({ name: t.name, type: t.type, ne, shape: [...t.shape], offset: off, absoluteOffset: 0, byteLength, numel });
    off += Math.ceil(byteLength / alignment) * alignment;
  }
  const dataStart = Math.ceil(o.pos / alignment) * alignment;
  o.bytes(new Uint8Array(dataStart - o.pos));
  for (const t of infos) t.absoluteOffset = dataStart + t.offset;
  return { header: o.result(), alignment, dataStart, tensors: infos, size: dataStart + off };
}

/**
 * Streams a GGUF file into `sink` and returns the layout written. The sink is not closed (the
 * caller commits or aborts; see io's writeGgufFile for the atomic file version).
 */
export async function writeGguf(
  sink: ByteSink,
  metadata: GgufMetadataInput,
  tensors: readonly GgufWriteTensor[],
  opts: GgufWriteOptions = {},
): Promise<GgufLayout> {
  const layout = ggufLayout(metadata, tensors, opts);
  const progress = new ProgressTracker('write gguf', tensors.length, opts.onProgress, 'tensor');
  await sink.write(layout.header);
  const zeros = new Uint8Array(layout.alignment);
  for (let i = 0; i < tensors.length; i++) {
    checkAborted(opts.signal);
    const t = tensors[i];
    const info = layout.tensors[i];
    const data = t.data ?? (t.produce ? await t.produce() : undefined);
    if (data === undefined) throw new FormatError('missing_tensor', 'tensor has neither data nor produce()', { tensor: t.name });
    const length = isChunks(data) ? await writeChunks(sink, t, info, data, opts.signal) : await writeWhole(sink, t, info, asBytes(data));
    const pad = (layout.alignment - (length % layout.alignment)) % layout.alignment;
    if (pad) await sink.write(zeros.subarray(0, pad));
    progress.tick(t.name);
  }
  return layout;
}

function isChunks(d: GgufTensorData | GgufTensorChunks): d is GgufTensorChunks {
  return !(d instanceof ArrayBuffer) && !ArrayBuffer.isView(d) && typeof (d as GgufTensorChunks).chunks?.[Symbol.asyncIterator] === 'function';
}

function lengthMismatch(t: GgufWriteTensor, info: GgufTensorInfo, found: string): FormatError {
  return new FormatError('shape_mismatch', 'tensor data length does not match its type and shape', {
    tensor: t.name,
    expected: `${info.byteLength} bytes for ${t.type}[${t.shape.join(', ')}]`,
    found,
  });
}

async function writeWhole(sink: ByteSink, t: GgufWriteTensor, info: GgufTensorInfo, bytes: Uint8Array): Promise<number> {
  if (bytes.length !== info.byteLength) throw lengthMismatch(t, info, `${bytes.length} bytes`);
  await sink.write(bytes);
  return bytes.length;
}

/** The pieces in order; a piece that would run past the tensor's length is refused before any of it is written. */
async function writeChunks(sink: ByteSink, t: GgufWriteTensor, info: GgufTensorInfo, data: GgufTensorChunks, signal?: AbortSignal): Promise<number> {
  let n = 0;
  for await (const piece of data.chunks) {
    checkAborted(signal);
    if (n + piece.length > info.byteLength) throw lengthMismatch(t, info, `at least ${n + piece.length} bytes (in pieces)`);
    await sink.write(piece);
    n += piece.length;
  }
  if (n !== info.byteLength) throw lengthMismatch(t, info, `${n} bytes (in pieces)`);
  return n;
}

/** The whole file in memory (small models, tests). */
export async function encodeGguf(metadata: GgufMetadataInput, tensors: readonly GgufWriteTensor[], opts: GgufWriteOptions = {}): Promise<Uint8Array> {
  const sink = new MemorySink();
  await writeGguf(sink, metadata, tensors, opts);
  await sink.close();
  return sink.bytes();
}
