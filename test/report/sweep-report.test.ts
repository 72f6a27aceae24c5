// The sweep report as a decision aid: the noise-aware frontiers (KL divergence and perplexity), the
// "what to ship" answer per runtime and budget, and the page in a real browser: headless Chromium
// loads it from disk (no network) at 1400 px and at 400 px, finds the charts, their frontier points,
// labels and predictions, checks that the narrow layout fits the viewport, that printing shows the
// wide charts, and that screenshots are not blank.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { renderSweepReport } from '../../src/report/sweep-report.js';
import { frontierChart } from '../../src/report/frontier-charts.js';
import { markFrontiers, parseBudget, shipRecommendations } from '../../src/report/decision.js';
import type { SweepPointResult, SweepRecord } from '../../src/eval/sweep-types.js';
import { chromiumMissing, withBrowser } from './browser.js';
import { hasClass, parseXml } from './svg-xml.js';
import { tempDir } from '../helpers.js';

/** A point with a NLL half-interval `ci` (unpaired), a KL interval ±`kci`, and a paired ΔNLL interval ±0.01. */
function point(id: string, method: SweepPointResult['method'], format: SweepPointResult['format'], bpw: number, nll: number, kld: number, ci = 0.05, kci = kld * 0.05): SweepPointResult {
  return {
    id,
    method,
    scheme: id.replace(/^[a-z]+-/, ''),
    bits: Math.round(bpw),
    format,
    fileBytes: method === 'base' ? 0 : Math.round(bpw * 1e5),
    bpw,
    nll,
    ppl: Math.exp(nll),
    pplLo: Math.exp(nll - ci),
    pplHi: Math.exp(nll + ci),
    kld,
    kldLo: kld - kci,
    kldHi: kld + kci,
    dnllLo: nll - 1.5 - 0.01,
    dnllHi: nll - 1.5 + 0.01,
    top1: method === 'base' ? 1 : 0.9,
    tokensPerS: 1000,
    quantizeS: 0.5,
    onFrontier: false,
    command: `bitscale quantize model --out points/${id} --scheme ${id}`,
    evalCommand: `bitscale eval points/${id} --text valid.txt --ctx 128 --max-tokens 4096 --base model`,
    out: method === 'base' ? undefined : `points/${id}${format === 'gguf' ? '.gguf' : ''}`,
  };
}

function record(): SweepRecord {
  const points = [
    point('base-f32', 'base', 'none', 32, 1.5, 0),
    point('rtn-q8_0', 'rtn', 'gguf', 8.5, 1.5005, 2e-5),
    point('rtn-q4_0', 'rtn', 'gguf', 4.5, 1.56, 0.012),
    point('gptq-q4_0', 'gptq', 'gguf', 4.5, 1.53, 0.006),
    point('rtn-int3-g32', 'rtn', 'safetensors', 3.5, 1.8, 0.08),
    point('gptq-int3-g32', 'gptq', 'safetensors', 3.5, 1.65, 0.03),
    point('awq-int3-g32', 'awq', 'safetensors', 3.5, 1.64, 0.0305, 0.05, 0.002),
    point('rtn-int2-g32', 'rtn', 'safetensors', 2.5, 3.2, 0.6),
    point('awq-int2-g32', 'awq', 'safetensors', 2.5, 2.6, 0.3),
  ];
  points.find((p) => p.id === 'rtn-int3-g32')!.predictedNll = 1.75;
  points.find((p) => p.id === 'rtn-int2-g32')!.predictedNll = 2.9;
  markFrontiers(points);
  return {
    tool: { name: 'bitscale', version: '0.1.0' },
    createdAt: '2026-01-01T00:00:00.000Z',
    model: { path: 'assets/default-model', sha256: 'ab', parameters: 123456, description: 'test' },
    text: { path: 'valid.txt', sha256: 'cd', tokens: 4096, protocol: 'windows of 128', ctx: 128, maxTokens: 4096 },
    seed: 1,
    points,
    sensitivity: [{ tensor: 'model.layers.0.mlp.down_proj.weight', scheme: 'int2-g32', deltaNll: 0.2, relErr: 0.1 }],
    law: { description: 'test law', fitted: { gamma: 2.5 }, maeNll: 0.01, caveats: ['a caveat'] },
    budgets: ['3bpw', '4.5bpw', '0.4MB'],
    recommendations: shipRecommendations(points, ['3bpw', '4.5bpw', '0.4MB']),
    elapsedS: 12.5,
  };
}

