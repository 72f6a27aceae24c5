// The sweep report: one self-contained HTML file answering "which file should I ship?" — for each
// target runtime and size budget the recommended file (how to make it, how to run it, its size and
// its quality with a 95% interval); the KL-divergence and perplexity charts with their noise-aware
// frontiers; which differences are within noise; every point in a table; per-tensor sensitivity;
// the scaling-law panel; and the commands that reproduce every number.
// Chart points carry classes and data-* attributes (see svg.ts) so a browser test can find them.
// Each chart comes in a wide and a narrow layout; CSS shows the one that fits the viewport (the wide
// one when printing). Browser-safe: no node:* imports (the browser app reuses it).

import type { ShipChoice, SweepPointResult, SweepRecord } from '../eval/sweep-types.js';
import { nearBase, noiseGroups, recommendationsOf, RUNTIMES } from './decision.js';
import { fmtKld, frontierChart } from './frontier-charts.js';
import { esc, renderPage, renderTable, type HtmlSection } from './html.js';

export { frontierChart } from './frontier-charts.js';

function f(x: number, d = 3): string {
  return Number.isFinite(x) ? x.toFixed(d) : '–';
}

function mb(bytes: number): string {
  return bytes > 0 ? (bytes / 1e6).toFixed(3) : '–';
}

const kldCi = (p: SweepPointResult) => (p.method === 'base' ? '0' : p.kldLo !== undefined ? `${fmtKld(p.kldLo)}–${fmtKld(p.kldHi!)}` : '–');
const pplCi = (p: SweepPointResult) => `${f(p.pplLo, 2)}–${f(p.pplHi, 2)}`;
const withinFloat = nearBase;
/** NLL(variant) − NLL(float) with its paired 95% interval. */
const dnll = (p: SweepPointResult, base: SweepPointResult | undefined) =>
  p.method === 'base' ? '0' : base && p.dnllLo !== undefined ? `${f(p.nll - base.nll, 4)} (${f(p.dnllLo, 4)}–${f(p.dnllHi!, 4)})` : '–';

/** Both charts, wide and narrow. */
function chartsSection(r: SweepRecord): string {
  const fig = (metric: 'kld' | 'ppl', caption: string) =>
    `<figure class="chart-wide">${frontierChart(r.points, metric)}<figcaption>${caption}</figcaption></figure>` +
    `<figure class="chart-narrow">${frontierChart(r.points, metric, { narrow: true })}<figcaption>${caption}</figcaption></figure>`;
  const kldCap = 'Mean KL divergence of each variant\'s next-token distribution from the float model\'s, on the same tokens (log scale). It separates variants that perplexity cannot. The float model (KLD 0) is the reference and is not drawn.';
  const pplCap = 'Perplexity on the evaluation text. The grey band is the float model\'s 95% interval; whether a variant is measurably worse than the float model is decided on the paired per-token NLL difference (the table\'s ΔNLL column), which is much narrower than these bars. Hollow markers on the dotted line are δ_PTQ scaling-law predictions, not measurements.';
  return fig('kld', kldCap) + fig('ppl', pplCap) + noiseNotes(r);
}

function noiseNotes(r: SweepRecord): string {
  const items: string[] = [];
  for (const [metric, name] of [['kld', 'KL divergence'], ['nll', 'perplexity']] as const) {
    for (const g of noiseGroups(r.points, metric)) items.push(`<li>${esc(name)}: ${g.map((id) => `<code>${esc(id)}</code>`).join(', ')}</li>`);
  }
  if (!items.length) return '<p class="note">Every pair of points differs by more than its 95% intervals on both measures.</p>';
  return `<p>Within noise of each other (overlapping 95% intervals; such points are never ranked against each other, and the frontier prefers the smallest of them):</p><ul id="noise-groups">${items.join('')}</ul>`;
}

function quality(p: SweepPointResult, base: SweepPointResult | undefined): string {
  const kld = `KLD <b>${esc(fmtKld(p.kld))}</b> (95% ${esc(kldCi(p))})`;
  const ppl = `PPL ${esc(f(p.ppl, 3))} (95% ${esc(pplCi(p))}${withinFloat(p, base) ? `; within noise of float ${esc(f(base!.ppl, 3))}` : base ? `; float ${esc(f(base.ppl, 3))}` : ''})`;
  return `${kld}, ${ppl}, top-1 agreement ${esc(f(100 * p.top1, 1))}%`;
}

function budgetTitle(b: string): string {
  if (b === 'none') return 'no size limit (best measured)';
  if (b === 'float-ppl') return 'smallest not measurably worse than the float model (paired NLL)';
  return `≤ ${b.replace(/bpw$/, ' bpw').replace(/([kMG]B)$/, ' $1')}`;
}

