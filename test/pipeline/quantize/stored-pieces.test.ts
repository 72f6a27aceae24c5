// Tensors handed to the GGUF writer in pieces (src/pipeline/quantize/stored-pieces.ts): a stored
// tensor read by ranges of whole rows, the next range asked for while the writer holds one; small
// tensors, vectors and sources without ranges left to a whole read.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { TensorSource } from '../../../src/model/weights.js';
import { oneAhead, storedInPieces } from '../../../src/pipeline/quantize/stored-pieces.js';

function source(shape: number[], rowBytes: number, ranges: number[], opts: { noRange?: boolean; dtype?: string } = {}): TensorSource {
  const N = shape[0];
  const bytes = Uint8Array.from({ length: N * rowBytes }, (_, i) => (i * 7 + (i >> 8)) & 0xff);
  return {
    name: 't',
    shape,
    dtype: (opts.dtype ?? 'F16') as 'F16',
    byteLength: bytes.length,
    read: () => assert.fail('read whole'),
    readF32: () => assert.fail('decoded'),
    ...(opts.noRange ? {} : { readRange: async (off: number, len: number) => (ranges.push(off, len), bytes.slice(off, off + len)) }),
    whole: bytes,
  } as TensorSource & { whole: Uint8Array };
}

test('storedInPieces: whole rows by range, in order, one piece ahead of the writer; the pieces are the tensor', async () => {
  const ranges: number[] = [];
  const src = source([100, 64], 128, ranges); // 12,800 B, pieces of 1,000 B → 7 rows
  const p = storedInPieces(src, 1000)!;
  assert.equal(p.bytes, 2 * 7 * 128);
  assert.deepEqual(p.tensor.shape, [100, 64]);
  assert.equal(p.tensor.type, 'F16');
  assert.deepEqual(ranges, [0, 896], 'only the first piece is asked for before the writer asks');
  const got: Uint8Array[] = [];
  for await (const c of p.tensor.chunks) {
    got.push(c);
    // the writer holds piece i: piece i + 1 has been asked for, not i + 2
    assert.equal(ranges.length / 2, Math.min(got.length + 1, 15));
  }
  assert.equal(got.length, 15);
  assert.deepEqual(Buffer.concat(got), Buffer.from((src as TensorSource & { whole: Uint8Array }).whole));
  assert.deepEqual(ranges.filter((_, i) => i % 2 === 1), [...new Array(14).fill(896), 2 * 128]);
  await p.settled();
  // small (at most two pieces), a vector, no ranges, a dtype GGUF has no type for (U8): whole
  assert.equal(storedInPieces(source([10, 64], 128, []), 1000), null);
  assert.equal(storedInPieces(source([100], 128, []), 1000), null);
  assert.equal(storedInPieces(source([100, 64], 128, [], { noRange: true }), 1000), null);
  assert.equal(storedInPieces(source([100, 64], 128, [], { dtype: 'U8' }), 1000), null);
});

test('oneAhead: a failed piece surfaces at its turn, after the pieces before it; settled waits for the one running', async () => {
  let running = 0;
  const produce = async (i: number): Promise<Uint8Array> => {
    running++;
    await new Promise((r) => setTimeout(r, 5));
    running--;
    if (i === 2) throw new Error('piece 2 failed');
    return new Uint8Array([i]);
  };
  const { chunks, settled } = oneAhead(5, produce);
  const seen: number[] = [];
  await assert.rejects(
    (async () => {
      for await (const c of chunks) seen.push(c[0]);
    })(),
    /piece 2 failed/,
  );
  assert.deepEqual(seen, [0, 1]);
  await settled();
  assert.equal(running, 0);
});
