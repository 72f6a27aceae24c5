// GGUF-embedded vocabularies: SentencePiece "llama" (scores + token types) and byte-level BPE
// "gpt2" (merges), each checked against an independent implementation of the same vocabulary:
// run.c's golden ids for stories260K, and @huggingface/tokenizers for a trained byte-level BPE.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseLlama2cVocab, encodeLlama2cVocab } from '../../src/formats/llama2c/tokenizer-bin.js';
import { SpmTokenizer } from '../../src/formats/tokenizer/spm.js';
import { BpeTokenizer, byteToUnicode } from '../../src/formats/tokenizer/bpe.js';
import { HfTokenizer } from '../../src/formats/tokenizer/hf.js';
import { bpeTokenizerFiles, llama2cVocabFromSpm, spmVocabFromLlama2c, TOKEN_TYPE } from '../../src/formats/tokenizer/vocab.js';
import { trainBpe, TrainedBpeTokenizer as TrainedBpe } from '../../src/train/bpe-trainer.js';
import { Rng } from '../../src/core/rng.js';
import { SHARED, sharedSkip } from '../helpers.js';

const skip = sharedSkip('models/stories260K/tok512.bin', 'data/tinystories-valid-excerpt.txt', 'golden/stories260K/tinystories-excerpt.tokens.i32', 'data/tinyshakespeare.txt', 'data/tinystories-sample.txt');
const TOK = resolve(SHARED, 'models/stories260K/tok512.bin');

function bytes(p: string): Uint8Array {
  const b = readFileSync(p);
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
}

test('SPM ("llama") vocabulary from tok512.bin: token types, golden ids, reference merge, llama2.c round trip', { skip }, () => {
  const l2c = parseLlama2cVocab(bytes(TOK), TOK);
  const v = spmVocabFromLlama2c(l2c);
  assert.deepEqual(v.tokens.slice(0, 4), ['<unk>', '<s>', '</s>', '<0x00>']);
  assert.deepEqual([v.types[0], v.types[1], v.types[2], v.types[3], v.types[258], v.types[259]], [TOKEN_TYPE.UNKNOWN, TOKEN_TYPE.CONTROL, TOKEN_TYPE.CONTROL, TOKEN_TYPE.BYTE, TOKEN_TYPE.BYTE, TOKEN_TYPE.NORMAL]);
  assert.equal(v.tokens[259], '\u2581t');
  const t = new SpmTokenizer(v);
  const text = readFileSync(resolve(SHARED, 'data/tinystories-valid-excerpt.txt'), 'utf8');
  const g = readFileSync(resolve(SHARED, 'golden/stories260K/tinystories-excerpt.tokens.i32'));
  const golden = Array.from(new Int32Array(g.buffer.slice(g.byteOffset, g.byteOffset + g.length)));
  assert.deepEqual(t.encode(text).slice(0, golden.length), golden);
  assert.equal(t.decode(t.encode(text)), text);
  const rng = new Rng(2);
  const alphabet = ['a', 'b', ' ', 'the', 'é', '™', '你', '\n', 'ing', '<0x41>', '<s>'];
  for (let k = 0; k < 100; k++) {
    let s = '';
    for (let i = rng.int(40); i > 0; i--) s += alphabet[rng.int(alphabet.length)];
    assert.deepEqual(t.encode(s), t.encodeReference(s), JSON.stringify(s));
    assert.equal(t.decode(t.encode(s)), s);
  }
  // byte and control pieces are never matched from text
  assert.ok(!t.encode('<s><0x41>', { bos: false }).includes(1));
  // back to tokenizer.bin: byte-identical to the original
  assert.deepEqual(encodeLlama2cVocab(llama2cVocabFromSpm(v)), bytes(TOK));
});

test('byte-level BPE ("gpt2") equals @huggingface/tokenizers on the same vocabulary', { skip }, () => {
  const corpus = readFileSync(resolve(SHARED, 'data/tinyshakespeare.txt'), 'utf8').slice(0, 60_000);
  const trained = new TrainedBpe(trainBpe(corpus, { vocabSize: 600 }));
  const ref = new HfTokenizer(trained.toHfJson(), {});
  const v = ref.exportVocab();
  assert.equal(v.model, 'gpt2');
  assert.equal(v.pre, 'default');
  const mine = new BpeTokenizer(v);
  const samples = [
    readFileSync(resolve(SHARED, 'data/tinyshakespeare.txt'), 'utf8').slice(200_000, 204_000),
    readFileSync(resolve(SHARED, 'data/tinystories-sample.txt'), 'utf8'),
    "Don't stop—it's 3.14159 naïve café 你好 🤗\n\n\t  spaces   end ",
  ];
  // special tokens in the text are plain text to this tokenizer (llama.cpp's parse_special=false),
  // while the library splits them out, so the samples leave them out
  for (const s of samples.map((x) => x.replaceAll('<|endoftext|>', ''))) {
    const ids = mine.encode(s, { bos: false });
    assert.deepEqual(ids, ref.encodeRaw(s));
    assert.equal(mine.decode(ids), s);
  }
  assert.equal(byteToUnicode()[32], '\u0120'); // 'Ġ'
});

test('byte-level BPE vocabularies export to tokenizer.json that the library encodes identically', { skip }, () => {
  const corpus = readFileSync(resolve(SHARED, 'data/tinyshakespeare.txt'), 'utf8').slice(0, 40_000);
  const base = new HfTokenizer(new TrainedBpe(trainBpe(corpus, { vocabSize: 500 })).toHfJson(), {}).exportVocab();
  const text = readFileSync(resolve(SHARED, 'data/tinystories-sample.txt'), 'utf8').replaceAll('<|endoftext|>', '') + " it's 12345 x\r\n\r\n  y";
  for (const pre of ['default', 'llama-bpe', 'qwen2']) {
    const v = { ...base, pre, addBos: false };
    const files = bpeTokenizerFiles(v, 128);
    const lib = new HfTokenizer(files.tokenizer, files.config);
    assert.deepEqual(new BpeTokenizer(v).encode(text), lib.encode(text), pre);
    assert.equal(lib.decode(lib.encode(text)), text);
    // and back: the library's vocabulary exports to the same GGUF vocabulary
    const again = lib.exportVocab();
    assert.equal(again.pre, pre);
    assert.deepEqual(again.merges, v.merges);
    assert.deepEqual(again.tokens, v.tokens);
  }
});
