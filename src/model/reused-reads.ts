// Float weight tensors decoded into float32 arrays kept from one read to the next, one per key (a
// tensor's name within its layer), through one staging buffer for the stored bytes. Why: a freshly
// allocated array is paid for page by page on first touch (≈ 11 ns a float32 value on the VM
// measured, ten times the F16 decode itself: docs/performance.md, eighth and tenth rounds), and
// arrays allocated afresh per layer left the C heap they came from fragmented and growing. Used
// where a model's float matrices are read one layer after another: GPTQ/AWQ's block stream and the
// native engine's conversion to float32. Other tensors (1-D, quantized storage, sources that cannot
// read into a buffer) are read as before, by readF32.

import { decodeBf16Array, decodeF16Array } from '../numerics/float16.js';
import { assertFinite } from '../numerics/finite.js';
import type { TensorSource } from './weights.js';

export class ReusedFloatReads {
  private readonly arrays = new Map<string, Float32Array<ArrayBuffer>>();
  private staging: Uint8Array<ArrayBuffer> | null = null;

  /** `file`: named by the error when a value is NaN/±Inf (the stored bytes are checked here, after decoding) */
  constructor(private readonly file: string) {}

  /** Drops the array kept under `key` (a tensor no later read shares it with, such as a 1 GiB output head). */
  forget(key: string): void {
    this.arrays.delete(key);
  }

  /** `src` as float32, in the array kept under `key` (valid until the next read under that key). */
  async read(src: TensorSource, key: string): Promise<Float32Array> {
    const el = src.dtype;
    if (!src.readInto || src.shape.length !== 2 || (el !== 'F16' && el !== 'BF16' && el !== 'F32')) return await src.readF32();
    const n = src.shape[0] * src.shape[1];
    let out = this.arrays.get(key);
    if (!out || out.length !== n) this.arrays.set(key, (out = new Float32Array(n)));
    if (el === 'F32') await src.readInto(new Uint8Array(out.buffer, out.byteOffset, n * 4));
    else {
      if (!this.staging || this.staging.length < n * 2) this.staging = new Uint8Array(n * 2);
      const raw = this.staging.subarray(0, n * 2);
      await src.readInto(raw);
      const bits = new Uint16Array(raw.buffer, raw.byteOffset, n);
      if (el === 'F16') decodeF16Array(bits, out);
      else decodeBf16Array(bits, out);
    }
    assertFinite(out, { file: this.file, tensor: src.name });
    return out;
  }
}
