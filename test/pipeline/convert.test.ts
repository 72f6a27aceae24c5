// convert: the CLI path end to end (llama2.c → GGUF → HF → llama2.c), lossless, atomic, and
// refusing to overwrite its input.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { convertModel } from '../../src/pipeline/convert.js';
import { loadModel } from '../../src/model/load.js';
import { IoError, ConfigError } from '../../src/core/errors.js';
import { SHARED, sharedSkip, withTempDir } from '../helpers.js';

const skip = sharedSkip('models/stories260K/stories260K.bin', 'data/tinystories-valid-excerpt.txt');
const CKPT = resolve(SHARED, 'models/stories260K/stories260K.bin');

function cli(...args: string[]) {
  return spawnSync(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', ...args], { encoding: 'utf8' });
}

test('llama2.c → GGUF → HF → llama2.c through the CLI keeps every weight and the vocabulary', { skip }, async () => {
  await withTempDir('bitscale-conv-', async (dir) => {
    const gguf = join(dir, 's.gguf');
    const hf = join(dir, 'hf');
    const back = join(dir, 'back', 'model.bin');
    let p = cli('convert', CKPT, gguf, '--json');
    assert.equal(p.status, 0, p.stderr);
    assert.equal(JSON.parse(p.stdout).to, 'gguf');
    p = cli('convert', gguf, hf, '--to', 'hf', '-q');
    assert.equal(p.status, 0, p.stderr);
    const { mkdirSync } = await import('node:fs');
    mkdirSync(join(dir, 'back'));
    const r = await convertModel(hf, back);
    assert.equal(r.to, 'llama2c');
    assert.deepEqual(readdirSync(join(dir, 'back')).sort(), ['model.bin', 'tok512.bin']); // no temporary files left
    const a = await loadModel(CKPT);
    const b = await loadModel(back);
    // tok512.bin rebuilt from tokenizer.json (which has merges, not scores): the same pieces, and
    // scores that order merges the same way, so run.c's encoding is unchanged
    const text = readFileSync(resolve(SHARED, 'data/tinystories-valid-excerpt.txt'), 'utf8');
    assert.equal(b.tokenizer!.kind, 'llama2c');
    assert.deepEqual(b.tokenizer!.encode(text), a.tokenizer!.encode(text));
    for (let i = 0; i < 512; i++) assert.equal(b.tokenizer!.tokenPiece(i), a.tokenizer!.tokenPiece(i));
    for (const [name, t] of a.tensors) assert.deepEqual(await b.tensors.get(name)!.readF32(), await t.readF32(), name);
    await a.close();
    await b.close();
  });
});

test('convert refuses its input, an existing output without --force, and f16 for llama2.c', { skip }, async () => {
  await withTempDir('bitscale-conv-', async (dir) => {
    await assert.rejects(convertModel(CKPT, CKPT), (e: unknown) => e instanceof IoError && e.code === 'would_overwrite_input');
    const out = join(dir, 'a.gguf');
    await convertModel(CKPT, out, { dtype: 'F16' });
    await assert.rejects(convertModel(CKPT, out), (e: unknown) => e instanceof IoError && e.code === 'exists');
    await convertModel(CKPT, out, { overwrite: true });
    await assert.rejects(convertModel(out, join(dir, 'x.bin'), { dtype: 'F16' }), (e: unknown) => e instanceof ConfigError && e.context.field === '--dtype');
    const p = cli('convert', CKPT, join(dir, 'b.gguf'), '--dtype', 'f8');
    assert.equal(p.status, 2);
    assert.match(p.stderr, /--dtype/);
  });
});

test('an aborted conversion leaves no output and no temporary file', { skip }, async () => {
  await withTempDir('bitscale-conv-', async (dir) => {
    const ac = new AbortController();
    let seen = 0;
    const run = convertModel(CKPT, join(dir, 'a.gguf'), {
      signal: ac.signal,
      onProgress: () => {
        if (++seen === 3) ac.abort();
      },
    });
    await assert.rejects(run, (e: unknown) => (e as { code?: string }).code === 'interrupted');
    assert.deepEqual(readdirSync(dir), []);
    await assert.rejects(convertModel(CKPT, join(dir, 'hf'), { signal: AbortSignal.abort() }), (e: unknown) => (e as { code?: string }).code === 'interrupted');
    assert.deepEqual(readdirSync(dir), []);
  });
});
