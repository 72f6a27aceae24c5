// The sweep report: one self-contained HTML file answering "which bit width and method give the
// best model for my size budget?" — the size/quality chart with its Pareto frontier, every point in
// a table, per-tensor sensitivity, the scaling-law panel, and the commands that reproduce each point.
// Chart points carry classes and data-* attributes (see svg.ts) so a browser test can find them.

import type { SweepPointResult, SweepRecord } from '../eval/sweepTypes.js';
import { esc, renderPage, renderTable, type HtmlSection } from './html.js';
import { PALETTE, renderChart, type ChartSeries } from './svg.js';

const METHOD_ORDER = ['base', 'rtn', 'imatrix', 'gptq', 'awq', 'mixed', 'qat'];
/** One colour per method in every chart (Okabe–Ito). */
const METHOD_COLORS: Record<string, string> = { base: '#000000', rtn: '#D55E00', imatrix: '#E69F00', gptq: '#009E73', awq: '#0072B2', mixed: '#CC79A7', qat: '#56B4E9' };
const color = (m: string, i: number) => METHOD_COLORS[m] ?? PALETTE[i % PALETTE.length];

function f(x: number, d = 3): string {
  return Number.isFinite(x) ? x.toFixed(d) : '–';
}

function mb(bytes: number): string {
  return bytes > 0 ? (bytes / 1e6).toFixed(3) : '–';
}

function pointData(p: SweepPointResult): Record<string, string | number> {
  return { method: p.method, scheme: p.scheme, bpw: p.bpw, nll: p.nll, ppl: p.ppl, kld: p.kld, frontier: p.onFrontier ? 1 : 0 };
}

/** Size (bits per weight) vs quality (mean NLL) chart with the frontier drawn as a line. */
export function frontierChart(points: SweepPointResult[]): string {
  const methods = [...new Set(points.map((p) => p.method))].sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b));
  const series: ChartSeries[] = methods.map((m, i) => ({
    id: `method-${m}`,
    label: m,
    line: false,
    markers: true,
    color: color(m, i),
    radius: 5,
    points: points
      .filter((p) => p.method === m)
      .map((p) => ({
        x: p.bpw,
        y: p.nll,
        id: p.id,
        label: `${p.id}: ${f(p.bpw, 2)} bpw, NLL ${f(p.nll, 4)}, PPL ${f(p.ppl, 3)}, KLD ${f(p.kld, 4)}`,
        className: p.onFrontier ? 'frontier' : undefined,
        data: pointData(p),
      })),
  }));
  const front = points.filter((p) => p.onFrontier).sort((a, b) => a.bpw - b.bpw);
  if (front.length) {
    series.push({
      id: 'frontier',
      label: 'Pareto frontier',
      line: true,
      markers: false,
      color: '#1b1f24',
      dash: '5 3',
      className: 'frontier-line',
      points: front.map((p) => ({ x: p.bpw, y: p.nll, id: `frontier-${p.id}` })),
    });
  }
  const predicted = points.filter((p) => p.predictedNll !== undefined && Number.isFinite(p.predictedNll));
  if (predicted.length) {
    series.push({
      id: 'predicted',
      label: 'scaling-law prediction',
      line: false,
      markers: true,
      color: '#8c8c8c',
      radius: 3,
      className: 'predicted',
      points: predicted.map((p) => ({ x: p.bpw, y: p.predictedNll as number, id: `pred-${p.id}`, label: `${p.id}: predicted NLL ${f(p.predictedNll as number, 4)}` })),
    });
  }
  return renderChart({
    id: 'frontier-chart',
    title: 'Size vs quality',
    subtitle: 'mean NLL on the evaluation text (lower is better); dashed: Pareto frontier',
    width: 760,
    height: 440,
    x: { label: 'bits per weight (quantized tensors, scales included; log scale)', scale: 'log' },
    y: { label: 'mean NLL (nats/token)', scale: 'linear' },
    series,
  });
}

/** KL divergence to the base model vs bits per weight (log scale: close variants differ by decades). */
export function kldChart(points: SweepPointResult[]): string {
  const pts = points.filter((p) => p.method !== 'base' && p.kld > 0);
  const methods = [...new Set(pts.map((p) => p.method))];
  return renderChart({
    id: 'kld-chart',
    title: 'KL divergence to the base model',
    width: 760,
    height: 360,
    x: { label: 'bits per weight', scale: 'linear' },
    y: { label: 'mean KL(base ‖ variant), nats/token', scale: 'log' },
    series: methods.map((m, i) => ({
      id: `kld-${m}`,
      label: m,
      line: false,
      markers: true,
      color: color(m, i),
      points: pts.filter((p) => p.method === m).map((p) => ({ x: p.bpw, y: p.kld, id: `kld-${p.id}`, className: p.onFrontier ? 'frontier' : undefined })),
    })),
  });
}

