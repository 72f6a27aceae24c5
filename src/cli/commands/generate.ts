// `bitscale generate`: argument parsing and printing only; the work is pipeline/generate.ts.
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { abortSignal, numberOpt, parse } from '../args.js';
import { modelArg } from '../model-arg.js';
import { err, out, reportError, printJson } from '../output.js';
import { runGenerate } from '../../pipeline/generate.js';

export const meta: CommandMeta = {
  name: 'generate',
  summary: 'generate text from a prompt (greedy, or seeded top-k / top-p sampling)',
  usage: `bitscale generate MODEL [--prompt TEXT] [options]

  MODEL             llama2.c checkpoint, GGUF file or Hugging Face directory
  --prompt TEXT     prompt (default: start from BOS)
  -n N              tokens to generate at most (default 256)
  --temp X          temperature; 0 = greedy (default 0)
  --top-k N         sample from the N most likely tokens
  --top-p X         sample from the smallest set reaching probability X
  --seed N          sampling seed (default 0); same seed, same text
  --w-bits SCHEME / --a-bits A / --kv-bits A / --low-bit MODE   precision knobs, as in 'bitscale eval'
  --dequantize / --int8-matmul   weights as float32 in memory / int8-activation MatMulNBits, as in 'bitscale eval'
  --tokenizer FILE  tokenizer for llama2.c checkpoints
  --threads N       onnxruntime intra-op threads
  --json            print one JSON object`,
};

export async function run(argv: string[]): Promise<number> {
  try {
    const p = parse(
      argv,
      {
        prompt: { type: 'string' }, n: { type: 'string', short: 'n' }, temp: { type: 'string' }, 'top-k': { type: 'string' },
        'top-p': { type: 'string' }, seed: { type: 'string' }, 'w-bits': { type: 'string' }, 'a-bits': { type: 'string' },
        'kv-bits': { type: 'string' }, 'low-bit': { type: 'string' }, tokenizer: { type: 'string' }, threads: { type: 'string' },
        json: { type: 'boolean' }, dequantize: { type: 'boolean' }, 'int8-matmul': { type: 'boolean' },
      },
      meta.usage,
    );
    const v = p.values as Record<string, string | undefined> & { json?: boolean; dequantize?: boolean; 'int8-matmul'?: boolean };
    const model = p.positionals[0] === undefined ? undefined : await modelArg(p.positionals[0], { quiet: !!p.values.json });
    if (!model) throw new ConfigError('bad_option', 'MODEL is required', { field: 'MODEL', hint: meta.usage.split('\n')[0] });
    const lowBit = v['low-bit'];
    if (lowBit !== undefined && lowBit !== 'nbits' && lowBit !== 'dq') throw new ConfigError('bad_option', 'invalid value for --low-bit', { field: '--low-bit', expected: 'nbits or dq', found: lowBit });
    const r = await runGenerate({
      model,
      prompt: v.prompt,
      maxTokens: numberOpt(v.n, 'n', { integer: true, min: 0 }),
      temperature: numberOpt(v.temp, 'temp', { min: 0 }),
      topK: numberOpt(v['top-k'], 'top-k', { integer: true, min: 0 }),
      topP: numberOpt(v['top-p'], 'top-p', { min: 0, max: 1 }),
      seed: numberOpt(v.seed, 'seed', { integer: true, min: 0 }),
      wBits: v['w-bits'],
      aBits: v['a-bits'],
      kvBits: v['kv-bits'],
      lowBit,
      weightsPath: v.dequantize ? 'dequantized' : 'native',
      int8Matmul: v['int8-matmul'],
      tokenizer: v.tokenizer,
      threads: numberOpt(v.threads, 'threads', { integer: true, min: 1 }),
      signal: abortSignal(),
    });
    if (v.json) {
      printJson('generate', r);
      return 0;
    }
    out(r.text);
    err(`[${r.generatedTokens} tokens, stopped by ${r.stoppedBy}; prompt ${Math.round(r.promptTokensPerSecond)} tok/s, decode ${Math.round(r.decodeTokensPerSecond)} tok/s]`);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
