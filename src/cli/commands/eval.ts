// `bitscale eval`: argument parsing and printing only; the work is pipeline/eval.ts.
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { abortSignal, numberOpt, parse } from '../args.js';
import { modelArg } from '../model-arg.js';
import { out, progressPrinter, reportError, table, printJson } from '../output.js';
import { runEval } from '../../pipeline/eval.js';

export const meta: CommandMeta = {
  name: 'eval',
  summary: 'perplexity (and KLD / top-1 agreement vs a base model) of a model on a text',
  usage: `bitscale eval MODEL --text FILE [options]

  MODEL             llama2.c checkpoint, GGUF file or Hugging Face directory
  --text FILE       evaluation text (UTF-8), tokenized with the model's tokenizer
  --ctx N           tokens per window, BOS included (default min(512, model context))
  --protocol P      windows (default): non-overlapping windows, BOS + ctx-1 text tokens, all scored;
                    llamacpp: llama.cpp's llama-perplexity (BOS-led chunks, second half scored)
  --stride N        windows protocol: text tokens between window starts (overlap gives more context)
  --max-windows N   evaluate at most N windows; --max-tokens N: use the first N text tokens
  --w-bits SCHEME   weight precision of the linear layers (int4-g128, int8-channel, nf4-g64, q4_k, …;
                    a bare N means intN-channel), applied with quant's fakeQuant
                    Weights run as stored: low-bit codes (ggml blocks, GPTQ / compressed-tensors, int and
                    ggml --w-bits schemes) on MatMulNBits, exact fp32 arithmetic; the output lists which
                    path each kind of tensor took (float32 where a format has no integer-code form)
  --dequantize      every weight as float32 in memory instead (the reference path)
  --int8-matmul     MatMulNBits with int8 activations (accuracy level 4, as llama.cpp's kernels): faster, not exact
  --low-bit MODE    older in-memory low-bit path for int schemes: nbits (MatMulNBits) or dq (DequantizeLinear)
  --a-bits A        activations at every linear input: N (int, per token), N-asym, N-tensor, fp16, bf16,
                    fp8[-e4m3|-e5m2] (cast) or fp8-…-token / -tensor (absmax-scaled), or N-static:
                    per-tensor scales calibrated on one window of --calib FILE (default: the text)
  --calib FILE      calibration text for N-static activations
  --kv-bits A       KV cache: N (int, per token and head), N-asym, fp16, bf16
  --base MODEL      also report KL divergence and top-1 agreement against this (full-precision) model
  --tokenizer FILE  tokenizer for llama2.c checkpoints (default: tokenizer.bin / tok*.bin beside MODEL)
  --threads N       onnxruntime intra-op threads
  --speed           also measure prompt processing (ctx tokens) and decoding (64 tokens) speed
  --json            print one JSON object (ppl, nll, …) instead of a table
  --quiet           no progress`,
};

