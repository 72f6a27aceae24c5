// Self-contained HTML pages: inline CSS, inline SVG, no scripts or network fetches, so a report
// opens the same from disk, from an email attachment or from a CI artefact.

/** Escape text for HTML element content and attribute values. */
export function esc(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string);
}

export interface HtmlTable {
  id: string;
  headers: string[];
  rows: (string | number)[][];
  /** per-row extra class names (e.g. 'frontier') */
  rowClasses?: string[];
  caption?: string;
}

export function renderTable(t: HtmlTable): string {
  const head = `<tr>${t.headers.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>`;
  const body = t.rows
    .map((r, i) => {
      const cls = t.rowClasses?.[i] ? ` class="${esc(t.rowClasses[i])}"` : '';
      return `<tr${cls}>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`;
    })
    .join('\n');
  const cap = t.caption ? `<caption>${esc(t.caption)}</caption>` : '';
  return `<table id="${esc(t.id)}">${cap}<thead>${head}</thead><tbody>\n${body}\n</tbody></table>`;
}

export interface HtmlSection {
  id: string;
  title: string;
  /** trusted HTML (already escaped) */
  html: string;
}

const CSS = `
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:24px auto;max-width:1100px;color:#1b1f24;background:#fff;padding:0 16px}
h1{font-size:22px;margin:0 0 4px} h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.sub{color:#57606a;margin:0 0 16px}
table{border-collapse:collapse;margin:8px 0;font-variant-numeric:tabular-nums;font-size:13px}
th,td{border:1px solid #d0d7de;padding:3px 8px;text-align:right;white-space:nowrap} th{background:#f6f8fa}
td:first-child,th:first-child{text-align:left}
tr.frontier td{background:#ecfdf3;font-weight:600}
caption{caption-side:bottom;color:#57606a;font-size:12px;padding-top:4px;text-align:left}
pre{background:#f6f8fa;border:1px solid #d0d7de;padding:8px;overflow:auto;font-size:12px}
.note{color:#57606a;font-size:13px} .warn{color:#9a6700}
figure{margin:8px 0} svg{max-width:100%;height:auto} figcaption{color:#57606a;font-size:12px;max-width:960px}
code{font-size:12px;overflow-wrap:anywhere} h3{font-size:15px;margin:18px 0 6px}
.scroll{overflow-x:auto;max-width:100%}
.ship-runtime ul{padding-left:18px} .ship-choice{margin:6px 0} .ship-choice .budget{font-weight:600} .ship-choice .cmd{font-size:12px;color:#57606a}
.chart-narrow{display:none}
@media (max-width:640px){body{margin:12px auto;padding:0 10px} .chart-wide{display:none} .chart-narrow{display:block} pre{white-space:pre-wrap;overflow-wrap:anywhere}}
@media print{.chart-wide{display:block!important} .chart-narrow{display:none!important} pre{white-space:pre-wrap}}
`;

export function renderPage(opts: { title: string; subtitle?: string; sections: HtmlSection[] }): string {
  const secs = opts.sections
    .map((s) => `<section id="${esc(s.id)}"><h2>${esc(s.title)}</h2>\n${s.html}\n</section>`)
    .join('\n');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<meta name="generator" content="bitscale">
<title>${esc(opts.title)}</title><style>${CSS}</style></head>
<body><h1>${esc(opts.title)}</h1>${opts.subtitle ? `<p class="sub">${esc(opts.subtitle)}</p>` : ''}
${secs}
</body></html>
`;
}
