// Streaming GPTQ/AWQ to GGUF (src/pipeline/quantize/block-stream.ts) against the whole-model path of
// quantizeModel: same bytes for the same seed (keepHost forces the whole-model path), and the
// streaming path holds one decoder block's float tensors at a time (probe on its per-layer map,
// reads counted on wrapped lazy sources).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { sharedPath, sharedSkip, tempDir } from '../../helpers.js';
import { join, resolve } from 'node:path';
import { expectedTensors } from '../../../src/engine/host.js';
import { loadModel } from '../../../src/model/load.js';
import type { ModelWeights, TensorSource } from '../../../src/model/weights.js';
import { parseScheme } from '../../../src/quant/index.js';
import { quantizeModel, type QuantizeOptions } from '../../../src/pipeline/quantize/quantize.js';
import { calibratedStreamingGguf, embedFromSource, streamByRows, streamsCalibrated } from '../../../src/pipeline/quantize/block-stream.js';
import { embedWindowStates } from '../../../src/pipeline/calibrate/batch.js';
import { encodeGgmlTarget } from '../../../src/pipeline/quantize/layer.js';
import { lazyTensor } from '../../../src/model/tensor-source.js';
import { encodeF16Array } from '../../../src/numerics/float16.js';
import { openGgufFile } from '../../../src/formats/io/index.js';

const STORIES = sharedPath('models/stories260K');
const MODELS = [
  { name: 'stories260K', skip: sharedSkip('models/stories260K/stories260K.bin', 'models/stories260K/tok512.bin'), model: join(STORIES, 'stories260K.bin'), tokenizer: join(STORIES, 'tok512.bin'), awqScheme: 'q4_0' },
  // AWQ's scale and clip searches dominate here (≈16 s a run for Q4_0, ≈11 s for Q8_0): Q8_0 keeps the file under 40 s
  { name: 'default model', skip: false, model: resolve('assets/default-model'), tokenizer: undefined, awqScheme: 'q8_0' },
] as const;

/** `w` with decoded reads (readF32, or readInto of the stored bytes) counted per tensor name, and the order of the reads. */
function counted(w: ModelWeights): { weights: ModelWeights; reads: Map<string, number>; order: string[] } {
  const reads = new Map<string, number>();
  const order: string[] = [];
  const tensors = new Map<string, TensorSource>();
  const count = (n: string): void => {
    reads.set(n, (reads.get(n) ?? 0) + 1);
    order.push(n);
  };
  for (const [n, s] of w.tensors) {
    const readInto = s.readInto;
    tensors.set(n, {
      ...s,
      read: () => s.read(),
      readF32: () => (count(n), s.readF32()),
      ...(readInto ? { readInto: (dst: Uint8Array) => (count(n), readInto.call(s, dst)) } : {}),
    });
  }
  return { weights: { ...w, tensors, close: () => w.close() }, reads, order };
}

