// `bitscale quantize`: argument parsing and printing only; the work is pipeline/quantize/quantize.ts.
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { abortSignal, choiceOpt, numberOpt, parse } from '../args.js';
import { modelArg } from '../model-arg.js';
import { out, progressPrinter, reportError, table, printJson } from '../output.js';
import { MAX_WINDOWS } from '../../pipeline/limits.js';
import { quantizeModel, type QuantizeFormat, type QuantizeMethod } from '../../pipeline/quantize/quantize.js';
import { LLAMA_FTYPES } from '../../core/ftype.js';
import { verdictText } from '../../pipeline/quantize/tolerance.js';
// --recipe (yaml, zod) and --variants (ONNX export) are imported where used: a plain RTN run starts
// without them (issue 12's start-up cost)
import { MAX_THREADS } from '../../pipeline/quantize/rtn-stream.js';

export const meta: CommandMeta = {
  name: 'quantize',
  summary: 'post-training quantization (RTN, GPTQ, AWQ; ggml types, int, NF4) to GGUF or safetensors',
  usage: `bitscale quantize MODEL --out PATH --scheme SCHEME [options]

  MODEL              llama2.c checkpoint, GGUF file or Hugging Face directory
  --out PATH         output file (gguf) or directory (safetensors, compressed-tensors, fakequant);
                     written atomically, with a manifest beside it (PATH.manifest.json, or
                     PATH/bitscale-manifest.json)
  --format F         default from --out and --scheme: *.gguf → gguf, *.onnx → onnx, otherwise gguf
                     for ggml types, safetensors for int schemes, fakequant for the rest.
                     gguf (per-tensor ggml types), safetensors (GPTQ-packed qweight/qzeros/
                     scales/g_idx + quantization_config; int schemes), compressed-tensors
                     (pack-quantized weight_packed/weight_scale[/weight_zero_point]; int4/int8
                     schemes, group or channel), fakequant (float safetensors
                     holding the quantized values; any scheme), onnx (MatMulNBits graph with the real
                     low-bit codes, int-g<G> schemes): --out DIR gives a transformers.js folder
                     (dynamic shapes, KV cache, onnx/model_q4.onnx; variants already in the folder
                     are kept); --out FILE.onnx one static graph (T = --seq-len tokens)
  --variants LIST    ONNX folder: write these transformers.js variants side by side (fp32, fp16, q8,
                     q4, q4f16, q2, q2f16; quantized ones with --method and the group of --scheme,
                     default int4/int8/int2-g32); --scheme is then optional
  --dtype f16        ONNX folder: float weights (embeddings, lm_head, norms) stored as float16
                     (q4 codes + f16 → q4f16; --scheme fp32 + f16 → fp16)
  --scheme S         a llama.cpp file type, any case: q4_k_m, q4_k_s, q3_k_m, q5_k_m, q6_k, q8_0,
                     q4_0, iq4_xs, iq3_m, iq2_m, iq1_s, tq2_0, f16, bf16, … (llama-quantize's names;
                     q4_k = q4_k_m): every tensor, embeddings and output included, gets the type
                     llama.cpp's recipe gives it | int4-g128, int4-g128-asym, int8-channel | nf4-g64 | …
                     | fp32 (ONNX folder: the float model, no quantization)
  --method M         rtn (default), gptq, awq (scale search + clipping, then RTN)
  --calib FILE|self  calibration text (default: a built-in text, no download); "self" samples
                     the windows from the float model itself (temperature 1, from BOS)
  --windows N        calibration windows (default 128; small models fewer: 32 tokens per input
                     feature of the widest linear, at least 16); --seq-len N tokens each (default
                     512, at most the model's context)
  --imatrix FILE     llama.cpp imatrix (.dat or .gguf) for importance-weighted ggml rounding (the
                     IQ1/IQ2/IQ3_XXS types and Q2_K_S need one, or a calibrated --method)
  --pure             GGUF: every quantizable tensor in the file type's base type (no mix)
  --output-tensor-type T     GGUF: this ggml type for output.weight (q8_0, q6_k, f16, …)
  --token-embedding-type T   GGUF: this ggml type for token_embd.weight
  --leave-output-tensor      GGUF: keep output.weight as it is (not quantized)
  --tensor-type PATTERN=T    GGUF: this type for tensors whose GGUF name matches the regular
                     expression PATTERN (e.g. attn_v=q8_0, blk\.0\.ffn_down=q6_k); repeatable,
                     the first match wins
  --allow-requantize quantize tensors of an already-quantized input (refused otherwise)
  --target-bpw X     mixed precision: choose per-tensor ggml types meeting X bits per weight over
                     the linears (the embedding and output keep the recipe's types); 'recipe': the
                     file type's own bits per weight, so the file is no larger than the recipe's
  --sensitivity S    for --target-bpw: kl (default; each tensor's Hessian error calibrated by the
                     KL it causes alone, one forward pass per tensor) | hessian (the proxy alone)
  --act-order        GPTQ: quantize columns by decreasing Hessian diagonal
  --percdamp X       GPTQ dampening (default 0.01)
  --seed N           calibration sampling seed (default 0); same inputs + seed give the same bytes
  --calib-runtime R  the onnxruntime of every float result calibration feeds on (calibration
                     forward and statistics, GPTQ's GEMMs, --target-bpw's KL passes, --calib self):
                     native (default: onnxruntime-node's CPU kernels, fastest; their float sums
                     differ between CPUs, so calibrated bytes may too) | portable (onnxruntime-web's
                     WebAssembly kernels: the same bytes on every machine and in the web app;
                     slower, docs/web.md). RTN without --target-bpw uses no runtime
  --threads N        worker threads that quantize (RTN to GGUF with --no-verify; default: every
                     core; 1…${MAX_THREADS}) and the portable runtime's threads; the bytes do not
                     depend on it
  --tokenizer FILE   tokenizer for llama2.c checkpoints
  --no-verify        skip reloading the output and comparing logits
  --verify-on WHERE  memory | file: where a GGUF output's checks measure it. memory: the float and
                     quantized models in float32 (≈ 5 copies of the weights) and a reload check;
                     file: quantized streamed, then the written file against the float model on
                     engines over their stored weights, one at a time. Default: file for models
                     over 1 GiB in float32 (≈ 268 M parameters), else memory
  --force            replace an existing output (never an input; a folder only when bitscale
                     wrote it; --overwrite is an alias). The output is checked before any work.
  --recipe FILE      settings from a YAML/JSON recipe (keys are these flags' names, MODEL as model;
                     docs/recipes.md); flags given here override it; the manifest records it
  --json             print the report as JSON; --quiet: no progress`,
};

