// GgmlWebPool in a real browser: the browser entry and the worker module are bundled with esbuild,
// served from localhost with the cross-origin isolation headers SharedArrayBuffer needs, and run
// in headless Chromium: ggml bytes from two Web Workers (rows split over shared memory, WebAssembly
// kernels in each) equal quantizeGgml on the page's thread, byte for byte, and a NaN is reported
// with its index.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { build } from 'esbuild';
import { chromiumMissing, withBrowser } from '../report/browser.js';

const PAGE = `
import { GgmlWebPool, quantizeGgml, ggmlKernelsReady, Rng } from './bitscale.js';
const out = {};
try {
  out.kernels = await ggmlKernelsReady();
  out.isolated = self.crossOriginIsolated;
  const pool = new GgmlWebPool(() => new Worker('./worker.js', { type: 'module' }), 2);
  const rng = new Rng(3);
  for (const [type, R, K, im] of [['Q4_K', 37, 512, true], ['Q8_0', 90, 256, false], ['Q6_K', 11, 256, false]]) {
    const x = rng.fillNormal(new Float32Array(R * K), 0, 0.05);
    const imatrix = im ? Float32Array.from({ length: K }, () => rng.next()) : undefined;
    const a = await pool.quantize(type, x, R, K, imatrix);
    const b = quantizeGgml(type, x, R, K, imatrix);
    out[type] = a.length === b.length && a.every((v, i) => v === b[i]) ? 'same' : 'DIFFERENT';
  }
  const bad = new Float32Array(20 * 256);
  bad[13 * 256 + 7] = NaN;
  try { await pool.quantize('Q4_K', bad, 20, 256); out.nan = 'no error'; } catch (e) { out.nan = e.code + ' ' + e.context.index; }
  pool.close();
} catch (e) {
  out.error = String(e && e.stack || e);
}
window.__result = out;
`;

test('GgmlWebPool: two Web Workers give the bytes of one thread (headless Chromium)', { skip: chromiumMissing(), timeout: 120_000 }, async () => {
  const bundle = async (entry: string | { contents: string }, name: string): Promise<string> => {
    const r = await build({
      ...(typeof entry === 'string' ? { entryPoints: [entry] } : { stdin: { contents: entry.contents, resolveDir: '.', loader: 'js' } }),
      bundle: true, platform: 'browser', format: 'esm', write: false, logLevel: 'silent', target: 'es2022',
      ...(name === 'page' ? { external: ['./bitscale.js'] } : {}),
    });
    return r.outputFiles[0].text;
  };
  const files: Record<string, string> = {
    '/bitscale.js': await bundle('src/browser.ts', 'lib'),
    '/worker.js': await bundle('src/quant/ggml/wasm/web-worker.ts', 'worker'),
    '/page.js': await bundle({ contents: PAGE }, 'page'),
    '/': '<!doctype html><script type="module" src="./page.js"></script>',
  };
  const server = createServer((req, res) => {
    const body = files[req.url ?? '/'];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, {
      'content-type': req.url === '/' ? 'text/html' : 'text/javascript',
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
    });
    res.end(body);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  try {
    const { port } = server.address() as AddressInfo;
    const result = await withBrowser(async (browser) => {
      const page = await browser.newPage();
      await page.goto(`http://127.0.0.1:${port}/`);
      await page.waitForFunction(() => (window as unknown as { __result?: unknown }).__result !== undefined, undefined, { timeout: 90_000 });
      return page.evaluate(() => (window as unknown as { __result: Record<string, unknown> }).__result);
    });
    assert.deepEqual(result, { kernels: true, isolated: true, Q4_K: 'same', Q8_0: 'same', Q6_K: 'same', nan: `non_finite ${13 * 256 + 7}` });
  } finally {
    server.close();
  }
});
