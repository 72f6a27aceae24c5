// The public API dispatches ggml schemes to src/quant/ggml (bit-exactness is tested there); here:
// the bytes, the shape handling, fakeQuant against ggml's own dequantized floats, and bits per weight.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { Rng } from '../../src/core/rng.js';
import { NumericError } from '../../src/core/errors.js';
import { quantize, dequantize, fakeQuant, parseScheme, bitsPerWeight } from '../../src/quant/index.js';
import { quantizeGgml } from '../../src/quant/ggml/index.js';
import type { GgmlQuantized } from '../../src/quant/index.js';
import { sharedPath, sharedSkip } from '../helpers.js';

test('q8_0 / q4_0 through the public API equal the ggml module bytes; 2-D shapes quantize per row', () => {
  const rng = new Rng(2);
  const w = rng.fillNormal(new Float32Array(4 * 64), 0, 1);
  for (const s of ['q8_0', 'q4_0']) {
    const q = quantize(w, [4, 64], parseScheme(s)) as GgmlQuantized;
    assert.equal(q.kind, 'ggml');
    const ref = quantizeGgml(s === 'q8_0' ? 'Q8_0' : 'Q4_0', w, 4, 64);
    assert.deepEqual(q.bytes, ref);
    const d = dequantize(q);
    assert.equal(d.length, w.length);
  }
  assert.equal(bitsPerWeight(parseScheme('q4_0'), [4, 64]), 4.5);
  assert.equal(bitsPerWeight(parseScheme('q8_0'), [4, 64]), 8.5);
  assert.equal(bitsPerWeight(parseScheme('q4_k'), [4, 256]), 4.5);
});

const goldenSkip = sharedSkip('golden/ggml-quants/gauss.input.f32');
const goldenBytes = (name: string) => new Uint8Array(readFileSync(sharedPath('golden', 'ggml-quants', name)));
const goldenBits = (name: string) => new Uint32Array(goldenBytes(name).slice().buffer);

test('fakeQuant / quantize of a [8, 512] tensor = ggml_quantize_chunk and to_float (golden gauss rows)', { skip: goldenSkip }, () => {
  const w = new Float32Array(goldenBytes('gauss.input.f32').slice().buffer);
  assert.equal(w.length, 8 * 512);
  for (const t of ['q8_0', 'q4_0', 'q4_K']) {
    const sc = parseScheme(t);
    assert.deepEqual((quantize(w, [8, 512], sc) as GgmlQuantized).bytes, goldenBytes(`gauss.${t}.bytes`), `${t} bytes`);
    // bit patterns: ggml's floats, −0 included
    assert.deepEqual(new Uint32Array(fakeQuant(w, [8, 512], sc).buffer), goldenBits(`gauss.${t}.dequant.f32`), `${t} floats`);
  }
});

test('NaN in a ggml-bound tensor is caught with the tensor name before dispatch', () => {
  const w = new Float32Array(32);
  w[31] = NaN;
  assert.throws(
    () => quantize(w, [1, 32], parseScheme('q8_0'), { name: 'x' }),
    (e: unknown) => e instanceof NumericError && e.context.tensor === 'x' && e.context.index === 31,
  );
});
