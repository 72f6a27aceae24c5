// Plain SVG chart primitives: linear/log axes with ticks, line series, scatter points, legend,
// title and reference lines. No dependencies and no DOM (strings in, string out), so it runs in
// Node and browsers alike. Output is deterministic: the same spec gives the same bytes (numbers
// are printed with fixed rounding, nothing depends on time or randomness).
//
// Every plotted point is a <circle class="point …"> with data-series, data-x, data-y (the data
// values, not pixels), data-id when the point has an id, and data-* for each entry of `data`, so
// browser tests and scripts can find points (`svg circle.point.frontier[data-id="q4_k"]`).
// Lines are <path class="line …" data-series="…">; each series also gets class `series-<id>`.
// Optional extras: vertical error bars (<line class="errorbar">), visible point labels placed so they
// do not overlap each other or the markers (<text class="point-label" data-id="…">, with a leader
// line when moved away from the point), hollow markers, shaded bands, axis-break marks, and a
// legend below the plot for narrow charts.

export type ScaleKind = 'linear' | 'log';

export interface AxisSpec {
  label: string;
  scale?: ScaleKind;
  /** domain limits; computed from the data (with a margin) when absent */
  min?: number;
  max?: number;
  /** explicit tick values (default: nice linear ticks or powers of ten) */
  ticks?: number[];
  format?: (v: number) => string;
  /** data values where the axis is broken (drawn as a // mark on the axis line) */
  breaks?: number[];
}

/** A shaded band across the plot between two values of one axis (e.g. a reference's interval). */
export interface Band {
  axis: 'x' | 'y';
  from: number;
  to: number;
  label?: string;
  className?: string;
  color?: string;
}

export interface ChartPoint {
  x: number;
  y: number;
  id?: string;
  /** tooltip text (an SVG <title>); default "label: x, y" */
  label?: string;
  /** extra classes, e.g. 'frontier' */
  className?: string;
  /** extra data-* attributes (keys are lower-cased and sanitised) */
  data?: Record<string, string | number>;
  /** a vertical error bar from yLo to yHi (e.g. a 95% interval) */
  yLo?: number;
  yHi?: number;
  /** a label printed next to the point (placed to avoid other labels and markers) */
  text?: string;
}

export interface ChartSeries {
  id: string;
  label: string;
  points: ChartPoint[];
  /** draw a line through the points in the given order (default true) */
  line?: boolean;
  /** draw the points as circles (default: true when line is false) */
  markers?: boolean;
  color?: string;
  dash?: string;
  className?: string;
  /** marker radius in px (default 3.5) */
  radius?: number;
  /** hollow markers (white fill, coloured outline): e.g. predictions rather than measurements */
  hollow?: boolean;
}

export interface ReferenceLine {
  axis: 'x' | 'y';
  value: number;
  label?: string;
  className?: string;
}

export interface ChartSpec {
  /** id attribute of the <svg> element */
  id?: string;
  title: string;
  subtitle?: string;
  width?: number;
  height?: number;
  x: AxisSpec;
  y: AxisSpec;
  series: ChartSeries[];
  refLines?: ReferenceLine[];
  bands?: Band[];
  legend?: boolean;
  /** 'right' (default) or 'bottom' (for narrow charts: the plot keeps the width) */
  legendPosition?: 'right' | 'bottom';
  /** font size of point labels in px (default 11) */
  labelSize?: number;
}

/** Colour-blind-safe palette (Okabe–Ito), cycled by series index. */
export const PALETTE = ['#0072B2', '#D55E00', '#009E73', '#CC79A7', '#E69F00', '#56B4E9', '#000000', '#F0E442'];

export function escapeXml(s: string | number): string {
  return String(s).replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c] as string);
}

/** A pixel coordinate, rounded to 0.01 px and printed without trailing zeros. */
export function px(v: number): string {
  const r = Math.round(v * 100) / 100;
  return Object.is(r, -0) ? '0' : String(r);
}

