// A session weight file: constants written once, tensor by tensor, into a private temporary
// directory and referenced by graphs as StoredTensors (ONNX external data). onnxruntime maps the
// file instead of copying it, every session of an engine shares it, and no tensor needs to be in
// memory longer than it takes to write it. Offsets are 64 KiB-aligned (what onnxruntime needs to
// map a tensor rather than read it); the gaps are left unwritten (sparse). The directory is removed
// by close(), or at process exit if close() was never called.

import { mkdtempSync, rmSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { IoError, ShapeError } from '../core/errors.js';
import { irTensorBytes, type IrDType, type StoredTensor } from './ir.js';

const ALIGN = 65536;
const live = new Set<string>();
let hooked = false;

function removeAllAtExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const d of live) rmSync(d, { recursive: true, force: true });
  });
}

export class WeightFile {
  private end = 0;
  private closed = false;

  private constructor(
    readonly dir: string,
    readonly path: string,
    private readonly fh: FileHandle,
  ) {}

  /** A new empty weight file in a fresh directory under `parent` (default: the OS temp directory). */
  static async create(parent = tmpdir()): Promise<WeightFile> {
    let dir: string;
    try {
      dir = mkdtempSync(join(parent, 'bitscale-weights-'));
    } catch (e) {
      throw new IoError('io', 'cannot create the session weight directory', { file: parent, hint: (e as Error).message });
    }
    removeAllAtExit();
    live.add(dir);
    const path = join(dir, 'weights.bin');
    return new WeightFile(dir, path, await open(path, 'w'));
  }

  /** bytes written so far (gaps included) */
  get size(): number {
    return this.end;
  }

  /** Appends `data` as a constant of `dtype` and `shape`; returns its reference. */
  async add(dtype: IrDType, shape: readonly number[], data: ArrayBufferView, name?: string): Promise<StoredTensor> {
    if (this.closed) throw new IoError('io', 'weight file is closed', { file: this.path, tensor: name });
    const byteLength = irTensorBytes(dtype, shape);
    if (data.byteLength !== byteLength) throw new ShapeError('shape_mismatch', 'constant bytes do not match dtype and shape', { tensor: name, expected: byteLength, found: data.byteLength });
    const offset = Math.ceil(this.end / ALIGN) * ALIGN;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    let done = 0;
    while (done < bytes.length) {
      const { bytesWritten } = await this.fh.write(bytes, done, bytes.length - done, offset + done);
      done += bytesWritten;
    }
    this.end = offset + byteLength;
    return { dtype, shape: [...shape], data: null, stored: { path: this.path, offset, byteLength } };
  }

  /** Flushes the file (sessions read it through the page cache; no fsync needed). */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.fh.close();
  }

  /** Closes and deletes the file (sessions that mapped it keep their mapping). */
  async remove(): Promise<void> {
    await this.close();
    rmSync(this.dir, { recursive: true, force: true });
    live.delete(this.dir);
  }
}