for (const m of MODELS) {
  test(`${m.name}: streaming GPTQ Q4_0 GGUF is byte-identical to the whole-model path; one block in memory`, { skip: m.skip, timeout: 120_000 }, async () => {
    const dir = tempDir('bitscale-qs-');
    const o: QuantizeOptions = { model: m.model, tokenizer: m.tokenizer, out: join(dir, 's.gguf'), format: 'gguf', scheme: 'q4_0', method: 'gptq', windows: 3, seqLen: 32, seed: 5, verify: false, overwrite: true };
    assert.ok(streamsCalibrated(o));
    assert.ok(!streamsCalibrated({ ...o, keepHost: true }) && !streamsCalibrated({ ...o, verify: undefined }) && !streamsCalibrated({ ...o, calib: 'self' }));
    const whole = await quantizeModel({ ...o, out: join(dir, 'w.gguf'), keepHost: true });
    assert.ok(whole.host, 'keepHost ran the whole-model path');

    const src = await loadModel(m.model, { tokenizer: m.tokenizer });
    const { weights, reads, order } = counted(src);
    const c = src.config;
    const layerElems = (l: number) => expectedTensors(c).filter((e) => e.name.startsWith(`model.layers.${l}.`)).reduce((a, e) => a + e.shape.reduce((x, y) => x * y, 1), 0);
    const linearsReadAt: number[] = [];
    const held: number[] = [];
    try {
      await calibratedStreamingGguf(weights, parseScheme('q4_0'), o, Date.now(), {
        onLayer: (l, host, heldBytes) => {
          held.push(heldBytes);
          let elems = 0;
          for (const [n, t] of host.tensors) {
            assert.ok(n.startsWith(`model.layers.${l}.`), `layer ${l}'s map holds ${n}`);
            elems += t.length;
          }
          assert.ok(elems <= layerElems(l), `layer ${l}: ${elems} float elements alive, one block has ${layerElems(l)}`);
          linearsReadAt.push(order.filter((n) => /_proj\.weight$/.test(n)).length);
        },
      });
    } finally {
      await weights.close();
    }
    // when block l is done, only blocks 0..l have been read; each linear is read once (the writer uses the quantized bytes)
    assert.deepEqual(linearsReadAt, Array.from({ length: c.nLayers }, (_, l) => 7 * (l + 1)));
    for (const [n, k] of reads) if (/_proj\.weight$/.test(n)) assert.equal(k, 1, n);

    assert.ok(readFileSync(o.out).equals(readFileSync(join(dir, 'w.gguf'))), 'streaming and whole-model GGUF differ');
    // the quantized bytes waiting for the writer when block l is done are block l's linears as the
    // file stores them, not blocks 0..l: the writer takes each block before the next is quantized
    // (so the held bytes stay flat in the layer count)
    const g = await openGgufFile(o.out);
    const linearBytes = (l: number) => g.tensors.filter((t) => t.name.startsWith(`blk.${l}.`) && !t.name.endsWith('_norm.weight')).reduce((a, t) => a + t.byteLength, 0);
    const perLayer = Array.from({ length: c.nLayers }, (_, l) => linearBytes(l));
    await g.close();
    assert.ok(perLayer.every((b) => b > 0));
    assert.deepEqual(held, perLayer);
    const man = JSON.parse(readFileSync(`${o.out}.manifest.json`, 'utf8'));
    assert.equal(man.settings.streaming, true);
    assert.equal(man.calibration.windows, 3);
    assert.equal(man.tensors.length, 7 * c.nLayers + (c.tiedEmbeddings ? 1 : 2), 'every linear, the embedding and the output');
  });

  test(`${m.name}: streaming AWQ ${m.awqScheme.toUpperCase()} GGUF (quantizeModel --no-verify) is byte-identical to the whole-model path`, { skip: m.skip, timeout: 300_000 }, async () => {
    const dir = tempDir('bitscale-qs-');
    const o: QuantizeOptions = { model: m.model, tokenizer: m.tokenizer, out: join(dir, 's.gguf'), format: 'gguf', scheme: m.awqScheme, method: 'awq', windows: 3, seqLen: 32, seed: 9, verify: false, overwrite: true };
    const s = await quantizeModel(o);
    const w = await quantizeModel({ ...o, out: join(dir, 'w.gguf'), keepHost: true });
    assert.equal(JSON.parse(readFileSync(`${o.out}.manifest.json`, 'utf8')).settings.streaming, true, 'quantizeModel took the streaming path');
    assert.ok(s.awq.length > 0);
    assert.deepEqual(s.awq, w.awq);
    assert.deepEqual(s.tensors, w.tensors);
    assert.ok(readFileSync(o.out).equals(readFileSync(join(dir, 'w.gguf'))), 'streaming and whole-model GGUF differ');
  });
}

test('streaming path: per-layer progress with an ETA; an abort after the first layer leaves no output', { timeout: 60_000 }, async () => {
  const dir = tempDir('bitscale-qs-');
  const ac = new AbortController();
  const layers: { done: number; total: number; etaS: number | null }[] = [];
  const out = join(dir, 'a.gguf');
  await assert.rejects(
    quantizeModel({
      model: resolve('assets/default-model'), out, format: 'gguf', scheme: 'q4_0', method: 'gptq', windows: 2, seqLen: 16, verify: false, signal: ac.signal,
      onProgress: (e) => {
        if (e.task !== 'quantize') return;
        layers.push(e);
        ac.abort();
      },
    }),
    (e: Error & { code?: string }) => e.code === 'interrupted',
  );
  assert.equal(layers.length, 1);
  assert.equal(layers[0].done, 1);
  assert.equal(layers[0].total, 4);
  assert.ok(layers[0].etaS !== null && layers[0].etaS >= 0);
  assert.ok(!existsSync(out) && !existsSync(`${out}.manifest.json`));
});

