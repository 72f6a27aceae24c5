// Drives the browser app as a user would, for the web tests and the web benchmark: builds it from
// web/ into a temporary folder, serves it with `bitscale web`'s server, opens it in Debian's
// Chromium (playwright-core) with every request outside the app's origin recorded and refused,
// and clicks through open → quantize → measure → download. Also runs the CLI for the same jobs.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { CHROMIUM, chromiumMissing } from '../report/browser.js';
import { serveWebApp, type WebServer } from '../../src/pipeline/web-serve.js';

export const SHARED = resolve('..', 'shared');
export const STORIES = join(SHARED, 'models', 'stories260K');

/** Skip message where Chromium is absent (never in CI, where .ci/run installs it: there the test fails). */
export function webSkip(): string | false {
  const missing = chromiumMissing();
  if (missing && process.env.CI) throw new Error(`${missing}; CI must have it (.ci/run installs chromium)`);
  return missing;
}

export interface App {
  browser: Browser;
  context: BrowserContext;
  page: Page;
  server: WebServer;
  /** every request the page and its workers made, and those refused (outside the origin) */
  requests: string[];
  refused: string[];
  errors: string[];
  close(): Promise<void>;
}

export async function buildApp(): Promise<{ dir: string; cleanup: () => void }> {
  const root = mkdtempSync(join(tmpdir(), 'bitscale-web-'));
  const { buildWeb } = await import('../../web/build.mjs');
  const dir = await buildWeb(join(root, 'web'));
  return { dir, cleanup: () => rmSync(root, { recursive: true, force: true }) };
}

/** Debian's Chromium with the flags that work on this machine (headless, no sandbox, no GPU, no background traffic). */
export async function launchChromium(extraArgs: string[] = []): Promise<Browser> {
  const { chromium } = await import('playwright-core');
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', ...extraArgs],
  });
}

/**
 * The app served from `dir` in a fresh browser context (its own requests, downloads and page).
 * `shared`: a browser several tests use (one launch per test file); close() then leaves it open.
 */
export async function openApp(dir: string, extraArgs: string[] = [], shared?: Browser): Promise<App> {
  const server = await serveWebApp(dir);
  const browser = shared ?? (await launchChromium(extraArgs));
  const context = await browser.newContext({ acceptDownloads: true, viewport: { width: 1280, height: 900 } });
  const requests: string[] = [];
  const refused: string[] = [];
  const errors: string[] = [];
  const origin = new URL(server.url).origin;
  // every request of the page and of its workers goes through here
  await context.route('**/*', (route) => {
    const url = route.request().url();
    requests.push(url);
    if (new URL(url).origin === origin || url.startsWith('blob:') || url.startsWith('data:')) return route.continue();
    refused.push(url);
    return route.abort('blockedbyclient');
  });
  context.on('request', (r) => {
    const u = r.url();
    if (!u.startsWith('blob:') && !u.startsWith('data:') && new URL(u).origin !== origin && !refused.includes(u)) refused.push(u);
  });
  const page = await context.newPage();
  page.on('pageerror', (e) => errors.push(e.message));
  const log: string[] = [];
  consoles.set(page, log);
  const keep = (line: string) => {
    log.push(`${new Date().toISOString().slice(11, 23)} ${line}`);
    if (log.length > 200) log.shift();
  };
  page.on('console', (m) => {
    keep(`${m.type()}: ${m.text()}`);
    // the page's own warnings (a Blob read done again, a worker's error) show in the test output as they come
    if ((m.type() === 'warning' || m.type() === 'error') && m.text().startsWith('bitscale')) console.error(`page console: ${m.text()}`);
  });
  page.on('worker', (w) => {
    keep(`worker started: ${w.url()}`);
    w.on('close', () => keep(`worker closed: ${w.url()}`));
  });
  page.on('crash', () => keep('the page crashed'));
  // the stall hunt's slow-machine runs: the page's CPU slowed down by this factor (CDP throttling)
  const throttle = Number(process.env.BITSCALE_WEB_CPU_THROTTLE ?? 1);
  if (throttle > 1) await (await context.newCDPSession(page)).send('Emulation.setCPUThrottlingRate', { rate: throttle });
  await page.goto(server.url);
  return {
    browser,
    context,
    page,
    server,
    requests,
    refused,
    errors,
    async close() {
      if (shared) await context.close();
      else await browser.close();
      await server.close();
    },
  };
}

const outputs = (page: Page) => page.evaluate(() => (window as unknown as { bitscale: { state: { outputs: unknown[] } } }).bitscale.state.outputs.length);

/** Waits until no job runs; returns the page's message (an error or notice) or ''. */
/** how long a job may run before the harness gives up: a guard against a hung page (the shared VM at a load average of 25 has needed over 5 minutes for an evaluation of three small models) */
const JOB_TIMEOUT_MS = 800_000;

