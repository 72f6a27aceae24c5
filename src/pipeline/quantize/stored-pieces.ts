// A tensor handed to the GGUF writer a piece of rows at a time (a StreamedQuantTensor), piece
// i + 1 produced while the writer takes piece i: the quantized pieces of the RTN stream, and tensors
// written as they are stored (an F16 embedding kept, --allow-requantize's copies), which were read
// whole before (1 GB for the Llama-3.1-8B shape's F16 embedding; docs/performance.md, ninth round).
// Legend: N = rows.

import { isGgmlType } from '../../core/dtype.js';
import type { StreamedQuantTensor } from '../../model/save.js';
import type { TensorSource } from '../../model/weights.js';

/**
 * Pieces 0 … n−1 of a tensor in order, piece i + 1 started as piece i is handed over (the writer
 * takes one while the next is produced; a producer that reuses two buffers in turn may write into
 * the other one). A failed piece surfaces when its turn comes; `settled` resolves once no piece is
 * running (before the buffers go back after an error). `onEnd` runs after the last piece.
 */
export function oneAhead(n: number, produce: (i: number) => Promise<Uint8Array>, onEnd?: () => void): { chunks: AsyncGenerator<Uint8Array>; settled: () => Promise<unknown> } {
  const running = new Set<Promise<unknown>>();
  const start = (i: number): Promise<Uint8Array> => {
    const r = produce(i);
    const done = r.catch(() => {}).finally(() => running.delete(done));
    running.add(done);
    r.catch(() => {}); // surfaces when the writer asks for this piece
    return r;
  };
  const first = start(0);
  async function* chunks(): AsyncGenerator<Uint8Array> {
    let cur = first;
    for (let i = 0; i < n; i++) {
      const next = i + 1 < n ? start(i + 1) : null;
      yield await cur;
      if (next) cur = next;
    }
    onEnd?.();
  }
  return { chunks: chunks(), settled: () => Promise.allSettled([...running]) };
}

/** Output bytes per piece of a tensor written in pieces (16 MiB: two in memory at once). */
export const DEFAULT_PIECE_BYTES = 16 << 20;

/**
 * A stored 2-D tensor (F16/F32/BF16 or a ggml block type) as pieces of whole rows of about
 * `pieceBytes` read by byte range, the next while the writer takes one; null where it is small
 * (at most two pieces) or the source cannot read ranges (the caller reads it whole). `bytes`: the
 * most it holds at once.
 */
export function storedInPieces(src: TensorSource, pieceBytes = DEFAULT_PIECE_BYTES): { tensor: StreamedQuantTensor; bytes: number; settled: () => Promise<unknown> } | null {
  const N = src.shape[0] ?? 1;
  if (src.shape.length !== 2 || src.byteLength <= 2 * pieceBytes || !src.readRange || !isGgmlType(src.dtype) || src.byteLength % N !== 0) return null;
  const readRange = src.readRange.bind(src);
  const rowBytes = src.byteLength / N;
  const rowsPer = Math.max(1, Math.floor(pieceBytes / rowBytes));
  const piece = (i: number): Promise<Uint8Array> => {
    const r0 = i * rowsPer;
    return readRange(r0 * rowBytes, Math.min(rowsPer, N - r0) * rowBytes);
  };
  const { chunks, settled } = oneAhead(Math.ceil(N / rowsPer), piece);
  return { tensor: { type: src.dtype, shape: [...src.shape], chunks }, bytes: 2 * rowsPer * rowBytes, settled };
}