/** One answer for every budget in `cs` (they recommend the same point, or nothing for the same reason). */
function shipItem(cs: ShipChoice[], byId: Map<string, SweepPointResult>, base: SweepPointResult | undefined, run: (p: string) => string): string {
  const c = cs[0];
  const attrs = `class="ship-choice" data-runtime="${esc(c.runtime)}" data-budget="${esc(cs.map((x) => x.budget).join(' '))}" data-point="${esc(c.pointId ?? '')}"`;
  const title = `<span class="budget">${cs.map((x) => esc(budgetTitle(x.budget))).join('; ')}</span>`;
  if (!c.pointId) return `<li ${attrs}>${title}: <span class="note">${esc(c.note ?? 'none')}</span></li>`;
  const p = byId.get(c.pointId)!;
  const eq = c.equivalent.length ? `<div class="note">Equivalent within noise (${c.metric === 'kld' ? 'KL divergence' : 'perplexity'}): ${c.equivalent.map((id) => `<code>${esc(id)}</code>`).join(', ')}</div>` : '';
  const path = p.out ?? p.id;
  return (
    `<li ${attrs}>${title}: <b>${esc(p.id)}</b> — ${esc(mb(p.fileBytes))} MB, ${esc(f(p.bpw, 2))} bpw; ${quality(p, base)}` +
    `${eq}<div class="cmd">make: <code>${esc(p.command)}</code></div><div class="cmd">run: <code>${esc(run(path))}</code></div></li>`
  );
}

function shipSection(r: SweepRecord): string {
  const recs = recommendationsOf(r);
  const byId = new Map(r.points.map((p) => [p.id, p]));
  const base = r.points.find((p) => p.method === 'base');
  const metric = recs.find((c) => c.pointId && c.budget !== 'float-ppl')?.metric ?? 'kld';
  const blocks = RUNTIMES.map((rt) => {
    // budgets with the same answer share one entry
    const groups = new Map<string, ShipChoice[]>();
    for (const c of recs.filter((x) => x.runtime === rt.id)) {
      const key = c.pointId ? `p:${c.pointId}:${c.equivalent.join(',')}` : `n:${c.note ?? ''}`;
      groups.set(key, [...(groups.get(key) ?? []), c]);
    }
    return `<div class="ship-runtime" data-runtime="${esc(rt.id)}"><h3>${esc(rt.title)}</h3><ul>${[...groups.values()].map((g) => shipItem(g, byId, base, rt.run)).join('')}</ul></div>`;
  });
  return (
    `<p>For each target runtime and size budget: the file to ship, how to make it and run it, its size and its quality with a 95% interval. ` +
    `Chosen on ${metric === 'kld' ? 'KL divergence to the float model' : 'mean NLL'}: within a budget, a larger file is recommended only when it is measurably better (its interval lies below the smaller file's); ` +
    `files whose intervals overlap are listed as equivalent.</p>` +
    blocks.join('')
  );
}

function pointsTable(r: SweepRecord): string {
  const base = r.points.find((p) => p.method === 'base');
  const sorted = [...r.points].sort((a, b) => a.bpw - b.bpw || a.kld - b.kld);
  const table = renderTable({
    id: 'points-table',
    headers: ['point', 'method', 'scheme', 'format', 'file MB', 'bpw', 'KLD', 'KLD 95% CI', 'PPL', 'PPL 95% CI', 'ΔNLL vs float (paired 95% CI)', 'top-1', 'frontier (KLD / PPL)', 'quantize s'],
    rows: sorted.map((p) => [
      p.id,
      p.method,
      p.scheme,
      p.format,
      mb(p.fileBytes),
      f(p.bpw, 3),
      p.method === 'base' ? '0' : fmtKld(p.kld),
      kldCi(p),
      f(p.ppl, 3) + (withinFloat(p, base) ? ' ≈' : ''),
      pplCi(p),
      dnll(p, base),
      p.method === 'base' ? '100%' : `${f(100 * p.top1, 1)}%`,
      `${p.onFrontierKld ? 'yes' : '–'} / ${p.onFrontier ? 'yes' : '–'}`,
      f(p.quantizeS, 2),
    ]),
    rowClasses: sorted.map((p) => (p.onFrontierKld || p.onFrontier ? 'frontier' : '')),
    caption: 'KLD, ΔNLL and top-1 agreement are against the float model on the same tokens; ≈: not measurably worse than the float model (the paired ΔNLL interval reaches 0). Rows on either frontier are highlighted.',
  });
  const speeds = r.points.map((p) => p.tokensPerS).filter((x) => Number.isFinite(x) && x > 0).sort((a, b) => a - b);
  const median = speeds.length ? speeds[Math.floor(speeds.length / 2)] : NaN;
  const speedNote =
    `<p class="note" id="throughput-note">Throughput is not compared per point: every point was evaluated by bitscale's engine on its dequantized float weights, ` +
    `the same computation for all of them, so their speeds differ only by machine noise and say nothing about a file's speed in its runtime` +
    `${Number.isFinite(median) ? ` (evaluation median ${esc(Math.round(median))} tokens/s)` : ''}.</p>`;
  return `<div class="scroll">${table}</div>${speedNote}`;
}