/** A data value for a data-* attribute: up to 6 significant digits, deterministic. */
export function fmtValue(v: number): string {
  if (!Number.isFinite(v)) return String(v);
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e6 || a < 1e-3) return v.toExponential(5).replace(/\.?0+e/, 'e').replace('e+', 'e');
  return String(Number(v.toPrecision(6)));
}

/** A tick label: short and readable (1e9 → "1e9", 2.5e10 → "2.5e10", 0.25 → "0.25", 2000 → "2000"). */
export function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) {
    const [m, e] = v.toExponential(2).split('e');
    return `${Number(m)}e${Number(e)}`;
  }
  return String(Number(v.toPrecision(4)));
}

/** "Nice" linear ticks covering [min, max] with about `count` steps of 1, 2 or 5 × 10^k. */
export function linearTicks(min: number, max: number, count = 5): number[] {
  if (!(max > min)) return [min];
  const raw = (max - min) / count;
  const mag = Math.pow(10, Math.floor(Math.log10(raw)));
  // the 1-2-5 step nearest to raw in log terms (thresholds √2, √10, √50)
  const r = raw / mag;
  const step = (r >= Math.sqrt(50) ? 10 : r >= Math.sqrt(10) ? 5 : r >= Math.SQRT2 ? 2 : 1) * mag;
  const out: number[] = [];
  const first = Math.ceil(min / step - 1e-9);
  for (let i = first; i * step <= max + step * 1e-9; i++) out.push(Number((i * step).toPrecision(12)));
  return out;
}

/** Log ticks: powers of ten in range, or 1-2-5 steps when the range spans at most three decades. */
export function logTicks(min: number, max: number): number[] {
  if (!(min > 0 && max > min)) return [min];
  const lo = Math.floor(Math.log10(min));
  const hi = Math.ceil(Math.log10(max));
  if (hi - lo <= 1) {
    // less than a decade: linear ticks read better than 1-2-5 (which may not fall in range)
    const lin = linearTicks(min, max).filter((v) => v > 0);
    if (lin.length >= 2) return lin;
  }
  const mults = hi - lo <= 3 ? [1, 2, 5] : [1];
  const out: number[] = [];
  for (let e = lo; e <= hi; e++) {
    for (const m of mults) {
      const v = Number((m * Math.pow(10, e)).toPrecision(12));
      if (v >= min * (1 - 1e-9) && v <= max * (1 + 1e-9)) out.push(v);
    }
  }
  return out;
}

export interface Scale {
  kind: ScaleKind;
  min: number;
  max: number;
  /** data value → pixel */
  map(v: number): number;
  /** whether a value can be drawn on this scale */
  ok(v: number): boolean;
}

export function makeScale(kind: ScaleKind, min: number, max: number, p0: number, p1: number): Scale {
  const t = kind === 'log' ? Math.log10 : (v: number) => v;
  const a = t(min);
  const b = t(max);
  const span = b - a || 1;
  return {
    kind,
    min,
    max,
    map: (v) => p0 + ((t(v) - a) / span) * (p1 - p0),
    ok: (v) => Number.isFinite(v) && (kind === 'linear' || v > 0),
  };
}

/** Domain of an axis from the data: explicit limits win; otherwise a 4% margin (log: in decades). */
export function axisDomain(axis: AxisSpec, values: number[]): [number, number] {
  const kind = axis.scale ?? 'linear';
  const vs = values.filter((v) => Number.isFinite(v) && (kind === 'linear' || v > 0));
  let lo = axis.min ?? (vs.length ? Math.min(...vs) : kind === 'log' ? 1 : 0);
  let hi = axis.max ?? (vs.length ? Math.max(...vs) : kind === 'log' ? 10 : 1);
  if (lo === hi) {
    if (kind === 'log') {
      lo /= 2;
      hi *= 2;
    } else {
      lo -= Math.abs(lo) * 0.1 || 1;
      hi += Math.abs(hi) * 0.1 || 1;
    }
  }
  if (kind === 'log') {
    const m = (Math.log10(hi) - Math.log10(lo)) * 0.04;
    if (axis.min === undefined) lo = Math.pow(10, Math.log10(lo) - m);
    if (axis.max === undefined) hi = Math.pow(10, Math.log10(hi) + m);
  } else {
    const m = (hi - lo) * 0.04;
    if (axis.min === undefined) lo -= m;
    if (axis.max === undefined) hi += m;
  }
  return [lo, hi];
}