function pointsTable(points: SweepPointResult[]): string {
  const sorted = [...points].sort((a, b) => a.bpw - b.bpw || a.nll - b.nll);
  return renderTable({
    id: 'points-table',
    headers: ['point', 'method', 'scheme', 'format', 'file MB', 'bpw', 'NLL', 'PPL', 'PPL 95% CI', 'KLD', 'top-1', 'tok/s', 'quantize s', 'frontier'],
    rows: sorted.map((p) => [
      p.id,
      p.method,
      p.scheme,
      p.format,
      mb(p.fileBytes),
      f(p.bpw, 3),
      f(p.nll, 4),
      f(p.ppl, 3),
      `${f(p.pplLo, 3)}–${f(p.pplHi, 3)}`,
      p.method === 'base' ? '0' : f(p.kld, 5),
      p.method === 'base' ? '1' : f(p.top1, 4),
      f(p.tokensPerS, 0),
      f(p.quantizeS, 2),
      p.onFrontier ? 'yes' : '',
    ]),
    rowClasses: sorted.map((p) => (p.onFrontier ? 'frontier' : '')),
    caption: 'Rows on the size/quality Pareto frontier are highlighted. KLD and top-1 are against the base model on the same tokens.',
  });
}

function sensitivitySection(r: SweepRecord): string {
  if (!r.sensitivity.length) return '<p class="note">No per-tensor sensitivity was measured in this sweep.</p>';
  const rows = [...r.sensitivity].sort((a, b) => b.deltaNll - a.deltaNll);
  return (
    `<p class="note">Each row quantizes one tensor alone (scheme shown) and measures the increase in mean NLL; the tensors at the top hurt most at low bits and are the first to keep at higher precision.</p>` +
    renderTable({
      id: 'sensitivity-table',
      headers: ['tensor', 'scheme', 'ΔNLL', 'relative weight error'],
      rows: rows.map((s) => [s.tensor, s.scheme, f(s.deltaNll, 5), f(s.relErr, 5)]),
    })
  );
}

function lawSection(r: SweepRecord): string {
  if (!r.law) return '<p class="note">No scaling-law prediction applies to this sweep.</p>';
  const l = r.law;
  const consts = Object.entries(l.fitted)
    .map(([k, v]) => `${esc(k)} = ${esc(Number(v).toPrecision(5))}`)
    .join(', ');
  const caveats = l.caveats.length ? `<ul class="warn">${l.caveats.map((c) => `<li>${esc(c)}</li>`).join('')}</ul>` : '';
  return `<p>${esc(l.description)}</p><p>Constants: ${consts || '–'}</p><p>Mean absolute error of the prediction on the measured points: ${l.maeNll === null ? '–' : esc(l.maeNll.toFixed(4)) + ' nats/token'}</p>${caveats}`;
}

function reproduceSection(r: SweepRecord): string {
  const cmds = r.points.map((p) => `# ${p.id}\n${p.command}`).join('\n');
  const manifest = { tool: r.tool, createdAt: r.createdAt, model: r.model, text: r.text, seed: r.seed, elapsedS: r.elapsedS };
  return `<p>Every point can be reproduced on its own; the same inputs and seed give the same bytes.</p><pre id="commands">${esc(cmds)}</pre><h3>Manifest</h3><pre id="manifest">${esc(JSON.stringify(manifest, null, 2))}</pre>`;
}

function summary(r: SweepRecord): string {
  const base = r.points.find((p) => p.method === 'base');
  const front = r.points.filter((p) => p.onFrontier).sort((a, b) => a.bpw - b.bpw);
  const items = front.map((p) => `<li><b>${esc(p.id)}</b>: ${f(p.bpw, 2)} bpw, ${mb(p.fileBytes)} MB, PPL ${f(p.ppl, 3)}${base && p !== base ? ` (base ${f(base.ppl, 3)})` : ''}, KLD ${f(p.kld, 4)}</li>`);
  return (
    `<p>Model <code>${esc(r.model.path)}</code> (${esc(r.model.parameters.toLocaleString('en-US'))} parameters; ${esc(r.model.description)}). ` +
    `Evaluated on <code>${esc(r.text.path)}</code>: ${esc(r.text.tokens)} tokens, ${esc(r.text.protocol)}. ${r.points.length} points in ${esc(r.elapsedS.toFixed(1))} s, seed ${esc(r.seed)}.</p>` +
    `<p>The Pareto frontier (smallest size for its quality):</p><ul id="frontier-list">${items.join('')}</ul>`
  );
}

export function renderSweepReport(r: SweepRecord): string {
  const sections: HtmlSection[] = [
    { id: 'summary', title: 'Summary', html: summary(r) },
    { id: 'chart', title: 'Size / quality frontier', html: `<figure>${frontierChart(r.points)}</figure><figure>${kldChart(r.points)}</figure>` },
    { id: 'points', title: 'All points', html: pointsTable(r.points) },
    { id: 'sensitivity', title: 'Per-tensor sensitivity', html: sensitivitySection(r) },
    { id: 'law', title: 'Scaling-law panel', html: lawSection(r) },
    { id: 'reproduce', title: 'Reproduce', html: reproduceSection(r) },
  ];
  return renderPage({ title: 'bitscale sweep report', subtitle: `${r.model.path} · ${r.createdAt}`, sections });
}