function sensitivitySection(r: SweepRecord): string {
  if (!r.sensitivity.length) return '<p class="note">No per-tensor sensitivity was measured in this sweep.</p>';
  const rows = [...r.sensitivity].sort((a, b) => b.deltaNll - a.deltaNll);
  return (
    `<p class="note">Each row quantizes one tensor alone (scheme shown) and measures the increase in mean NLL on two windows; the tensors at the top hurt most at low bits and are the first to keep at higher precision.</p>` +
    `<div class="scroll">${renderTable({ id: 'sensitivity-table', headers: ['tensor', 'scheme', 'ΔNLL', 'relative weight error'], rows: rows.map((s) => [s.tensor, s.scheme, f(s.deltaNll, 5), f(s.relErr, 5)]) })}</div>`
  );
}

function lawSection(r: SweepRecord): string {
  if (!r.law) return '<p class="note">No scaling-law prediction applies to this sweep.</p>';
  const l = r.law;
  const consts = Object.entries(l.fitted)
    .map(([k, v]) => `${esc(k)} = ${esc(Number(v).toPrecision(5))}`)
    .join(', ');
  const caveats = l.caveats.length ? `<ul class="warn">${l.caveats.map((c) => `<li>${esc(c)}</li>`).join('')}</ul>` : '';
  return `<p>${esc(l.description)}</p><p>Constants: ${consts || '–'}</p><p>Mean absolute error of the prediction on the measured points: ${l.maeNll === null ? '–' : esc(l.maeNll.toFixed(4)) + ' nats/token'}. The predictions are drawn as hollow markers on the perplexity chart.</p>${caveats}`;
}

function reproduceSection(r: SweepRecord): string {
  const cmds = r.points
    .map((p) => {
      const lines = [`# ${p.id}`, p.command];
      if (p.evalCommand && p.evalCommand !== p.command) lines.push(p.evalCommand);
      return lines.join('\n');
    })
    .join('\n');
  const manifest = { tool: r.tool, createdAt: r.createdAt, model: r.model, text: r.text, seed: r.seed, elapsedS: r.elapsedS };
  return (
    `<p>Every point can be reproduced on its own: the first command makes the file (the same inputs and seed give the same bytes), the second measures it again with the same text, window and token limit (bitscale eval), which prints the numbers in this report.</p>` +
    `<pre id="commands">${esc(cmds)}</pre><h3>Manifest</h3><pre id="manifest">${esc(JSON.stringify(manifest, null, 2))}</pre>`
  );
}

function summary(r: SweepRecord): string {
  const frontK = r.points.filter((p) => p.onFrontierKld && p.method !== 'base').sort((a, b) => a.bpw - b.bpw);
  const frontP = r.points.filter((p) => p.onFrontier).sort((a, b) => a.bpw - b.bpw);
  const base = r.points.find((p) => p.method === 'base');
  const nearFloat = r.points.filter((p) => withinFloat(p, base)).sort((a, b) => a.bpw - b.bpw);
  // points of one size on a frontier are ties (overlapping intervals): joined by '=', sizes by '→'
  const list = (ps: SweepPointResult[]) =>
    [...new Set(ps.map((p) => p.bpw))].map((b) => ps.filter((p) => p.bpw === b).map((p) => `<b>${esc(p.id)}</b>`).join(' = ') + ` (${esc(f(b, 2))} bpw)`).join(' → ') || '–';
  return (
    `<p>Model <code>${esc(r.model.path)}</code> (${esc(r.model.parameters.toLocaleString('en-US'))} parameters; ${esc(r.model.description)}). ` +
    `Evaluated on <code>${esc(r.text.path)}</code>: ${esc(r.text.tokens)} tokens, ${esc(r.text.protocol)}. ${r.points.length} points in ${esc(r.elapsedS.toFixed(1))} s, seed ${esc(r.seed)}.</p>` +
    `<ul id="frontier-list"><li>Frontier on KL divergence: ${list(frontK)}</li><li>Frontier on perplexity: ${list(frontP)}${frontP.length && frontP.every((p) => p.bpw === frontP[0].bpw) ? ' — on this text, perplexity cannot show that any larger point is better (every larger point\'s interval overlaps these)' : ''}</li>` +
    (nearFloat.length ? `<li>Not measurably worse than the float model (the paired NLL difference on the same tokens reaches 0): ${list(nearFloat).replace(/ → /g, ', ')}.</li>` : '') +
    `</ul>`
  );
}

export function renderSweepReport(r: SweepRecord): string {
  const sections: HtmlSection[] = [
    { id: 'summary', title: 'Summary', html: summary(r) },
    { id: 'ship', title: 'What to ship', html: shipSection(r) },
    { id: 'chart', title: 'Size / quality', html: chartsSection(r) },
    { id: 'points', title: 'All points', html: pointsTable(r) },
    { id: 'sensitivity', title: 'Per-tensor sensitivity', html: sensitivitySection(r) },
    { id: 'law', title: 'Scaling-law panel', html: lawSection(r) },
    { id: 'reproduce', title: 'Reproduce', html: reproduceSection(r) },
  ];
  return renderPage({ title: 'bitscale sweep report', subtitle: `${r.model.path} · ${r.createdAt}`, sections });
}
