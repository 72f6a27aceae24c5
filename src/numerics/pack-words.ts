// Unsigned codes (0 … 2^b − 1) into the int32 words of the packed checkpoint layouts, a block of
// rows at a time at the block's place in the whole tensor: the one definition behind
// formats/gptq/pack.ts and formats/compressed-tensors/pack.ts (whole tensors) and the worker
// threads of the streamed codecs (quant/codec-rows.ts, each its own rows of one shared tensor).
// Every word is assigned, never OR-ed into, so the output may be a reused buffer.
// Legend: R rows in the block, K codes per row, N rows of the whole tensor, n0 / r0 the block's
// first row, b = bits.

import { packBits32 } from './bitstream.js';

/**
 * GPTQ qweight int32 [K·b/32, N]: the codes of row n along K as one little-endian bit stream of
 * 32-bit words, word w of row n at [w, n] (formats/gptq/pack.ts has the layout's facts). Writes
 * the columns n0 … n0 + R − 1 from codes [R, K]. The caller checked K·b is a multiple of 32.
 */
export function packGptqColumnsInto(codes: Uint8Array, R: number, K: number, bits: number, out: Int32Array, N: number, n0: number): void {
  const rows = (K * bits) / 32;
  const mask = (1 << bits) - 1;
  if (32 % bits === 0) {
    // whole codes per word: 32/b of them, the first in the lowest bits
    const per = 32 / bits;
    for (let r = 0; r < R; r++) {
      const base = r * K;
      for (let w = 0; w < rows; w++) {
        let v = 0;
        for (let j = 0, o = base + w * per; j < per; j++) v |= (codes[o + j] & mask) << (j * bits);
        out[w * N + n0 + r] = v;
      }
    }
    return;
  }
  const words = new Uint32Array(rows);
  for (let r = 0; r < R; r++) {
    packBits32(codes.subarray(r * K, (r + 1) * K), bits, words);
    for (let w = 0; w < rows; w++) out[w * N + n0 + r] = words[w] | 0;
  }
}

/**
 * compressed-tensors pack-quantized words [N, ⌈K/pf⌉] (pf = 32/b codes per word, the first in the
 * lowest bits, the last word of a row zero-padded): writes rows r0 … r0 + R − 1 from codes [R, K].
 * The caller checked b divides 32.
 */
export function packCtRowsInto(codes: ArrayLike<number>, R: number, K: number, bits: number, out: Int32Array, r0: number): void {
  const pf = 32 / bits;
  const W = Math.ceil(K / pf);
  const mask = (1 << bits) - 1;
  for (let r = 0; r < R; r++) {
    const base = r * K;
    const ob = (r0 + r) * W;
    for (let w = 0; w < W; w++) {
      let v = 0;
      const c0 = w * pf;
      const n = Math.min(pf, K - c0);
      for (let j = 0; j < n; j++) v |= (codes[base + c0 + j] & mask) << (j * bits);
      out[ob + w] = v;
    }
  }
}
