// The sweep report's two size/quality charts: KL divergence to the base model and perplexity, each
// against bits per weight, with 95% intervals as error bars and the noise-aware frontier as a
// dashed line. The x axis covers the quantized points only (linear, so 2–5 bpw get most of the
// width); the float model sits after an axis break at the right, and on the perplexity chart its
// interval is a grey band: points inside it are within noise of the float model. Scaling-law
// predictions are hollow markers on a dashed line, apart from the measured (filled) points.
// Every point has a hover title and a printed label (wide charts: all points; narrow: the frontier).

import type { SweepPointResult } from '../eval/sweep-types.js';
import { fmtTick, linearTicks, PALETTE, renderChart, type ChartPoint, type ChartSeries } from './svg.js';

const METHOD_ORDER = ['base', 'rtn', 'imatrix', 'gptq', 'awq', 'mixed', 'qat'];
/** One colour per method in every chart (Okabe–Ito). */
export const METHOD_COLORS: Record<string, string> = { base: '#000000', rtn: '#D55E00', imatrix: '#E69F00', gptq: '#009E73', awq: '#0072B2', mixed: '#CC79A7', qat: '#56B4E9' };
export const methodColor = (m: string, i: number) => METHOD_COLORS[m] ?? PALETTE[i % PALETTE.length];

export type ChartMetric = 'kld' | 'ppl';

export interface FrontierChartOptions {
  /** a 380-px-wide layout with the legend below and labels on frontier points only */
  narrow?: boolean;
}

function f(x: number, d: number): string {
  return Number.isFinite(x) ? x.toFixed(d) : '–';
}

/** KL divergence for people: fixed decimals down to 1e-3, then two significant digits in exponent form. */
export function fmtKld(x: number): string {
  if (!Number.isFinite(x)) return '–';
  if (x === 0) return '0';
  return Math.abs(x) >= 1e-3 ? x.toFixed(4) : x.toExponential(1);
}

/** The x positions: quantized points at their bpw, the float model past a break at the right. */
interface XLayout {
  x: (p: SweepPointResult) => number;
  ticks: number[];
  format: (v: number) => string;
  breaks: number[];
  min: number;
  max: number;
}

function xLayout(points: SweepPointResult[]): XLayout {
  const q = points.filter((p) => p.method !== 'base').map((p) => p.bpw);
  const base = points.find((p) => p.method === 'base');
  if (!q.length) return { x: (p) => p.bpw, ticks: base ? [base.bpw] : [], format: fmtTick, breaks: [], min: (base?.bpw ?? 32) - 1, max: (base?.bpw ?? 32) + 1 };
  const lo = Math.min(...q);
  const hi = Math.max(...q);
  const span = Math.max(hi - lo, 1);
  const pad = 0.06 * span + 0.15;
  const gap = Math.max(0.6, 0.14 * span);
  const xBase = hi + pad + gap;
  const ticks = linearTicks(lo - pad, hi + pad).filter((t) => t >= lo - pad && t <= hi + pad);
  const fmt = (v: number) => (base && Math.abs(v - xBase) < 1e-9 ? `${fmtTick(base.bpw)} (float)` : fmtTick(v));
  return {
    x: (p) => (p.method === 'base' ? xBase : p.bpw),
    ticks: base ? [...ticks, xBase] : ticks,
    format: fmt,
    breaks: base ? [hi + pad + gap * 0.45] : [],
    min: lo - pad,
    max: base ? xBase + gap * 0.5 : hi + pad,
  };
}

function yOf(p: SweepPointResult, metric: ChartMetric): { y: number; lo: number; hi: number } | null {
  if (metric === 'ppl') return { y: p.ppl, lo: p.pplLo, hi: p.pplHi };
  if (p.method === 'base' || !(p.kld > 0)) return null;
  return { y: p.kld, lo: p.kldLo ?? p.kld, hi: p.kldHi ?? p.kld };
}

function tip(p: SweepPointResult): string {
  const kld = p.method === 'base' ? 'KLD 0 (reference)' : `KLD ${fmtKld(p.kld)}${p.kldLo !== undefined ? ` (95% ${fmtKld(p.kldLo)}–${fmtKld(p.kldHi!)})` : ''}`;
  const size = p.fileBytes > 0 ? `, ${(p.fileBytes / 1e6).toFixed(3)} MB` : '';
  return `${p.id} (${p.format}): ${f(p.bpw, 2)} bpw${size}, PPL ${f(p.ppl, 3)} (95% ${f(p.pplLo, 2)}–${f(p.pplHi, 2)}), ${kld}, top-1 ${f(100 * p.top1, 1)}%`;
}

