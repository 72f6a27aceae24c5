// `bitscale demo`: the main job on the embedded model; prints a short table and the report's path.
import { resolve } from 'node:path';
import type { CommandMeta } from '../command.js';
import { abortSignal, parse } from '../args.js';
import { out, progressPrinter } from '../output.js';
import { runDemo } from '../../pipeline/sweep/demo.js';
import { printShip, printSummary } from './sweep.js';

export const meta: CommandMeta = {
  name: 'demo',
  summary: 'quantize the embedded default model across bit widths and methods, evaluate, write the report',
  usage: `bitscale demo [--out DIR] [--quick] [--quiet]

  Runs on the model bundled in assets/default-model (no download): RTN, GPTQ and AWQ at 2, 3, 4 and
  8 bits, as llama.cpp GGUF types and GPTQ-packed safetensors; measures perplexity, KL divergence and
  top-1 agreement against the float model on a held-out text, marks the size/quality Pareto frontier,
  and writes report.html.

  --out DIR   output folder (default bitscale-out/demo); an interrupted demo resumes there
  --quick     4 and 8 bits, RTN only (about a tenth of the time)
  --quiet     no progress`,
};

export async function run(argv: string[]): Promise<number> {
  const p = parse(argv, { out: { type: 'string' }, quick: { type: 'boolean' }, quiet: { type: 'boolean' } }, meta.usage, { positionals: 0 });
  const v = p.values as { out?: string; quick?: boolean; quiet?: boolean };
  out('bitscale demo: quantizing the embedded default model (assets/default-model) and measuring every variant');
  const r = await runDemo({
    outDir: v.out,
    quick: v.quick,
    onProgress: progressPrinter({ quiet: v.quiet }),
    signal: abortSignal(),
    log: v.quiet ? undefined : (line) => out('  ' + line),
  });
  printSummary(r.record.points);
  // points of one size on a frontier are ties (overlapping intervals): joined by '=', sizes by '→'
  const front = (k: 'onFrontier' | 'onFrontierKld') => {
    const pts = r.record.points.filter((p) => p[k] && p.method !== 'base').sort((a, b) => a.bpw - b.bpw);
    const sizes = [...new Set(pts.map((p) => p.bpw))];
    return sizes.map((b) => pts.filter((p) => p.bpw === b).map((p) => p.id).join(' = ')).join(' → ') || '-';
  };
  out(`\nfrontier on KL divergence: ${front('onFrontierKld')}\nfrontier on perplexity:    ${front('onFrontier')} (overlapping 95% intervals count as equal)`);
  printShip(r.record.recommendations ?? [], r.record.points);
  if (r.record.law?.maeNll != null) out(`scaling-law check: δ_PTQ fitted on ≥3-bit RTN points predicts all RTN points with mean abs error ${r.record.law.maeNll.toFixed(4)} nats/token`);
  out(`done in ${r.seconds.toFixed(1)} s`);
  out(`report: ${resolve(r.report)}`);
  return 0;
}
