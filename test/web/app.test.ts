// The browser app against the CLI, as a user drives it: Chromium opens the page, loads a model
// through the file inputs, quantizes it (Q4_0 RTN and int4-g128 GPTQ on the built-in text),
// evaluates both against the float model and downloads them. The downloads must be byte for byte
// the CLI's files for the same options and seed, the page's perplexities the CLI's within 1e-4,
// and the page must never reach outside its own origin (every request intercepted). Calibrated
// outputs (GPTQ, AWQ) are compared with the CLI's `--calib-runtime portable` run: the page always
// calibrates on onnxruntime-web's WASM kernels, which that option runs in Node (the native kernels
// sum in another order, so their GPTQ files differ in a few codes: test/pipeline/quantize/calib-runtime.test.ts).
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { unzipSync } from 'fflate';
import type { Browser } from 'playwright-core';
import { buildApp, cli, launchChromium, download, evaluate, openApp, openFiles, openFolder, quantize, sharedMissing, webSkip, STORIES, SHARED, type App } from './harness.js';

/** perplexity agreement between the page (onnxruntime-web) and the CLI (onnxruntime-node) */
const PPL_TOL = 1e-4;
/** KL divergence agreement (nats/token), same runtimes */
const KLD_TOL = 1e-5;
/** the evaluation's token budget and context (both flows; the CLI is given the same) */
const EVAL_TOKENS = 128;
const EVAL_CTX = 64;
/**
 * A guard against a hung page, not a speed goal: on an idle machine each flow takes well under a
 * minute, but the shared 2-core VM at a load average of 20–30 has stretched one past 4 minutes
 */
const TEST_TIMEOUT_MS = 600_000;

const skip = webSkip();
let built: { dir: string; cleanup: () => void } | null = null;
let tmp = '';

// one Chromium for the file's flows (each gets its own context and page)
let browser: Browser | null = null;

before(async () => {
  if (skip) return;
  built = await buildApp();
  browser = await launchChromium();
  tmp = mkdtempSync(join(tmpdir(), 'bitscale-webtest-'));
});
after(async () => {
  await browser?.close();
  built?.cleanup();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const n of readdirSync(dir)) {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) out.push(...filesUnder(p).map((f) => join(n, f)));
    else out.push(n);
  }
  return out.sort();
}

/**
 * Relative agreement of the manifest's Hessian-weighted SQNR (a report figure, not part of the
 * files): RTN's comes from the native runtime in the CLI and from the WASM one in the page
 */
const SQNR_REL_TOL = 1e-6;
/** the CLI's options that make a calibrated output the page's (the page's calibration runtime) */
const PORTABLE = ['--calib-runtime', 'portable'];

/**
 * The manifest fields that depend only on the inputs, the options and the seed (not on paths or
 * clocks); a calibration text as named (the page names the user's file by its name, as the CLI run
 * beside it with `--calib NAME` does)
 */
function manifestCore(bytes: Uint8Array): { core: unknown; sqnr: (number | null)[] } {
  const m = JSON.parse(new TextDecoder().decode(bytes));
  const tensors = (m.tensors ?? []) as { sqnrDb: number | null }[];
  return {
    core: { settings: m.settings, calibration: m.calibration, tensors: tensors.map((t) => ({ ...t, sqnrDb: undefined })), fallbacks: m.fallbacks, inputHashes: Object.values(m.input?.sha256 ?? {}).sort() },
    sqnr: tensors.map((t) => t.sqnrDb),
  };
}

function assertManifestsAgree(a: Uint8Array, b: Uint8Array, what: string, sqnrRelTol = SQNR_REL_TOL): void {
  const ma = manifestCore(a);
  const mb = manifestCore(b);
  assert.deepEqual(ma.core, mb.core, `${what}: settings, calibration, tensors and input hashes`);
  ma.sqnr.forEach((x, i) => {
    const y = mb.sqnr[i];
    assert.ok(x === y || (x !== null && y !== null && Math.abs(x - y) <= sqnrRelTol * Math.abs(y)), `${what}: tensor ${i} SQNR ${x} vs ${y}`);
  });
}

/** Bytes that differ between two equal-length files (Infinity when the lengths differ). */
function differingBytes(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) return Infinity;
  let n = 0;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++;
  return n;
}

