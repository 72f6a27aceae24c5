// Byte sources and sinks: the seam between the pure container readers/writers (safetensors, GGUF,
// …) and wherever the bytes live. Browser-safe: the filesystem adapter is in ./io/.
// Offsets and sizes are JS numbers, exact up to 2^53, so files past 4 GiB work.
// Multi-byte element data is little-endian on disk (safetensors and GGUF both); the typed-array
// views below assume a little-endian host and byte-swap otherwise.

import { DTYPES, type DType } from '../core/dtype.js';
import { FormatError } from '../core/errors.js';
import type { DTypeStorage, Tensor } from '../core/tensor.js';

/** Random-access bytes (a file, a buffer, an HTTP range reader…). */
export interface ByteSource {
  /** path or label, used in error messages */
  readonly name: string;
  /** total size in bytes */
  readonly size: number;
  /** set when the bytes are those of a local file at this path (other threads may open it themselves) */
  readonly filePath?: string;
  /** exactly `length` bytes at `offset`; rejects if the range is outside [0, size) */
  read(offset: number, length: number): Promise<Uint8Array>;
  /**
   * Optional: `dst.length` bytes at `offset` into `dst` (which may be a view on shared memory), so a
   * caller that reuses buffers avoids an allocation and a copy per read.
   */
  readInto?(offset: number, dst: Uint8Array): Promise<void>;
  /** release the underlying handle (optional; a no-op for memory) */
  close?(): Promise<void>;
}

/** Sequential writes. `close()` commits (for files: fsync + rename); `abort()` discards. */
export interface ByteSink {
  readonly name: string;
  /** bytes written so far */
  readonly position: number;
  write(chunk: Uint8Array): Promise<void>;
  close(): Promise<void>;
  abort(): Promise<void>;
}

/** A ByteSource over bytes already in memory. Reads return subarrays (no copy). */
export function memorySource(bytes: Uint8Array, name = '<buffer>'): ByteSource {
  return {
    name,
    size: bytes.length,
    read(offset: number, length: number): Promise<Uint8Array> {
      try {
        checkRange(name, bytes.length, offset, length);
      } catch (e) {
        return Promise.reject(e);
      }
      return Promise.resolve(bytes.subarray(offset, offset + length));
    },
  };
}

/**
 * A ByteSource over a Blob or File (browsers: <input type=file>, drag and drop; Node 20 has Blob
 * too). Each read slices the blob, so only the requested range is loaded.
 */
export function blobSource(blob: Blob, name = (blob as { name?: string }).name ?? '<blob>'): ByteSource {
  return {
    name,
    size: blob.size,
    async read(offset: number, length: number): Promise<Uint8Array> {
      checkRange(name, blob.size, offset, length);
      return new Uint8Array(await blob.slice(offset, offset + length).arrayBuffer());
    },
  };
}

/** Throws 'truncated' if [offset, offset+length) is not inside a source of `size` bytes. */
export function checkRange(name: string, size: number, offset: number, length: number, field?: string): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0) {
    throw new FormatError('out_of_bounds', 'invalid byte range', { file: name, field, offset, found: length });
  }
  if (offset + length > size) {
    throw new FormatError('truncated', 'read past the end of the file', {
      file: name,
      field,
      offset,
      expected: `${offset + length} bytes`,
      found: `${size} bytes`,
    });
  }
}

/** Collects everything written; `bytes()` returns the concatenation. */
export class MemorySink implements ByteSink {
  private chunks: Uint8Array[] = [];
  private pos = 0;
  private done = false;

  constructor(readonly name = '<memory>') {}

  get position(): number {
    return this.pos;
  }

  write(chunk: Uint8Array): Promise<void> {
    if (this.done) return Promise.reject(new Error(`${this.name}: write after close`));
    // copy: callers may reuse their buffers
    this.chunks.push(chunk.slice());
    this.pos += chunk.length;
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.done = true;
    return Promise.resolve();
  }

  abort(): Promise<void> {
    this.done = true;
    this.chunks = [];
    this.pos = 0;
    return Promise.resolve();
  }

  bytes(): Uint8Array {
    return concatBytes(this.chunks);
  }
}