/** 32-bit FNV-1a of a string, hex: a short deterministic id. */
function fnv1a(s: string): string {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193) >>> 0;
  return h.toString(16).padStart(8, '0');
}

function cssIdent(s: string): string {
  return s.replace(/[^A-Za-z0-9_-]/g, '_');
}

function dataAttrs(d: Record<string, string | number> | undefined): string {
  if (!d) return '';
  return Object.keys(d)
    .sort()
    .map((k) => ` data-${k.toLowerCase().replace(/[^a-z0-9-]/g, '-')}="${escapeXml(typeof d[k] === 'number' ? fmtValue(d[k] as number) : d[k])}"`)
    .join('');
}

/** Renders a chart as a standalone <svg> element (with xmlns, so it is also a valid .svg file). */
export function renderChart(spec: ChartSpec): string {
  const W = spec.width ?? 640;
  const H = spec.height ?? 400;
  const legend = spec.legend ?? spec.series.length > 1;
  const below = legend && spec.legendPosition === 'bottom';
  const legendRows = below ? legendLayout(spec.series, W - 24).rows : 0;
  const m = { top: spec.subtitle ? 52 : 36, right: legend && !below ? 170 : 24, bottom: 52 + legendRows * 18, left: 72 };
  const allX = spec.series.flatMap((s) => s.points.map((p) => p.x));
  // error bars and y bands stay inside the plot
  const allY = [
    ...spec.series.flatMap((s) => s.points.flatMap((p) => [p.y, ...(p.yLo !== undefined ? [p.yLo] : []), ...(p.yHi !== undefined ? [p.yHi] : [])])),
    ...(spec.bands ?? []).filter((b) => b.axis === 'y').flatMap((b) => [b.from, b.to]),
  ];
  const [x0, x1] = axisDomain(spec.x, allX);
  const [y0, y1] = axisDomain(spec.y, allY);
  const sx = makeScale(spec.x.scale ?? 'linear', x0, x1, m.left, W - m.right);
  const sy = makeScale(spec.y.scale ?? 'linear', y0, y1, H - m.bottom, m.top);
  const out: string[] = [];
  const idAttr = spec.id ? ` id="${escapeXml(spec.id)}"` : '';
  out.push(`<svg xmlns="http://www.w3.org/2000/svg"${idAttr} class="bitscale-chart" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="system-ui, sans-serif" font-size="12">`);
  out.push(`<title>${escapeXml(spec.title)}</title>`);
  out.push(`<rect class="background" x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text class="chart-title" x="${px(W / 2)}" y="20" text-anchor="middle" font-size="15" font-weight="600">${escapeXml(spec.title)}</text>`);
  if (spec.subtitle) out.push(`<text class="chart-subtitle" x="${px(W / 2)}" y="38" text-anchor="middle" fill="#57606a">${escapeXml(spec.subtitle)}</text>`);
  out.push(...axisSvg('x', spec.x, sx, sy, W, H, m));
  out.push(...axisSvg('y', spec.y, sy, sx, W, H, m));
  // unique per chart so several charts can share one HTML page
  const clipId = `${cssIdent(spec.id ?? `chart-${fnv1a(`${spec.title}|${W}|${H}|${spec.series.map((s) => s.id).join(',')}`)}`)}-clip`;
  out.push(`<clipPath id="${clipId}"><rect x="${m.left}" y="${m.top}" width="${W - m.left - m.right}" height="${H - m.top - m.bottom}"/></clipPath>`);
  for (const b of spec.bands ?? []) out.push(bandSvg(b, sx, sy, m, W, H));
  for (const r of spec.refLines ?? []) out.push(refLineSvg(r, sx, sy, m, W, H));
  spec.series.forEach((s, i) => out.push(seriesSvg(s, i, sx, sy, clipId)));
  out.push(labelsSvg(spec.series, sx, sy, m, W, H, spec.labelSize ?? 11));
  if (legend) out.push(below ? legendSvg(spec.series, 12, H - legendRows * 18 - 2, W - 24) : legendSvg(spec.series, W - m.right + 12, m.top));
  out.push('</svg>');
  return out.join('\n') + '\n';
}

