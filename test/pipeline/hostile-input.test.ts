// Issue 15, items 5–6 and 9–12: headers and options that ask for absurd work are refused before any
// is done, bad text is refused with its byte offset, and no input makes bitscale crash without a
// typed error (exit 70). Each case is what a careless or hostile user typed (child processes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { memorySource } from '../../src/formats/bytes.js';
import { encodeGguf, readGguf, type GgufValue } from '../../src/formats/gguf/index.js';
import { ConfigError, NumericError } from '../../src/core/errors.js';
import { cliIn, cliSpawn } from '../cli-run.js';

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

async function refused(args: string[], cwd: string, code: string, exit: number, re: RegExp) {
  const t0 = Date.now();
  const r = await cliIn(args, cwd);
  assert.ok(Date.now() - t0 < REFUSAL_MS, `${args.join(' ')} took ${Date.now() - t0} ms`);
  assert.equal(r.status, exit, `${args.join(' ')}\n${r.stderr}`);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`), args.join(' '));
  assert.match(r.stderr, re, args.join(' '));
  assert.doesNotMatch(r.stderr, /expected undefined|unexpected error|\n\s+at /, 'typed, with no stack trace');
  return r;
}

/** refused() with the exit code the error code implies (2 for bad options, 1 otherwise). */
async function typed(args: string[], cwd: string, code: string, re: RegExp) {
  return refused(args, cwd, code, code === 'bad_option' ? 2 : 1, re);
}

test('5: header layer counts are checked against what the file holds (GGUF, llama2.c, config.json)', { skip, timeout: 120_000 }, async () => {
  const d = workdir();
  try {
    assert.equal((await cliIn(['convert', 'stories260K.bin', 'm.gguf'], d)).status, 0);
    await patchGguf(join(d, 'm.gguf'), join(d, 'blocks.gguf'), { 'llama.block_count': { type: 'u64', value: 2n ** 40n } });
    await refused(['inspect', 'blocks.gguf'], d, 'bad_header', 1, /llama\.block_count.*found 1099511627776/);
    const b = Buffer.from(readFileSync(join(d, 'stories260K.bin')));
    b.writeInt32LE(1_000_000, 8); // n_layers of the legacy header
    writeFileSync(join(d, 'layers.bin'), b);
    await refused(['inspect', 'layers.bin'], d, 'truncated', 1, /n_layers.*found 1000000/);
    assert.equal((await cliIn(['convert', 'stories260K.bin', 'hf', '--to', 'hf'], d)).status, 0);
    const cfg = JSON.parse(readFileSync(join(d, 'hf', 'config.json'), 'utf8'));
    mkdirSync(join(d, 'hf2'));
    copyFileSync(join(d, 'hf', 'model.safetensors'), join(d, 'hf2', 'model.safetensors'));
    writeFileSync(join(d, 'hf2', 'config.json'), JSON.stringify({ ...cfg, num_hidden_layers: 1e9 }));
    await refused(['inspect', 'hf2'], d, 'bad_header', 1, /num_hidden_layers.*found 1000000000/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('6: --threads, --windows and train --context are bounded or refused with a message', { skip, timeout: 120_000 }, async () => {
  const d = workdir();
  try {
    writeFileSync(join(d, 'text.txt'), 'One day a little girl named Lily found a needle in her room. '.repeat(20));
    const e = await cliIn(['eval', 'stories260K.bin', '--text', 'text.txt', '--ctx', '32', '--max-windows', '1', '--threads', '10000', '--json'], d);
    assert.equal(e.status, 0, e.stderr);
    assert.match(e.stderr, /--threads 10000 is more than the \d+ CPU cores here; using \d+/);
    await refused(['quantize', 'stories260K.bin', '--out', 'q.gguf', '--scheme', 'q4_0', '--method', 'gptq', '--windows', '1000000000'], d, 'bad_option', 2, /--windows.*found 1000000000/);
    await refused(['quantize', 'stories260K.bin', '--out', 'q.gguf', '--scheme', 'q4_0', '--method', 'gptq', '--windows', '60000', '--seq-len', '60000'], d, 'bad_option', 2, /would not fit in memory/);
    await refused(['imatrix', 'stories260K.bin', '--out', 'im.gguf', '--windows', '1000000000'], d, 'bad_option', 2, /--windows/);
    await refused(['train', '--config', 'tiny', '--text', 'text.txt', '--out', 'run', '--context', '1000000000'], d, 'bad_option', 2, /--context/);
    writeFileSync(join(d, 'huge.json'), JSON.stringify({ vocab_size: 512, hidden_size: 64, intermediate_size: 192, num_hidden_layers: 1e9, num_attention_heads: 2 }));
    await refused(['train', '--config', 'huge.json', '--text', 'text.txt', '--out', 'run'], d, 'bad_config', 1, /nLayers/);
    await refused(['eval', 'stories260K.bin', '--text', 'text.txt', '--threads', '0'], d, 'bad_option', 2, /--threads/);
    assert.ok(!existsSync(join(d, 'q.gguf')) && !existsSync(join(d, 'run')) && !existsSync(join(d, 'im.gguf')));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('11: every case of the issue ends in a typed error, not a stack trace (exit 70)', { skip, timeout: 180_000 }, async () => {
  const d = workdir();
  try {
    writeFileSync(join(d, 'text.txt'), 'Once upon a time there was a little dog who liked to run. '.repeat(30));
    const q = ['quantize', 'stories260K.bin', '--scheme', 'q4_0', '--no-verify'];
    await typed([...q, '--out', 'q.gguf', '--imatrix', 'missing.dat'], d, 'missing_file', /missing\.dat/);
    mkdirSync(join(d, 'somedir'));
    await typed([...q, '--out', 'q.gguf', '--imatrix', 'somedir'], d, 'io', /somedir/);
    // a legacy imatrix whose dataset name is not UTF-8
    assert.equal((await cliIn(['imatrix', 'stories260K.bin', '--out', 'im.dat', '--format', 'dat', '--windows', '1', '--seq-len', '8'], d)).status, 0);
    const im = readFileSync(join(d, 'im.dat'));
    const at = im.lastIndexOf('bitscale-builtin'); // the dataset name, last in the file
    assert.ok(at > 0 && im.readInt32LE(at - 4) === im.length - at);
    im[at + 2] = 0xff;
    writeFileSync(join(d, 'im-bad.dat'), im);
    await typed([...q, '--out', 'q.gguf', '--imatrix', 'im-bad.dat'], d, 'bad_string', /dataset name is not UTF-8/);
    // a tokenizer.json the tokenizer library cannot use
    assert.equal((await cliIn(['convert', 'stories260K.bin', 'hf', '--to', 'hf'], d)).status, 0);
    const tj = JSON.parse(readFileSync(join(d, 'hf', 'tokenizer.json'), 'utf8'));
    writeFileSync(join(d, 'hf', 'tokenizer.json'), JSON.stringify({ ...tj, model: { ...tj.model, merges: 7 } }));
    await typed(['eval', 'hf', '--text', 'text.txt'], d, 'bad_config', /tokenizer\.json/);
    // outputs in places that cannot hold them
    await typed(['convert', 'stories260K.bin', 'nope/out', '--to', 'hf'], d, 'missing_file', /parent folder does not exist/);
    await typed([...q, '--out', 'nope/fq', '--format', 'fakequant', '--scheme', 'int8-channel'], d, 'missing_file', /parent folder/);
    writeFileSync(join(d, 'notes.md'), 'mine');
    await typed(['train', '--config', 'tiny', '--text', 'text.txt', '--out', 'notes.md'], d, 'exists', /is a file/);
    await typed(['sweep', 'stories260K.bin', '--text', 'text.txt', '--out', 'notes.md'], d, 'exists', /is a file/);
    assert.equal(readFileSync(join(d, 'notes.md'), 'utf8'), 'mine');
    await typed(['convert', 'stories260K.bin', '.', '--to', 'hf', '--force'], d, 'bad_option', /current folder/);
    await typed([...q, '--out', '.', '--format', 'fakequant', '--scheme', 'int8-channel', '--force'], d, 'bad_option', /current folder/);
    mkdirSync(join(d, 'exp'));
    writeFileSync(join(d, 'exp', 'runs.json'), '{"runs": [ {"key": ');
    await typed(['law', 'experiment', '--out', 'exp', '--grid', 'micro'], d, 'bad_header', /invalid JSON/);
    writeFileSync(join(d, 'exp', 'runs.json'), '[1, 2]');
    await typed(['law', 'experiment', '--out', 'exp', '--grid', 'micro'], d, 'bad_header', /not a runs file/);
    // a .gguf that is empty or has a flipped magic: named as GGUF, not a llama2.c header error
    writeFileSync(join(d, 'empty.gguf'), '');
    await typed(['inspect', 'empty.gguf'], d, 'truncated', /empty/);
    const flipped = readFileSync(join(d, 'stories260K.bin')).subarray(0, 4096);
    writeFileSync(join(d, 'flipped.gguf'), flipped);
    await typed(['inspect', 'flipped.gguf'], d, 'bad_magic', /named \.gguf/);
    // read-only places, as an ordinary user sees them (root ignores permissions: run as nobody)
    const ro = join(d, 'ro');
    mkdirSync(ro);
    chmodSync(ro, 0o555);
    chmodSync(d, 0o755);
    for (const f of ['stories260K.bin', 'tok512.bin', 'text.txt']) chmodSync(join(d, f), 0o644);
    const asUser = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
    for (const args of [
      ['convert', 'stories260K.bin', 'ro/hf', '--to', 'hf'],
      [...q, '--out', 'ro/fq', '--format', 'fakequant', '--scheme', 'int8-channel'],
      ['train', '--config', 'tiny', '--text', 'text.txt', '--out', 'ro/run'],
    ]) {
      const r = await cliSpawn(args, d, asUser).done;
      assert.equal(r.status, 1, `${args.join(' ')}\n${r.stderr}`);
      assert.match(r.stderr, /\[io\].*permission denied/, args.join(' '));
    }
  } finally {
    chmodSync(d, 0o755);
    rmSync(d, { recursive: true, force: true });
  }
});

test('12: one error formatter (no "expected undefined", NaN printed as NaN); options refused as the issue asks', { skip, timeout: 120_000 }, async () => {
  const noExpected = new NumericError('non_finite', 'x holds a non-finite value', { tensor: 'w', index: 3, found: NaN });
  assert.equal(noExpected.message, "x holds a non-finite value (tensor 'w', index 3): found NaN");
  assert.equal(new ConfigError('bad_option', 'v', { expected: 'a number' }).message, 'v: expected a number');
  assert.equal(new ConfigError('bad_option', 'v', { expected: [1, Infinity], found: -Infinity }).message, 'v: expected [1,"Infinity"], found -Infinity');
  const d = workdir();
  try {
    writeFileSync(join(d, 'text.txt'), 'Once upon a time there was a little dog. '.repeat(30));
    const q = ['quantize', 'stories260K.bin', '--out', 'q.gguf', '--scheme', 'q4_0'];
    await typed([...q, '--seed', '1e30'], d, 'bad_option', /--seed.*found 1e30/);
    await typed([...q, '--act-order'], d, 'bad_option', /--act-order.*--method gptq/);
    await typed([...q, 'extra.bin'], d, 'bad_option', /unexpected argument 'extra\.bin'/);
    await typed(['eval', 'stories260K.bin', 'text.txt'], d, 'bad_option', /unexpected argument 'text\.txt'/);
    await typed([...q, '--methd', 'gptq'], d, 'bad_option', /unknown option --methd[\s\S]*did you mean --method\?/);
    await typed([...q, '--overwrit'], d, 'bad_option', /did you mean --force\?|did you mean --overwrite\?/);
    await typed([...q, '--method', 'gtpq'], d, 'bad_option', /did you mean gptq\?/);
    const r = await cliIn([...q, '--method', 'RTN', '--format', 'GGUF', '--no-verify'], d);
    assert.equal(r.status, 0, r.stderr);
    // the output is checked before any work: an existing file refuses a GPTQ run before its first layer
    const g = await cliIn([...q, '--method', 'gptq', '--windows', '2', '--seq-len', '16'], d);
    assert.equal(g.status, 1);
    assert.match(g.stderr, /\[exists\][\s\S]*--force/);
    assert.doesNotMatch(g.stderr, /\[(quantize|calibrate)\]/, 'no calibration or quantization ran');
    const u = await cliIn(['quantise'], d);
    assert.equal(u.status, 2);
    assert.match(u.stderr, /Did you mean 'quantize'\?/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
