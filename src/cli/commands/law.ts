// `bitscale law predict|optimal|fit|plot|experiment`: argument parsing and printing only; the work
// is in pipeline/law/law.ts (formulas in src/scaling).
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { abortSignal, nearest, numberOpt, parse, threadsOpt } from '../args.js';
import { out, progressPrinter, table, printJson } from '../output.js';
import { lawFit, lawOptimal, lawPlot, lawPredict, type FitJob } from '../../pipeline/law/law.js';
import { lawExperiment, loadGrid } from '../../pipeline/law/experiment.js';

export const meta: CommandMeta = {
  name: 'law',
  summary: 'precision-aware scaling laws: predict loss, compute-optimal precision, fit to runs, charts',
  usage: `bitscale law <predict|optimal|fit|plot|experiment> [options]

  predict   --N PARAMS --D TOKENS [--train-bits B | --w-bits B --a-bits B --kv-bits B] [--post-bits B]
            loss after (low-precision) pretraining and after post-training quantization to --post-bits,
            with each term, δ_PTQ and the critical data size beyond which more data hurts after PTQ
  optimal   --compute FLOPS [--separate] [--N PARAMS] [--min-bits B] [--max-bits B] [--cost-weights W,A,KV]
            compute-optimal N, D and training precision (tied w/a/kv by default; --separate optimises
            three widths charged at their weighted mean; --N fixes the model size), cost = (6/16)·N·D·P
  fit       RUNS.json|RUNS.csv [--params A,alpha,B,beta,E,...] [--tie beta=alpha,...] [--bootstrap N]
            [--holdout F|largest-N] [--seed S] [--starts N] [--huber-delta X] [--level L] [--out FILE]
            robust fit (Huber on log-loss) of the chosen constants; runs have columns N, D, w, a, kv,
            post, loss (empty = high precision / no PTQ); --out writes a set usable as --constants
  plot      --out DIR [--N PARAMS] [--D-range MIN,MAX] [--train-bits B1,B2,...] [--post-bits B1,...] [--budgets C1,...]
            SVG charts: loss vs D per precision, δ_PTQ vs D, iso-compute curves with P* marked
  experiment  --out DIR [--grid small|micro|default|FILE] [--threads N] [--fit-params A,alpha,...] [--queue URL]
            train a small Llama on Moby-Dick per grid point (N preset × D tokens × tied training bits),
            PTQ each model (RTN per-channel int), record validation losses in DIR/runs.json + runs.csv
            (resumable: finished runs are never recomputed), then fit the law and print δ_PTQ vs D;
            --queue redis://HOST:PORT[/DB]: one job per training run, run by \`bitscale worker\` processes

  --constants NAME|FILE  constant set: kumar2024 (default) or a JSON file (e.g. from fit --out)
  --json                 print one JSON object instead of tables
  --quiet                no progress (fit)`,
};

const e = (v: number) => v.toExponential(3);

function positive(v: string | undefined, flag: string, required: boolean): number | undefined {
  if (v === undefined) {
    if (required) throw new ConfigError('bad_option', `--${flag} is required`, { field: `--${flag}`, expected: 'a number > 0', found: 'nothing' });
    return undefined;
  }
  const x = numberOpt(v, flag)!;
  if (!(x > 0)) throw new ConfigError('bad_option', `invalid value for --${flag}`, { field: `--${flag}`, expected: 'a number > 0', found: v });
  return x;
}

const bits = (v: string | undefined, flag: string) => numberOpt(v, flag, { min: 1, max: 64 });

function printCaveats(caveats: string[]): void {
  if (!caveats.length) return;
  out('\ncaveats:');
  for (const c of caveats) out(`  - ${c}`);
}

export async function run(argv: string[]): Promise<number> {
  const [sub, ...rest] = argv;
  switch (sub) {
    case 'predict':
      return predictCmd(rest);
    case 'optimal':
      return optimalCmd(rest);
    case 'fit':
      return fitCmd(rest);
    case 'plot':
      return plotCmd(rest);
    case 'experiment':
      return experimentCmd(rest);
    default: {
      const near = sub ? nearest(sub, ['predict', 'optimal', 'fit', 'plot', 'experiment']) : undefined;
      throw new ConfigError('bad_option', 'unknown law subcommand', { field: 'subcommand', expected: 'predict, optimal, fit, plot or experiment', found: sub ?? 'nothing', hint: near ? `did you mean 'law ${near}'?` : meta.usage.split('\n')[0] });
    }
  }
}

