// The page's own behaviour, apart from the CLI comparison (app.test.ts). Bad input: a corrupt file,
// a folder without config.json, an unsupported architecture each give a clear message in the page
// (the typed error's words: what, where, expected, found), nothing crashes (no uncaught error), and
// the page stays usable. Cancel stops a job and leaves no partial output. Drag and drop opens a
// model, and the File System Access path (a file picker's writable stream) writes the same bytes
// as the plain download.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHash } from 'node:crypto';
import { buildApp, download, idle, openApp, openFiles, openFolder, quantize, webSkip, type App } from './harness.js';
import { writeGeneratedGguf } from '../../bench/gen-llama.js';
import type { ModelConfig } from '../../src/model/config.js';

/** A tiny generated Llama (the tensor-table test sets its layer count). */
const SMALL: ModelConfig = {
  architecture: 'llama', vocabSize: 320, hiddenSize: 32, intermediateSize: 64, nLayers: 1, nHeads: 4, nKvHeads: 4, headDim: 8,
  maxSeqLen: 64, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeLayout: 'half', tiedEmbeddings: true, attentionBias: false, qkNorm: false, bosTokenId: 1, eosTokenId: 2,
};

const skip = webSkip();
let built: { dir: string; cleanup: () => void } | null = null;
let app: App | null = null;
let tmp = '';

