// HTML for the page's panels, from the records bitscale's modules return: the inspect report
// (the one `bitscale inspect` prints), evaluation results, and the sweep report's chart and
// "what to ship" answer. Every string from a file is escaped.
import type { InspectReport } from '../src/pipeline/inspect.js';
import type { SweepPointResult, ShipChoice } from '../src/eval/sweep-types.js';
import { RUNTIMES } from '../src/report/decision.js';
import { fmtKld } from '../src/report/frontier-charts.js';

export function esc(s: unknown): string {
  return String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

const n = (x: number) => x.toLocaleString('en-US');
export const mb = (bytes: number) => (bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`);

function table(head: string[], rows: (string | number)[][], cls = ''): string {
  return `<table class="${cls}"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows
    .map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`)
    .join('')}</tbody></table>`;
}

/** Tensor tables longer than this start closed, their rows built when the user opens them. */
export const TENSOR_ROWS_OPEN = 64;

/** The per-tensor table of the inspect report (one row per tensor). */
export function tensorTableHtml(r: InspectReport): string {
  const showStored = r.tensors.some((t) => t.stored !== t.name);
  return table(
    ['tensor', ...(showStored ? ['in file'] : []), 'shape', 'dtype', 'bytes', 'bits/w'],
    r.tensors.map((x) => [x.name, ...(showStored ? [x.stored] : []), x.shape.join('×'), x.dtype, n(x.bytes), x.bitsPerWeight.toFixed(2)]),
    'tensors',
  );
}

/** The inspect report: the fields and tables `bitscale inspect` prints, as HTML. */
export function inspectHtml(r: InspectReport, label: string): string {
  const c = r.config;
  const extra = r.parameters - r.weightParameters;
  const md = Object.entries(r.metadata).filter(([, v]) => v !== null && v !== undefined);
  const t = r.tokenizer;
  return [
    `<p class="summary"><b>${esc(label)}</b> (${esc(r.format)}, ${mb(r.fileBytes)})</p>`,
    `<dl class="facts">`,
    `<dt>architecture</dt><dd id="arch">${esc(c.architecture)}: vocab ${n(c.vocabSize)}, hidden ${c.hiddenSize}, ffn ${c.intermediateSize}, layers ${c.nLayers}, heads ${c.nHeads} (kv ${c.nKvHeads}, dim ${c.headDim}), context ${n(c.maxSeqLen)}</dd>`,
    `<dt>rope / norm</dt><dd>theta ${c.ropeTheta} (${esc(c.ropeLayout)}${c.ropeScaling ? `, scaling ${esc(c.ropeScaling.type)} x${c.ropeScaling.factor}` : ''}), rms eps ${c.rmsNormEps}, ${c.tiedEmbeddings ? 'tied' : 'separate'} embeddings${c.attentionBias ? ', qkv bias' : ''}${c.qkNorm ? ', q/k norm' : ''}</dd>`,
    `<dt>parameters</dt><dd id="params">${n(r.parameters)}${extra ? ` (${n(r.weightParameters)} weights + ${n(extra)} stored RoPE table values)` : ''}</dd>`,
    `<dt>tokenizer</dt><dd>${t ? `${esc(t.kind)}: ${n(t.vocabSize)} tokens, bos ${t.bosId}, eos ${t.eosId}, unk ${t.unkId}; ${esc(JSON.stringify(t.sample?.text))} → [${esc(t.sample?.ids.join(', '))}]` : 'none found'}</dd>`,
    `</dl>`,
    // a long table starts closed and empty (tensorTableHtml fills it when first opened): its rows'
    // DOM and layout are Blink heap that follows the model's tensor count (≈ 5 MB for 507 tensors,
    // memory-infra's blink_gc/main after a full GC, docs/web.md), kept for as long as the model is open
    r.tensors.length <= TENSOR_ROWS_OPEN
      ? `<details id="tensors" open><summary>${r.tensors.length} tensors</summary>${tensorTableHtml(r)}</details>`
      : `<details id="tensors"><summary>${r.tensors.length} tensors</summary></details>`,
    table(['dtype', 'tensors', 'parameters', 'bytes', 'bits/w'], Object.entries(r.dtypeTotals).map(([d, v]) => [d, v.tensors, n(v.parameters), n(v.bytes), v.bitsPerWeight.toFixed(2)]), 'totals'),
    md.length ? `<details><summary>metadata (${md.length})</summary><pre>${md.map(([k, v]) => esc(`${k} = ${typeof v === 'string' ? v : JSON.stringify(v)}`.slice(0, 400))).join('\n')}</pre></details>` : '',
  ].join('');
}

/** One row per evaluated point. */
export function resultsHtml(points: SweepPointResult[]): string {
  return table(
    ['point', 'format', 'bits/w', 'file', 'PPL (95% CI)', 'KL divergence (95% CI)', 'top-1', 'frontier'],
    points.map((p) => [
      p.id,
      p.format,
      p.bpw.toFixed(2),
      p.fileBytes ? mb(p.fileBytes) : '–',
      `${p.ppl.toFixed(4)} (${p.pplLo.toFixed(3)}–${p.pplHi.toFixed(3)})`,
      p.method === 'base' ? '0' : `${fmtKld(p.kld)} (${fmtKld(p.kldLo ?? NaN)}–${fmtKld(p.kldHi ?? NaN)})`,
      `${(100 * p.top1).toFixed(1)}%`,
      [p.onFrontierKld ? 'KLD' : '', p.onFrontier ? 'PPL' : ''].filter(Boolean).join(', ') || '–',
    ]),
    'results',
  );
}

/** The "what to ship" answer per runtime, as the sweep report words it. */
export function shipHtml(choices: ShipChoice[]): string {
  const title = (id: string) => RUNTIMES.find((r) => r.id === id)?.title ?? id;
  return `<h3>What to ship</h3>${table(
    ['runtime', 'budget', 'ship', 'on', 'equivalent', 'note'],
    choices.map((c) => [title(c.runtime), c.budget, c.pointId ?? '–', c.metric === 'kld' ? 'KL divergence' : 'NLL', c.equivalent.join(', ') || '–', c.note ?? '']),
    'ship',
  )}`;
}
