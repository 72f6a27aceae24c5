// SVG primitives: well-formed XML (checked by a tiny parser), deterministic bytes, correct
// pixel mapping on linear and log scales, and findable points (classes and data-* attributes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { escapeXml, fmtTick, linearTicks, logTicks, makeScale, renderChart, type ChartSpec } from '../../src/report/svg.js';
import { hasClass, parseXml } from './svg-xml.js';

const spec = (): ChartSpec => ({
  id: 'demo',
  title: 'Size vs quality <&> "quoted"',
  subtitle: "bits' trade-off",
  x: { label: 'size (bytes)', scale: 'log' },
  y: { label: 'perplexity' },
  series: [
    { id: 'q4', label: 'Q4 & friends', points: [{ x: 1e6, y: 12 }, { x: 1e7, y: 10 }, { x: -5, y: 9 }, { x: 1e8, y: 8 }], markers: true },
    {
      id: 'front',
      label: 'frontier',
      line: false,
      points: [
        { x: 1e6, y: 12, id: 'a"1', className: 'frontier', data: { bits: 4, Method: 'rtn <x>' } },
        { x: 1e8, y: 8, id: 'b', className: 'frontier', data: { bits: 8 } },
        { x: NaN, y: 1, id: 'skipped' },
      ],
    },
  ],
  refLines: [{ axis: 'y', value: 10, label: 'budget' }],
});

test('the tiny XML checker rejects what it should (self-test)', () => {
  for (const bad of ['<a><b></a></b>', '<a x="1" x="2"/>', '<a x=1/>', '<a>&bogus;</a>', '<a/><b/>', '<a>', 'text']) {
    assert.throws(() => parseXml(bad), Error, bad);
  }
  assert.equal(parseXml('<a x="&lt;&amp;"><b/>t&#65;</a>')[0].attrs.x, '<&');
});

test('chart output is well-formed, deterministic and escapes text', () => {
  const a = renderChart(spec());
  const b = renderChart(spec());
  assert.equal(a, b);
  const els = parseXml(a);
  assert.equal(els[0].name, 'svg');
  assert.equal(els[0].attrs.xmlns, 'http://www.w3.org/2000/svg');
  assert.equal(els.find((e) => e.name === 'title')?.text, 'Size vs quality <&> "quoted"');
  assert.ok(!a.includes('NaN') && !a.includes('Infinity'), 'no non-finite coordinates leak into the markup');
});

test('points carry classes and data-* attributes a browser test can query', () => {
  const els = parseXml(renderChart(spec()));
  const pts = els.filter((e) => e.name === 'circle' && hasClass(e, 'point'));
  // q4 has 3 drawable points (x = −5 cannot go on a log axis), the frontier 2 (NaN skipped)
  assert.equal(pts.filter((p) => p.attrs['data-series'] === 'q4').length, 3);
  const front = pts.filter((p) => hasClass(p, 'frontier'));
  assert.deepEqual(front.map((p) => p.attrs['data-id']), ['a"1', 'b']);
  assert.equal(front[0].attrs['data-bits'], '4');
  assert.equal(front[0].attrs['data-method'], 'rtn <x>');
  assert.equal(front[0].attrs['data-x'], '1e6');
  assert.equal(front[1].attrs['data-y'], '8');
  // series groups and the legend name their series
  assert.ok(els.some((e) => e.name === 'g' && hasClass(e, 'series-front')));
  assert.equal(els.filter((e) => e.name === 'g' && hasClass(e, 'legend-item')).length, 2);
  // the line through q4 breaks at the undrawable point: two sub-paths
  const path = els.find((e) => e.name === 'path' && e.attrs['data-series'] === 'q4')!;
  assert.equal(path.attrs.d.match(/M/g)?.length, 2);
});

test('pixel mapping: log scale puts decades at equal spacing; same data → same pixel for line and point', () => {
  const s = makeScale('log', 1, 1000, 0, 300);
  assert.equal(s.map(1), 0);
  assert.equal(s.map(10), 100);
  assert.equal(s.map(1000), 300);
  const l = makeScale('linear', 0, 10, 400, 0);
  assert.equal(l.map(2.5), 300);
  const svg = renderChart({ title: 't', x: { label: 'x', min: 0, max: 10 }, y: { label: 'y', min: 0, max: 10 }, width: 200, height: 200, series: [{ id: 's', label: 's', markers: true, points: [{ x: 5, y: 5 }] }] });
  const c = parseXml(svg).find((e) => e.name === 'circle' && hasClass(e, 'point'))!;
  // plot area: left 72 .. right 200−24 = 176; top 36 .. bottom 200−52 = 148 (no legend for one series)
  assert.equal(Number(c.attrs.cx), (72 + 176) / 2);
  assert.equal(Number(c.attrs.cy), (36 + 148) / 2);
});

test('ticks: nice linear steps, powers of ten, readable labels', () => {
  assert.deepEqual(linearTicks(0, 1, 5), [0, 0.2, 0.4, 0.6, 0.8, 1]);
  assert.deepEqual(linearTicks(2.7, 4.1, 5), [2.8, 3, 3.2, 3.4, 3.6, 3.8, 4]);
  assert.deepEqual(logTicks(1e6, 1e10), [1e6, 1e7, 1e8, 1e9, 1e10]);
  assert.deepEqual(logTicks(3, 40), [5, 10, 20]);
  assert.deepEqual([1e9, 2.5e10, 0.25, 2000, 0].map(fmtTick), ['1e9', '2.5e10', '0.25', '2000', '0']);
  assert.equal(escapeXml(`<a href="x">'&'</a>`), '&lt;a href=&quot;x&quot;&gt;&apos;&amp;&apos;&lt;/a&gt;');
});

test('clip paths: every reference resolves, and charts without ids do not collide on one page', () => {
  const one = (title: string) => renderChart({ title, x: { label: 'x' }, y: { label: 'y' }, series: [{ id: 's', label: 's', points: [{ x: 1, y: 2 }, { x: 2, y: 3 }] }] });
  const ids = (svg: string) => parseXml(svg).filter((e) => e.name === 'clipPath').map((e) => e.attrs.id);
  for (const svg of [renderChart(spec()), one('a')]) {
    const els = parseXml(svg);
    const refs = els.filter((e) => e.attrs['clip-path']).map((e) => e.attrs['clip-path']);
    assert.ok(refs.length > 0 && refs.every((r) => ids(svg).includes(r.slice(5, -1))), refs.join(' '));
  }
  assert.notEqual(ids(one('a'))[0], ids(one('b'))[0]);
});
