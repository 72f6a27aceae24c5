// Little-endian bit streams: values of b bits (b ≤ 8) laid end to end, value i at bits i·b … i·b + b − 1,
// cut into 32-bit words or bytes. The packed checkpoint formats (GPTQ, compressed-tensors, ONNX
// MatMulNBits, ggml nibbles) are all such streams along one dimension.

/** Pack `values` (each < 2^bits) into a little-endian bit stream of 32-bit words. */
export function packBits32(values: ArrayLike<number>, bits: number, out = new Uint32Array(Math.ceil((values.length * bits) / 32))): Uint32Array {
  out.fill(0);
  const mask = (1 << bits) - 1;
  for (let i = 0, pos = 0; i < values.length; i++, pos += bits) {
    const v = values[i] & mask;
    const w = pos >>> 5;
    const o = pos & 31;
    out[w] |= v << o;
    if (o + bits > 32) out[w + 1] |= v >>> (32 - o);
  }
  return out;
}

export function unpackBits32(words: Uint32Array | Int32Array, bits: number, count: number, out = new Uint8Array(count)): Uint8Array {
  const mask = (1 << bits) - 1;
  for (let i = 0, pos = 0; i < count; i++, pos += bits) {
    const w = pos >>> 5;
    const o = pos & 31;
    let v = words[w] >>> o;
    if (o + bits > 32) v |= words[w + 1] << (32 - o);
    out[i] = v & mask;
  }
  return out;
}

/** Pack into a little-endian bit stream of bytes. */
export function packBits8(values: ArrayLike<number>, bits: number, out = new Uint8Array(Math.ceil((values.length * bits) / 8))): Uint8Array {
  out.fill(0);
  const mask = (1 << bits) - 1;
  for (let i = 0, pos = 0; i < values.length; i++, pos += bits) {
    const v = values[i] & mask;
    const b = pos >>> 3;
    const o = pos & 7;
    out[b] |= v << o;
    if (o + bits > 8) out[b + 1] |= v >>> (8 - o);
  }
  return out;
}

export function unpackBits8(bytes: Uint8Array, bits: number, count: number, out = new Uint8Array(count)): Uint8Array {
  const mask = (1 << bits) - 1;
  for (let i = 0, pos = 0; i < count; i++, pos += bits) {
    const b = pos >>> 3;
    const o = pos & 7;
    let v = bytes[b] >>> o;
    if (o + bits > 8) v |= bytes[b + 1] << (8 - o);
    out[i] = v & mask;
  }
  return out;
}