/** One size/quality chart (see the file comment). Ids: `kld-chart` / `frontier-chart` (perplexity), `-narrow` for the narrow layout. */
export function frontierChart(points: SweepPointResult[], metric: ChartMetric, o: FrontierChartOptions = {}): string {
  const narrow = !!o.narrow;
  // the float model is drawn only on the perplexity chart (its KL divergence is 0 by definition)
  const lay = xLayout(metric === 'kld' ? points.filter((p) => p.method !== 'base') : points);
  const onFront = (p: SweepPointResult) => (metric === 'kld' ? !!p.onFrontierKld : p.onFrontier);
  const drawn = points.filter((p) => yOf(p, metric) !== null);
  const methods = [...new Set(drawn.map((p) => p.method))].sort((a, b) => METHOD_ORDER.indexOf(a) - METHOD_ORDER.indexOf(b));
  const pointOf = (p: SweepPointResult): ChartPoint => {
    const v = yOf(p, metric)!;
    return {
      x: lay.x(p),
      y: v.y,
      yLo: v.lo,
      yHi: v.hi,
      id: p.id,
      label: tip(p),
      text: !narrow || onFront(p) ? p.id : undefined,
      className: onFront(p) ? 'frontier' : undefined,
      data: { method: p.method, scheme: p.scheme, format: p.format, bpw: p.bpw, ppl: p.ppl, kld: p.kld, frontier: onFront(p) ? 1 : 0 },
    };
  };
  const series: ChartSeries[] = methods.map((m, i) => ({
    id: `method-${m}`,
    label: m === 'base' ? 'float model' : m,
    line: false,
    markers: true,
    color: methodColor(m, i),
    radius: narrow ? 4 : 5,
    points: drawn.filter((p) => p.method === m).map(pointOf),
  }));
  // the frontier line runs through the best frontier point at each size (ties at one size share it)
  const bestAt = new Map<number, SweepPointResult>();
  for (const p of drawn.filter(onFront)) {
    const q = bestAt.get(lay.x(p));
    if (!q || yOf(p, metric)!.y < yOf(q, metric)!.y) bestAt.set(lay.x(p), p);
  }
  const front = [...bestAt.values()].sort((a, b) => lay.x(a) - lay.x(b));
  if (front.length > 1) {
    series.push({ id: 'frontier', label: 'frontier', line: true, markers: false, color: '#1b1f24', dash: '5 3', className: 'frontier-line', points: front.map((p) => ({ x: lay.x(p), y: yOf(p, metric)!.y, id: `frontier-${p.id}` })) });
  }
  const predicted = metric === 'ppl' ? points.filter((p) => p.predictedNll !== undefined && Number.isFinite(p.predictedNll)).sort((a, b) => a.bpw - b.bpw) : [];
  if (predicted.length) {
    // drawn first, under the measured markers it may coincide with
    series.unshift({
      id: 'predicted',
      label: 'law prediction',
      line: true,
      markers: true,
      hollow: true,
      dash: '2 3',
      color: '#6e7781',
      radius: 3,
      className: 'predicted',
      points: predicted.map((p) => ({ x: p.bpw, y: Math.exp(p.predictedNll as number), id: `pred-${p.id}`, label: `${p.id}: predicted PPL ${f(Math.exp(p.predictedNll as number), 3)} (δ_PTQ law; not a measurement)` })),
    });
  }
  const base = points.find((p) => p.method === 'base');
  const isKld = metric === 'kld';
  return renderChart({
    id: `${isKld ? 'kld-chart' : 'frontier-chart'}${narrow ? '-narrow' : ''}`,
    title: isKld ? 'KL divergence to the float model' : 'Perplexity',
    subtitle: narrow ? 'lower is better; bars: 95% intervals' : `lower is better; bars: 95% intervals; dashed: frontier${isKld ? '' : '; grey band: the float model\'s 95% interval'}`,
    width: narrow ? 380 : 960,
    height: narrow ? 400 : 500,
    x: { label: 'bits per weight (quantized tensors, scales included)', scale: 'linear', min: lay.min, max: lay.max, ticks: lay.ticks, format: lay.format, breaks: lay.breaks },
    y: { label: isKld ? 'mean KL(float ‖ variant), nats/token' : 'perplexity (log scale)', scale: 'log' },
    bands: !isKld && base ? [{ axis: 'y', from: base.pplLo, to: base.pplHi, label: narrow ? 'float 95% interval' : "float model's 95% interval", className: 'float-band' }] : [],
    legendPosition: narrow ? 'bottom' : 'right',
    labelSize: narrow ? 10 : 11,
    series,
  });
}
