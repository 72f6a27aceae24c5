// llama2.c checkpoints: the real stories260K header, writer → reader round trips for versions
// 0/1/2 with shared and separate classifiers, and typed errors on damaged files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import {
  decodeLlama2cEntry,
  encodeLlama2c,
  entryLabel,
  parseLlama2cLayout,
  quantizeLlama2cQ80,
  type Llama2cHeader,
} from '../../src/formats/llama2c/checkpoint.js';
import { FormatError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { SHARED, sharedSkip } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin');
const CKPT = resolve(SHARED, 'models/stories260K/stories260K.bin');

function fileBytes(p: string): Uint8Array {
  const b = readFileSync(p);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

async function collect(gen: AsyncGenerator<Uint8Array>): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  for await (const p of gen) parts.push(p.slice());
  const out = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

test('stories260K: legacy header values and layout cover the file exactly', { skip }, () => {
  const b = fileBytes(CKPT);
  const lay = parseLlama2cLayout(b.subarray(0, 256), b.length, CKPT);
  assert.deepEqual(
    { ...lay.header },
    { version: 0, dim: 64, hiddenDim: 172, nLayers: 5, nHeads: 8, nKvHeads: 4, vocabSize: 512, seqLen: 512, sharedClassifier: true, groupSize: null },
  );
  assert.equal(lay.fileSize, 1056540);
  const floats = lay.entries.reduce((a, e) => a + e.byteLength / 4, 0);
  assert.equal(floats, 264128); // every stored float, the 4,096-float RoPE table included
  const wk0 = lay.entries.find((e) => entryLabel(e) === 'wk[0]')!;
  assert.deepEqual(wk0.shape, [32, 64]);
  // the final norm is the last array before the RoPE table
  const fin = lay.entries.find((e) => e.array === 'rms_final_weight')!;
  assert.equal(fin.offset, 28 + 4 * (512 * 64 + 5 * (64 + 4096 + 2048 + 2048 + 4096 + 64 + 3 * 172 * 64)));
});

function randomModel(h: Llama2cHeader, seed: number) {
  const rng = new Rng(seed);
  const cache = new Map<string, Float32Array>();
  return async (array: string, layer: number | null, n: number) => {
    const k = `${array}/${layer}`;
    if (!cache.has(k)) cache.set(k, rng.fillNormal(new Float32Array(n), 0, 0.1));
    return cache.get(k)!;
  };
}

for (const [version, shared] of [[0, true], [0, false], [1, true], [1, false], [2, true], [2, false]] as const) {
  test(`version ${version}, ${shared ? 'shared' : 'separate'} classifier: write then read gives the same arrays`, async () => {
    const h: Llama2cHeader = { version, dim: 64, hiddenDim: 96, nLayers: 2, nHeads: 4, nKvHeads: 2, vocabSize: 40, seqLen: 16, sharedClassifier: shared, groupSize: version === 2 ? 32 : null };
    const model = randomModel(h, 11 + version);
    const sizes: Record<string, number> = {};
    const bytes = await collect(
      encodeLlama2c(h, async (a, l) => {
        const shape = { token_embedding_table: [40, 64], wcls: [40, 64], wq: [64, 64], wk: [32, 64], wv: [32, 64], wo: [64, 64], w1: [96, 64], w2: [64, 96], w3: [96, 64] }[a as string] ?? [64];
        sizes[a] = shape[0] * (shape[1] ?? 1);
        return model(a, l, sizes[a]);
      }),
    );
    const lay = parseLlama2cLayout(bytes.subarray(0, 256), bytes.length, 'mem');
    assert.deepEqual(lay.header, h);
    assert.equal(lay.entries.some((e) => e.array === 'wcls'), !shared);
    assert.equal(lay.entries.some((e) => e.array === 'freq_cis'), version === 0);
    for (const e of lay.entries) {
      if (e.array === 'freq_cis') continue;
      const got = decodeLlama2cEntry(e, bytes.subarray(e.offset, e.offset + e.byteLength), lay.header.groupSize);
      const want = await model(e.array, e.layer, got.length);
      if (e.encoding === 'f32') {
        assert.deepEqual(got, want, entryLabel(e));
      } else {
        // Q8_0 groups of 32: |error| <= scale / 2 per element, scale = max|w| / 127
        for (let g = 0; g < want.length / 32; g++) {
          let amax = 0;
          for (let i = 0; i < 32; i++) amax = Math.max(amax, Math.abs(want[g * 32 + i]));
          for (let i = 0; i < 32; i++) assert.ok(Math.abs(got[g * 32 + i] - want[g * 32 + i]) <= (amax / 127) * 0.5 + 1e-7);
        }
      }
    }
  });
}

test('Q8_0 export: values and scales exactly as export.py (half-to-even, f32 scale after values)', () => {
  const w = Float32Array.from([1.27, -0.635, 0.005, 0, 2.54, 1, -2.54, 0.01]);
  const out = quantizeLlama2cQ80(w, 4);
  const q = Array.from(new Int8Array(out.buffer, 0, 8));
  const s = new Float32Array(out.slice(8).buffer);
  assert.equal(s[0], Math.fround(1.27 / 127));
  assert.equal(s[1], Math.fround(2.54 / 127));
  assert.deepEqual(q.slice(0, 4), [127, -64, 0, 0]); // -63.5 → -64 (even), 0.5 → 0 (even)
  assert.deepEqual(q.slice(4), [127, 50, -127, 0]);
  assert.deepEqual(Array.from(quantizeLlama2cQ80(new Float32Array(4), 4).subarray(0, 4)), [0, 0, 0, 0]);
});

test('damaged checkpoints give typed errors naming file, offset, expected and found', { skip }, () => {
  const b = fileBytes(CKPT);
  assert.throws(
    () => parseLlama2cLayout(b.subarray(0, 256), b.length - 100, 'cut.bin'),
    (e: unknown) => e instanceof FormatError && e.code === 'truncated' && e.context.file === 'cut.bin' && /1056540/.test(String(e.context.expected)),
  );
  const big = b.slice(0, 256);
  new DataView(big.buffer).setInt32(4, 1 << 20, true); // hidden_dim claims far more bytes
  assert.throws(() => parseLlama2cLayout(big, b.length, 'big.bin'), (e: unknown) => e instanceof FormatError && e.code === 'truncated');
  const neg = b.slice(0, 256);
  new DataView(neg.buffer).setInt32(8, -3, true);
  assert.throws(() => parseLlama2cLayout(neg, b.length, 'neg.bin'), (e: unknown) => e instanceof FormatError && e.code === 'bad_header' && e.context.field === 'n_layers');
  assert.throws(() => parseLlama2cLayout(b.subarray(0, 10), 10, 'tiny.bin'), (e: unknown) => e instanceof FormatError && e.code === 'truncated');
  const v9 = new Uint8Array(256);
  new DataView(v9.buffer).setUint32(0, 0x616b3432, true);
  new DataView(v9.buffer).setInt32(4, 9, true);
  assert.throws(() => parseLlama2cLayout(v9, 256, 'v9.bin'), (e: unknown) => e instanceof FormatError && e.code === 'bad_version');
});
