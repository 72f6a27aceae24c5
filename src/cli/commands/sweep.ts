// `bitscale sweep`: argument parsing and printing only; the work is pipeline/sweep/sweep.ts.
import { ConfigError } from '../../core/errors.js';
import { resolve } from 'node:path';
import type { CommandMeta } from '../command.js';
import { abortSignal, choiceOpt, numberOpt, parse } from '../args.js';
import { modelArg } from '../model-arg.js';
import { out, progressPrinter, table, printJson } from '../output.js';
import { runSweep, type SweepMethod, type SweepFormat } from '../../pipeline/sweep/sweep.js';
import { loadRecipe } from '../../pipeline/quantize/recipe.js';
import type { ShipChoice } from '../../pipeline/sweep/sweep.js';

export const meta: CommandMeta = {
  name: 'sweep',
  summary: 'quantize a model at every bit width × method × format, measure each, draw the Pareto frontier',
  usage: `bitscale sweep MODEL --text FILE [options]

  MODEL               llama2.c checkpoint, GGUF file or Hugging Face directory
  --text FILE         evaluation text (perplexity, KL divergence and top-1 agreement vs the base model)
  --bits LIST         bit widths (default 2,3,4,8; also 1.58, 5, 6)
  --methods LIST      rtn, gptq, awq, mixed, qat (default rtn,gptq,awq)
  --qat-text FILES    training text for qat points (comma-separated files, or moby-dick); --qat-steps N (default 100)
  --formats LIST      gguf (llama.cpp types), safetensors (GPTQ-packed intN-gG), onnx (transformers.js
                      folder, MatMulNBits 2/4/8-bit) (default gguf,safetensors)
  --group-sizes LIST  group sizes for int schemes (default: largest of 128/64/32 dividing every K)
  --mixed-bpw LIST    target bits per weight for mixed-precision GGUF points (with --methods …,mixed)
  --budget LIST       size budgets for "what to ship": bits per weight (4.5) or file sizes (800MB, 1.5GB)
                      (default 2.5,3.5,4.5,8.5 bpw); the report recommends a file per budget and runtime
  --ctx N             evaluation window (default 256); --max-tokens N: text tokens used (default 8192)
  --calib FILE        calibration text for GPTQ/AWQ/mixed (default: the built-in text)
  --seed N            seed for calibration sampling (default 0)
  --calib-runtime R   native (default) | portable: the onnxruntime of calibration's float results
                      (as quantize's; portable gives the page's bytes on every machine)
  --out DIR           output folder (default bitscale-out/sweep); an interrupted sweep resumes there
  --no-sensitivity    skip the per-tensor sensitivity scan
  --no-verify         skip reloading each written file in its runtime (node-llama-cpp for GGUF)
  --recipe FILE       settings from a YAML/JSON recipe (keys are these flags' names, MODEL as model;
                      docs/recipes.md); flags given here override it; sweep.json records it
  --queue URL         enqueue one job per point on redis://HOST:PORT[/DB] and follow them; \`bitscale worker\`
                      processes run them (docs/distributed.md); results land in the same resumable sweep.json
  --json              print the sweep record as JSON
  --quiet             no progress`,
};

function list(v: string | undefined, flag: string): string[] | undefined {
  if (v === undefined) return undefined;
  const xs = v.split(',').map((s) => s.trim()).filter(Boolean);
  if (!xs.length) throw new ConfigError('bad_option', `empty list for --${flag}`, { field: `--${flag}`, found: v });
  return xs;
}

function nums(v: string | undefined, flag: string): number[] | undefined {
  return list(v, flag)?.map((x) => numberOpt(x, flag, { min: 0 }) as number);
}