async function predictCmd(argv: string[]): Promise<number> {
  const p = parse(
    argv,
    {
      N: { type: 'string' }, D: { type: 'string' }, 'train-bits': { type: 'string' }, 'w-bits': { type: 'string' }, 'a-bits': { type: 'string' },
      'kv-bits': { type: 'string' }, 'post-bits': { type: 'string' }, constants: { type: 'string' }, json: { type: 'boolean' },
    },
    meta.usage,
    { positionals: 0 },
  );
  const v = p.values as Record<string, string | undefined> & { json?: boolean };
  const r = await lawPredict({
    N: positive(v.N, 'N', true)!,
    D: positive(v.D, 'D', true)!,
    trainBits: bits(v['train-bits'], 'train-bits'),
    wBits: bits(v['w-bits'], 'w-bits'),
    aBits: bits(v['a-bits'], 'a-bits'),
    kvBits: bits(v['kv-bits'], 'kv-bits'),
    postBits: bits(v['post-bits'], 'post-bits'),
    constants: v.constants,
  });
  if (v.json) {
    printJson('law predict', r);
    return 0;
  }
  const tb = (x: number | undefined) => (x === undefined ? 'high' : `${x}`);
  const rows: (string | number)[][] = [
    ['constants', r.constants],
    ['N (parameters)', e(r.N)],
    ['D (tokens)', `${e(r.D)}  (${(r.D / r.N).toFixed(1)} tokens/param)`],
    ['training bits w/a/kv', r.train ? `${tb(r.train.w)}/${tb(r.train.a)}/${tb(r.train.kv)}` : 'high precision (BF16)'],
    ['N_eff', e(r.nEff)],
    ['A·N_eff^−α', r.terms.params.toFixed(4)],
    ['B·D^−β', r.terms.data.toFixed(4)],
    ['E', r.terms.irreducible.toFixed(4)],
    ['loss after pretraining', `${r.pretrainLoss.toFixed(4)} nats/token`],
  ];
  if (r.postBits !== null) {
    rows.push(['post-training bits', r.postBits], ['δ_PTQ', r.deltaPtq.toPrecision(4)], ['loss after PTQ', `${r.loss.toFixed(4)} nats/token`]);
    rows.push(['critical data size D*', r.criticalDataSize === null || !Number.isFinite(r.criticalDataSize) ? 'none (PTQ is free)' : `${e(r.criticalDataSize)}${r.D > r.criticalDataSize ? '  (D is past it: less data would do better after PTQ)' : ''}`]);
  }
  out(table(['quantity', 'value'], rows));
  printCaveats(r.caveats);
  return 0;
}

async function optimalCmd(argv: string[]): Promise<number> {
  const p = parse(
    argv,
    {
      compute: { type: 'string' }, separate: { type: 'boolean' }, N: { type: 'string' }, 'min-bits': { type: 'string' }, 'max-bits': { type: 'string' },
      'cost-weights': { type: 'string' }, constants: { type: 'string' }, json: { type: 'boolean' },
    },
    meta.usage,
    { positionals: 0 },
  );
  const v = p.values as Record<string, string | undefined> & { json?: boolean; separate?: boolean };
  let costWeights: { w: number; a: number; kv: number } | undefined;
  if (v['cost-weights'] !== undefined) {
    const parts = v['cost-weights'].split(',').map((s) => Number(s));
    if (parts.length !== 3 || parts.some((x) => !(Number.isFinite(x) && x >= 0)) || parts.every((x) => x === 0)) {
      throw new ConfigError('bad_option', 'invalid value for --cost-weights', { field: '--cost-weights', expected: 'three numbers >= 0, not all 0: W,A,KV', found: v['cost-weights'] });
    }
    costWeights = { w: parts[0], a: parts[1], kv: parts[2] };
  }
  const r = await lawOptimal({
    compute: positive(v.compute, 'compute', true)!,
    mode: v.separate ? 'separate' : 'tied',
    N: positive(v.N, 'N', false),
    minBits: bits(v['min-bits'], 'min-bits'),
    maxBits: bits(v['max-bits'], 'max-bits'),
    costWeights,
    constants: v.constants,
  });
  if (v.json) {
    printJson('law optimal', r);
    return 0;
  }
  const rows: (string | number)[][] = [
    ['constants', r.constants],
    ['mode', r.mode],
    ['compute C (FLOPs)', e(r.compute)],
    [r.mode === 'separate' ? 'precision (cost-weighted mean)' : 'optimal precision P*', `${r.precision.toFixed(2)} bits`],
  ];
  if (r.mode === 'separate') rows.push(['P_w / P_a / P_kv', `${r.precisions.w.toFixed(2)} / ${r.precisions.a.toFixed(2)} / ${r.precisions.kv.toFixed(2)}`]);
  rows.push(['N (parameters)', e(r.N)], ['D (tokens)', e(r.D)], ['tokens per parameter', r.tokensPerParam.toFixed(1)], ['N_eff', e(r.nEff)], ['loss', `${r.loss.toFixed(4)} nats/token`]);
  out(table(['quantity', 'value'], rows));
  printCaveats(r.caveats);
  return 0;
}

