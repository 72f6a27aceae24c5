// Screenshots of each step of the browser app for docs/web.md (docs/web-*.png): Chromium
// (playwright-core, Debian's chromium) drives the app on the default model's Hugging Face folder
// exactly as test/web/app.test.ts does. `node --import tsx scripts/web-screenshots.ts [--out docs]`.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Page } from 'playwright-core';
import { buildApp, evaluate, idle, openApp, openFolder, quantize, webSkip } from '../test/web/harness.js';
import { BUILTIN_CALIBRATION_TEXT } from '../src/pipeline/calibrate/text.table.js';

const MODEL = 'assets/default-model';
const i = process.argv.indexOf('--out');
const OUT = resolve(i > 0 ? process.argv[i + 1] : 'docs');

async function shot(page: Page, name: string, selector?: string): Promise<void> {
  await page.waitForSelector('#job', { state: 'hidden' });
  await page.waitForTimeout(200);
  const path = join(OUT, `web-${name}.png`);
  if (selector) await page.locator(selector).screenshot({ path });
  else await page.screenshot({ path });
  console.log(`wrote ${path}`);
}

const skip = webSkip();
if (skip) {
  console.log(`skipped: ${skip}`);
  process.exit(0);
}
mkdirSync(OUT, { recursive: true });
const built = await buildApp();
const tmp = mkdtempSync(join(tmpdir(), 'bitscale-webshots-'));
const app = await openApp(built.dir);
try {
  const page = app.page;
  await page.setViewportSize({ width: 1100, height: 760 });
  await shot(page, '1-open');

  if (await openFolder(page, MODEL)) throw new Error('the default model did not open');
  await shot(page, '2-inspect', '#inspect');

  // a GPTQ run long enough to catch its progress bar (cancelled once it shows)
  await page.fill('#scheme', 'int4-g128');
  await page.selectOption('#method', 'gptq');
  await page.fill('#out-name', 'progress-demo');
  await page.fill('#windows', '64');
  await page.fill('#seq-len', '128');
  await page.click('#run-quantize');
  await page.waitForFunction(() => /\d+\/\d+/.test(document.getElementById('progress-text')!.textContent ?? ''), null, { timeout: 60_000, polling: 50 });
  await page.locator('#quantize').scrollIntoViewIfNeeded();
  await page.screenshot({ path: join(OUT, 'web-3-progress.png') });
  console.log(`wrote ${join(OUT, 'web-3-progress.png')}`);
  await page.click('#cancel');
  const cancelled = await idle(page);
  if (!/cancel/i.test(cancelled)) throw new Error(`cancel: ${cancelled}`);
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, '3-cancelled');

  for (const q of [
    { scheme: 'q4_0', method: 'rtn' as const, out: 'default-model-q4_0.gguf' },
    { scheme: 'q8_0', method: 'rtn' as const, out: 'default-model-q8_0.gguf' },
    { scheme: 'int4-g128', method: 'gptq' as const, out: 'default-model-gptq-int4-g128', windows: 8, seqLen: 64 },
    { scheme: 'int3-g128', method: 'gptq' as const, out: 'default-model-gptq-int3-g128', windows: 8, seqLen: 64 },
  ]) {
    const m = await quantize(page, q);
    if (m) throw new Error(`${q.out}: ${m}`);
  }
  await shot(page, '3-quantize', '#quantize');

  const text = join(tmp, 'eval.txt');
  writeFileSync(text, BUILTIN_CALIBRATION_TEXT);
  const ev = await evaluate(page, text, 512, 128);
  if (ev.message) throw new Error(`evaluate: ${ev.message}`);
  await shot(page, '4-measure', '#measure');

  // bad input: a folder without config.json gets a message and the page stays as it was
  const bad = join(tmp, 'no-config');
  mkdirSync(bad);
  copyFileSync(join(MODEL, 'model.safetensors'), join(bad, 'model.safetensors'));
  const msg = await openFolder(page, bad);
  if (!msg) throw new Error('no message for a folder without config.json');
  await page.evaluate(() => window.scrollTo(0, 0));
  await shot(page, '5-bad-input');
  if (app.refused.length) throw new Error(`requests outside the origin: ${app.refused.join(', ')}`);
} finally {
  await app.close();
  built.cleanup();
  rmSync(tmp, { recursive: true, force: true });
}
