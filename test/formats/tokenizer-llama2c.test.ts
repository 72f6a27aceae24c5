// llama2.c tokenizer against run.c's own output (../shared/golden/stories260K) and against the
// quadratic reference loop.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { encodeLlama2cVocab, parseLlama2cVocab } from '../../src/formats/llama2c/tokenizer-bin.js';
import { Llama2cTokenizer } from '../../src/formats/tokenizer/llama2c.js';
import { FormatError } from '../../src/core/errors.js';
import { Rng } from '../../src/core/rng.js';
import { SHARED, sharedSkip } from '../helpers.js';

const skip = sharedSkip('models/stories260K/tok512.bin', 'data/tinystories-valid-excerpt.txt', 'golden/stories260K/tinystories-excerpt.tokens.i32');
const TOK = resolve(SHARED, 'models/stories260K/tok512.bin');

function bytes(path: string): Uint8Array {
  const b = readFileSync(path);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}
function i32(path: string): number[] {
  const b = bytes(path).slice();
  return Array.from(new Int32Array(b.buffer));
}

test('tok512.bin parses: 512 pieces, control and byte tokens where run.c expects them', { skip }, () => {
  const v = parseLlama2cVocab(bytes(TOK), TOK);
  assert.equal(v.pieces.length, 512);
  assert.equal(v.maxTokenLength, 7);
  const t = new Llama2cTokenizer(v);
  assert.equal(t.tokenPiece(0), '<unk>');
  assert.equal(t.tokenPiece(3), '<0x00>');
  assert.equal(t.tokenPiece(258), '<0xFF>');
  // writer round trip is byte-identical
  assert.deepEqual(encodeLlama2cVocab(v), bytes(TOK));
});

test('encode reproduces run.c token ids for the TinyStories excerpt (BOS first, no EOS)', { skip }, () => {
  const t = new Llama2cTokenizer(parseLlama2cVocab(bytes(TOK), TOK));
  const text = readFileSync(resolve(SHARED, 'data/tinystories-valid-excerpt.txt'), 'utf8');
  const golden = i32(resolve(SHARED, 'golden/stories260K/tinystories-excerpt.tokens.i32'));
  assert.equal(golden.length, 129);
  const ids = t.encode(text);
  assert.deepEqual(ids.slice(0, golden.length), golden);
  assert.equal(ids.includes(2), false);
  // decode follows run.c: the dummy-prefix space after BOS is dropped
  assert.equal(t.decode(ids), text);
  assert.deepEqual(t.encode(text, { bos: false, eos: true }).slice(-1), [2]);
});

test('fast merge equals the run.c loop on random text with multi-byte and unknown characters', { skip }, () => {
  const t = new Llama2cTokenizer(parseLlama2cVocab(bytes(TOK), TOK));
  const alphabet = ['a', 'e', 't', ' ', 'h', 'the', ' s', 'é', '™', '你', '🤗', '\n', '.', 'ing', 'x', 'q'];
  const rng = new Rng(5);
  for (let k = 0; k < 200; k++) {
    let s = '';
    const n = rng.int(60);
    for (let i = 0; i < n; i++) s += alphabet[rng.int(alphabet.length)];
    assert.deepEqual(t.encode(s), t.encodeReference(s), JSON.stringify(s));
    assert.equal(t.decode(t.encode(s)), s);
  }
  // byte fallback: a code point missing from the vocabulary becomes its UTF-8 bytes + 3
  const ids = t.encode('你', { bos: false });
  assert.deepEqual(ids.slice(1), [0xe4 + 3, 0xbd + 3, 0xa0 + 3]);
  assert.deepEqual(t.encode(''), [1]);
});

test('truncated tokenizer.bin gives a typed error naming the file and token', () => {
  const v = encodeLlama2cVocab({ pieces: [Uint8Array.of(97), Uint8Array.of(98, 99)], scores: Float32Array.of(0, -1) });
  assert.throws(
    () => parseLlama2cVocab(v.subarray(0, v.length - 1), 'cut.bin'),
    (e: unknown) => e instanceof FormatError && e.code === 'truncated' && e.context.file === 'cut.bin' && e.context.index === 1,
  );
  assert.throws(() => parseLlama2cVocab(v, 'short.bin', 3), (e: unknown) => e instanceof FormatError && e.code === 'truncated');
});