test('streamByRows: a float tensor quantized a chunk of rows at a time gives the whole tensor\'s bytes', async () => {
  const N = 37, K = 512; // 37 rows in chunks of 5 (the last one short)
  const x = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 0.37) * (1 + (i % 97 === 0 ? 20 : 0)));
  const f16 = new Uint8Array(encodeF16Array(x).buffer);
  const ranges: number[] = [];
  const src = lazyTensor('w', [N, K], 'F16', f16.length, async () => f16.slice(), undefined, async (o, n) => (ranges.push(n), f16.slice(o, o + n)));
  const whole = await src.readF32();
  const im = Float32Array.from({ length: K }, (_, i) => 0.5 + (i % 7));
  for (const type of ['Q4_K', 'Q6_K', 'Q8_0'] as const) {
    ranges.length = 0;
    const pieces: Buffer[] = [];
    for await (const p of streamByRows(src, type, im, 5 * K).chunks) pieces.push(Buffer.from(p));
    const got = Buffer.concat(pieces);
    assert.ok(Buffer.from(got).equals(Buffer.from(encodeGgmlTarget(type, whole, N, K, im))), `${type} bytes differ`);
    assert.equal(ranges.length, 8);
    assert.ok(ranges.every((n) => n <= 5 * K * 2));
  }
});

test('streamByRows: the chunks of rows come as pieces, each read only when the writer asks for it; together the whole tensor\'s bytes', async () => {
  const N = 37, K = 512;
  const x = Float32Array.from({ length: N * K }, (_, i) => Math.sin(i * 0.29) * (i % 89 === 0 ? 15 : 1));
  const f16 = new Uint8Array(encodeF16Array(x).buffer);
  const ranges: number[] = [];
  const src = lazyTensor('w', [N, K], 'F16', f16.length, async () => f16.slice(), undefined, async (o, n) => (ranges.push(o), f16.slice(o, o + n)));
  const want = encodeGgmlTarget('Q6_K', await src.readF32(), N, K);
  const t = streamByRows(src, 'Q6_K', undefined, 5 * K);
  assert.equal(t.type, 'Q6_K');
  assert.deepEqual(t.shape, [N, K]);
  assert.equal(ranges.length, 0, 'nothing read before the writer asks');
  const pieces: Uint8Array[] = [];
  for await (const p of t.chunks) {
    assert.equal(ranges.length, pieces.length + 1, 'one chunk read per piece asked for');
    pieces.push(p);
  }
  assert.deepEqual(pieces.map((p) => p.length), [...Array(7).fill(5 * 420), 2 * 420], '37 rows of 420 bytes (two Q6_K blocks) in pieces of 5');
  assert.ok(Buffer.concat(pieces).equals(Buffer.from(want)));
  // a tensor too small to split: one piece
  const one: Uint8Array[] = [];
  for await (const p of streamByRows(src, 'Q6_K', undefined, N * K).chunks) one.push(p);
  assert.equal(one.length, 1);
  assert.ok(Buffer.from(one[0]).equals(Buffer.from(want)));
});

test('embedFromSource: windows cut from an F16/BF16 embedding read a chunk of rows at a time equal the rows of the whole decoded embedding', async () => {
  const V = 50, E = 64; // chunks of 7 rows (the last one short); tokens spread over some chunks only
  const x = Float32Array.from({ length: V * E }, (_, i) => Math.cos(i * 0.11) * (i % 31 === 0 ? 300 : 1));
  const windows = [[1, 3, 3, 49], [20, 1, 48, 2], [0, 6, 7, 13]];
  for (const dtype of ['F16', 'BF16'] as const) {
    const bytes = new Uint8Array(dtype === 'F16' ? encodeF16Array(x).buffer : Uint16Array.from(new Uint32Array(x.buffer), (b) => b >>> 16).buffer);
    const ranges: [number, number][] = [];
    const src = lazyTensor('model.embed_tokens.weight', [V, E], dtype, bytes.length, async () => bytes.slice(), undefined, async (o, n) => (ranges.push([o, n]), bytes.slice(o, o + n)));
    const want = embedWindowStates(await src.readF32(), E, windows);
    const got = await embedFromSource(src, E, windows, 7 * E * 2);
    assert.deepEqual([got.windows, got.tokens, got.hidden], [3, 4, E]);
    assert.ok(Buffer.from(got.data.buffer).equals(Buffer.from(want.data.buffer)), `${dtype}: states differ`);
    // rows 0-6, 7-13, 14-20, 42-48, 49: the chunks holding a used token, each read once
    assert.deepEqual(ranges.map(([o]) => o / (E * 2)), [0, 7, 14, 42, 49]);
  }
});