before(async () => {
  if (skip) return;
  built = await buildApp();
  app = await openApp(built.dir);
  tmp = mkdtempSync(join(tmpdir(), 'bitscale-webbad-'));
});
after(async () => {
  await app?.close();
  built?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const DEFAULT = 'assets/default-model';

async function stillUsable(a: App): Promise<void> {
  assert.ok(await a.page.isHidden('#job'), 'the job bar is gone once the job ended');
  assert.equal(await openFolder(a.page, DEFAULT), '', 'a good model opens after the bad one');
  assert.match((await a.page.textContent('#arch')) ?? '', /vocab 1,024, hidden 128/);
  assert.deepEqual(a.errors, [], 'no uncaught error in the page');
}

test('a corrupt GGUF (cut inside its metadata) and a file that is no model: a message naming the file and what is wrong', { skip }, async () => {
  const a = app!;
  // GGUF v3 with 2 tensors and 1 metadata pair announced, cut inside the first key
  const gguf = join(tmp, 'cut.gguf');
  const head = Buffer.alloc(4 + 4 + 8 + 8 + 8 + 3);
  head.write('GGUF', 0, 'latin1');
  head.writeUInt32LE(3, 4);
  head.writeBigUInt64LE(2n, 8);
  head.writeBigUInt64LE(1n, 16);
  head.writeBigUInt64LE(20n, 24);
  head.write('gen', 32, 'latin1');
  writeFileSync(gguf, head);
  const m1 = await openFiles(a.page, gguf);
  assert.match(m1, /cut\.gguf/, 'the message names the file');
  assert.match(m1, /truncated|ended|past the end|bytes/i, `the message says the file is cut short: ${m1}`);
  const junk = join(tmp, 'notes.bin');
  writeFileSync(junk, new Uint8Array(100).fill(7));
  const m2 = await openFiles(a.page, junk);
  assert.ok(m2.length > 20, `a message for a file that is no model: ${m2}`);
  assert.ok(await a.page.isVisible('#message'), 'the message is shown in the page');
  await stillUsable(a);
});

test('a Hugging Face folder without config.json: the message says config.json is missing', { skip }, async () => {
  const a = app!;
  const dir = join(tmp, 'no-config');
  mkdirSync(dir);
  copyFileSync(join(DEFAULT, 'model.safetensors'), join(dir, 'model.safetensors'));
  copyFileSync(join(DEFAULT, 'tokenizer.json'), join(dir, 'tokenizer.json'));
  const m = await openFolder(a.page, dir);
  assert.match(m, /config\.json/);
  assert.match(m, /no config\.json/);
  await stillUsable(a);
});

test('an unsupported architecture (GPT-2 config): the message names the architecture', { skip }, async () => {
  const a = app!;
  const dir = join(tmp, 'gpt2');
  mkdirSync(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify({ architectures: ['GPT2LMHeadModel'], model_type: 'gpt2', n_embd: 64, n_layer: 2, n_head: 2, vocab_size: 100 }));
  copyFileSync(join(DEFAULT, 'model.safetensors'), join(dir, 'model.safetensors'));
  const m = await openFolder(a.page, dir);
  assert.match(m, /gpt2|GPT2LMHeadModel/);
  assert.match(m, /unsupported|not supported/i);
  await stillUsable(a);
});

test('a scheme the model cannot take: the quantize step reports it and the page quantizes again right after', { skip }, async () => {
  const a = app!;
  assert.equal(await openFolder(a.page, DEFAULT), '');
  const m = await quantize(a.page, { scheme: 'int4-g7000', method: 'rtn', out: 'bad', verify: false });
  assert.ok(m.length > 10, `a message: ${m}`);
  assert.equal(await quantize(a.page, { scheme: 'q8_0', method: 'rtn', out: 'ok.gguf', verify: false }), '');
  assert.deepEqual(a.errors, []);
});

test('cancel during a GPTQ run: the page says so, keeps no partial output, and the next quantize gives the same bytes as before', { skip }, async () => {
  const a = app!;
  const page = a.page;
  assert.equal(await openFolder(page, DEFAULT), '');
  assert.equal(await quantize(page, { scheme: 'q4_0', method: 'rtn', out: 'before.gguf', verify: false }), '');
  const blobOf = (name: string) =>
    page.evaluate(async (n) => {
      const o = (window as unknown as { bitscale: { state: { outputs: { output: { name: string; files: { blob: Blob }[] } }[] } } }).bitscale.state.outputs.find((x) => x.output.name === n);
      if (!o) return null;
      const d = new Uint8Array(await crypto.subtle.digest('SHA-256', await o.output.files[0].blob.arrayBuffer()));
      return Array.from(d, (b) => b.toString(16).padStart(2, '0')).join('');
    }, name);
  const before = await blobOf('before.gguf');
  assert.ok(before, 'the first output is there');
  // enough calibration to still be running when the progress bar first counts
  await page.fill('#scheme', 'int4-g128');
  await page.selectOption('#method', 'gptq');
  await page.fill('#out-name', 'cancelled');
  await page.fill('#windows', '24');
  await page.fill('#seq-len', '128');
  await page.setChecked('#verify', true);
  await page.click('#run-quantize');
  await page.waitForFunction(() => /\d+\/\d+/.test(document.getElementById('progress-text')!.textContent ?? ''), null, { timeout: 60_000, polling: 50 });
  await page.click('#cancel');
  const m = await idle(page);
  assert.match(m, /cancel/i, `the page says the job was cancelled: ${m}`);
  const names = await page.evaluate(() => (window as unknown as { bitscale: { state: { outputs: { output: { name: string } }[] } } }).bitscale.state.outputs.map((o) => o.output.name));
  assert.ok(!names.includes('cancelled'), `no output from the cancelled job: ${names.join(', ')}`);
  // the (possibly replaced) worker still has the model: the same job gives the same bytes
  assert.equal(await quantize(page, { scheme: 'q4_0', method: 'rtn', out: 'after.gguf', verify: false }), '');
  assert.deepEqual(await blobOf('after.gguf'), before, 'the same output after the cancel');
  assert.deepEqual(a.errors, [], 'no uncaught error in the page');
});

test('a kernel Web Worker that dies mid-job: the page shows the error instead of waiting forever, and the next quantize runs', { skip }, async () => {
  const a = app!;
  const page = a.page;
  assert.equal(await openFolder(page, DEFAULT), '');
  // the streaming RTN path's kernel worker, replaced by one that throws at its first rows job: an
  // uncaught error in a worker reaches its owner only as an 'error' event (no reply), which the
  // pool must turn into a failed job (before, the job waited for the reply for good)
  // (swapped on the server's disk: a nested worker's script request does not pass playwright's routes)
  const kernels = join(built!.dir, 'kernels.js');
  const real = readFileSync(kernels);
  writeFileSync(kernels, "self.onmessage = () => { throw new Error('kernel worker killed by the test'); };");
  try {
    const m = await quantize(page, { scheme: 'q4_0', method: 'rtn', out: 'killed.gguf', verify: false });
    assert.match(m, /kernel worker 0 failed.*killed by the test/, `the page names the failure: ${m}`);
  } finally {
    writeFileSync(kernels, real);
  }
  const names = await page.evaluate(() => (window as unknown as Win).bitscale.state.outputs.map((o) => o.output.name));
  assert.ok(!names.includes('killed.gguf'), `no output from the failed job: ${names.join(', ')}`);
  assert.equal(await quantize(page, { scheme: 'q4_0', method: 'rtn', out: 'after-kill.gguf', verify: false }), '', 'the next job runs');
  assert.deepEqual(a.errors, [], 'no uncaught error in the page');
});

type Win = { bitscale: { state: { outputs: { output: { name: string; files: { name: string; blob: Blob }[] } }[] } } };

test('drag and drop: a GGUF the page wrote, dropped on the page, opens as a model', { skip }, async () => {
  const page = app!.page;
  assert.equal(await openFolder(page, DEFAULT), '');
  assert.equal(await quantize(page, { scheme: 'q8_0', method: 'rtn', out: 'dropped.gguf', verify: false }), '');
  const dt = await page.evaluateHandle(() => {
    const o = (window as unknown as Win).bitscale.state.outputs.find((x) => x.output.name === 'dropped.gguf')!;
    const d = new DataTransfer();
    d.items.add(new File([o.output.files[0].blob], 'dropped.gguf'));
    return d;
  });
  await page.dispatchEvent('#drop', 'drop', { dataTransfer: dt });
  await page.waitForFunction(() => document.body.classList.contains('busy') || !document.getElementById('message')!.hidden, null, { timeout: 10_000 }).catch(() => undefined);
  assert.equal(await idle(page), '', 'the dropped GGUF opens');
  assert.match((await page.textContent('#inspect-body')) ?? '', /dropped\.gguf/);
  assert.match((await page.textContent('#inspect-body')) ?? '', /Q8_0/, 'the inspect report shows the Q8_0 tensors');
  assert.deepEqual(app!.errors, []);
});

test('File System Access: a file and a folder (zip) written through a picker’s writable stream equal the plain downloads', { skip }, async () => {
  const page = app!.page;
  assert.equal(await openFolder(page, DEFAULT), '');
  assert.equal(await quantize(page, { scheme: 'q4_0', method: 'rtn', out: 'fsa.gguf', verify: false }), '');
  assert.equal(await quantize(page, { scheme: 'int4-g128', method: 'rtn', out: 'fsa-int4', verify: false }), '');
  // a stand-in picker: its writable records each chunk it is given
  await page.evaluate(() => {
    const w = window as unknown as { showSaveFilePicker: unknown; saved: Record<string, { chunks: number; bytes: number[] }> };
    w.saved = {};
    w.showSaveFilePicker = async ({ suggestedName }: { suggestedName: string }) => ({
      async createWritable() {
        const parts: Uint8Array[] = [];
        return {
          async write(c: Uint8Array | Blob) {
            parts.push(c instanceof Blob ? new Uint8Array(await c.arrayBuffer()) : new Uint8Array(c));
          },
          async close() {
            const all = new Uint8Array(await new Blob(parts as BlobPart[]).arrayBuffer());
            const d = new Uint8Array(await crypto.subtle.digest('SHA-256', all));
            w.saved[suggestedName] = { chunks: parts.length, bytes: Array.from(d) };
          },
        };
      },
    });
  });
  await page.setChecked('#picker', true);
  for (const name of ['fsa.gguf', 'fsa-int4']) {
    const i = await page.evaluate((n) => (window as unknown as Win).bitscale.state.outputs.findIndex((o) => o.output.name === n), name);
    await page.click(`button.download[data-i="${i}"]`);
  }
  await page.waitForFunction(() => Object.keys((window as unknown as { saved: object }).saved).length === 2, null, { timeout: 20_000 });
  const saved = await page.evaluate(() => (window as unknown as { saved: Record<string, { chunks: number; bytes: number[] }> }).saved);
  const sha = (b: Uint8Array) => Array.from(createHash('sha256').update(b).digest());
  const file = await download(page, 'fsa.gguf');
  const zip = await download(page, 'fsa-int4');
  assert.deepEqual(saved['fsa.gguf'].bytes, sha(file.bytes), 'the streamed file equals the download');
  assert.deepEqual(saved['fsa-int4.zip'].bytes, sha(zip.bytes), 'the streamed zip equals the downloaded zip');
  assert.ok(saved['fsa-int4.zip'].chunks > 1, 'the zip is written in chunks, not as one buffer');
  assert.deepEqual(app!.errors, []);
});

test('a model with more tensors than TENSOR_ROWS_OPEN: its tensor table starts closed with no rows, and opening it builds one row per tensor', { skip }, async () => {
  const page = app!.page;
  // 8 layers of a tiny Llama: 8 × 9 + 2 tensors (tied embeddings), more than the 64 shown open
  const path = join(tmp, 'many-tensors.gguf');
  await writeGeneratedGguf(path, { ...SMALL, nLayers: 8 }, 'F32');
  assert.equal(await openFiles(page, path), '');
  const state = () => page.evaluate(() => ({ open: (document.getElementById('tensors') as HTMLDetailsElement).open, rows: document.querySelectorAll('#tensors table.tensors tbody tr').length }));
  assert.deepEqual(await state(), { open: false, rows: 0 });
  await page.click('#tensors summary');
  await page.waitForFunction(() => document.querySelectorAll('#tensors table.tensors tbody tr').length > 0);
  assert.deepEqual(await state(), { open: true, rows: 74 });
  assert.match((await page.textContent('#tensors')) ?? '', /blk\.7\.ffn_down\.weight/);
  // closed and opened again: the rows are not built twice
  await page.click('#tensors summary');
  await page.click('#tensors summary');
  assert.deepEqual(await state(), { open: true, rows: 74 });
  assert.deepEqual(app!.errors, []);
});