type Margins = { top: number; right: number; bottom: number; left: number };

function axisSvg(which: 'x' | 'y', axis: AxisSpec, s: Scale, _other: Scale, W: number, H: number, m: Margins): string[] {
  const ticks = (axis.ticks ?? (s.kind === 'log' ? logTicks(s.min, s.max) : linearTicks(s.min, s.max))).filter((t) => t >= s.min - 1e-12 * Math.abs(s.min) && t <= s.max + 1e-12 * Math.abs(s.max));
  const fmt = axis.format ?? fmtTick;
  const out: string[] = [`<g class="axis axis-${which}" data-scale="${s.kind}">`];
  if (which === 'x') {
    const y = H - m.bottom;
    out.push(`<line class="axis-line" x1="${m.left}" y1="${y}" x2="${W - m.right}" y2="${y}" stroke="#57606a"/>`);
    for (const t of ticks) {
      const x = px(s.map(t));
      out.push(`<line class="grid" x1="${x}" y1="${m.top}" x2="${x}" y2="${y}" stroke="#eaeef2"/>`);
      out.push(`<text class="tick" data-value="${fmtValue(t)}" x="${x}" y="${y + 16}" text-anchor="middle">${escapeXml(fmt(t))}</text>`);
    }
    for (const b of axis.breaks ?? []) {
      if (!s.ok(b)) continue;
      const bx = s.map(b);
      out.push(`<path class="axis-break" d="M${px(bx - 6)} ${y + 5}L${px(bx - 2)} ${y - 5}M${px(bx + 2)} ${y + 5}L${px(bx + 6)} ${y - 5}" stroke="#57606a" stroke-width="1.5"/><rect x="${px(bx - 2)}" y="${y - 1}" width="4" height="2" fill="#ffffff"/>`);
    }
    out.push(`<text class="axis-label" x="${px((m.left + W - m.right) / 2)}" y="${y + 40}" text-anchor="middle">${escapeXml(axis.label)}</text>`);
  } else {
    const x = m.left;
    out.push(`<line class="axis-line" x1="${x}" y1="${m.top}" x2="${x}" y2="${H - m.bottom}" stroke="#57606a"/>`);
    for (const t of ticks) {
      const y = px(s.map(t));
      out.push(`<line class="grid" x1="${x}" y1="${y}" x2="${W - m.right}" y2="${y}" stroke="#eaeef2"/>`);
      out.push(`<text class="tick" data-value="${fmtValue(t)}" x="${x - 6}" y="${y}" dy="4" text-anchor="end">${escapeXml(fmt(t))}</text>`);
    }
    const cy = px((m.top + H - m.bottom) / 2);
    out.push(`<text class="axis-label" x="16" y="${cy}" text-anchor="middle" transform="rotate(-90 16 ${cy})">${escapeXml(axis.label)}</text>`);
  }
  out.push('</g>');
  return out;
}

function refLineSvg(r: ReferenceLine, sx: Scale, sy: Scale, m: Margins, W: number, H: number): string {
  const cls = `refline${r.className ? ' ' + escapeXml(r.className) : ''}`;
  const s = r.axis === 'x' ? sx : sy;
  if (!s.ok(r.value) || r.value < s.min || r.value > s.max) return `<g class="${cls}" data-value="${fmtValue(r.value)}" data-offscale="true"/>`;
  const p = px(s.map(r.value));
  const label = r.label ? escapeXml(r.label) : '';
  if (r.axis === 'x') {
    return `<g class="${cls}" data-value="${fmtValue(r.value)}"><line x1="${p}" y1="${m.top}" x2="${p}" y2="${H - m.bottom}" stroke="#57606a" stroke-dasharray="4 3"/>${label ? `<text x="${p}" dx="4" y="${m.top + 12}" fill="#57606a">${label}</text>` : ''}</g>`;
  }
  return `<g class="${cls}" data-value="${fmtValue(r.value)}"><line x1="${m.left}" y1="${p}" x2="${W - m.right}" y2="${p}" stroke="#57606a" stroke-dasharray="4 3"/>${label ? `<text x="${W - m.right - 4}" y="${p}" dy="-4" text-anchor="end" fill="#57606a">${label}</text>` : ''}</g>`;
}