/** A folder download (zip) holds exactly the CLI folder's files, byte for byte (the manifest by its path-free fields). */
function assertZipEqualsFolder(zip: Uint8Array, folder: string, name: string): void {
  const entries = unzipSync(zip);
  const got = Object.keys(entries).filter((k) => !k.endsWith('/')).sort();
  const want = filesUnder(folder).map((f) => `${name}/${f}`);
  assert.deepEqual(got, want, 'the zip holds the CLI folder’s files');
  // the model files first, then the manifest
  for (const f of filesUnder(folder).sort((x, y) => Number(x === 'bitscale-manifest.json') - Number(y === 'bitscale-manifest.json'))) {
    const a = entries[`${name}/${f}`];
    const b = new Uint8Array(readFileSync(join(folder, f)));
    if (f === 'bitscale-manifest.json') assertManifestsAgree(a, b, `${name}/${f}`);
    else assert.ok(Buffer.compare(Buffer.from(a), Buffer.from(b)) === 0, `${name}/${f}: ${a.length} bytes from the page, ${b.length} from the CLI, ${differingBytes(a, b)} differ: must be identical`);
  }
}

interface Flow {
  /** files for #files, or a folder for #folder */
  open: { files: string[] } | { folder: string };
  /** the model path the CLI is given */
  model: string;
  /** GPTQ output format ('' = as the CLI chooses from --out) */
  gptqFormat: string;
  stem: string;
  text: string;
  maxTokens: number;
  ctx: number;
  windows: number;
  seqLen: number;
  /** a llama.cpp named file type also quantized (RTN) and compared byte for byte with the CLI's */
  named?: string;
}

async function runFlow(app: App, f: Flow): Promise<void> {
  const q4 = `${f.stem}-rtn-q4_0.gguf`;
  const g4 = `${f.stem}-gptq-int4-g128`;
  const cliDir = mkdtempSync(join(tmp, `${f.stem}-`));
  const calibArgs = ['--windows', String(f.windows), '--seq-len', String(f.seqLen)];
  // the CLI runs alongside the page (its own process)
  const cliRuns = (async () => {
    await cli(['quantize', f.model, '--out', join(cliDir, q4), '--scheme', 'q4_0', '--method', 'rtn', '--seed', '0', '--no-verify', '--quiet']);
    if (f.named) await cli(['quantize', f.model, '--out', join(cliDir, `${f.stem}-${f.named}.gguf`), '--scheme', f.named, '--method', 'rtn', '--seed', '0', '--no-verify', '--quiet']);
    await cli(['quantize', f.model, '--out', join(cliDir, g4), '--scheme', 'int4-g128', '--method', 'gptq', '--seed', '0', '--no-verify', '--quiet', ...PORTABLE, ...calibArgs, ...(f.gptqFormat ? ['--format', f.gptqFormat] : [])]);
    const ev = async (m: string) => JSON.parse(await cli(['eval', join(cliDir, m), '--text', f.text, '--max-tokens', String(f.maxTokens), '--ctx', String(f.ctx), '--base', f.model, '--json', '--quiet']));
    return { q4: await ev(q4), g4: await ev(g4) };
  })();

  const page = app.page;
  const t0 = Date.now();
  const lap = (what: string) => process.env.BITSCALE_WEB_TIMES && console.log(`${f.stem} ${what}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  const opened = 'files' in f.open ? await openFiles(page, f.open.files) : await openFolder(page, f.open.folder);
  assert.equal(opened, '', 'the model opens without a message');
  assert.ok(await page.isVisible('#inspect'), 'the inspect report is shown');
  lap('opened');

  assert.equal(await quantize(page, { scheme: 'q4_0', method: 'rtn', out: q4, verify: false }), '');
  // RTN to GGUF without the reload check streams tensor by tensor on the ggml kernels' Web Workers
  const ranOn = await page.evaluate((n) => (window as unknown as { bitscale: { state: { outputs: { output: { name: string }; ranOn: string }[] } } }).bitscale.state.outputs.find((o) => o.output.name === n)?.ranOn, q4);
  assert.equal(ranOn, 'streamed, 1 kernel Web Worker', 'the streaming RTN path ran on the kernel workers');
  assert.equal(await quantize(page, { scheme: 'int4-g128', method: 'gptq', format: f.gptqFormat, out: g4, windows: f.windows, seqLen: f.seqLen, verify: false }), '');
  lap('quantized');
  const ev = await evaluate(page, f.text, f.maxTokens, f.ctx);
  lap('evaluated');
  assert.equal(ev.message, '', 'evaluation runs without a message');
  assert.deepEqual(ev.results.map((r) => r.target), ['model', q4, g4]);
  assert.ok(await page.isVisible('#chart svg'), 'the Pareto chart is drawn');
  assert.match((await page.textContent('#ship')) ?? '', /What to ship/);
  if (f.named) {
    // after the evaluation (which measures every output): a llama.cpp file type from the list
    assert.ok(await page.$(`#schemes option[value="${f.named}"]`), `the scheme list offers ${f.named}`);
    assert.equal(await quantize(page, { scheme: f.named, method: 'rtn', out: `${f.stem}-${f.named}.gguf`, verify: false }), '');
  }

  const dq4 = await download(page, q4);
  assert.equal(dq4.name, q4);
  const dg4 = await download(page, g4);
  assert.equal(dg4.name, `${g4}.zip`);

  lap('downloaded');
  const ref = await cliRuns;
  lap('CLI done');
  assert.ok(Buffer.compare(Buffer.from(dq4.bytes), readFileSync(join(cliDir, q4))) === 0, `${q4}: the page's download equals the CLI's file`);
  if (f.named) {
    const n = `${f.stem}-${f.named}.gguf`;
    const dn = await download(page, n);
    assert.ok(Buffer.compare(Buffer.from(dn.bytes), readFileSync(join(cliDir, n))) === 0, `${n}: the page's llama.cpp file type equals the CLI's file`);
  }
  assertZipEqualsFolder(dg4.bytes, join(cliDir, g4), g4);

  const page4 = ev.results.find((r) => r.target === q4)!;
  const pageG = ev.results.find((r) => r.target === g4)!;
  const base = ev.results.find((r) => r.target === 'model')!;
  // the same files: the page's measurements (onnxruntime-web) equal the CLI's (onnxruntime-node)
  for (const [name, p, c] of [[q4, page4, ref.q4], [g4, pageG, ref.g4]] as const) {
    assert.equal(p.tokens, c.tokens, `${name}: same tokens scored`);
    assert.ok(Math.abs(p.ppl - c.ppl) <= PPL_TOL, `${name}: page PPL ${p.ppl} vs CLI ${c.ppl}`);
    assert.ok(Math.abs(p.kld! - c.base.kld) <= KLD_TOL, `${name}: page KLD ${p.kld} vs CLI ${c.base.kld}`);
    assert.ok(Math.abs(p.top1! - c.base.top1Agreement) <= 1 / c.tokens + 1e-12, `${name}: top-1 ${p.top1} vs ${c.base.top1Agreement}`);
  }
  assert.ok(Math.abs(base.ppl - ref.q4.base.ppl) <= PPL_TOL, `float model: page PPL ${base.ppl} vs CLI ${ref.q4.base.ppl}`);
  assert.ok(ev.results.every((r) => r.tokens >= f.maxTokens - 1), 'the whole token budget was scored');
}