/**
 * Seconds without visible progress (the job's title and progress line unchanged) after which the
 * watchdog prints the page's state into the test output (and again every as many seconds after).
 */
const WATCHDOG_S = Number(process.env.BITSCALE_WEB_WATCHDOG_S ?? 120);

/** The console of each page (and its workers) the harness opened, last 200 lines, for the watchdog's dump. */
const consoles = new WeakMap<Page, string[]>();

/**
 * What the page is doing, for a stall: the page's job state machine and progress, its job worker's
 * own status (its current op, the kernel pools' queues, Blob reads in flight, unhandled
 * rejections), the last console lines, and every target Chromium runs for the page (workers
 * included, nested ones too, with their type), so a hung run says where it hung.
 */
export async function dumpPageState(page: Page): Promise<string> {
  const parts: string[] = [];
  const within = <T>(p: Promise<T>, ms: number): Promise<T | string> => Promise.race([p, new Promise<string>((r) => setTimeout(() => r(`no answer within ${ms} ms`), ms))]);
  parts.push(`page: ${JSON.stringify(await within(page.evaluate(() => (window as unknown as { bitscale: { debug(): Promise<unknown> } }).bitscale.debug()).catch((e: Error) => e.message), 10_000), null, 1)}`);
  try {
    const cdp = await page.context().browser()!.newBrowserCDPSession();
    const { targetInfos } = (await cdp.send('Target.getTargets')) as { targetInfos: { type: string; url: string; attached: boolean }[] };
    parts.push(`targets: ${targetInfos.map((t) => `${t.type} ${t.url.replace(/^.*\//, '')}${t.attached ? ' (attached)' : ''}`).join('; ')}`);
    const info = (await cdp.send('SystemInfo.getProcessInfo').catch(() => null)) as { processInfo: { type: string; id: number; cpuTime: number }[] } | null;
    if (info) parts.push(`processes (CPU seconds): ${info.processInfo.map((p) => `${p.type} ${p.id} ${p.cpuTime.toFixed(1)}`).join('; ')}`);
    await cdp.detach();
  } catch (e) {
    parts.push(`targets: ${(e as Error).message}`);
  }
  parts.push(`console (last lines):\n${(consoles.get(page) ?? []).slice(-40).join('\n')}`);
  return parts.join('\n');
}

export async function idle(page: Page, timeout = 120_000): Promise<string> {
  const t0 = Date.now();
  let seen = '';
  let changed = Date.now();
  let dumped = Date.now();
  for (;;) {
    const s = await page.evaluate(() => ({ busy: document.body.classList.contains('busy'), at: `${document.getElementById('job-title')?.textContent} · ${document.getElementById('progress-text')?.textContent}` }));
    if (!s.busy) break;
    const now = Date.now();
    if (s.at !== seen) {
      seen = s.at;
      changed = now;
    } else if (now - changed > WATCHDOG_S * 1000 && now - dumped > WATCHDOG_S * 1000) {
      dumped = now;
      console.error(`web harness watchdog: no progress for ${Math.round((now - changed) / 1000)} s at "${seen}"\n${await dumpPageState(page)}`);
    }
    if (now - t0 > timeout) throw new Error(`the page stayed busy for ${Math.round(timeout / 1000)} s at "${seen}"\n${await dumpPageState(page)}`);
    await new Promise((r) => setTimeout(r, 250));
  }
  return (await page.isHidden('#message')) ? '' : ((await page.textContent('#message')) ?? '');
}

export async function openFiles(page: Page, paths: string | string[]): Promise<string> {
  await page.setInputFiles('#files', paths);
  await page.waitForFunction(() => document.body.classList.contains('busy') || !document.getElementById('message')!.hidden, null, { timeout: 10_000 }).catch(() => undefined);
  return idle(page);
}

export async function openFolder(page: Page, dir: string): Promise<string> {
  await page.setInputFiles('#folder', dir);
  await page.waitForFunction(() => document.body.classList.contains('busy') || !document.getElementById('message')!.hidden, null, { timeout: 10_000 }).catch(() => undefined);
  return idle(page);
}

export interface QuantizeForm {
  scheme: string;
  method: 'rtn' | 'gptq' | 'awq';
  format?: string;
  out: string;
  seed?: number;
  windows?: number;
  seqLen?: number;
  verify?: boolean;
  /** a calibration text file (default: the built-in text) */
  calib?: string;
  targetBpw?: number;
  actOrder?: boolean;
}

export async function quantize(page: Page, f: QuantizeForm): Promise<string> {
  await page.fill('#scheme', f.scheme);
  await page.selectOption('#method', f.method);
  await page.selectOption('#format', f.format ?? '');
  await page.fill('#out-name', f.out);
  await page.fill('#seed', String(f.seed ?? 0));
  await page.fill('#windows', f.windows === undefined ? '' : String(f.windows));
  await page.fill('#seq-len', f.seqLen === undefined ? '' : String(f.seqLen));
  await page.setChecked('#verify', f.verify ?? true);
  await page.fill('#target-bpw', f.targetBpw === undefined ? '' : String(f.targetBpw));
  await page.setChecked('#act-order', f.actOrder ?? false);
  if (f.calib) {
    await page.selectOption('#calib', 'file');
    await page.setInputFiles('#calib-file', f.calib);
  } else await page.selectOption('#calib', 'builtin');
  const before = await outputs(page);
  await page.click('#run-quantize');
  await page.waitForFunction(() => document.body.classList.contains('busy'), null, { timeout: 5_000 }).catch(() => undefined);
  const msg = await idle(page, JOB_TIMEOUT_MS);
  if (!msg && (await outputs(page)) !== before + 1) {
    // a replaced output keeps the count: fine when its name was already there
  }
  return msg;
}

export interface EvalResult {
  target: string;
  ppl: number;
  kld: number | null;
  top1: number | null;
  tokens: number;
}

export async function evaluate(page: Page, text: string, maxTokens?: number, ctx?: number): Promise<{ message: string; results: EvalResult[] }> {
  await page.selectOption('#eval-text', 'file');
  await page.setInputFiles('#eval-file', text);
  await page.fill('#max-tokens', maxTokens === undefined ? '' : String(maxTokens));
  await page.fill('#ctx', ctx === undefined ? '' : String(ctx));
  await page.click('#run-eval');
  await page.waitForFunction(() => document.body.classList.contains('busy'), null, { timeout: 5_000 }).catch(() => undefined);
  const message = await idle(page, JOB_TIMEOUT_MS);
  const results = await page.evaluate(() =>
    [...(window as unknown as { bitscale: { state: { evals: Map<string, { ppl: number; tokens: number; base?: { kld: number; top1Agreement: number } }> } } }).bitscale.state.evals].map(
      ([target, r]) => ({ target, ppl: r.ppl, kld: r.base?.kld ?? null, top1: r.base?.top1Agreement ?? null, tokens: r.tokens }),
    ),
  );
  return { message, results };
}

/** Clicks an output's Download button; returns the downloaded bytes and the suggested name. */
export async function download(page: Page, outName: string): Promise<{ name: string; bytes: Uint8Array }> {
  if (await page.isEnabled('#picker')) await page.setChecked('#picker', false);
  const i = await page.evaluate((n) => (window as unknown as { bitscale: { state: { outputs: { output: { name: string } }[] } } }).bitscale.state.outputs.findIndex((o) => o.output.name === n), outName);
  if (i < 0) throw new Error(`no output ${outName}`);
  const [dl] = await Promise.all([page.waitForEvent('download'), page.click(`button.download[data-i="${i}"]`)]);
  const path = await dl.path();
  return { name: dl.suggestedFilename(), bytes: new Uint8Array(await readFile(path)) };
}

const exec = promisify(execFile);
/** A guard against a hung CLI run (each of the flows' CLI commands takes seconds to a few minutes under load): killed and reported past this. */
const CLI_TIMEOUT_MS = 540_000;

/** Runs the bitscale CLI (this checkout's source, as the other CLI tests do; in `cwd`, a folder of the checkout); returns stdout. */
export async function cli(args: string[], cwd?: string): Promise<string> {
  const p = exec(process.execPath, ['--import', 'tsx', resolve('src/cli/main.ts'), ...args], { env: { ...process.env, NODE_OPTIONS: '' }, maxBuffer: 64 << 20, cwd, timeout: CLI_TIMEOUT_MS });
  // the stall watchdog covers the CLI the flows run alongside the page too: its state, now and then
  const t0 = Date.now();
  const watch = setInterval(() => {
    const pid = p.child.pid;
    let st = '';
    try {
      st = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter((l) => /^(State|Threads|VmRSS):/.test(l)).join(', ');
    } catch {
      st = 'gone';
    }
    console.error(`web harness watchdog: the CLI (pid ${pid}) still runs after ${Math.round((Date.now() - t0) / 1000)} s: ${args.join(' ')} (${st.replace(/\s+/g, ' ')})`);
  }, WATCHDOG_S * 1000);
  try {
    return (await p).stdout;
  } finally {
    clearInterval(watch);
  }
}

export const sharedMissing = (): string | false => (existsSync(STORIES) ? false : 'needs ../shared (stories260K)');