function seriesSvg(s: ChartSeries, i: number, sx: Scale, sy: Scale, clipId: string): string {
  const color = s.color ?? PALETTE[i % PALETTE.length];
  const sid = cssIdent(s.id);
  const cls = `series series-${sid}${s.className ? ' ' + escapeXml(s.className) : ''}`;
  const out: string[] = [`<g class="${cls}" data-series="${escapeXml(s.id)}" clip-path="url(#${clipId})">`];
  const line = s.line ?? true;
  if (line) {
    // a gap wherever a point cannot be drawn (NaN, or ≤ 0 on a log axis)
    let d = '';
    let pen = false;
    for (const p of s.points) {
      if (!sx.ok(p.x) || !sy.ok(p.y)) {
        pen = false;
        continue;
      }
      d += `${pen ? 'L' : 'M'}${px(sx.map(p.x))} ${px(sy.map(p.y))}`;
      pen = true;
    }
    if (d) out.push(`<path class="line" data-series="${escapeXml(s.id)}" d="${d}" fill="none" stroke="${escapeXml(color)}" stroke-width="2"${s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : ''}/>`);
  }
  for (const p of s.points) {
    // error bars under the markers, clipped to the plot (an interval may reach below a log axis)
    if (p.yLo === undefined || p.yHi === undefined || !sx.ok(p.x) || !sy.ok(p.y)) continue;
    const x = px(sx.map(p.x));
    const lo = sy.ok(p.yLo) ? sy.map(p.yLo) : sy.map(sy.min);
    const hi = sy.ok(p.yHi) ? sy.map(p.yHi) : sy.map(sy.min);
    const id = p.id !== undefined ? ` data-id="${escapeXml(p.id)}"` : '';
    out.push(
      `<path class="errorbar"${id} data-lo="${fmtValue(p.yLo)}" data-hi="${fmtValue(p.yHi)}" d="M${x} ${px(lo)}V${px(hi)}M${px(sx.map(p.x) - 3)} ${px(lo)}h6M${px(sx.map(p.x) - 3)} ${px(hi)}h6" stroke="${escapeXml(color)}" stroke-width="1.2" stroke-opacity="0.7" fill="none"/>`,
    );
  }
  if (s.markers ?? !line) {
    const r = s.radius ?? 3.5;
    const paint = s.hollow ? `fill="#ffffff" stroke="${escapeXml(color)}" stroke-width="1.8"` : `fill="${escapeXml(color)}"`;
    for (const p of s.points) {
      if (!sx.ok(p.x) || !sy.ok(p.y)) continue;
      const pcls = `point${s.hollow ? ' hollow' : ''}${p.className ? ' ' + escapeXml(p.className) : ''}`;
      const id = p.id !== undefined ? ` data-id="${escapeXml(p.id)}"` : '';
      const tip = p.label ?? `${s.label}: ${fmtValue(p.x)}, ${fmtValue(p.y)}`;
      out.push(
        `<circle class="${pcls}" data-series="${escapeXml(s.id)}"${id} data-x="${fmtValue(p.x)}" data-y="${fmtValue(p.y)}"${dataAttrs(p.data)} cx="${px(sx.map(p.x))}" cy="${px(sy.map(p.y))}" r="${r}" ${paint}><title>${escapeXml(tip)}</title></circle>`,
      );
    }
  }
  out.push('</g>');
  return out.join('\n');
}

/** Estimated width of a text in px (system-ui averages about 0.58 em per character). */
export function textWidth(s: string, size: number): number {
  return s.length * size * 0.58;
}