export function concatBytes(chunks: readonly Uint8Array[]): Uint8Array {
  let n = 0;
  for (const c of chunks) n += c.length;
  const out = new Uint8Array(n);
  let o = 0;
  for (const c of chunks) {
    out.set(c, o);
    o += c.length;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Element data ↔ bytes (little-endian)

export const HOST_LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

type TypedArrayCtor = {
  new (buffer: ArrayBufferLike, byteOffset: number, length: number): ArrayBufferView & { length: number };
  BYTES_PER_ELEMENT: number;
};

const STORAGE: Record<DType, TypedArrayCtor> = {
  F64: Float64Array,
  F32: Float32Array,
  F16: Uint16Array,
  BF16: Uint16Array,
  F8_E4M3: Uint8Array,
  F8_E5M2: Uint8Array,
  I64: BigInt64Array,
  I32: Int32Array,
  I16: Int16Array,
  I8: Int8Array,
  U64: BigUint64Array,
  U32: Uint32Array,
  U16: Uint16Array,
  U8: Uint8Array,
  BOOL: Uint8Array,
} as unknown as Record<DType, TypedArrayCtor>;

function byteSwapInPlace(b: Uint8Array, width: number): void {
  if (width === 1) return;
  for (let i = 0; i + width <= b.length; i += width) b.subarray(i, i + width).reverse();
}

/**
 * Little-endian bytes → the typed array storage of `dtype` (see DTypeStorage). Zero-copy when
 * the bytes are aligned for the element size; otherwise copies. `bytes.length` must be a
 * multiple of the element size.
 */
export function typedFromBytes<D extends DType>(dtype: D, bytes: Uint8Array): DTypeStorage[D] {
  const width = DTYPES[dtype].bytes;
  if (bytes.length % width !== 0) {
    throw new FormatError('shape_mismatch', 'byte length is not a multiple of the element size', {
      field: dtype,
      expected: `multiple of ${width}`,
      found: bytes.length,
    });
  }
  let b = bytes;
  if (b.byteOffset % width !== 0 || !HOST_LITTLE_ENDIAN) b = b.slice();
  if (!HOST_LITTLE_ENDIAN) byteSwapInPlace(b, width);
  const Ctor = STORAGE[dtype];
  return new Ctor(b.buffer, b.byteOffset, b.length / width) as unknown as DTypeStorage[D];
}

/** A typed array's elements as little-endian bytes (a view when the host is little-endian). */
export function bytesOfTyped(data: ArrayBufferView, elementBytes: number): Uint8Array {
  const b = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  if (HOST_LITTLE_ENDIAN || elementBytes === 1) return b;
  const c = b.slice();
  byteSwapInPlace(c, elementBytes);
  return c;
}

/** Builds a Tensor from little-endian bytes, checking that the shape covers them exactly. */
export function tensorFromBytes<D extends DType>(dtype: D, shape: number[], bytes: Uint8Array): Tensor<D> {
  let n = 1;
  for (const d of shape) n *= d;
  const expected = n * DTYPES[dtype].bytes;
  if (expected !== bytes.length) {
    throw new FormatError('shape_mismatch', 'tensor byte length does not match shape × dtype size', {
      field: dtype,
      expected,
      found: bytes.length,
    });
  }
  return { dtype, shape: [...shape], data: typedFromBytes(dtype, bytes) };
}

/** The little-endian bytes of a Tensor's data. */
export function tensorBytes(t: Tensor): Uint8Array {
  return bytesOfTyped(t.data, DTYPES[t.dtype].bytes);
}

/** The Uint8Array view of any data argument (Uint8Array, typed array, ArrayBuffer). */
export function asBytes(data: Uint8Array | ArrayBufferView | ArrayBuffer, elementBytes = 1): Uint8Array {
  if (data instanceof Uint8Array) return data;
  if (data instanceof ArrayBuffer) return new Uint8Array(data);
  const width = (data as unknown as { BYTES_PER_ELEMENT?: number }).BYTES_PER_ELEMENT ?? elementBytes;
  return bytesOfTyped(data, width);
}