function assertOwnOrigin(app: App): void {
  assert.deepEqual(app.refused, [], 'no request outside the page’s origin');
  assert.ok(app.requests.some((u) => u.endsWith('.wasm')), 'the worker’s requests are intercepted too (onnxruntime-web’s WASM came from the origin)');
  assert.deepEqual(app.errors, [], 'no uncaught error in the page');
}

test('stories260K (llama2.c + tokenizer.bin) in the page: Q4_0 RTN and int4-g128 GPTQ (ONNX folder) equal the CLI’s files and perplexities', { skip: skip || sharedMissing(), timeout: TEST_TIMEOUT_MS }, async () => {
  const app = await openApp(built!.dir, [], browser!);
  try {
    await runFlow(app, {
      open: { files: [join(STORIES, 'stories260K.bin'), join(STORIES, 'tok512.bin')] },
      model: join(STORIES, 'stories260K.bin'),
      // dim 64 is below the group of 128: GPTQ-packed safetensors cannot hold it, the ONNX folder can
      gptqFormat: 'onnx',
      stem: 'stories260K',
      named: 'q4_k_m',
      text: join(SHARED, 'data', 'tinystories-valid-excerpt.txt'),
      // a short budget (two windows of 64): the page and the CLI score the same tokens of the same
      // text, which is what the comparison needs; more tokens only make the flow slower
      maxTokens: EVAL_TOKENS,
      ctx: EVAL_CTX,
      windows: 4,
      seqLen: 64,
    });
    assertOwnOrigin(app);
  } finally {
    await app.close();
  }
});