/** Legend items flowed left to right in rows of at most `width` px (for a legend below the plot). */
function legendLayout(series: ChartSeries[], width: number): { rows: number; pos: { dx: number; row: number }[] } {
  const pos: { dx: number; row: number }[] = [];
  let dx = 0;
  let row = 0;
  for (const s of series) {
    const w = 24 + textWidth(s.label, 12) + 14;
    if (dx > 0 && dx + w > width) {
      dx = 0;
      row++;
    }
    pos.push({ dx, row });
    dx += w;
  }
  return { rows: series.length ? row + 1 : 0, pos };
}

/** The legend: one column at (x, y), or (with `width`) rows flowed below the plot. */
function legendSvg(series: ChartSeries[], x: number, y: number, width?: number): string {
  const out: string[] = [`<g class="legend">`];
  const flow = width !== undefined ? legendLayout(series, width).pos : null;
  series.forEach((s, i) => {
    const color = s.color ?? PALETTE[i % PALETTE.length];
    const xx = flow ? x + flow[i].dx : x;
    const yy = flow ? y + 8 + flow[i].row * 18 : y + 8 + i * 18;
    const c = escapeXml(color);
    const line = (s.line ?? true) ? `<line x1="${xx}" y1="${yy}" x2="${xx + 18}" y2="${yy}" stroke="${c}" stroke-width="2"${s.dash ? ` stroke-dasharray="${escapeXml(s.dash)}"` : ''}/>` : '';
    const dot = (s.markers ?? !(s.line ?? true)) ? `<circle cx="${xx + 9}" cy="${yy}" r="4" ${s.hollow ? `fill="#ffffff" stroke="${c}" stroke-width="1.8"` : `fill="${c}"`}/>` : '';
    out.push(`<g class="legend-item" data-series="${escapeXml(s.id)}">${line}${dot}<text x="${xx + 24}" y="${yy}" dy="4">${escapeXml(s.label)}</text></g>`);
  });
  out.push('</g>');
  return out.join('\n');
}

function bandSvg(b: Band, sx: Scale, sy: Scale, m: Margins, W: number, H: number): string {
  const s = b.axis === 'x' ? sx : sy;
  const clampV = (v: number) => Math.min(s.max, Math.max(s.min, v));
  if (!s.ok(b.from) || !s.ok(b.to) || Math.max(b.from, b.to) < s.min || Math.min(b.from, b.to) > s.max) return `<g class="band${b.className ? ' ' + escapeXml(b.className) : ''}" data-offscale="true"/>`;
  const p0 = s.map(clampV(b.from));
  const p1 = s.map(clampV(b.to));
  const fill = escapeXml(b.color ?? '#8c8c8c');
  const cls = `band${b.className ? ' ' + escapeXml(b.className) : ''}`;
  const data = ` data-from="${fmtValue(b.from)}" data-to="${fmtValue(b.to)}"`;
  if (b.axis === 'y') {
    const top = Math.min(p0, p1);
    // the label sits inside the band's lower right corner, where a falling quality curve rarely is
    const label = b.label ? `<text x="${W - m.right - 4}" y="${px(Math.max(p0, p1))}" dy="-4" text-anchor="end" fill="#57606a" font-size="11">${escapeXml(b.label)}</text>` : '';
    return `<g class="${cls}"${data}><rect x="${m.left}" y="${px(top)}" width="${W - m.left - m.right}" height="${px(Math.abs(p1 - p0))}" fill="${fill}" fill-opacity="0.16"/>${label}</g>`;
  }
  const left = Math.min(p0, p1);
  return `<g class="${cls}"${data}><rect x="${px(left)}" y="${m.top}" width="${px(Math.abs(p1 - p0))}" height="${H - m.top - m.bottom}" fill="${fill}" fill-opacity="0.16"/></g>`;
}

interface Box {
  x0: number;
  y0: number;
  x1: number;
  y1: number;
}

const overlaps = (a: Box, b: Box) => a.x0 < b.x1 && b.x0 < a.x1 && a.y0 < b.y1 && b.y0 < a.y1;