const byId = (r: SweepRecord) => new Map(r.points.map((p) => [p.id, p]));

test('the report is one self-contained page: no scripts, no external references, same bytes for the same record', () => {
  const html = renderSweepReport(record());
  assert.ok(html.startsWith('<!DOCTYPE html>'));
  assert.doesNotMatch(html, /<script|<link |src="http|href="http/);
  for (const id of ['kld-chart', 'frontier-chart', 'kld-chart-narrow', 'frontier-chart-narrow']) assert.match(html, new RegExp(`<svg[^>]*id="${id}"`));
  assert.equal(renderSweepReport(record()), html);
});

test('frontiers never rank overlapping intervals: perplexity keeps the smallest of a tie, KL divergence separates', () => {
  const by = byId(record());
  const ppl = record().points.filter((p) => p.onFrontier).map((p) => p.id).sort();
  // PPL (±0.05 nats): the 4.5-bpw GPTQ point is measurably better than the 3.5-bpw ones, and q8_0 and the
  // float model overlap it, so a larger file buys nothing measurable: they are off the PPL frontier
  assert.deepEqual(ppl, ['awq-int2-g32', 'awq-int3-g32', 'gptq-int3-g32', 'gptq-q4_0']);
  assert.equal(by.get('rtn-q4_0')!.onFrontier, false, 'overlaps the smaller awq-int3');
  // KL: every step is measurably better; the overlapping awq/gptq int3 pair is a tie (both on the frontier)
  assert.equal(by.get('gptq-int3-g32')!.onFrontierKld, true);
  assert.equal(by.get('awq-int3-g32')!.onFrontierKld, true);
  assert.equal(by.get('rtn-int3-g32')!.onFrontierKld, false);
  assert.equal(by.get('rtn-q4_0')!.onFrontierKld, false);
  assert.equal(by.get('rtn-q8_0')!.onFrontierKld, true);
});

test('what to ship: per runtime and budget, KL-ranked, with equivalents and commands', () => {
  const r = record();
  const recs = r.recommendations!;
  const at = (rt: string, b: string) => recs.find((c) => c.runtime === rt && c.budget === b)!;
  assert.equal(at('gguf', '4.5bpw').pointId, 'gptq-q4_0');
  assert.equal(at('gguf', '4.5bpw').metric, 'kld');
  assert.equal(at('gguf', '3bpw').pointId, null);
  assert.match(at('gguf', '3bpw').note!, /smallest is/);
  assert.equal(at('gguf', 'none').pointId, 'rtn-q8_0');
  // safetensors ≤ 4.5 bpw: gptq and awq int3 tie on KL; the lower estimate is chosen, the other is called equivalent
  assert.equal(at('safetensors', '4.5bpw').pointId, 'gptq-int3-g32');
  assert.deepEqual(at('safetensors', '4.5bpw').equivalent, ['awq-int3-g32']);
  // a file-size budget: 0.4 MB = 400,000 bytes holds the 2.5-bpw files (250,000 B) and the 3.5-bpw ones (350,000 B)
  assert.equal(at('safetensors', '0.4MB').pointId, 'gptq-int3-g32');
  assert.equal(at('onnx', 'none').pointId, null);
  assert.match(at('onnx', 'none').note!, /--formats onnx/);
  // the smallest point not measurably worse than float (paired ΔNLL interval reaches 0): rtn-q8_0 only
  assert.equal(at('gguf', 'float-ppl').pointId, 'rtn-q8_0');
  const html = renderSweepReport(r);
  assert.match(html, /data-runtime="gguf" data-budget="4.5bpw" data-point="gptq-q4_0"/);
  assert.match(html, /llama-cli -m points\/gptq-q4_0\.gguf/);
  assert.match(html, /vllm serve points\/gptq-int3-g32/);
  assert.deepEqual(parseBudget('1.5GB'), { label: '1.5GB', unit: 'MB', value: 1500 });
  assert.throws(() => parseBudget('4 bits'), /invalid budget/);
});

