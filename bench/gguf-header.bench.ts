// GGUF header parse time for a file with a large (150k-token BPE-style) vocabulary: our reader
// (openGgufFile) against @huggingface/gguf 0.4.6 parsing the same file in the same run; and our
// writer's time to encode the same header (ggufLayout: no peer in Node writes GGUF metadata).
// The file lives in os.tmpdir() and is deleted afterwards.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gguf } from '@huggingface/gguf';
import { Rng } from '../src/core/rng.js';
import { ggufLayout, gv, TOKENIZER, type GgufValue } from '../src/formats/gguf/index.js';
import { openGgufFile, writeGgufFile } from '../src/formats/io/index.js';
import { fmt, timeMs } from './util.js';

const VOCAB = 150_000;

export default async function main(): Promise<void> {
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-bench-gguf-'));
  try {
    const rng = new Rng(3);
    const word = (): string => Array.from({ length: 2 + (rng.nextU32() % 8) }, () => String.fromCharCode(97 + (rng.nextU32() % 26))).join('');
    const tokens = Array.from({ length: VOCAB }, (_, i) => `${word()}${i}`);
    const merges = Array.from({ length: VOCAB }, () => `${word()} ${word()}`);
    const p = join(dir, 'vocab.gguf');
    const metadata: [string, GgufValue][] = [
      ['general.architecture', gv.str('llama')],
      [TOKENIZER.model, gv.str('gpt2')],
      [TOKENIZER.tokens, gv.arr('string', tokens)],
      [TOKENIZER.tokenType, gv.arr('i32', new Array(VOCAB).fill(1))],
      [TOKENIZER.scores, gv.arr('f32', new Array(VOCAB).fill(0))],
      [TOKENIZER.merges, gv.arr('string', merges)],
    ];
    await writeGgufFile(
      p,
      metadata,
      Array.from({ length: 200 }, (_, i) => ({ name: `blk.${i}.w`, type: 'F32' as const, shape: [8], data: new Float32Array(8) })),
    );
    const ours = await timeMs(async () => {
      const f = await openGgufFile(p);
      await f.close();
    }, 7);
    const peer = await timeMs(() => gguf(p, { allowLocalFile: true }), 7);
    console.log(`GGUF header with ${VOCAB} tokens + ${VOCAB} merges + 200 tensor infos:`);
    console.log(`  bitscale readGguf: ${fmt(ours, 1)} ms   @huggingface/gguf: ${fmt(peer, 1)} ms   ratio peer/ours = ${fmt(peer / ours, 2)}`);
    const write = await timeMs(() => void ggufLayout(metadata, []), 7);
    console.log(`  bitscale ggufLayout (encoding the same metadata): ${fmt(write, 1)} ms`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
