// `bitscale train`: argument parsing only; the work is pipeline/train.ts.
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { abortSignal, numberOpt, parse } from '../args.js';
import { out, progressPrinter, reportError } from '../output.js';
import { parseLpSpec, PRESETS, runTraining } from '../../pipeline/train.js';

export const meta: CommandMeta = {
  name: 'train',
  summary: 'train a small Llama model from text (optionally in low precision)',
  usage: `bitscale train --config PRESET|FILE --text FILE [--text FILE …] --out DIR [options]

  --config P        model shape: ${Object.keys(PRESETS).join(', ')}, or a JSON file (HF config.json names work)
  --text FILE       training text (UTF-8); repeatable; 'moby-dick' uses the bundled public-domain corpus
  --out DIR         writes model.safetensors, config.json, tokenizer.json, checkpoint.safetensors,
                    train-log.jsonl and summary.json
  --vocab N         BPE vocabulary size (default: the preset's)
  --context N       tokens per sequence (default: the preset's)
  --steps N         optimizer steps (default 1000)
  --batch N         sequences per micro-batch (default 8)
  --accum N         micro-batches per step (default 1)
  --lr X            peak learning rate (default 3e-3); --warmup N steps (default 50), cosine to 10%
  --weight-decay X  AdamW decoupled weight decay (default 0.1); --clip X global-norm clip (default 1, 0 = off)
  --seed N          data order and initialisation (default 0)
  --val-every N     validation every N steps (default 100); --val-batches N (default 8)
  --ckpt-every N    checkpoint every N steps (default: at the end)
  --resume          continue from DIR/checkpoint.safetensors (same config and settings required)
  --weights B[:channel|tensor]   train with weights fake-quantized to B-bit absmax ints (the scheme
                                 intB-channel-restricted; or any int scheme, e.g. int4-g128; default none)
  --activations B[:tensor|token] matmul inputs fake-quantized to B bits
  --kv B[:tensor|token]          keys and values fake-quantized to B bits
  --threads N       onnxruntime intra-op threads
  --quiet           no progress`,
};

export async function run(argv: string[]): Promise<number> {
  try {
    const v = parse(
      argv,
      {
        config: { type: 'string' }, text: { type: 'string', multiple: true }, out: { type: 'string' },
        vocab: { type: 'string' }, context: { type: 'string' }, steps: { type: 'string' }, batch: { type: 'string' },
        accum: { type: 'string' }, lr: { type: 'string' }, warmup: { type: 'string' }, 'weight-decay': { type: 'string' },
        clip: { type: 'string' }, seed: { type: 'string' }, 'val-every': { type: 'string' }, 'val-batches': { type: 'string' },
        'ckpt-every': { type: 'string' }, resume: { type: 'boolean' }, weights: { type: 'string' }, activations: { type: 'string' },
        kv: { type: 'string' }, threads: { type: 'string' }, quiet: { type: 'boolean' },
      },
      meta.usage,
    ).values as Record<string, string | undefined> & { text?: string[]; resume?: boolean; quiet?: boolean };
    const need = (k: string, x: string | undefined) => {
      if (!x) throw new ConfigError('bad_option', `--${k} is required`, { field: `--${k}`, hint: meta.usage.split('\n')[0] });
      return x;
    };
    if (!v.text?.length) throw new ConfigError('bad_option', '--text is required (a file, or moby-dick)', { field: '--text' });
    const int = (x: string | undefined, f: string, min = 1) => numberOpt(x, f, { integer: true, min });
    const settings = Object.fromEntries(
      Object.entries({
        steps: int(v.steps, 'steps'), batch: int(v.batch, 'batch'), accum: int(v.accum, 'accum'),
        lr: numberOpt(v.lr, 'lr', { min: 0 }), warmupSteps: int(v.warmup, 'warmup', 0),
        weightDecay: numberOpt(v['weight-decay'], 'weight-decay', { min: 0 }), clip: numberOpt(v.clip, 'clip', { min: 0 }),
        seed: int(v.seed, 'seed', 0), valEvery: int(v['val-every'], 'val-every', 0), valBatches: int(v['val-batches'], 'val-batches'),
        ckptEvery: int(v['ckpt-every'], 'ckpt-every', 0), threads: int(v.threads, 'threads'),
      }).filter(([, x]) => x !== undefined),
    );
    const s = await runTraining({
      config: need('config', v.config),
      text: v.text,
      out: need('out', v.out),
      vocabSize: int(v.vocab, 'vocab', 257),
      context: int(v.context, 'context'),
      settings,
      lowPrecision: { weights: parseLpSpec(v.weights, 'weights'), activations: parseLpSpec(v.activations, 'activations'), kv: parseLpSpec(v.kv, 'kv') },
      resume: v.resume,
      onProgress: progressPrinter({ quiet: v.quiet }),
      signal: abortSignal(),
    });
    out(`trained ${s.parameters} parameters for ${s.steps} steps: validation loss ${s.finalValLoss.toFixed(4)} nats/token (unigram baseline ${s.unigramValLoss.toFixed(4)}), ${Math.round(s.tokensPerS)} tokens/s`);
    out(`wrote ${v.out}`);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
