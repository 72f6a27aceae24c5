// `bitscale qat`: argument parsing only; the work is pipeline/qat/qat.ts.
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { abortSignal, choiceOpt, numberOpt, parse, threadsOpt } from '../args.js';
import { modelArg } from '../model-arg.js';
import { out, progressPrinter, reportError } from '../output.js';
import { runQat, type QatFormat, type QatJob } from '../../pipeline/qat/qat.js';

export const meta: CommandMeta = {
  name: 'qat',
  summary: 'quantization-aware training (ParetoQ LSQ/SEQ or BitNet) and packed export',
  usage: `bitscale qat MODEL --bits 1|1.58|2|3|4 --text FILE [--steps N | --tokens N] --format gguf|onnx|safetensors --out PATH [options]

  MODEL            a Hugging Face directory, .safetensors, GGUF or llama2.c checkpoint (with a tokenizer)
  --bits B         weight bits: LSQ for 1, 3, 4; SEQ (stretched elastic quant) for 1.58 (ternary) and 2
  --bitnet         BitNet b1.58 instead (absmean ternary per tensor, 8-bit per-token activations); needs --bits 1.58
  --text FILE      fine-tuning text; repeatable; 'moby-dick' uses the bundled corpus
  --steps N        optimizer steps (default 200), or --tokens N (steps = N / (batch × context))
  --format F       gguf (exact ggml blocks: TQ2_0 for ternary/binary/BitNet, Q2_K for 2, Q3_K for 3, Q4_0 for 4 bits;
                   Q4_0 when rows are not multiples of 256), safetensors (GPTQ-packed HF directory, exact:
                   2-bit for ternary/binary/BitNet, 3-bit for 2 and 3 bits, 4-bit for 4 bits)
                   or onnx (transformers.js folder; linears as MatMulNBits: 2-bit for 1/1.58/2 bits and
                   BitNet, 4-bit for 3/4 bits; checked in onnxruntime, loss scored on the file)
  --out PATH       output file (gguf) or directory (safetensors, onnx)
  --ggml-type T    gguf container for the linears instead: tq1_0 | tq2_0 | q2_k | q3_k | q4_0 | q4_k (must hold the grid)
  --batch N --context N --lr X (default 1e-3, cosine to 0, no warmup, no weight decay) --seed N --threads N
  --force          replace an existing output (never an input; --overwrite is an alias)
  --quiet          no progress`,
};

export async function run(argv: string[]): Promise<number> {
  try {
    const { values, positionals } = parse(
      argv,
      {
        bits: { type: 'string' }, bitnet: { type: 'boolean' }, text: { type: 'string', multiple: true }, steps: { type: 'string' },
        tokens: { type: 'string' }, format: { type: 'string' }, out: { type: 'string' }, batch: { type: 'string' },
        context: { type: 'string' }, lr: { type: 'string' }, seed: { type: 'string' }, threads: { type: 'string' },
        force: { type: 'boolean' }, quiet: { type: 'boolean' }, 'ggml-type': { type: 'string' },
      },
      meta.usage,
      { positionals: 1 },
    );
    const v = values as Record<string, string | undefined> & { text?: string[]; bitnet?: boolean; force?: boolean; quiet?: boolean };
    const req = (k: string, x: string | undefined) => {
      if (!x) throw new ConfigError('bad_option', `${k} is required`, { field: k, hint: meta.usage.split('\n')[0] });
      return x;
    };
    const model = await modelArg(req('MODEL', positionals[0]));
    if (!v.text?.length) throw new ConfigError('bad_option', '--text is required (a file, or moby-dick)', { field: '--text' });
    const format = choiceOpt(req('--format', v.format), '--format', ['gguf', 'onnx', 'safetensors'] as QatFormat[])!;
    if (v.steps && v.tokens) throw new ConfigError('bad_option', 'give --steps or --tokens, not both', { field: '--steps' });
    const int = (x: string | undefined, f: string) => numberOpt(x, f, { integer: true, min: 1 });
    const settings = Object.fromEntries(
      Object.entries({ batch: int(v.batch, 'batch'), context: int(v.context, 'context'), lr: numberOpt(v.lr, 'lr', { min: 0 }), seed: numberOpt(v.seed, 'seed', { integer: true, min: 0 }), threads: threadsOpt(v.threads) }).filter(([, x]) => x !== undefined),
    );
    const s = await runQat({
      model,
      bits: numberOpt(req('--bits', v.bits), 'bits') as number,
      bitnet: v.bitnet,
      text: v.text,
      steps: int(v.steps, 'steps'),
      tokens: int(v.tokens, 'tokens'),
      format,
      out: req('--out', v.out),
      settings,
      overwrite: v.force,
      ggmlType: v['ggml-type']?.toUpperCase() as QatJob['ggmlType'],
      onProgress: progressPrinter({ quiet: v.quiet }),
      signal: abortSignal(),
    });
    out(`${s.method}: ${s.steps} steps (${s.tokens} tokens)`);
    out(`validation loss (nats/token): full precision ${s.lossFp.toFixed(4)}, PTQ ${s.lossPtq.toFixed(4)}, QAT ${s.lossQat.toFixed(4)}, exported file ${s.lossExported.toFixed(4)}`);
    if (s.packing?.length) out(`linear weights as ${s.packing.join(', ')} (exact)`);
    for (const n of s.notes ?? []) out(`  note: ${n}`);
    if (s.onnx) {
      const kinds = new Map<string, number>();
      for (const l of s.onnx.linears) {
        const k = l.op === 'MatMulNBits' ? `MatMulNBits ${l.bits}-bit${l.floatZeroPoints ? ' (float zero points)' : ''}` : l.op;
        kinds.set(k, (kinds.get(k) ?? 0) + 1);
      }
      out(`ONNX (${s.onnx.dtype}, ${s.onnx.bytes} bytes): ${[...kinds].map(([k, n]) => `${n} × ${k}`).join(', ')}`);
      const float = s.onnx.linears.filter((l) => l.op !== 'MatMulNBits').map((l) => l.name);
      if (float.length) out(`  not MatMulNBits: ${float.join(', ')}`);
    }
    out(`wrote ${s.files.join(', ')}`);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