export async function run(argv: string[]): Promise<number> {
  const p = parse(
    argv,
    {
      text: { type: 'string' }, bits: { type: 'string' }, methods: { type: 'string' }, formats: { type: 'string' },
      'group-sizes': { type: 'string' }, 'mixed-bpw': { type: 'string' }, budget: { type: 'string' }, ctx: { type: 'string' },
      'max-tokens': { type: 'string' }, calib: { type: 'string' }, 'qat-text': { type: 'string' }, 'qat-steps': { type: 'string' }, seed: { type: 'string' }, out: { type: 'string' },
      tokenizer: { type: 'string' }, queue: { type: 'string' }, 'no-sensitivity': { type: 'boolean' }, 'no-verify': { type: 'boolean' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
      recipe: { type: 'string' }, 'calib-runtime': { type: 'string' },
    },
    meta.usage,
    { positionals: 1 },
  );
  // a recipe supplies defaults; the command line wins
  const rec = typeof p.values.recipe === 'string' ? await loadRecipe(p.values.recipe, 'sweep') : null;
  const v = { ...rec?.values, ...p.values } as Record<string, string | undefined> & { json?: boolean; quiet?: boolean; 'no-sensitivity'?: boolean; 'no-verify'?: boolean };
  const modelIn = p.positionals[0] ?? v.model;
  const model = modelIn === undefined ? undefined : await modelArg(modelIn, { quiet: !!(v.quiet || v.json) });
  if (!model) throw new ConfigError('bad_option', 'MODEL is required', { field: 'MODEL', hint: meta.usage.split('\n')[0] });
  if (!v.text) throw new ConfigError('bad_option', '--text is required', { field: '--text', hint: meta.usage.split('\n')[0] });
  const methods = (list(v.methods, 'methods')?.map((m) => m.toLowerCase()) ?? ['rtn', 'gptq', 'awq']) as SweepMethod[];
  for (const m of methods) if (!['rtn', 'gptq', 'awq', 'mixed', 'qat'].includes(m)) throw new ConfigError('bad_option', 'unknown method in --methods', { field: '--methods', expected: 'rtn, gptq, awq, mixed, qat', found: m });
  const formats = (list(v.formats, 'formats')?.map((f) => f.toLowerCase()) ?? ['gguf', 'safetensors']) as SweepFormat[];
  for (const f of formats) if (!['gguf', 'safetensors', 'onnx'].includes(f)) throw new ConfigError('bad_option', 'unknown format in --formats', { field: '--formats', expected: 'gguf, safetensors, onnx', found: f });
  const r = await runSweep({
    model,
    text: v.text,
    outDir: v.out ?? 'bitscale-out/sweep',
    grid: { bits: nums(v.bits, 'bits') ?? [2, 3, 4, 8], methods, formats, groupSizes: nums(v['group-sizes'], 'group-sizes'), mixedBpw: nums(v['mixed-bpw'], 'mixed-bpw') },
    ctx: numberOpt(v.ctx, 'ctx', { integer: true, min: 8 }),
    maxTokens: numberOpt(v['max-tokens'], 'max-tokens', { integer: true, min: 8 }),
    calib: v.calib,
    qatText: list(v['qat-text'], 'qat-text'),
    qatSteps: numberOpt(v['qat-steps'], 'qat-steps', { integer: true, min: 1 }),
    seed: numberOpt(v.seed, 'seed', { integer: true, min: 0 }),
    calibRuntime: choiceOpt(v['calib-runtime'], '--calib-runtime', ['native', 'portable'] as const),
    sensitivity: v['no-sensitivity'] ? false : undefined,
    verify: !v['no-verify'],
    tokenizer: v.tokenizer,
    budgets: list(v.budget, 'budget'),
    recipe: rec ? { path: rec.path, sha256: rec.sha256, sweep: rec.section } : undefined,
    commandPrefix: 'bitscale',
    ...(v.queue ? { queue: { url: v.queue } } : {}),
    onProgress: progressPrinter({ quiet: v.quiet || v.json }),
    signal: abortSignal(),
    log: v.json || v.quiet ? undefined : (line) => out(line),
  });
  if (v.json) {
    printJson('sweep', r.record);
    return 0;
  }
  printSummary(r.record.points);
  printShip(r.record.recommendations ?? [], r.record.points);
  out(`\nresults: ${r.json}\n         ${r.csv}\nreport:  ${resolve(r.report)}`);
  return 0;
}

/** "What to ship": one line per runtime and budget. */
export function printShip(recs: ShipChoice[], points: { id: string; bpw: number; fileBytes: number; kld: number; kldLo?: number; kldHi?: number; ppl: number }[]): void {
  if (!recs.length) return;
  const by = new Map(points.map((p) => [p.id, p]));
  const kl = (x: number) => (x === 0 || x >= 1e-3 ? x.toFixed(4) : x.toExponential(1));
  out('\nwhat to ship (KL divergence to the float model with its 95% interval; overlapping intervals count as equal):');
  for (const c of recs) {
    const b = c.budget === 'none' ? 'no limit' : c.budget === 'float-ppl' ? 'PPL ≈ float' : `≤ ${c.budget}`;
    const p = c.pointId ? by.get(c.pointId) : undefined;
    const what = p ? `${p.id}  ${p.bpw.toFixed(2)} bpw, ${p.fileBytes ? (p.fileBytes / 1e6).toFixed(3) + ' MB' : '-'}, KLD ${kl(p.kld)}${p.kldLo !== undefined ? ` (${kl(p.kldLo)}–${kl(p.kldHi!)})` : ''}, PPL ${p.ppl.toFixed(3)}${c.equivalent.length ? `  ≈ ${c.equivalent.join(', ')}` : ''}` : (c.note ?? 'none');
    out(`  ${c.runtime.padEnd(11)} ${b.padEnd(12)} ${what}`);
  }
}

export function printSummary(points: { id: string; bpw: number; fileBytes: number; ppl: number; kld: number; top1: number; onFrontier: boolean; onFrontierKld?: boolean }[]): void {
  out(
    '\n' +
      table(
        ['point', 'bpw', 'file MB', 'PPL', 'KLD', 'top-1 %', 'frontier (K: KLD, P: PPL)'],
        [...points]
          .sort((a, b) => a.bpw - b.bpw)
          .map((p) => [p.id, p.bpw.toFixed(2), p.fileBytes ? (p.fileBytes / 1e6).toFixed(3) : '-', p.ppl.toFixed(3), p.kld === 0 || p.kld >= 1e-3 ? p.kld.toFixed(4) : p.kld.toExponential(1), (100 * p.top1).toFixed(1), `${p.onFrontierKld ? 'K' : ''}${p.onFrontier ? 'P' : ''}`]),
      ),
  );
}
