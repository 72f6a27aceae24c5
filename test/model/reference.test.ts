// The float64 reference forward (the engine's test oracle) against llama2.c's own logits, so the
// oracle is itself checked against an independent implementation.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { loadModel } from '../../src/model/load.js';
import { referenceForward, referenceInvFreq } from '../../src/model/reference.js';
import type { ModelConfig } from '../../src/model/config.js';
import { SHARED, sharedSkip } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin', 'golden/stories260K/tinystories-excerpt.tokens.i32', 'golden/stories260K/tinystories-excerpt.logits.f32');
/** float64 oracle vs llama2.c's float32 C code */
const REFERENCE_VS_LLAMA2C_ATOL = 1e-4;

test('reference forward equals llama2.c logits on stories260K (first 32 positions)', { skip }, async () => {
  const w = await loadModel(resolve(SHARED, 'models/stories260K/stories260K.bin'));
  const tensors = new Map<string, Float32Array>();
  for (const [k, s] of w.tensors) tensors.set(k, await s.readF32());
  const tb = readFileSync(resolve(SHARED, 'golden/stories260K/tinystories-excerpt.tokens.i32'));
  const tokens = Array.from(new Int32Array(tb.buffer, tb.byteOffset, tb.byteLength / 4)).slice(0, 32);
  const gb = readFileSync(resolve(SHARED, 'golden/stories260K/tinystories-excerpt.logits.f32'));
  const gold = new Float32Array(gb.buffer, gb.byteOffset, gb.byteLength / 4);
  const got = referenceForward(w.config, (n) => tensors.get(n)!, tokens);
  let d = 0;
  for (let i = 0; i < got.length; i++) d = Math.max(d, Math.abs(got[i] - gold[i]));
  assert.ok(d < REFERENCE_VS_LLAMA2C_ATOL, `max |reference − llama2.c| = ${d}`);
  await w.close();
});

test('llama3 RoPE scaling: short wavelengths kept, long ones divided by the factor, a blend between', () => {
  const c = { headDim: 128, ropeTheta: 500000, ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalMaxPositionEmbeddings: 8192 } } as ModelConfig;
  const plain = referenceInvFreq({ ...c, ropeScaling: null });
  const scaled = referenceInvFreq(c);
  assert.equal(scaled[0], plain[0]); // wavelength 2π < 8192/4
  assert.ok(Math.abs(scaled[63] - plain[63] / 8) < 1e-20); // wavelength ≫ 8192
  const mid = plain.findIndex((f) => (2 * Math.PI) / f > 2048 && (2 * Math.PI) / f < 8192);
  assert.ok(mid > 0 && scaled[mid] < plain[mid] && scaled[mid] > plain[mid] / 8);
  assert.throws(() => referenceInvFreq({ ...c, ropeScaling: { type: 'yarn', factor: 4 } }), (e: Error & { code?: string }) => e.code === 'unsupported');
});
