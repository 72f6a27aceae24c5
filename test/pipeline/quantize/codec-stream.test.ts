// Streaming RTN onto int / float / code-book schemes (src/pipeline/quantize/codec-stream.ts): the
// folder written on 1, 2 or 3 worker threads equals, byte for byte, the one the whole-model path
// writes with the WebAssembly kernels off (quantize.ts → layers.ts: the column grids of
// algorithms/grid.ts and quant's fakeQuant in TypeScript on the calling thread, then write.ts) for
// GPTQ-packed, compressed-tensors and fake-quant folders (int4-g128 sym/asym, int8-channel,
// int2/int3 groups, nf4, fp8 e4m3/e5m2, fp4; F16, BF16 and F32 checkpoints). A NaN in a row is a
// typed error naming the tensor and row, with nothing left at the output path.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { NumericError } from '../../../src/core/errors.js';
import { loadModel } from '../../../src/model/load.js';
import { quantizeModel, type QuantizeFormat } from '../../../src/pipeline/quantize/quantize.js';
import { setGgmlKernelsEnabled } from '../../../src/quant/ggml/wasm/kernels.js';
import { shapeConfig, writeGeneratedGguf } from '../../../bench/gen-llama.js';
import { tempDir } from '../../helpers.js';

// one layer; every K (256, 512) a multiple of the group sizes used; q/k rows permuted to rotate-half
const CONFIG = shapeConfig('llama-3.2-1b', { nLayers: 1, vocabSize: 300, hiddenSize: 256, intermediateSize: 512, nHeads: 4, nKvHeads: 2, headDim: 64 });

/** Every file of a folder but the manifest (which records times and the path taken). */
function folderFiles(dir: string): Map<string, Buffer> {
  return new Map(readdirSync(dir).filter((f) => f !== 'bitscale-manifest.json').map((f) => [f, readFileSync(join(dir, f))]));
}

function assertSameFolder(got: string, want: string, what: string): void {
  const [g, w] = [folderFiles(got), folderFiles(want)];
  assert.deepEqual([...g.keys()].sort(), [...w.keys()].sort(), `${what}: files`);
  for (const [f, b] of w) assert.ok(g.get(f)!.equals(b), `${what}: ${f} differs`);
}

/** The whole-model path on the calling thread with the kernels off: the reference. */
async function reference(model: string, out: string, scheme: string, format: QuantizeFormat): Promise<void> {
  setGgmlKernelsEnabled(false);
  try {
    // keepHost keeps the run on the whole-model path (it hands the quantized model back)
    await quantizeModel({ model, out, scheme, format, method: 'rtn', verify: false, keepHost: true });
  } finally {
    setGgmlKernelsEnabled(true);
  }
}

test('codec streaming: 1, 2 and 3 threads write the whole-model reference folder byte for byte', { timeout: 600_000 }, async () => {
  const dir = tempDir('bitscale-codec-');
  // [checkpoint dtype, scheme, format, thread counts]
  const cases: [string, string, QuantizeFormat, number[]][] = [
    ['F16', 'int4-g128', 'safetensors', [1, 2, 3]],
    ['F16', 'int4-g128-asym', 'compressed-tensors', [3]],
    ['BF16', 'int8-channel', 'safetensors', [2]],
    ['F16', 'int2-g64', 'safetensors', [3]],
    ['F32', 'int3-g128-asym', 'safetensors', [2]],
    ['F16', 'nf4-g64', 'fakequant', [1, 3]],
    ['F16', 'fp8-e4m3', 'fakequant', [2]],
    ['BF16', 'fp8-e5m2', 'fakequant', [3]],
    ['F16', 'fp4', 'fakequant', [2]],
  ];
  for (const [dtype, scheme, format, threadCounts] of cases) {
    const model = join(dir, `m-${dtype}.gguf`);
    if (!existsSync(model)) await writeGeneratedGguf(model, CONFIG, dtype as 'F16' | 'BF16' | 'F32');
    const want = join(dir, `ref-${dtype}-${scheme}-${format}`);
    await reference(model, want, scheme, format);
    for (const threads of threadCounts) {
      const out = join(dir, `s-${dtype}-${scheme}-${format}-${threads}`);
      const r = await quantizeModel({ model, out, scheme, format, method: 'rtn', verify: false, threads });
      const m = JSON.parse(readFileSync(r.manifest, 'utf8')) as { settings: { streaming?: boolean } };
      assert.equal(m.settings.streaming, true, `${scheme} ${format}: took the streaming path`);
      assertSameFolder(out, want, `${dtype} ${scheme} ${format} at ${threads} thread(s)`);
    }
  }
});

test('codec streaming: a NaN names its tensor and row and leaves nothing at the output path', { timeout: 120_000 }, async () => {
  const dir = tempDir('bitscale-codec-nan-');
  const model = join(dir, 'm.gguf');
  await writeGeneratedGguf(model, CONFIG, 'F16');
  const w = await loadModel(model, { tokenizer: null });
  const bad = 'model.layers.0.mlp.up_proj.weight';
  const src = w.tensors.get(bad)!;
  await w.close();
  const K = src.shape[1];
  const at = 5 * K + 17; // row 5
  const bytes = readFileSync(model);
  bytes.writeUInt16LE(0x7e00, src.file!.offset + 2 * at); // fp16 NaN
  const nanModel = join(dir, 'nan.gguf');
  writeFileSync(nanModel, bytes);
  for (const [scheme, format] of [['int4-g128', 'safetensors'], ['fp8-e4m3', 'fakequant']] as const) {
    const out = join(dir, `o-${scheme}`);
    await assert.rejects(quantizeModel({ model: nanModel, out, scheme, format, method: 'rtn', verify: false, threads: 2 }), (e: unknown) => {
      assert.ok(e instanceof NumericError, String(e));
      assert.equal(e.code, 'non_finite');
      assert.equal(e.context.tensor, bad);
      assert.equal(e.context.row, 5);
      assert.equal(e.context.index, at);
      assert.match(e.message, /row 5/);
      return true;
    });
    assert.ok(!existsSync(out), `${scheme}: nothing at the output path`);
    assert.deepEqual(readdirSync(dir).sort(), ['m.gguf', 'nan.gguf'], 'no staging folder left behind');
  }
});
