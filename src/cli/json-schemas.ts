// The `--json` output of every command, as zod schemas: one JSON object per run, starting with the
// tool's name and version and the command. docs/json/<command>.schema.json is generated from these
// (scripts/json-schemas.ts; a test checks the files are current and that each command's real output
// validates). Top-level fields are listed exactly (strict objects); large nested records that have
// their own documentation (model configs, manifests, tensor rows) are typed by their main fields
// and admit more. Numbers a run did not measure are null (JSON has no NaN).
import { z } from 'zod';
import { Recipe } from '../pipeline/quantize/recipe.js';

const num = z.number();
/** a measurement that may be absent (NaN in the run, null in JSON) */
const measured = z.number().nullable();
const loose = z.looseObject({});

export const Tool = z.strictObject({ name: z.literal('bitscale'), version: z.string().regex(/^\d+\.\d+\.\d+/) }).describe('the tool that wrote this output');

const envelope = <T extends z.ZodRawShape>(command: string, shape: T) => z.strictObject({ tool: Tool, command: z.literal(command), ...shape });

const Quality = z.looseObject({
  windows: num,
  kld: measured.describe('mean KL(float ‖ quantized), nats/token, on held-out calibration windows'),
  top1Agreement: measured,
  reloadMaxAbsLogitDiff: measured.describe('max |Δ logit| between the written file reloaded and the quantized model in memory; null when the checks measured the written file itself (verifiedOn file)'),
  llamaCpp: z.looseObject({ available: z.boolean(), maxAbsLogitDiff: measured, top1Agreement: measured }).nullable(),
  verifiedOn: z.enum(['memory', 'file']).optional().describe("'file': the KL and the llama.cpp check measured the written GGUF on engines over its stored weights (--verify-on file, the default over 1 GiB of float32 weights); absent: in memory"),
});

const QuantizeReport = {
  out: z.string(),
  manifest: z.string(),
  format: z.enum(['gguf', 'safetensors', 'fakequant', 'onnx', 'compressed-tensors']),
  scheme: z.string(),
  method: z.enum(['rtn', 'gptq', 'awq']),
  fileType: z.string().nullable().describe('the llama.cpp file type written as general.file_type (Q4_K_M, IQ4_XS, …); null for other outputs'),
  tensors: z.array(z.looseObject({ name: z.string(), type: z.string(), method: z.string(), sqnrDb: measured })),
  fallbacks: z.array(z.string()),
  awq: z.array(loose),
  plan: loose.nullable().describe('the mixed-precision plan (--target-bpw)'),
  quality: Quality,
  seconds: num,
  files: z.array(z.string()),
};

