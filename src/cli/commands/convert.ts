// `bitscale convert`: argument parsing and printing only; the work is pipeline/convert.ts.
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { abortSignal, parse } from '../args.js';
import { out, progressPrinter, reportError, printJson } from '../output.js';
import { convertModel } from '../../pipeline/convert.js';

export const meta: CommandMeta = {
  name: 'convert',
  summary: 'convert between llama2.c, Hugging Face (safetensors) and GGUF, losslessly',
  usage: `bitscale convert IN OUT [--to hf|gguf|llama2c] [--dtype f32|f16|bf16] [--tokenizer FILE] [--force]

  IN                llama2.c checkpoint, GGUF file or Hugging Face directory
  OUT               output path (a directory for hf)
  --to FORMAT       hf | gguf | llama2c (default from OUT: *.gguf → gguf, *.bin → llama2c, else hf)
  --dtype D         f32 | f16 | bf16 for weight matrices (default: keep the input's float type)
  --tokenizer FILE  vocabulary for inputs without one beside them (llama2.c tokenizer.bin)
  --force           replace an existing OUT (never the input)
  --json            print one JSON object
  The output is written to a temporary path and renamed when complete.`,
};

const DTYPES = { f32: 'F32', f16: 'F16', bf16: 'BF16' } as const;
const FORMATS = ['hf', 'gguf', 'llama2c'] as const;

export async function run(argv: string[]): Promise<number> {
  try {
    const p = parse(argv, { to: { type: 'string' }, dtype: { type: 'string' }, tokenizer: { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' }, quiet: { type: 'boolean', short: 'q' } }, meta.usage);
    const [input, output, ...more] = p.positionals;
    if (!input || !output || more.length) throw new ConfigError('bad_option', 'convert takes IN and OUT', { field: 'IN OUT', found: p.positionals.join(' ') || 'nothing', hint: meta.usage.split('\n')[0] });
    const v = p.values as Record<string, string | boolean | undefined>;
    const to = v.to as string | undefined;
    if (to !== undefined && !(FORMATS as readonly string[]).includes(to)) throw new ConfigError('bad_option', 'invalid value for --to', { field: '--to', expected: FORMATS.join(' | '), found: to });
    const d = v.dtype as string | undefined;
    if (d !== undefined && !(d in DTYPES)) throw new ConfigError('bad_option', 'invalid value for --dtype', { field: '--dtype', expected: 'f32 | f16 | bf16', found: d });
    const r = await convertModel(input, output, {
      to: to as (typeof FORMATS)[number] | undefined,
      dtype: d ? DTYPES[d as keyof typeof DTYPES] : undefined,
      tokenizer: v.tokenizer as string | undefined,
      overwrite: Boolean(v.force),
      signal: abortSignal(),
      onProgress: progressPrinter({ quiet: Boolean(v.quiet || v.json) }),
    });
    if (v.json) printJson('convert', r);
    else out(`converted ${r.input} (${r.from}) → ${r.output} (${r.to}, ${r.dtype}): ${r.tensors} tensors in ${r.seconds.toFixed(2)} s\n${r.files.map((f) => '  ' + f).join('\n')}`);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