export async function run(argv: string[]): Promise<number> {
  try {
    const p = parse(
      argv,
      {
        text: { type: 'string' }, ctx: { type: 'string' }, protocol: { type: 'string' }, stride: { type: 'string' },
        'max-windows': { type: 'string' }, 'max-tokens': { type: 'string' }, 'w-bits': { type: 'string' },
        'low-bit': { type: 'string' }, 'a-bits': { type: 'string' }, 'kv-bits': { type: 'string' }, base: { type: 'string' },
        tokenizer: { type: 'string' }, threads: { type: 'string' }, json: { type: 'boolean' }, quiet: { type: 'boolean' }, speed: { type: 'boolean' }, calib: { type: 'string' },
        dequantize: { type: 'boolean' }, 'int8-matmul': { type: 'boolean' },
      },
      meta.usage,
    );
    const v = p.values as Record<string, string | undefined> & { json?: boolean; quiet?: boolean; speed?: boolean; dequantize?: boolean; 'int8-matmul'?: boolean };
    const model = p.positionals[0];
    if (!model) throw new ConfigError('bad_option', 'MODEL is required', { field: 'MODEL', hint: meta.usage.split('\n')[0] });
    if (!v.text) throw new ConfigError('bad_option', '--text is required', { field: '--text', hint: meta.usage.split('\n')[0] });
    const quiet = !!(v.quiet || v.json);
    const protocol = v.protocol ?? 'windows';
    if (protocol !== 'windows' && protocol !== 'llamacpp') throw new ConfigError('bad_option', 'invalid value for --protocol', { field: '--protocol', expected: 'windows or llamacpp', found: protocol });
    const lowBit = v['low-bit'];
    if (lowBit !== undefined && lowBit !== 'nbits' && lowBit !== 'dq') throw new ConfigError('bad_option', 'invalid value for --low-bit', { field: '--low-bit', expected: 'nbits or dq', found: lowBit });
    const int = (x: string | undefined, f: string, min = 1) => numberOpt(x, f, { integer: true, min });
    const r = await runEval({
      model: await modelArg(model, { quiet }),
      text: v.text,
      ctx: int(v.ctx, 'ctx', 2),
      protocol,
      stride: int(v.stride, 'stride'),
      maxWindows: int(v['max-windows'], 'max-windows'),
      maxTokens: int(v['max-tokens'], 'max-tokens', 2),
      wBits: v['w-bits'],
      lowBit,
      weightsPath: v.dequantize ? 'dequantized' : 'native',
      int8Matmul: v['int8-matmul'],
      aBits: v['a-bits'],
      kvBits: v['kv-bits'],
      base: v.base === undefined ? undefined : await modelArg(v.base, { quiet }),
      tokenizer: v.tokenizer,
      threads: int(v.threads, 'threads'),
      speed: v.speed,
      calib: v.calib,
      onProgress: progressPrinter({ quiet: v.quiet || v.json }),
      signal: abortSignal(),
    });
    if (v.json) {
      printJson('eval', r);
      return 0;
    }
    const rows: (string | number)[][] = [
      ['perplexity', `${r.ppl.toFixed(4)}  (95% CI ${r.pplCi95[0].toFixed(4)} – ${r.pplCi95[1].toFixed(4)})`],
      ['mean NLL', `${r.nll.toFixed(6)} nats/token ± ${r.nllStderr.toFixed(6)}`],
      ['scored tokens', `${r.tokens} in ${r.windows} windows of ${r.ctx} (${r.protocol})`],
      ['precision', `weights ${r.weights ?? 'float'}, activations ${r.activations ?? 'float'}, KV ${r.kvCache ?? 'float'}`],
      ['eval speed', `${Math.round(r.tokensPerSecond)} tokens/s (graph setup included)`],
      ['weights', `${r.weightsPath.mode}, matmul ${r.weightsPath.matmul}`],
      ...r.weightsPath.summary.map((l) => ['', l]),
    ];
    if (r.speed) {
      rows.push(['prompt processing', `${Math.round(r.speed.promptTokensPerSecond)} tokens/s`]);
      rows.push(['decoding', `${Math.round(r.speed.decodeTokensPerSecond)} tokens/s`]);
    }
    if (r.base) {
      rows.push(['base perplexity', r.base.ppl.toFixed(4)]);
      rows.push(['KL divergence', `${r.base.kld.toFixed(6)} nats/token (95% CI ${r.base.kldCi95[0].toFixed(6)} – ${r.base.kldCi95[1].toFixed(6)}, max ${r.base.kldMax.toFixed(4)})`]);
      rows.push(['ΔNLL vs base', `${r.base.deltaNll.toFixed(6)} nats/token (paired 95% CI ${r.base.deltaNllCi95[0].toFixed(6)} – ${r.base.deltaNllCi95[1].toFixed(6)})`]);
      rows.push(['top-1 agreement', `${(100 * r.base.top1Agreement).toFixed(2)}%`]);
    }
    out(table(['metric', 'value'], rows));
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