test('charts: every point labelled and titled, intervals drawn, predictions hollow, float past an axis break', () => {
  const r = record();
  const els = parseXml(frontierChart(r.points, 'ppl'));
  const pts = els.filter((e) => e.name === 'circle' && hasClass(e, 'point'));
  const measured = pts.filter((e) => !hasClass(e, 'predicted') && e.parent && !hasClass(e.parent, 'predicted'));
  assert.equal(measured.length, r.points.length);
  const labels = els.filter((e) => e.name === 'text' && hasClass(e, 'point-label')).map((e) => e.attrs['data-id']);
  assert.deepEqual(labels.sort(), r.points.map((p) => p.id).sort(), 'every measured point has a printed label');
  for (const c of measured) assert.ok(els.some((e) => e.name === 'title' && e.parent === c), `${c.attrs['data-id']} has a hover title`);
  assert.equal(els.filter((e) => e.name === 'path' && hasClass(e, 'errorbar')).length, r.points.length);
  const pred = pts.filter((e) => hasClass(e, 'hollow'));
  assert.equal(pred.length, 2);
  assert.ok(pred.every((e) => e.attrs.fill === '#ffffff'), 'predictions are hollow, measurements filled');
  assert.ok(measured.every((e) => e.attrs.fill !== '#ffffff'));
  // x: the quantized points span most of the plot; the float model sits after the break
  const cx = (id: string) => Number(measured.find((e) => e.attrs['data-id'] === id)!.attrs.cx);
  const span = cx('rtn-q8_0') - cx('awq-int2-g32');
  assert.ok(cx('base-f32') > cx('rtn-q8_0'));
  assert.ok((cx('rtn-q4_0') - cx('awq-int2-g32')) / span > 0.3, '2.5–4.5 bpw gets a third of the span (linear axis)');
  assert.equal(els.filter((e) => hasClass(e, 'axis-break')).length, 1);
  assert.ok(els.some((e) => e.name === 'text' && hasClass(e, 'tick') && e.text === '32 (float)'));
  // the KL chart leaves out the float model (KLD 0) and has no break
  const k = parseXml(frontierChart(r.points, 'kld'));
  assert.ok(!k.some((e) => e.attrs['data-id'] === 'base-f32'));
  assert.equal(k.filter((e) => hasClass(e, 'axis-break')).length, 0);
});

test('the points table shows no per-point throughput (not measured in a comparable way) and says why', () => {
  const html = renderSweepReport(record());
  assert.doesNotMatch(html, /<th>tok\/s<\/th>/);
  assert.match(html, /id="throughput-note"/);
  assert.match(html, /--max-tokens 4096 --base model/);
});

