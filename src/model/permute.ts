// Q/K row permutation between the two rotary layouts (see RopeLayout in config.ts).
// Within each head of D rows:
//   interleaved (llama2.c, Meta, GGUF llama): rows 2i and 2i+1 form rotary pair i
//   half (Hugging Face "rotate_half"):         rows i and i + D/2 form rotary pair i
// so half[h, j·D/2 + i] = interleaved[h, 2i + j] for j ∈ {0, 1}, i < D/2. The permutation acts
// on whole rows, so it applies to any row-major storage (f32, f16 bits, ggml blocks, biases)
// whose rows are contiguous: it moves bytes and never touches values.
// Legend: H = heads (query heads for wq, KV heads for wk), D = head dim, R = H·D rows.

import type { RopeLayout } from './config.js';

/** out row r comes from in row order[r]; length R = nHeads · headDim. */
export function rotaryRowOrder(nHeads: number, headDim: number, from: RopeLayout, to: RopeLayout): Int32Array {
  if (headDim % 2 !== 0) throw new RangeError(`rotary head dim must be even, got ${headDim}`);
  const R = nHeads * headDim;
  const order = new Int32Array(R);
  const half = headDim / 2;
  for (let h = 0; h < nHeads; h++) {
    for (let i = 0; i < half; i++) {
      for (let j = 0; j < 2; j++) {
        const inter = h * headDim + 2 * i + j;
        const rh = h * headDim + j * half + i;
        if (from === to) order[inter] = inter;
        else if (to === 'half') order[rh] = inter;
        else order[inter] = rh;
      }
    }
  }
  return order;
}

/** Reorders rows of `bytes` (R rows of equal byte width) by `order`; returns a new array. */
export function permuteRowBytes(bytes: Uint8Array, order: Int32Array): Uint8Array {
  const R = order.length;
  if (bytes.length % R !== 0) throw new RangeError(`${bytes.length} bytes do not split into ${R} rows`);
  const rb = bytes.length / R;
  const out = new Uint8Array(bytes.length);
  for (let r = 0; r < R; r++) out.set(bytes.subarray(order[r] * rb, order[r] * rb + rb), r * rb);
  return out;
}

/** Typed-array convenience: same element type back, rows reordered. */
export function permuteRotaryRows<T extends Float32Array | Uint16Array | Uint8Array | Int8Array>(
  data: T,
  nHeads: number,
  headDim: number,
  from: RopeLayout,
  to: RopeLayout,
): T {
  const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  const out = permuteRowBytes(bytes, rotaryRowOrder(nHeads, headDim, from, to));
  const Ctor = data.constructor as new (b: ArrayBuffer) => T;
  return new Ctor(out.buffer as ArrayBuffer);
}
