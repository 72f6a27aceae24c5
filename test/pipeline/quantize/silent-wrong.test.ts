// Issue 15, items 7–10: results that used to be silently wrong now stop the command with a typed
// error that names the file, the tensor (or field), the index and the value: NaN/Inf weights at
// every entry path, narrowing overflow, verification beyond its stated tolerance (no output at the
// final path), text that is not UTF-8 (with its byte offset) or too short, and GGUF token ids.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { BitscaleError } from '../../../src/core/errors.js';
import { memorySource } from '../../../src/formats/bytes.js';
import { encodeGguf, readGguf, type GgufValue } from '../../../src/formats/gguf/index.js';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { llamaCppTolerance } from '../../../src/pipeline/quantize/tolerance.js';
import { cliIn } from '../../cli-run.js';

const SHARED = resolve('..', 'shared');
const skip = existsSync(join(SHARED, 'models/stories260K/stories260K.bin')) ? false : 'needs ../shared (stories260K)';

function workdir(): string {
  const d = mkdtempSync(join(tmpdir(), 'bitscale-silent-'));
  for (const f of ['stories260K.bin', 'tok512.bin']) copyFileSync(join(SHARED, 'models/stories260K', f), join(d, f));
  copyFileSync(join(SHARED, 'data/tinystories-sample.txt'), join(d, 'text.txt'));
  return d;
}

/** Writes `value` at element `index` of an F32 tensor inside a .safetensors file, in place. */
function patchSafetensors(file: string, tensor: string, index: number, value: number): void {
  const b = readFileSync(file);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<string, { dtype: string; data_offsets: [number, number] }>;
  const t = header[tensor];
  assert.equal(t.dtype, 'F32');
  b.writeFloatLE(value, 8 + n + t.data_offsets[0] + 4 * index);
  writeFileSync(file, b);
}

async function fails(args: string[], cwd: string, code: string, ...res: RegExp[]) {
  const r = await cliIn(args, cwd);
  assert.notEqual(r.status, 0, `${args.join(' ')} exited 0\n${r.stdout}`);
  assert.equal(r.status, code === 'bad_option' ? 2 : 1, r.stderr);
  assert.match(r.stderr, new RegExp(`\\[${code}\\]`), `${args.join(' ')}\n${r.stderr}`);
  for (const re of res) assert.match(r.stderr, re, `${args.join(' ')}\n${r.stderr}`);
  assert.doesNotMatch(r.stderr, /expected undefined|found null|unexpected error|\n\s+at /);
  return r;
}