export const JSON_SCHEMAS = {
  quantize: envelope('quantize', QuantizeReport).describe('bitscale quantize --json (one output)'),
  'quantize-variants': envelope('quantize', {
    out: z.string(),
    format: z.literal('onnx'),
    variants: z.array(z.enum(['fp32', 'fp16', 'q8', 'q4', 'q4f16', 'q2', 'q2f16'])),
    manifest: z.string(),
    reports: z.array(z.looseObject(QuantizeReport)),
  }).describe('bitscale quantize --variants … --json (an ONNX folder of several variants)'),
  sweep: envelope('sweep', {
    createdAt: z.string(),
    model: z.looseObject({ path: z.string(), sha256: z.string(), parameters: num, description: z.string() }),
    text: z.looseObject({ path: z.string(), sha256: z.string(), tokens: num, protocol: z.string() }),
    seed: num,
    calibRuntime: z.enum(['native', 'portable']).optional(),
    points: z.array(
      z.looseObject({
        id: z.string(),
        method: z.string(),
        scheme: z.string(),
        format: z.string(),
        fileBytes: num,
        bpw: num,
        nll: num,
        ppl: num,
        pplLo: num,
        pplHi: num,
        kld: num,
        kldLo: num.optional(),
        kldHi: num.optional(),
        dnllLo: num.optional(),
        dnllHi: num.optional(),
        top1: num,
        onFrontier: z.boolean(),
        onFrontierKld: z.boolean().optional(),
        command: z.string(),
        evalCommand: z.string().optional(),
      }),
    ),
    sensitivity: z.array(z.looseObject({ tensor: z.string(), scheme: z.string(), deltaNll: num, relErr: num })),
    law: loose.optional(),
    budgets: z.array(z.string()).optional(),
    recommendations: z
      .array(z.strictObject({ runtime: z.enum(['gguf', 'onnx', 'safetensors']), budget: z.string(), pointId: z.string().nullable(), metric: z.enum(['kld', 'nll']), equivalent: z.array(z.string()), note: z.string().optional() }))
      .optional()
      .describe('"what to ship": the recommended point per runtime and budget'),
    recipe: z.unknown().optional(),
    elapsedS: num,
  }).describe('bitscale sweep --json: the sweep record (the same as sweep.json)'),
  eval: envelope('eval', {
    model: z.string(),
    text: z.string(),
    protocol: z.enum(['windows', 'llamacpp']),
    ctx: num,
    weights: z.string().nullable(),
    activations: z.string().nullable(),
    kvCache: z.string().nullable(),
    ppl: num,
    nll: num,
    nllStderr: measured,
    pplCi95: z.tuple([measured, measured]),
    tokens: num,
    windows: num,
    tokensPerSecond: num,
    speed: z.strictObject({ promptTokensPerSecond: num, decodeTokensPerSecond: num }).optional(),
    weightsPath: z
      .strictObject({
        mode: z.enum(['native', 'dequantized']),
        matmul: z.enum(['fp32 (exact)', 'int8 activations']),
        summary: z.array(z.string()),
        tensors: z.array(z.strictObject({ name: z.string(), stored: z.string(), path: z.enum(['nbits', 'float']), detail: z.string() })),
      })
      .describe('which path ran per weight: MatMulNBits on the stored codes (nbits) or float32 (dequantized)'),
    base: z
      .strictObject({ model: z.string(), ppl: num, nll: num, kld: num, kldCi95: z.tuple([measured, measured]), kldMax: num, top1Agreement: num, deltaNll: num, deltaNllCi95: z.tuple([measured, measured]) })
      .optional(),
  }).describe('bitscale eval --json'),
  inspect: envelope('inspect', {
    path: z.string(),
    format: z.string(),
    fileBytes: num,
    config: z.looseObject({ architecture: z.string(), vocabSize: num, hiddenSize: num, nLayers: num }),
    parameters: num,
    weightParameters: num,
    tensors: z.array(z.looseObject({ name: z.string(), shape: z.array(num), dtype: z.string() })),
    dtypeTotals: z.record(z.string(), z.strictObject({ tensors: num, parameters: num, bytes: num, bitsPerWeight: num })),
    metadata: z.record(z.string(), z.unknown()),
    tokenizer: z.looseObject({ kind: z.string(), vocabSize: num }).nullable(),
  }).describe('bitscale inspect --json'),
  convert: envelope('convert', {
    input: z.string(),
    output: z.string(),
    from: z.string(),
    to: z.enum(['hf', 'gguf', 'llama2c']),
    dtype: z.string(),
    tensors: num,
    files: z.array(z.string()),
    seconds: num,
  }).describe('bitscale convert --json'),
  generate: envelope('generate', {
    text: z.string(),
    promptTokens: num,
    generatedTokens: num,
    stoppedBy: z.enum(['stop', 'length']),
    promptTokensPerSecond: num,
    decodeTokensPerSecond: num,
  }).describe('bitscale generate --json'),
  'law-predict': envelope('law predict', {
    constants: z.string(),
    N: num,
    D: num,
    train: z.looseObject({}).nullable(),
    postBits: num.nullable(),
    criticalDataSize: num.nullable(),
    loss: num,
    pretrainLoss: num,
    deltaPtq: num,
    nEff: num,
    terms: z.strictObject({ params: num, data: num, irreducible: num }),
    caveats: z.array(z.string()),
  }).describe('bitscale law predict --json'),
  'law-optimal': envelope('law optimal', {
    constants: z.string(),
    mode: z.enum(['tied', 'separate', 'fixed-N']),
    compute: num,
    precision: num,
    precisions: z.strictObject({ w: num, a: num, kv: num }),
    N: num,
    D: num,
    nEff: num,
    loss: num,
    tokensPerParam: num,
    caveats: z.array(z.string()),
  }).describe('bitscale law optimal --json'),
  'law-fit': envelope('law fit', {
    file: z.string(),
    written: z.string().nullable(),
    constants: loose,
    params: z.array(z.string()),
    estimates: z.record(z.string(), num),
    ci: z.record(z.string(), z.tuple([num, num])).optional(),
    se: z.record(z.string(), num).optional(),
    bootstrapOk: num.optional(),
    level: num,
    huberLoss: num,
    rmseLog: num,
    n: num,
    heldOut: z.strictObject({ n: num, rmseLog: num, maeLoss: num, trainN: num }).optional(),
    caveats: z.array(z.string()),
  }).describe('bitscale law fit --json'),
  'law-plot': envelope('law plot', { files: z.array(z.string()), caveats: z.array(z.string()) }).describe('bitscale law plot --json'),
  'law-experiment': envelope('law experiment', {
    grid: z.string(),
    runsFile: z.string(),
    csvFile: z.string(),
    chartFile: z.string().nullable(),
    runs: z.array(z.looseObject({ key: z.string(), N: num, D: num, loss: num })),
    computed: num,
    reused: num,
    fit: loose.nullable(),
    dSweep: loose.nullable(),
    residuals: z.array(z.strictObject({ key: z.string(), measured: num, predicted: num })),
  }).describe('bitscale law experiment --json'),
} as const;

export type JsonCommand = keyof typeof JSON_SCHEMAS;

/** The JSON Schema (draft 2020-12) of a command's --json output, for docs/json/. */
export function jsonSchemaOf(name: JsonCommand): Record<string, unknown> {
  return { title: `bitscale ${name === 'quantize-variants' ? 'quantize --variants' : name.replace('-', ' ')} --json`, ...(z.toJSONSchema(JSON_SCHEMAS[name], { io: 'output', unrepresentable: 'any' }) as Record<string, unknown>) };
}

/** file name → contents of every schema file in docs/json/ (the command outputs and the recipe format). */
export function schemaFiles(): Record<string, string> {
  const files: Record<string, string> = {};
  for (const name of Object.keys(JSON_SCHEMAS) as JsonCommand[]) files[`${name}.schema.json`] = JSON.stringify(jsonSchemaOf(name), null, 2) + '\n';
  const recipe = { title: 'bitscale recipe (quantize / sweep --recipe FILE)', ...(z.toJSONSchema(Recipe, { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>) };
  files['recipe.schema.json'] = JSON.stringify(recipe, null, 2) + '\n';
  return files;
}