async function fitCmd(argv: string[]): Promise<number> {
  const p = parse(
    argv,
    {
      params: { type: 'string' }, tie: { type: 'string' }, bootstrap: { type: 'string' }, holdout: { type: 'string' }, seed: { type: 'string' },
      starts: { type: 'string' }, 'huber-delta': { type: 'string' }, level: { type: 'string' }, out: { type: 'string' }, constants: { type: 'string' },
      json: { type: 'boolean' }, quiet: { type: 'boolean' },
    },
    meta.usage,
    { positionals: 1 },
  );
  const v = p.values as Record<string, string | undefined> & { json?: boolean; quiet?: boolean };
  const file = p.positionals[0];
  if (!file) throw new ConfigError('bad_option', 'RUNS file is required', { field: 'RUNS', hint: 'bitscale law fit RUNS.json|RUNS.csv' });
  const list = (s: string | undefined) => (s === undefined ? undefined : s.split(',').map((x) => x.trim()).filter(Boolean));
  const ties: Record<string, string> = {};
  for (const t of list(v.tie) ?? []) {
    const [k, to] = t.split('=');
    if (!k || !to) throw new ConfigError('bad_option', 'invalid value for --tie', { field: '--tie', expected: 'name=name[,name=name…]', found: t });
    ties[k] = to;
  }
  let holdout: FitJob['holdout'];
  if (v.holdout === 'largest-N') holdout = 'largest-N';
  else if (v.holdout !== undefined) holdout = { fraction: numberOpt(v.holdout, 'holdout', { min: 0.01, max: 0.9 })! };
  const r = await lawFit({
    file,
    params: list(v.params) as FitJob['params'],
    ties: ties as FitJob['ties'],
    bootstrap: numberOpt(v.bootstrap, 'bootstrap', { integer: true, min: 0, max: 100000 }),
    holdout,
    seed: numberOpt(v.seed, 'seed', { integer: true, min: 0 }),
    starts: numberOpt(v.starts, 'starts', { integer: true, min: 1, max: 1000 }),
    huberDelta: positive(v['huber-delta'], 'huber-delta', false),
    level: numberOpt(v.level, 'level', { min: 0.5, max: 0.999 }),
    constants: v.constants,
    out: v.out,
    onProgress: progressPrinter({ quiet: v.quiet || v.json }),
    signal: abortSignal(),
  });
  if (v.json) {
    printJson('law fit', r);
    return 0;
  }
  const names = Object.keys(r.estimates);
  const hasCi = !!r.ci;
  out(`fitted ${r.params.join(', ')} to ${r.n} runs from ${r.file}`);
  out(
    table(
      hasCi ? ['constant', 'estimate', `${Math.round(r.level * 1000) / 10}% CI lo`, 'CI hi', 'bootstrap SE'] : ['constant', 'estimate'],
      names.map((k) => {
        const est = (r.estimates as Record<string, number>)[k];
        const ci = (r.ci as Record<string, [number, number]> | undefined)?.[k];
        const se = (r.se as Record<string, number> | undefined)?.[k];
        return hasCi ? [k, est.toPrecision(5), ci ? ci[0].toPrecision(5) : '-', ci ? ci[1].toPrecision(5) : '-', se !== undefined ? se.toPrecision(3) : '-'] : [k, est.toPrecision(5)];
      }),
    ),
  );
  out(`\nRMS log-loss residual ${r.rmseLog.toPrecision(3)}; Huber objective ${r.huberLoss.toPrecision(4)}`);
  if (r.heldOut) out(`held out ${r.heldOut.n} runs (fit on ${r.heldOut.trainN}): RMS log-loss error ${r.heldOut.rmseLog.toPrecision(3)}, mean |loss error| ${r.heldOut.maeLoss.toPrecision(3)} nats`);
  if (r.written) out(`wrote ${r.written}`);
  printCaveats(r.caveats);
  return 0;
}

