// The scaling-law charts: well-formed, byte-identical across runs, and their marked points carry
// the numbers the library computes (compute-optimal precision, critical data sizes).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { paretoChart, scalingCharts } from '../../src/report/scaling-plots.js';
import { computeOptimalTied, criticalDataSize, KUMAR2024, paretoFrontier, type QualityPoint } from '../../src/scaling/index.js';
import { hasClass, parseXml } from './svg-xml.js';

test('three charts, well-formed and deterministic', () => {
  const a = scalingCharts(KUMAR2024);
  const b = scalingCharts(KUMAR2024);
  assert.deepEqual(a.map((c) => c.name), ['loss-vs-data', 'delta-ptq-vs-data', 'iso-compute']);
  for (let i = 0; i < a.length; i++) {
    assert.equal(a[i].svg, b[i].svg);
    const els = parseXml(a[i].svg);
    assert.equal(els[0].name, 'svg');
    assert.ok(els.some((e) => e.name === 'path' && hasClass(e, 'line')), `${a[i].name} draws lines`);
  }
});

test('iso-compute chart marks the compute-optimal precision of each budget', () => {
  const iso = scalingCharts(KUMAR2024, { budgets: [1e18, 1e22] })[2];
  const opt = parseXml(iso.svg).filter((e) => e.name === 'circle' && hasClass(e, 'optimal'));
  assert.equal(opt.length, 2);
  for (const p of opt) {
    const want = computeOptimalTied(Number(p.attrs['data-compute']), KUMAR2024).precision.w;
    assert.ok(Math.abs(Number(p.attrs['data-precision']) - want) < 1e-4, `${p.attrs['data-precision']} vs ${want}`);
  }
});

test('δ_PTQ chart marks the critical data sizes that fall inside the plotted range', () => {
  const d = scalingCharts(KUMAR2024, { N: 220e6, D: [1e9, 1e12], postBits: [3, 4, 8] })[1];
  const crit = parseXml(d.svg).filter((e) => e.name === 'circle' && hasClass(e, 'critical-data'));
  // D*(8 bits) is astronomically large, D*(3) = 3.24e10 and D*(4) = 1.75e11 are in range
  assert.deepEqual(crit.map((c) => c.attrs['data-bits']), ['3', '4']);
  assert.ok(Math.abs(Number(crit[1].attrs['data-x']) / criticalDataSize(220e6, 4, KUMAR2024.values) - 1) < 1e-5);
});

test('Pareto chart: every point findable by id, frontier points marked and matching paretoFrontier', () => {
  const pts: QualityPoint[] = [
    { id: 'q8', bits: 8, size: 8e9, quality: 9.1 },
    { id: 'q4', bits: 4, size: 4e9, quality: 9.4 },
    { id: 'q4-big', bits: 4, size: 6e9, quality: 9.6 },
    { id: 'q2', bits: 2, size: 2e9, quality: 12.0 },
    { id: 'q3', bits: 3, size: 3e9, quality: 9.3 },
  ];
  const c = paretoChart(pts, { dir: 'lower', qualityLabel: 'perplexity' });
  assert.equal(c.svg, paretoChart(pts, { dir: 'lower', qualityLabel: 'perplexity' }).svg);
  const els = parseXml(c.svg);
  const scatter = els.filter((e) => e.name === 'circle' && hasClass(e, 'point') && !hasClass(e, 'frontier'));
  assert.deepEqual(scatter.map((e) => e.attrs['data-id']).sort(), ['q2', 'q3', 'q4', 'q4-big', 'q8']);
  const front = els.filter((e) => e.name === 'circle' && hasClass(e, 'frontier')).map((e) => e.attrs['data-id']);
  assert.deepEqual(front, paretoFrontier(pts, 'lower').map((p) => p.id));
  // lower perplexity is better: q4 and q4-big are beaten by the smaller q3; q8 is the best overall
  assert.deepEqual(front, ['q2', 'q3', 'q8']);
  assert.equal(scatter.find((e) => e.attrs['data-id'] === 'q4')!.attrs['data-frontier'], 'false');
});