/** A check's verdict against its stated tolerance (a failed check has already failed the command). */
function check(v: { maxAbsLogitDiff: number; tolerance: number; pass: boolean } | null, diff: number | null): string {
  if (v) return verdictText(v);
  return diff === null ? 'not run (--no-verify)' : `max |Δ logit| ${diff.toExponential(2)}`;
}

export async function run(argv: string[]): Promise<number> {
  try {
    const p = parse(
      argv,
      {
        out: { type: 'string' }, format: { type: 'string' }, scheme: { type: 'string' }, method: { type: 'string' },
        calib: { type: 'string' }, windows: { type: 'string' }, 'seq-len': { type: 'string' }, imatrix: { type: 'string' },
        'target-bpw': { type: 'string' }, sensitivity: { type: 'string' }, 'act-order': { type: 'boolean' }, percdamp: { type: 'string' }, seed: { type: 'string' },
        threads: { type: 'string' }, tokenizer: { type: 'string' }, 'no-verify': { type: 'boolean' }, 'verify-on': { type: 'string' }, force: { type: 'boolean' }, json: { type: 'boolean' }, quiet: { type: 'boolean' },
        pure: { type: 'boolean' }, 'output-tensor-type': { type: 'string' }, 'token-embedding-type': { type: 'string' }, 'leave-output-tensor': { type: 'boolean' },
        'tensor-type': { type: 'string', multiple: true }, 'allow-requantize': { type: 'boolean' },
        variants: { type: 'string' }, dtype: { type: 'string' }, recipe: { type: 'string' }, 'calib-runtime': { type: 'string' },
      },
      meta.usage,
      { positionals: 1 },
    );
    // a recipe supplies defaults; the command line wins
    const rec = typeof p.values.recipe === 'string' ? await (await import('../../pipeline/quantize/recipe.js')).loadRecipe(p.values.recipe, 'quantize') : null;
    const v = { ...rec?.values, ...p.values } as Record<string, string | undefined> & Record<'act-order' | 'no-verify' | 'force' | 'json' | 'quiet' | 'pure' | 'leave-output-tensor' | 'allow-requantize', boolean | undefined>;
    // --tensor-type is repeatable: the command line's list, else the recipe's (one or a list)
    const tt = (p.values as { 'tensor-type'?: string[] })['tensor-type'] ?? (rec?.section['tensor-type'] as string[] | string | undefined);
    const tensorTypes = tt === undefined ? undefined : Array.isArray(tt) ? tt : [tt];
    const modelIn = p.positionals[0] ?? v.model;
    const model = modelIn === undefined ? undefined : await modelArg(modelIn, { quiet: !!(v.quiet || v.json) });
    if (!model) throw new ConfigError('bad_option', 'MODEL is required', { field: 'MODEL', hint: meta.usage.split('\n')[0] });
    if (!v.out) throw new ConfigError('bad_option', '--out is required', { field: '--out' });
    const onnxVariants = v.variants !== undefined ? await import('../../pipeline/quantize/onnx-variants.js') : null;
    const variants = onnxVariants && v.variants !== undefined ? onnxVariants.parseOnnxVariants(v.variants.split(',')) : null;
    if (!v.scheme && !variants) throw new ConfigError('bad_option', '--scheme is required', { field: '--scheme', expected: 'a scheme (q4_k, int4-g128, …), or --variants for an ONNX folder' });
    const format = choiceOpt(v.format, '--format', ['gguf', 'safetensors', 'compressed-tensors', 'fakequant', 'onnx'] as QuantizeFormat[]);
    if (variants && format !== undefined && format !== 'onnx') throw new ConfigError('bad_option', '--variants writes an ONNX folder', { field: '--format', expected: 'onnx (or no --format)', found: format });
    const dtype = choiceOpt(v.dtype, '--dtype', ['f16', 'f32'] as const);
    const method = choiceOpt(v.method, '--method', ['rtn', 'gptq', 'awq'] as QuantizeMethod[]) ?? 'rtn';
    const sens = choiceOpt(v.sensitivity, '--sensitivity', ['kl', 'hessian'] as const) ?? 'kl';
    const calibRuntime = choiceOpt(v['calib-runtime'], '--calib-runtime', ['native', 'portable'] as const);
    const verifyOn = choiceOpt(v['verify-on'], '--verify-on', ['memory', 'file'] as const);
    if (verifyOn && v['no-verify']) throw new ConfigError('bad_option', '--verify-on says where the checks run; --no-verify skips them', { field: '--verify-on', found: verifyOn, hint: 'give one of the two' });
    if (v['act-order'] && method !== 'gptq') throw new ConfigError('bad_option', '--act-order orders GPTQ\'s columns; it does nothing with this method', { field: '--act-order', expected: '--method gptq', found: `--method ${method}` });
    if (v.percdamp !== undefined && method !== 'gptq') throw new ConfigError('bad_option', '--percdamp is GPTQ\'s dampening; it does nothing with this method', { field: '--percdamp', expected: '--method gptq', found: `--method ${method}` });
    const int = (x: string | undefined, f: string, min = 1, max?: number) => numberOpt(x, f, { integer: true, min, max });
    const common = {
      model, out: v.out, method, calib: v.calib, imatrix: v.imatrix,
      windows: int(v.windows, 'windows', 1, MAX_WINDOWS), seqLen: int(v['seq-len'], 'seq-len', 2, 1 << 16), seed: int(v.seed, 'seed', 0),
      targetBpw: v['target-bpw'] === 'recipe' ? ('recipe' as const) : numberOpt(v['target-bpw'], 'target-bpw', { min: 1, max: 32 }), mixedSensitivity: sens, actOrder: v['act-order'],
      percdamp: numberOpt(v.percdamp, 'percdamp', { min: 0 }), tokenizer: v.tokenizer, overwrite: v.force,
      threads: numberOpt(v.threads, 'threads', { integer: true, min: 1, max: MAX_THREADS }),
      verify: !v['no-verify'], verifyOn, onProgress: progressPrinter({ quiet: v.quiet || v.json }), signal: abortSignal(),
      pure: v.pure, outputTensorType: v['output-tensor-type'], tokenEmbeddingType: v['token-embedding-type'], leaveOutputTensor: v['leave-output-tensor'],
      tensorTypes, allowRequantize: v['allow-requantize'], calibRuntime,
      recipe: rec ? { path: rec.path, sha256: rec.sha256, quantize: rec.section } : undefined,
    };
    if (onnxVariants && variants) {
      const rv = await onnxVariants.quantizeOnnxVariants({ ...common, scheme: v.scheme, variants });
      if (v.json) printJson('quantize', { out: rv.out, format: 'onnx', variants: rv.variants, manifest: rv.manifest, reports: rv.reports });
      else out(`wrote ${rv.variants.join(', ')} to ${rv.out} (one manifest: ${rv.manifest})`);
      return 0;
    }
    const r = await quantizeModel({ ...common, format, scheme: v.scheme!, onnxFloat: dtype ? [dtype] : undefined });
    if (v.json) {
      printJson('quantize', r);
      return 0;
    }
    const counts = new Map<string, number>();
    for (const t of r.tensors) counts.set(`${t.type} (${t.method})`, (counts.get(`${t.type} (${t.method})`) ?? 0) + 1);
    const rows: (string | number)[][] = [
      ['output', `${r.out} (${r.format})`],
      ['scheme / method', `${r.scheme} / ${r.method}`],
      ...(r.fileType ? [['file type', `${r.fileType} (general.file_type ${LLAMA_FTYPES[r.fileType].id})`]] : []),
      ['quantized tensors', [...counts].map(([k, n]) => `${n}× ${k}`).join(', ')],
      ['KL vs float', Number.isFinite(r.quality.kld) ? `${r.quality.kld.toFixed(6)} nats/token, top-1 agreement ${(100 * r.quality.top1Agreement).toFixed(2)}%${r.quality.verifiedOn === 'file' ? ' (of the written file)' : ''}` : 'not measured'],
      ['reload check', r.quality.verifiedOn === 'file' ? 'not needed (the KL was measured on the written file)' : check(r.quality.checks?.reload ?? null, r.quality.reloadMaxAbsLogitDiff)],
      ['llama.cpp check', r.quality.llamaCpp?.available ? `${check(r.quality.checks?.llamaCpp ?? null, r.quality.llamaCpp.maxAbsLogitDiff)}, top-1 agreement ${(100 * (r.quality.llamaCpp.top1Agreement ?? NaN)).toFixed(2)}%` : r.format !== 'gguf' ? 'GGUF only' : r.quality.llamaCpp ? 'not run (node-llama-cpp is not installed)' : 'not run'],
      ['manifest', r.manifest],
      ['time', `${r.seconds.toFixed(1)} s`],
    ];
    if (r.plan) rows.push(['mixed precision', `${r.plan.plan.bitsPerWeight.toFixed(3)} bpw over the linears (target met: ${r.plan.plan.totalBits <= r.plan.plan.budgetBits})`]);
    out(table(['', ''], rows));
    const fb = new Map<string, number>();
    for (const f of r.fallbacks) {
      const k = f.slice(f.indexOf(': ') + 2);
      fb.set(k, (fb.get(k) ?? 0) + 1);
    }
    if (fb.size) out(`fallbacks (rows not a whole number of blocks, as llama.cpp does): ${[...fb].map(([k, n]) => `${n}× ${k}`).join(', ')}`);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
