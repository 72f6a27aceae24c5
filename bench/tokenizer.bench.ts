// Tokenizer encode throughput on the stories260K vocabulary, each fast path against its peer in
// the same run: llama2.c merging (heap) vs run.c's quadratic loop, our SPM vs @huggingface/tokenizers
// on the tokenizer.json we export (whole text in one call vs line-aligned chunks).
// Needs ../shared (stories260K vocabulary and the TinyStories excerpt).
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { parseLlama2cVocab } from '../src/formats/llama2c/tokenizer-bin.js';
import { HfTokenizer } from '../src/formats/tokenizer/hf.js';
import { Llama2cTokenizer } from '../src/formats/tokenizer/llama2c.js';
import { SpmTokenizer } from '../src/formats/tokenizer/spm.js';
import { spmTokenizerFiles, spmVocabFromLlama2c } from '../src/formats/tokenizer/vocab.js';
import { fmt, timeMs } from './util.js';

export default async function main(): Promise<void> {
  const shared = resolve('..', 'shared');
  if (!existsSync(shared)) {
    console.log('tokenizer bench skipped: ../shared is absent');
    return;
  }
  const b = readFileSync(resolve(shared, 'models/stories260K/tok512.bin'));
  const v = parseLlama2cVocab(new Uint8Array(b.buffer, b.byteOffset, b.length));
  const text = readFileSync(resolve(shared, 'data/tinystories-valid-excerpt.txt'), 'utf8');
  const kb = Buffer.byteLength(text) / 1024;
  const l2c = new Llama2cTokenizer(v);
  const spm = new SpmTokenizer(spmVocabFromLlama2c(v));
  const f = spmTokenizerFiles(spmVocabFromLlama2c(v), 512);
  const hf = new HfTokenizer(f.tokenizer, f.config);
  const short = text.slice(0, 4000);
  const rows: [string, number, number][] = [
    ['llama2.c heap merge', await timeMs(() => l2c.encode(text), 7), kb],
    ['SPM (GGUF vocab)', await timeMs(() => spm.encode(text), 7), kb],
    ['HF tokenizers, chunked', await timeMs(() => hf.encode(text), 3), kb],
    ['HF tokenizers, one call', await timeMs(() => hf.encodeRaw(text), 1, 0), kb],
    ['run.c loop (4 KB)', await timeMs(() => l2c.encodeReference(short), 3), Buffer.byteLength(short) / 1024],
    ['llama2.c heap merge (4 KB)', await timeMs(() => l2c.encode(short), 7), Buffer.byteLength(short) / 1024],
  ];
  console.log(`encode ${fmt(kb)} KiB of TinyStories (stories260K vocabulary, 512 tokens), median ms and KiB/s:`);
  for (const [name, ms, size] of rows) console.log(`  ${name.padEnd(28)} ${fmt(ms, 1).padStart(8)} ms  ${fmt((size / ms) * 1000, 0).padStart(7)} KiB/s`);
  console.log(`  heap merge vs run.c loop on 4 KB: ${fmt(rows[4][1] / rows[5][1], 1)}x faster`);
  console.log(`  HF chunked vs one call: ${fmt(rows[3][1] / rows[2][1], 1)}x faster`);
}
