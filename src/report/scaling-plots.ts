// Charts of the precision-aware scaling law, built on ./svg.ts: loss vs tokens per training
// precision, δ_PTQ vs tokens per post-training width (critical data sizes marked), and iso-compute
// curves of loss vs precision with the compute-optimal precision marked.
// Legend: N = parameters, D = tokens, P = bit width, C = compute (FLOPs).
import {
  computeOptimalTied,
  criticalDataSize,
  deltaPtq,
  optimalAtPrecision,
  paretoFrontier,
  predict,
  type ConstantSet,
  type QualityDirection,
  type QualityPoint,
} from '../scaling/index.js';
import { fmtValue, renderChart, type ChartSeries, type ChartSpec } from './svg.js';

export interface ScalingPlotOptions {
  /** model size for the loss-vs-D and δ-vs-D charts (default 220e6, inside the paper's range) */
  N?: number;
  /** token range, log-spaced (default 1e9..1e12) */
  D?: [number, number];
  /** training widths for loss vs D, tied across w/a/kv (default 3, 4, 6, 8, 16 and BF16) */
  trainBits?: number[];
  /** post-training widths for δ_PTQ vs D (default 3, 4, 5, 6, 8) */
  postBits?: number[];
  /** budgets for the iso-compute chart (default 1e19, 1e21, 1e23) */
  budgets?: number[];
  /** samples per curve (default 60) */
  samples?: number;
}

export interface NamedChart {
  /** file stem, e.g. 'loss-vs-data' */
  name: string;
  spec: ChartSpec;
  svg: string;
}

function logspace(a: number, b: number, n: number): number[] {
  const la = Math.log10(a);
  const lb = Math.log10(b);
  return Array.from({ length: n }, (_, i) => Math.pow(10, la + ((lb - la) * i) / (n - 1)));
}

export function lossVsDataChart(set: ConstantSet, o: ScalingPlotOptions = {}): NamedChart {
  const N = o.N ?? 220e6;
  const Ds = logspace(...(o.D ?? [1e9, 1e12]), o.samples ?? 60);
  const bits: (number | undefined)[] = [undefined, ...(o.trainBits ?? [16, 8, 6, 4, 3])];
  const series: ChartSeries[] = bits.map((b) => ({
    id: b === undefined ? 'bf16' : `train-${b}`,
    label: b === undefined ? 'BF16 (no factor)' : `train ${b}-bit`,
    points: Ds.map((D) => ({ x: D, y: predict({ N, D, train: b === undefined ? undefined : { w: b, a: b, kv: b } }, set).loss })),
  }));
  const spec: ChartSpec = {
    id: 'loss-vs-data',
    title: `Loss vs training tokens, N = ${fmtValue(N)}`,
    subtitle: `constants: ${set.name}; weights, activations and KV cache trained at one width`,
    x: { label: 'training tokens D', scale: 'log' },
    y: { label: 'predicted loss (nats/token)' },
    series,
  };
  return { name: 'loss-vs-data', spec, svg: renderChart(spec) };
}

export function deltaPtqChart(set: ConstantSet, o: ScalingPlotOptions = {}): NamedChart {
  const N = o.N ?? 220e6;
  const [d0, d1] = o.D ?? [1e9, 1e12];
  const Ds = logspace(d0, d1, o.samples ?? 60);
  const bits = o.postBits ?? [3, 4, 5, 6, 8];
  const c = set.values;
  const series: ChartSeries[] = bits.map((b) => ({
    id: `post-${b}`,
    label: `PTQ to ${b}-bit`,
    points: Ds.map((D) => ({ x: D, y: deltaPtq(N, D, b, c) })),
  }));
  // critical data sizes: beyond D*, more pretraining raises the loss after PTQ
  const crit = bits
    .map((b) => ({ b, D: criticalDataSize(N, b, c) }))
    .filter((p) => p.D >= d0 && p.D <= d1)
    .map((p) => ({ x: p.D, y: deltaPtq(N, p.D, p.b, c), id: `critical-${p.b}`, className: 'critical-data', label: `critical data size for ${p.b}-bit PTQ: D* = ${fmtValue(p.D)}`, data: { bits: p.b } }));
  series.push({ id: 'critical', label: 'critical data size D*', points: crit, line: false, color: '#000000', radius: 5 });
  const spec: ChartSpec = {
    id: 'delta-ptq-vs-data',
    title: `Post-training quantization degradation δ_PTQ vs tokens, N = ${fmtValue(N)}`,
    subtitle: `constants: ${set.name}; BF16-trained model quantized after training`,
    x: { label: 'training tokens D', scale: 'log' },
    y: { label: 'δ_PTQ (nats/token)', scale: 'log' },
    series,
  };
  return { name: 'delta-ptq-vs-data', spec, svg: renderChart(spec) };
}

