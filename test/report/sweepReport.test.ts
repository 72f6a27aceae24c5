// The sweep report in a real browser: headless Chromium loads the HTML from disk (no network),
// finds the size/quality chart and its frontier points, and a screenshot is checked not to be blank.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { renderSweepReport } from '../../src/report/sweepReport.js';
import type { SweepPointResult, SweepRecord } from '../../src/eval/sweepTypes.js';
import { paretoFrontier } from '../../src/scaling/pareto.js';
import { chromiumMissing, withBrowser } from './browser.js';

function point(id: string, method: SweepPointResult['method'], bpw: number, nll: number): SweepPointResult {
  return {
    id,
    method,
    scheme: id,
    bits: Math.round(bpw),
    format: 'gguf',
    fileBytes: Math.round(bpw * 1e5),
    bpw,
    nll,
    ppl: Math.exp(nll),
    pplLo: Math.exp(nll - 0.01),
    pplHi: Math.exp(nll + 0.01),
    kld: method === 'base' ? 0 : Math.max(1e-4, nll - 1.5),
    top1: method === 'base' ? 1 : 0.9,
    tokensPerS: 1000,
    quantizeS: 0.5,
    onFrontier: false,
    command: `bitscale quantize model --scheme ${id}`,
  };
}

function record(): SweepRecord {
  const points = [
    point('base', 'base', 32, 1.5),
    point('q8_0', 'rtn', 8.5, 1.5005),
    point('q4_0', 'rtn', 4.5, 1.56),
    point('gptq-q4_0', 'gptq', 4.5, 1.53),
    point('int3-g32', 'rtn', 3.5, 1.8),
    point('gptq-int3-g32', 'gptq', 3.5, 1.65),
    point('int2-g32', 'rtn', 2.5, 3.2),
    point('awq-int2-g32', 'awq', 2.5, 2.6),
  ];
  const front = new Set(paretoFrontier(points.map((p) => ({ id: p.id, bits: p.bits, size: p.bpw, quality: p.nll })), 'lower').map((p) => p.id));
  for (const p of points) p.onFrontier = front.has(p.id);
  return {
    tool: { name: 'bitscale', version: '0.1.0' },
    createdAt: '2026-01-01T00:00:00.000Z',
    model: { path: 'assets/default-model', sha256: 'ab', parameters: 123456, description: 'test' },
    text: { path: 'valid.txt', sha256: 'cd', tokens: 4096, protocol: 'windows of 256' },
    seed: 1,
    points,
    sensitivity: [{ tensor: 'model.layers.0.mlp.down_proj.weight', scheme: 'int2-g32', deltaNll: 0.2, relErr: 0.1 }],
    law: { description: 'test law', fitted: { gamma: 2.5 }, maeNll: 0.01, caveats: ['a caveat'] },
    elapsedS: 12.5,
  };
}

test('the report is one self-contained page: no scripts, no external references', () => {
  const html = renderSweepReport(record());
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  assert.doesNotMatch(html, /<script|<link |src="http|href="http/);
  assert.match(html, /<svg[^>]*id="frontier-chart"/);
  // same input → same bytes
  assert.equal(renderSweepReport(record()), html);
});

test('the frontier is marked: the dominated q4_0 RTN point is not on it, GPTQ q4_0 is', () => {
  const r = record();
  const byId = new Map(r.points.map((p) => [p.id, p]));
  assert.equal(byId.get('q4_0')?.onFrontier, false);
  assert.equal(byId.get('gptq-q4_0')?.onFrontier, true);
  assert.equal(byId.get('int2-g32')?.onFrontier, false);
});

test('headless Chromium renders the chart, finds the frontier points, and the screenshot is not blank', { skip: chromiumMissing() }, async () => {
  const r = record();
  const dir = mkdtempSync(join(tmpdir(), 'bitscale-report-'));
  try {
    const file = join(dir, 'report.html');
    writeFileSync(file, renderSweepReport(r));
    await withBrowser(async (browser) => {
      const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
      const failed: string[] = [];
      page.on('requestfailed', (req) => failed.push(req.url()));
      await page.goto(pathToFileURL(file).href);
      const chart = page.locator('svg#frontier-chart');
      assert.equal(await chart.count(), 1);
      const box = await chart.boundingBox();
      assert.ok(box && box.width > 300 && box.height > 200, `chart box ${JSON.stringify(box)}`);
      const frontierIds = (await page.locator('svg#frontier-chart circle.point.frontier').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')))).sort();
      const want = r.points.filter((p) => p.onFrontier).map((p) => p.id).sort();
      assert.deepEqual(frontierIds, want);
      assert.equal(await page.locator('#points-table tbody tr').count(), r.points.length);
      assert.equal(await page.locator('#points-table tbody tr.frontier').count(), want.length);
      assert.match((await page.locator('#commands').textContent()) ?? '', /bitscale quantize/);
      const png = await chart.screenshot();
      if (process.env.BITSCALE_SCREENSHOT) writeFileSync(process.env.BITSCALE_SCREENSHOT, png);
      // Count non-white pixels by decoding the PNG in the page itself (no image library needed).
      const inked = await page.evaluate(async (b64) => {
        const img = new Image();
        img.src = 'data:image/png;base64,' + b64;
        await img.decode();
        const c = document.createElement('canvas');
        c.width = img.width;
        c.height = img.height;
        const g = c.getContext('2d') as CanvasRenderingContext2D;
        g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data;
        let n = 0;
        const colours = new Set<number>();
        for (let i = 0; i < d.length; i += 4) {
          if (d[i] < 240 || d[i + 1] < 240 || d[i + 2] < 240) n++;
          colours.add((d[i] << 16) | (d[i + 1] << 8) | d[i + 2]);
        }
        return { frac: n / (c.width * c.height), colours: colours.size };
      }, png.toString('base64'));
      assert.ok(inked.frac > 0.01 && inked.frac < 0.6, `inked fraction ${inked.frac}`);
      assert.ok(inked.colours > 4, `only ${inked.colours} colours`);
      assert.deepEqual(failed, []);
    });
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
