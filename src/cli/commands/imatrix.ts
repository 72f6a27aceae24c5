// `bitscale imatrix`: argument parsing and printing only; the work is pipeline/calibrate/calibrate.ts.
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { abortSignal, choiceOpt, numberOpt, parse } from '../args.js';
import { modelArg } from '../model-arg.js';
import { out, progressPrinter, reportError } from '../output.js';
import { runImatrix } from '../../pipeline/calibrate/calibrate.js';
import { MAX_WINDOWS } from '../../pipeline/limits.js';

export const meta: CommandMeta = {
  name: 'imatrix',
  summary: 'compute a llama.cpp-compatible importance matrix (GGUF or legacy .dat) from calibration text',
  usage: `bitscale imatrix MODEL --out FILE [options]

  MODEL              llama2.c checkpoint, GGUF file or Hugging Face directory
  --out FILE         output file, written atomically
  --format F         gguf (default, llama.cpp's current format) or dat (legacy imatrix.dat)
  --calib FILE|self  calibration text (default: a built-in text, no download); "self" samples
                     the windows from the float model itself (temperature 1, from BOS)
  --windows N        windows (default 128, fewer for small models, as quantize); --seq-len N tokens
                     per window (default 512, at most the model's context); --seed N
  --calib-runtime R  native (default) | portable: the onnxruntime of the forward passes, as
                     quantize's option (portable: the same bytes on every machine)
  --tokenizer FILE   tokenizer for llama2.c checkpoints
  --force            replace an existing output (never an input; --overwrite is an alias)
  --quiet            no progress`,
};

export async function run(argv: string[]): Promise<number> {
  try {
    const p = parse(
      argv,
      {
        out: { type: 'string' }, format: { type: 'string' }, calib: { type: 'string' }, windows: { type: 'string' }, 'seq-len': { type: 'string' },
        seed: { type: 'string' }, tokenizer: { type: 'string' }, force: { type: 'boolean' }, quiet: { type: 'boolean' }, 'calib-runtime': { type: 'string' },
      },
      meta.usage,
      { positionals: 1 },
    );
    const v = p.values as Record<string, string | undefined> & { force?: boolean; quiet?: boolean };
    const model = p.positionals[0] === undefined ? undefined : await modelArg(p.positionals[0]);
    if (!model) throw new ConfigError('bad_option', 'MODEL is required', { field: 'MODEL' });
    if (!v.out) throw new ConfigError('bad_option', '--out is required', { field: '--out' });
    const format = choiceOpt(v.format, '--format', ['gguf', 'dat'] as const) ?? 'gguf';
    const int = (x: string | undefined, f: string, min = 1) => numberOpt(x, f, { integer: true, min });
    const r = await runImatrix({
      model, out: v.out, format, calib: v.calib, windows: numberOpt(v.windows, 'windows', { integer: true, min: 1, max: MAX_WINDOWS }), seqLen: int(v['seq-len'], 'seq-len', 2),
      seed: int(v.seed, 'seed', 0), tokenizer: v.tokenizer, overwrite: v.force, calibRuntime: choiceOpt(v['calib-runtime'], '--calib-runtime', ['native', 'portable'] as const), onProgress: progressPrinter({ quiet: v.quiet }), signal: abortSignal(),
    });
    out(`wrote ${r.out}: ${r.entries} entries, ${r.tokens} tokens per entry, from ${r.source}`);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