async function inked(page: import('playwright-core').Page, png: Buffer): Promise<{ frac: number; colours: number }> {
  // count non-white pixels by decoding the PNG in the page itself (no image library needed)
  return page.evaluate(async (b64) => {
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
}

test('headless Chromium at 1400 px and 400 px: charts, frontier points, labels, narrow layout fits, print shows the wide charts', { skip: chromiumMissing() }, async () => {
  const r = record();
  const dir = tempDir('bitscale-report-');
  const shots = process.env.BITSCALE_SCREENSHOT_DIR;
  const file = join(dir, 'report.html');
  writeFileSync(file, renderSweepReport(r));
  await withBrowser(async (browser) => {
    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const failed: string[] = [];
    page.on('requestfailed', (req) => failed.push(req.url()));
    await page.goto(pathToFileURL(file).href);
    const kld = page.locator('svg#kld-chart');
    assert.ok(await kld.isVisible());
    assert.equal(await page.locator('svg#kld-chart-narrow').isVisible(), false);
    const box = await kld.boundingBox();
    assert.ok(box && box.width > 600 && box.height > 300, `chart box ${JSON.stringify(box)}`);
    const frontierIds = (await page.locator('svg#kld-chart circle.point.frontier').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')))).sort();
    assert.deepEqual(frontierIds, r.points.filter((p) => p.onFrontierKld && p.method !== 'base').map((p) => p.id).sort());
    // labels are drawn and do not overlap each other
    const boxes = await page.locator('svg#frontier-chart text.point-label').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON() as DOMRect));
    assert.equal(boxes.length, r.points.length);
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i];
        const b = boxes[j];
        assert.ok(a.right <= b.left + 0.5 || b.right <= a.left + 0.5 || a.bottom <= b.top + 0.5 || b.bottom <= a.top + 0.5, `labels ${i} and ${j} overlap`);
      }
    }
    assert.equal(await page.locator('#points-table tbody tr').count(), r.points.length);
    assert.equal(await page.locator('.ship-runtime').count(), 3);
    assert.match((await page.locator('#commands').textContent()) ?? '', /bitscale eval points\/rtn-q4_0/);
    const png = await page.locator('figure.chart-wide').first().screenshot();
    const ink = await inked(page, png);
    assert.ok(ink.frac > 0.01 && ink.frac < 0.6, `inked fraction ${ink.frac}`);
    assert.ok(ink.colours > 4, `only ${ink.colours} colours`);
    if (shots) await page.screenshot({ path: join(shots, 'report-1400.png'), fullPage: true });
    // print: the wide charts, with their labels
    await page.emulateMedia({ media: 'print' });
    assert.ok(await page.locator('svg#frontier-chart').isVisible());
    assert.equal(await page.locator('svg#frontier-chart-narrow').isVisible(), false);
    assert.deepEqual(failed, []);

    const narrow = await browser.newPage({ viewport: { width: 400, height: 800 } });
    await narrow.goto(pathToFileURL(file).href);
    const width = await narrow.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 400, `the page scrolls sideways at 400 px: ${width} px wide`);
    assert.equal(await narrow.locator('svg#kld-chart').isVisible(), false);
    const nk = narrow.locator('svg#kld-chart-narrow');
    assert.ok(await nk.isVisible());
    const nb = await nk.boundingBox();
    assert.ok(nb && nb.width >= 340, `narrow chart ${JSON.stringify(nb)}`);
    // text stays readable: tick labels and point labels render at ≥ 9 px
    const sizes = await narrow.locator('svg#kld-chart-narrow text.tick, svg#kld-chart-narrow text.point-label').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().height));
    assert.ok(sizes.length > 0 && Math.min(...sizes) >= 9, `text heights ${sizes.join(', ')}`);
    // the legend below the narrow plot does not run into the axis label
    const lab = await narrow.locator('svg#kld-chart-narrow .axis-x .axis-label').boundingBox();
    const legend = await narrow.locator('svg#kld-chart-narrow .legend-item').evaluateAll((els) => els.map((e) => e.getBoundingClientRect().toJSON() as DOMRect));
    assert.ok(lab && legend.length > 0 && legend.every((b) => b.top >= lab.y + lab.height - 0.5), `legend ${JSON.stringify(legend[0])} vs axis label ${JSON.stringify(lab)}`);
    // frontier points are labelled in the narrow chart too
    const nl = (await narrow.locator('svg#kld-chart-narrow text.point-label').evaluateAll((els) => els.map((e) => e.getAttribute('data-id')))).sort();
    assert.deepEqual(nl, r.points.filter((p) => p.onFrontierKld && p.method !== 'base').map((p) => p.id).sort());
    const npng = await narrow.screenshot();
    const nink = await inked(narrow, npng);
    assert.ok(nink.frac > 0.01 && nink.frac < 0.6, `narrow inked fraction ${nink.frac}`);
    if (shots) await narrow.screenshot({ path: join(shots, 'report-400.png'), fullPage: true });
  });
});