test('the default model’s Hugging Face folder in the page: Q4_0 RTN (GGUF) and int4-g128 GPTQ (GPTQ safetensors) equal the CLI’s', { skip: skip || sharedMissing(), timeout: TEST_TIMEOUT_MS }, async () => {
  const app = await openApp(built!.dir, [], browser!);
  try {
    await runFlow(app, {
      open: { folder: 'assets/default-model' },
      model: 'assets/default-model',
      gptqFormat: '',
      stem: 'default-model',
      text: join(SHARED, 'data', 'tinystories-valid-excerpt.txt'),
      maxTokens: EVAL_TOKENS,
      ctx: EVAL_CTX,
      windows: 4,
      seqLen: 64,
    });
    assertOwnOrigin(app);
    void relative;
  } finally {
    await app.close();
  }
});

test('calibration on a text file the user chooses (GPTQ), AWQ and GPTQ with act order: the page’s folders equal the CLI’s', { skip, timeout: TEST_TIMEOUT_MS }, async () => {
  const model = 'assets/default-model';
  // a text of the user's: the default model's own README (not the built-in calibration text)
  const calib = join(model, 'README.md');
  const calibArgs = ['--windows', '4', '--seq-len', '64', '--seed', '0', '--no-verify', '--quiet', ...PORTABLE];
  const cliDir = mkdtempSync(join(tmp, 'calib-'));
  const cliRuns = (async () => {
    // run beside the text (`--calib README.md`): its manifest names the file as the page does
    await cli(['quantize', '.', '--out', join(cliDir, 'gptq-file'), '--scheme', 'int4-g128', '--method', 'gptq', '--calib', 'README.md', ...calibArgs], model);
    await cli(['quantize', model, '--out', join(cliDir, 'awq'), '--scheme', 'int4-g128', '--method', 'awq', ...calibArgs]);
    await cli(['quantize', model, '--out', join(cliDir, 'gptq-act'), '--scheme', 'int4-g128', '--method', 'gptq', '--act-order', ...calibArgs]);
  })();
  const app = await openApp(built!.dir, [], browser!);
  try {
    const page = app.page;
    assert.equal(await openFolder(page, model), '');
    const form = { scheme: 'int4-g128', windows: 4, seqLen: 64, verify: false };
    assert.equal(await quantize(page, { ...form, method: 'gptq', out: 'gptq-file', calib }), '');
    assert.equal(await quantize(page, { ...form, method: 'gptq', out: 'gptq-builtin' }), '');
    assert.equal(await quantize(page, { ...form, method: 'awq', out: 'awq' }), '');
    assert.equal(await quantize(page, { ...form, method: 'gptq', out: 'gptq-act', actOrder: true }), '');
    const file = await download(page, 'gptq-file');
    const builtin = await download(page, 'gptq-builtin');
    const awq = await download(page, 'awq');
    const act = await download(page, 'gptq-act');
    await cliRuns;
    assertZipEqualsFolder(file.bytes, join(cliDir, 'gptq-file'), 'gptq-file');
    assert.equal(JSON.parse(new TextDecoder().decode(unzipSync(file.bytes)['gptq-file/bitscale-manifest.json'])).calibration.source, 'README.md', 'the manifest names the user’s file');
    assertZipEqualsFolder(awq.bytes, join(cliDir, 'awq'), 'awq');
    assertZipEqualsFolder(act.bytes, join(cliDir, 'gptq-act'), 'gptq-act');
    // the chosen text was used: GPTQ on it differs from GPTQ on the built-in text
    const weights = (zip: Uint8Array, name: string) => unzipSync(zip)[`${name}/model.safetensors`];
    assert.ok(weights(file.bytes, 'gptq-file') && Buffer.compare(Buffer.from(weights(file.bytes, 'gptq-file')), Buffer.from(weights(builtin.bytes, 'gptq-builtin'))) !== 0, 'calibration on the file changes the weights');
    assert.equal(JSON.parse(new TextDecoder().decode(unzipSync(act.bytes)['gptq-act/bitscale-manifest.json'])).settings.actOrder, true);
    assert.ok(Buffer.compare(Buffer.from(weights(act.bytes, 'gptq-act')), Buffer.from(weights(builtin.bytes, 'gptq-builtin'))) !== 0, 'act order changes the weights');
    assertOwnOrigin(app);
  } finally {
    await app.close();
  }
});
