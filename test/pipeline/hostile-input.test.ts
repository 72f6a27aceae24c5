// Issue 15, items 5–6 and 9–12: headers and options that ask for absurd work are refused before any
// is done, bad text is refused with its byte offset, and no input makes bitscale crash without a
// typed error (exit 70). Each case is what a careless or hostile user typed (child processes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { memorySource } from '../../src/formats/bytes.js';
import { encodeGguf, readGguf, type GgufValue } from '../../src/formats/gguf/index.js';
import { cliSync } from '../cli-run.js';

const SHARED = resolve('..', 'shared');
const skip = existsSync(join(SHARED, 'models/stories260K/stories260K.bin')) ? false : 'needs ../shared (stories260K)';
/** a hang detector for one refusal (each is a header check), not a speed goal */
const REFUSAL_MS = 30_000;

function workdir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bitscale-hostile-'));
  for (const f of ['stories260K.bin', 'tok512.bin']) copyFileSync(join(SHARED, 'models/stories260K', f), join(d, f));
  return d;
}

/** A copy of a GGUF with metadata values replaced (`undefined` drops the key). */
async function patchGguf(src: string, dst: string, patch: Record<string, GgufValue | undefined>): Promise<void> {
  const g = await readGguf(memorySource(readFileSync(src)));
  const md: [string, GgufValue][] = [];
  for (const [k, v] of g.metadata) if (!(k in patch)) md.push([k, v]);
  for (const [k, v] of Object.entries(patch)) if (v !== undefined) md.push([k, v]);
  const tensors = await Promise.all(g.tensors.map(async (t) => ({ name: t.name, type: t.type, shape: t.shape, data: await g.readBytes(t.name) })));
  writeFileSync(dst, await encodeGguf(md, tensors as never));
}

function refused(args: string[], cwd: string, code: string, exit: number, re: RegExp) {
  const t0 = Date.now();
  const r = cliSync(args, cwd);
  assert.ok(Date.now() - t0 < REFUSAL_MS, `${args.join(' ')} took ${Date.now() - t0} ms`);
  assert.equal(r.status, exit, `${args.join(' ')}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`), args.join(' '));
  assert.match(r.stderr, re, args.join(' '));
  assert.doesNotMatch(r.stderr, /expected undefined|unexpected error|\n\s+at /, 'typed, with no stack trace');
  return r;
}

test('5: header layer counts are checked against what the file holds (GGUF, llama2.c, config.json)', { skip, timeout: 120_000 }, async () => {
  const d = workdir();
  try {
    assert.equal(cliSync(['convert', 'stories260K.bin', 'm.gguf'], d).status, 0);
    await patchGguf(join(d, 'm.gguf'), join(d, 'blocks.gguf'), { 'llama.block_count': { type: 'u64', value: 2n ** 40n } });
    refused(['inspect', 'blocks.gguf'], d, 'bad_header', 1, /llama\.block_count.*found 1099511627776/);
    const b = Buffer.from(readFileSync(join(d, 'stories260K.bin')));
    b.writeInt32LE(1_000_000, 8); // n_layers of the legacy header
    writeFileSync(join(d, 'layers.bin'), b);
    refused(['inspect', 'layers.bin'], d, 'truncated', 1, /n_layers.*found 1000000/);
    assert.equal(cliSync(['convert', 'stories260K.bin', 'hf', '--to', 'hf'], d).status, 0);
    const cfg = JSON.parse(readFileSync(join(d, 'hf', 'config.json'), 'utf8'));
    mkdirSync(join(d, 'hf2'));
    copyFileSync(join(d, 'hf', 'model.safetensors'), join(d, 'hf2', 'model.safetensors'));
    writeFileSync(join(d, 'hf2', 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 1e9 }));
    refused(['inspect', 'hf2'], d, 'bad_header', 1, /num_hidden_layers.*found 1000000000/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('6: --threads, --windows and train --context are bounded or refused with a message', { skip, timeout: 120_000 }, () => {
  const d = workdir();
  try {
    writeFileSync(join(d, 'text.txt'), 'One day a little girl named Lily found a needle in her room. '.repeat(20));
    const e = cliSync(['eval', 'stories260K.bin', '--text', 'text.txt', '--ctx', '32', '--max-windows', '1', '--threads', '10000', '--json'], d);
    assert.equal(e.status, 0, e.stderr);
    assert.match(e.stderr, /--threads 10000 is more than the \d+ CPU cores here; using \d+/);
    refused(['quantize', 'stories260K.bin', '--out', 'q.gguf', '--scheme', 'q4_0', '--method', 'gptq', '--windows', '1000000000'], d, 'bad_option', 2, /--windows.*found 1000000000/);
    refused(['quantize', 'stories260K.bin', '--out', 'q.gguf', '--scheme', 'q4_0', '--method', 'gptq', '--windows', '60000', '--seq-len', '60000'], d, 'bad_option', 2, /would not fit in memory/);
    refused(['imatrix', 'stories260K.bin', '--out', 'im.gguf', '--windows', '1000000000'], d, 'bad_option', 2, /--windows/);
    refused(['train', '--config', 'tiny', '--text', 'text.txt', '--out', 'run', '--context', '1000000000'], d, 'bad_option', 2, /--context/);
    writeFileSync(join(d, 'huge.json'), JSON.stringify({ vocab_size: 512, hidden_size: 64, intermediate_size: 192, num_hidden_layers: 1e9, num_attention_heads: 2 }));
    refused(['train', '--config', 'huge.json', '--text', 'text.txt', '--out', 'run'], d, 'bad_config', 1, /nLayers/);
    refused(['eval', 'stories260K.bin', '--text', 'text.txt', '--threads', '0'], d, 'bad_option', 2, /--threads/);
    assert.ok(!existsSync(join(d, 'q.gguf')) && !existsSync(join(d, 'run')) && !existsSync(join(d, 'im.gguf')));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