test('7b: a NaN in an embedding row the engine reads lazily from a GGUF (range reads of block codes) names the tensor and index', { skip, timeout: 120_000 }, async () => {
  const d = workdir();
  try {
    assert.equal((await cliIn(['quantize', 'stories260K.bin', '--out', 'q.gguf', '--scheme', 'q8_0', '--no-verify'], d)).status, 0);
    const file = join(d, 'q.gguf');
    const g = await readGguf(memorySource(new Uint8Array(readFileSync(file)), file));
    const t = g.tensors.find((x) => x.name === 'token_embd.weight')!;
    assert.equal(t.type, 'Q8_0');
    const E = t.ne[0];
    // Q8_0 rows are E/32 blocks of (f16 scale, 32 int8): row 1 (the BOS token every window starts
    // with) gets a NaN scale in its second block, so its elements 32..63 decode to NaN
    const b = readFileSync(file);
    b.writeUInt16LE(0x7e00, t.absoluteOffset + (E / 32) * 34 + 34);
    writeFileSync(file, b);
    await fails(['eval', 'q.gguf', '--text', 'text.txt', '--ctx', '64', '--max-windows', '1'], d, 'non_finite', /tensor 'model\.embed_tokens\.weight'/, new RegExp(`index ${E + 32}\\b`), /found NaN/);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('7: a NaN or Inf weight stops quantize, eval, imatrix, convert and GPTQ, naming file, tensor, index and value', { skip, timeout: 240_000 }, async () => {
  const d = workdir();
  try {
    assert.equal((await cliIn(['convert', 'stories260K.bin', 'hf', '--to', 'hf'], d)).status, 0);
    cpSync(join(d, 'hf'), join(d, 'nan-emb'), { recursive: true });
    patchSafetensors(join(d, 'nan-emb', 'model.safetensors'), 'model.embed_tokens.weight', 77, NaN);
    cpSync(join(d, 'hf'), join(d, 'inf-norm'), { recursive: true });
    patchSafetensors(join(d, 'inf-norm', 'model.safetensors'), 'model.layers.1.post_attention_layernorm.weight', 5, -Infinity);
    cpSync(join(d, 'hf'), join(d, 'nan-lin'), { recursive: true });
    patchSafetensors(join(d, 'nan-lin', 'model.safetensors'), 'model.layers.0.mlp.down_proj.weight', 1000, NaN);
    const emb = [/tensor 'model\.embed_tokens\.weight'/, /index 77/, /found NaN/, /nan-emb/];
    await fails(['quantize', 'nan-emb', '--out', 'q.gguf', '--scheme', 'q4_0'], d, 'non_finite', ...emb);
    await fails(['quantize', 'nan-emb', '--out', 'fq', '--format', 'fakequant', '--scheme', 'int8-channel', '--no-verify'], d, 'non_finite', ...emb);
    await fails(['eval', 'nan-emb', '--text', 'text.txt', '--ctx', '64', '--max-windows', '1'], d, 'non_finite', ...emb);
    await fails(['imatrix', 'inf-norm', '--out', 'im.gguf', '--windows', '2', '--seq-len', '16'], d, 'non_finite', /post_attention_layernorm/, /index 5/, /found -Infinity/);
    await fails(['convert', 'inf-norm', 'c.gguf'], d, 'non_finite', /found -Infinity/);
    await fails(['quantize', 'nan-lin', '--out', 'g.gguf', '--scheme', 'q4_0', '--method', 'gptq', '--windows', '2', '--seq-len', '16'], d, 'non_finite', /down_proj/, /index 1000/);
    // finite but too large for F16: an error naming the value, never a silent Inf
    cpSync(join(d, 'hf'), join(d, 'big'), { recursive: true });
    patchSafetensors(join(d, 'big', 'model.safetensors'), 'model.layers.0.self_attn.q_proj.weight', 3, 3e38);
    await fails(['convert', 'big', 'big16', '--to', 'hf', '--dtype', 'f16'], d, 'overflow', /does not fit in F16/, /q_proj/, /index 3/, /found 3(\.\d+)?e\+38/);
    // finite weights whose activations overflow: eval refuses the NaN perplexity
    cpSync(join(d, 'hf'), join(d, 'huge'), { recursive: true });
    for (let i = 0; i < 64; i++) patchSafetensors(join(d, 'huge', 'model.safetensors'), 'model.embed_tokens.weight', 64 + i, 3e38);
    await fails(['eval', 'huge', '--text', 'text.txt', '--ctx', '64', '--max-windows', '1'], d, 'non_finite', /not finite/);
    assert.deepEqual(readdirSync(d).filter((f) => /^(q\.gguf|fq|im\.gguf|c\.gguf|g\.gguf|big16)/.test(f)), [], 'no output from a refused run');
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('8: verification beyond its stated tolerance fails the command and leaves nothing at the final path', { skip, timeout: 240_000 }, async () => {
  const d = workdir();
  try {
    const base = { model: join(d, 'stories260K.bin'), format: 'fakequant' as const, scheme: 'int8-channel', method: 'rtn' as const };
    const ok = await quantizeModel({ ...base, out: join(d, 'ok') });
    const rc = ok.quality.checks!.reload!;
    assert.ok(rc.pass && rc.tolerance > 0 && rc.maxAbsLogitDiff <= rc.tolerance, JSON.stringify(rc));
    assert.ok(ok.quality.logitScale! > 1);
    await assert.rejects(quantizeModel({ ...base, out: join(d, 'tight'), tolerance: { reload: -1 } }), (e: unknown) => e instanceof BitscaleError && e.code === 'mismatch' && /reload check/.test(e.message) && e.message.includes(join(d, 'tight')));
    assert.ok(!existsSync(join(d, 'tight')));
    assert.deepEqual(readdirSync(d).filter((f) => f.startsWith('.')), []);
    // the command line prints each check against its tolerance
    // llama.cpp on the written GGUF, against its derived tolerance (Q8 activations, 2·(L+1) growth)
    const g = await quantizeModel({ ...base, format: 'gguf', scheme: 'q4_0', out: join(d, 'g.gguf') });
    if (g.quality.llamaCpp?.available) {
      const lc = g.quality.checks!.llamaCpp!;
      assert.ok(lc.pass && lc.maxAbsLogitDiff > 0 && lc.maxAbsLogitDiff <= lc.tolerance, JSON.stringify(lc));
      assert.equal(lc.tolerance, llamaCppTolerance(5, g.quality.logitScale!));
    }
    const r = await cliIn(['quantize', 'stories260K.bin', '--out', 'fq', '--format', 'fakequant', '--scheme', 'nf4-g32'], d);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /reload check\s+max \|Δ logit\| \S+ <= tolerance \S+: pass/);
    // and each check's progress line gives its verdict as it finishes (#17)
    assert.match(r.stderr, /\[verify\].*reloaded file: max \|Δ logit\| \S+ <= tolerance \S+: pass/);
    assert.match(r.stderr, /\[verify\].*KL divergence \S+ nats\/token \(measured, no tolerance\)/);
    const m = JSON.parse(readFileSync(join(d, 'fq', 'bitscale-manifest.json'), 'utf8'));
    assert.equal(m.quality.checks.reload.pass, true);
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('9: text that is not UTF-8 is refused with file and byte offset; a one-character text gets the empty text\'s error', { skip, timeout: 120_000 }, async () => {
  const d = workdir();
  try {
    const latin1 = Buffer.concat([Buffer.from('Once upon a time, a caf'), Buffer.from([0xe9]), Buffer.from(' opened in the town. '.repeat(30))]);
    writeFileSync(join(d, 'latin1.txt'), latin1);
    const at = /offset 23/;
    await fails(['eval', 'stories260K.bin', '--text', 'latin1.txt'], d, 'bad_string', /not UTF-8/, /latin1\.txt/, at);
    await fails(['quantize', 'stories260K.bin', '--out', 'q.gguf', '--scheme', 'q4_0', '--method', 'gptq', '--calib', 'latin1.txt'], d, 'bad_string', at);
    await fails(['train', '--config', 'tiny', '--text', 'latin1.txt', '--out', 'run'], d, 'bad_string', at);
    writeFileSync(join(d, 'one.txt'), 'a'); // one token (with BOS: one scored token, no interval)
    writeFileSync(join(d, 'empty.txt'), '');
    const a = await fails(['eval', 'stories260K.bin', '--text', 'one.txt'], d, 'bad_option', /text too short to evaluate/);
    const b = await fails(['eval', 'stories260K.bin', '--text', 'empty.txt'], d, 'bad_option', /text too short to evaluate/);
    assert.doesNotMatch(a.stdout + a.stderr, /NaN/);
    const line = (x: string) => x.split('\n').find((l) => l.startsWith('bitscale: error'))!.replace(/found .*/, '');
    assert.equal(line(a.stderr), line(b.stderr));
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});

test('10: GGUF BOS/EOS/UNK/PAD ids are validated at load, naming the key', { skip, timeout: 120_000 }, async () => {
  const d = workdir();
  try {
    assert.equal((await cliIn(['convert', 'stories260K.bin', 'm.gguf'], d)).status, 0);
    const g = await readGguf(memorySource(readFileSync(join(d, 'm.gguf'))));
    const tensors = await Promise.all(g.tensors.map(async (t) => ({ name: t.name, type: t.type, shape: t.shape, data: await g.readBytes(t.name) })));
    for (const key of ['tokenizer.ggml.bos_token_id', 'tokenizer.ggml.eos_token_id', 'tokenizer.ggml.unknown_token_id', 'tokenizer.ggml.padding_token_id']) {
      const md: [string, GgufValue][] = [...g.metadata].filter(([k]) => k !== key);
      md.push([key, { type: 'u32', value: 512 }]);
      writeFileSync(join(d, 'bad.gguf'), await encodeGguf(md, tensors as never));
      await fails(['eval', 'bad.gguf', '--text', 'text.txt'], d, 'out_of_bounds', new RegExp(key.replace(/\./g, '\\.')), /found 512/, /\[0, 511\]/);
    }
  } finally {
    rmSync(d, { recursive: true, force: true });
  }
});