async function plotCmd(argv: string[]): Promise<number> {
  const p = parse(
    argv,
    {
      out: { type: 'string' }, N: { type: 'string' }, 'D-range': { type: 'string' }, budgets: { type: 'string' }, 'train-bits': { type: 'string' },
      'post-bits': { type: 'string' }, constants: { type: 'string' }, json: { type: 'boolean' },
    },
    meta.usage,
    { positionals: 0 },
  );
  const v = p.values as Record<string, string | undefined> & { json?: boolean };
  if (!v.out) throw new ConfigError('bad_option', '--out is required', { field: '--out', expected: 'a directory', found: 'nothing' });
  const nums = (s: string | undefined, flag: string, f: (x: string, name: string) => number) => s?.split(',').map((x) => f(x.trim(), flag));
  const budgets = nums(v.budgets, 'budgets', (x, f) => positive(x, f, true)!);
  const trainBits = nums(v['train-bits'], 'train-bits', (x, f) => bits(x, f)!);
  const postBits = nums(v['post-bits'], 'post-bits', (x, f) => bits(x, f)!);
  const D = nums(v['D-range'], 'D-range', (x, f) => positive(x, f, true)!);
  if (D && !(D.length === 2 && D[0] < D[1])) throw new ConfigError('bad_option', 'invalid value for --D-range', { field: '--D-range', expected: 'MIN,MAX with MIN < MAX', found: v['D-range'] });
  const r = await lawPlot({ out: v.out, N: positive(v.N, 'N', false), D: D as [number, number] | undefined, budgets, trainBits, postBits, constants: v.constants });
  if (v.json) {
    printJson('law plot', r);
    return 0;
  }
  for (const f of r.files) out(`wrote ${f}`);
  printCaveats(r.caveats);
  return 0;
}

async function experimentCmd(argv: string[]): Promise<number> {
  const p = parse(argv, { out: { type: 'string' }, grid: { type: 'string' }, threads: { type: 'string' }, 'fit-params': { type: 'string' }, queue: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' } }, meta.usage, { positionals: 0 });
  const v = p.values as Record<string, string | undefined> & { json?: boolean; quiet?: boolean };
  if (!v.out) throw new ConfigError('bad_option', '--out is required', { field: '--out', expected: 'a directory for runs.json', found: 'nothing' });
  const grid = loadGrid(v.grid ?? 'default');
  const r = await lawExperiment({
    grid,
    out: v.out,
    threads: threadsOpt(v.threads),
    fitParams: v['fit-params']?.split(',').map((x) => x.trim()) as never,
    ...(v.queue ? { queue: { url: v.queue } } : {}),
    log: v.quiet || v.json ? undefined : (line) => out(line),
    onProgress: progressPrinter({ quiet: v.quiet || v.json }),
    onRun: v.quiet || v.json ? undefined : (key, loss, x) => out(`${key}  loss ${loss.toFixed(4)}  (${x.preset}, ${x.steps} steps, trained in ${x.trainS} s)`),
    signal: abortSignal(),
  });
  if (v.json) {
    printJson('law experiment', r);
    return 0;
  }
  const bitsOf = (b: number | undefined) => (b === undefined ? 'fp32' : String(b));
  out(`grid ${r.grid}: ${r.runs.length} runs (${r.computed} computed, ${r.reused} reused) in ${r.runsFile}, ${r.csvFile}`);
  out(table(['N', 'D', 'train w/a/kv', 'post', 'loss', 'predicted'], r.runs.map((x, i) => [x.N, x.D, x.train ? (['w', 'a', 'kv'] as const).map((k) => x.train?.[k] ?? '–').join('/') : 'fp32', bitsOf(x.postBits), x.loss.toFixed(4), r.residuals[i] ? r.residuals[i].predicted.toFixed(4) : '-'])));
  if (r.dSweep) {
    const bs = Object.keys(r.dSweep.rows[0]?.delta ?? {});
    out(`\nδ_PTQ = loss(PTQ) − loss(fp32) vs D at N = ${r.dSweep.N}:`);
    out(table(['D', 'loss fp32', ...bs.map((b) => `δ_PTQ ${b}-bit`)], r.dSweep.rows.map((x) => [x.D, x.base.toFixed(4), ...bs.map((b) => x.delta[Number(b)]?.toFixed(4) ?? '-')])));
  }
  if (r.fit) {
    const tied = !r.fit.params.includes('gammaA') && r.fit.params.includes('gammaW') ? ', γ_a = γ_kv = γ_w' : '';
    out(`\nfitted ${r.fit.params.join(', ')} (β tied to α${tied}; others at kumar2024) to ${r.fit.n} runs:`);
    out(table(['constant', 'estimate'], Object.entries(r.fit.estimates).map(([k, x]) => [k, (x as number).toPrecision(4)])));
    out(`RMS log-loss residual ${r.fit.rmseLog.toPrecision(3)}`);
    if (r.fit.heldOut) out(`held out ${r.fit.heldOut.n} runs (fit on ${r.fit.heldOut.trainN}): RMS log-loss error ${r.fit.heldOut.rmseLog.toPrecision(3)}, mean |loss error| ${r.fit.heldOut.maeLoss.toPrecision(3)} nats`);
    if (r.chartFile) out(`wrote ${r.chartFile}`);
    printCaveats(r.fit.caveats);
  } else out('\nno fit: it needs at least 2 sizes, 2 token budgets and 8 runs');
  return 0;
}