/**
 * Visible labels for points that have `text`, placed greedily (points sorted by x, then y): the
 * first candidate position around the point, at growing distances, that stays inside the plot and
 * overlaps no marker and no label already placed. A label placed away from its point gets a thin
 * leader line. A label with no free place is left out (the point keeps its hover title).
 */
function labelsSvg(series: ChartSeries[], sx: Scale, sy: Scale, m: Margins, W: number, H: number, size: number): string {
  type Item = { x: number; y: number; r: number; text: string; id?: string; color: string };
  const items: Item[] = [];
  const markers: Box[] = [];
  series.forEach((s, i) => {
    if (!(s.markers ?? !(s.line ?? true))) return;
    const r = s.radius ?? 3.5;
    for (const p of s.points) {
      if (!sx.ok(p.x) || !sy.ok(p.y)) continue;
      const x = sx.map(p.x);
      const y = sy.map(p.y);
      markers.push({ x0: x - r - 1, y0: y - r - 1, x1: x + r + 1, y1: y + r + 1 });
      if (p.text) items.push({ x, y, r, text: p.text, id: p.id, color: s.color ?? PALETTE[i % PALETTE.length] });
    }
  });
  if (!items.length) return '';
  items.sort((a, b) => a.x - b.x || a.y - b.y);
  const placed: Box[] = [];
  const out: string[] = ['<g class="point-labels">'];
  const h = size + 2;
  for (const it of items) {
    const w = textWidth(it.text, size);
    let found: { box: Box; anchor: 'start' | 'end' | 'middle'; tx: number; ty: number; far: boolean } | null = null;
    search: for (const d of [0, 10, 22, 36, 52]) {
      const g = it.r + 3 + d;
      const cands: [number, number, 'start' | 'end' | 'middle'][] = [
        [it.x + g, it.y + size / 3, 'start'],
        [it.x - g, it.y + size / 3, 'end'],
        [it.x + g * 0.7, it.y - g * 0.7, 'start'],
        [it.x - g * 0.7, it.y - g * 0.7, 'end'],
        [it.x + g * 0.7, it.y + g * 0.7 + size / 2, 'start'],
        [it.x - g * 0.7, it.y + g * 0.7 + size / 2, 'end'],
        [it.x, it.y - g, 'middle'],
        [it.x, it.y + g + size * 0.8, 'middle'],
      ];
      for (const [tx, ty, anchor] of cands) {
        const x0 = anchor === 'start' ? tx : anchor === 'end' ? tx - w : tx - w / 2;
        const box = { x0, y0: ty - size, x1: x0 + w, y1: ty - size + h };
        if (box.x0 < m.left + 2 || box.x1 > W - m.right - 2 || box.y0 < m.top + 2 || box.y1 > H - m.bottom - 2) continue;
        if (placed.some((b) => overlaps(b, box)) || markers.some((b) => overlaps(b, box))) continue;
        found = { box, anchor, tx, ty, far: d > 0 };
        break search;
      }
    }
    if (!found) continue;
    placed.push(found.box);
    const id = it.id !== undefined ? ` data-id="${escapeXml(it.id)}"` : '';
    if (found.far) {
      // leader from the marker's edge towards the label box's nearest point
      const bx = Math.min(Math.max(it.x, found.box.x0), found.box.x1);
      const by = Math.min(Math.max(it.y, found.box.y0), found.box.y1);
      const d = Math.hypot(bx - it.x, by - it.y) || 1;
      out.push(`<line class="leader" x1="${px(it.x + ((bx - it.x) / d) * it.r)}" y1="${px(it.y + ((by - it.y) / d) * it.r)}" x2="${px(bx)}" y2="${px(by)}" stroke="${escapeXml(it.color)}" stroke-width="0.8" stroke-opacity="0.8"/>`);
    }
    out.push(`<text class="point-label"${id} x="${px(found.tx)}" y="${px(found.ty)}" text-anchor="${found.anchor}" font-size="${size}" fill="#1b1f24">${escapeXml(it.text)}</text>`);
  }
  out.push('</g>');
  return out.join('\n');
}