export function isoComputeChart(set: ConstantSet, o: ScalingPlotOptions = {}): NamedChart {
  const budgets = o.budgets ?? [1e19, 1e21, 1e23];
  const n = o.samples ?? 60;
  const Ps = Array.from({ length: n }, (_, i) => 2 + (14 * i) / (n - 1));
  // excess loss over each budget's own optimum, so curves of very different budgets share one
  // axis and their minima (all at the same P when precisions are tied) line up
  const opts = budgets.map((C) => computeOptimalTied(C, set));
  const series: ChartSeries[] = budgets.map((C, j) => ({
    id: `C-${fmtValue(C)}`,
    label: `C = ${fmtValue(C)} FLOPs`,
    points: Ps.map((P) => ({ x: P, y: optimalAtPrecision(C, { w: P, a: P, kv: P }, set.values).loss - opts[j].loss })),
  }));
  series.push({
    id: 'optimal',
    label: 'compute-optimal P*',
    line: false,
    color: '#000000',
    radius: 5,
    points: opts.map((p) => ({
      x: p.precision.w,
      y: 0,
      id: `optimal-${fmtValue(p.compute)}`,
      className: 'optimal',
      label: `C = ${fmtValue(p.compute)}: P* = ${p.precision.w.toFixed(2)} bits, N = ${fmtValue(p.N)}, D = ${fmtValue(p.D)}, loss ${p.loss.toFixed(4)}`,
      data: { compute: p.compute, precision: p.precision.w, n: p.N, d: p.D, loss: p.loss },
    })),
  });
  const spec: ChartSpec = {
    id: 'iso-compute',
    title: 'Iso-compute curves: loss vs training precision',
    subtitle: `constants: ${set.name}; N and D split optimally at each precision; cost = (6/16)·N·D·P`,
    x: { label: 'training precision P (bits, tied w/a/kv)' },
    y: { label: 'loss − optimal loss at this budget (nats/token)' },
    series,
    refLines: [{ axis: 'x', value: opts[0].precision.w, label: `P* = ${opts[0].precision.w.toFixed(2)}`, className: 'optimal-precision' }],
  };
  return { name: 'iso-compute', spec, svg: renderChart(spec) };
}

/** The three standard charts. */
export function scalingCharts(set: ConstantSet, o: ScalingPlotOptions = {}): NamedChart[] {
  return [lossVsDataChart(set, o), deltaPtqChart(set, o), isoComputeChart(set, o)];
}

export interface ParetoChartOptions {
  title?: string;
  sizeLabel?: string;
  qualityLabel?: string;
  /** log size axis (default true: sizes usually span orders of magnitude) */
  logSize?: boolean;
  dir?: QualityDirection;
}

/**
 * Size vs quality scatter, one series per bit width, plus the Pareto frontier as a line whose
 * points carry class 'frontier'. Every point has data-id (the point's id), data-bits, data-size
 * and data-quality, so `circle.point.frontier[data-id="…"]` finds a frontier point.
 */
export function paretoChart(points: readonly QualityPoint[], o: ParetoChartOptions = {}): NamedChart {
  const dir = o.dir ?? 'higher';
  const front = paretoFrontier(points, dir);
  const onFront = new Set(front);
  const bitsList = [...new Set(points.map((p) => p.bits))].sort((a, b) => a - b);
  const pt = (p: QualityPoint, extra?: string) => ({
    x: p.size,
    y: p.quality,
    id: p.id,
    className: extra,
    label: `${p.id ?? ''} ${p.bits}-bit: size ${fmtValue(p.size)}, quality ${fmtValue(p.quality)}`.trim(),
    data: { bits: p.bits, size: p.size, quality: p.quality, frontier: onFront.has(p) ? 'true' : 'false' },
  });
  const series: ChartSeries[] = bitsList.map((b) => ({
    id: `bits-${b}`,
    label: `${b}-bit`,
    line: false,
    points: points.filter((p) => p.bits === b).map((p) => pt(p, onFront.has(p) ? 'on-frontier' : undefined)),
  }));
  series.push({ id: 'frontier', label: 'Pareto frontier', color: '#000000', dash: '5 3', markers: true, radius: 2.5, points: front.map((p) => pt(p, 'frontier')) });
  const spec: ChartSpec = {
    id: 'pareto',
    title: o.title ?? 'Size vs quality',
    subtitle: `${front.length} of ${points.length} points on the frontier (${dir} quality is better)`,
    x: { label: o.sizeLabel ?? 'size', scale: (o.logSize ?? true) ? 'log' : 'linear' },
    y: { label: o.qualityLabel ?? 'quality' },
    series,
  };
  return { name: 'pareto', spec, svg: renderChart(spec) };
}
