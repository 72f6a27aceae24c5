// Recipe files for `quantize` and `sweep`: a run's settings in YAML or JSON, stored and reviewed
// beside the model and repeated with `--recipe FILE`, as llm-compressor's recipes are. The keys are
// the commands' flag names (so a recipe reads like the command line it replaces); flags given on
// the command line override the recipe. Validated against a zod schema before any work: an unknown
// key, a wrong type or a value out of range is a ConfigError naming the file and the field path
// (`quantize.windows`). The manifest of the output records the recipe (path, sha256, content).
//
//   # bitscale recipe
//   quantize:
//     model: Qwen/Qwen2.5-0.5B
//     out: qwen-q4_k.gguf
//     scheme: q4_k
//     method: gptq
//     calib: self
//     windows: 32

import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import { ConfigError, IoError } from '../../core/errors.js';

const posInt = z.number().int().min(1);
/** One value or a non-empty list of them (the flag's comma-separated list). */
const list = <T extends z.ZodType>(item: T, what: string) => z.union([z.array(item).min(1), item]).describe(`${what}, one or a list`);

/** `bitscale quantize` settings (flag names; MODEL as `model`; `verify: false` is --no-verify). */
export const QuantizeRecipe = z
  .strictObject({
    model: z.string().min(1).describe('llama2.c checkpoint, GGUF file, Hugging Face folder or Hub id'),
    out: z.string().min(1),
    format: z.enum(['gguf', 'safetensors', 'compressed-tensors', 'fakequant', 'onnx']),
    scheme: z.string().min(1).describe('q4_k, int4-g128, nf4-g64, … (parseScheme grammar)'),
    method: z.enum(['rtn', 'gptq', 'awq']),
    calib: z.string().min(1).describe('calibration text file, or "self"'),
    windows: posInt,
    'seq-len': z.number().int().min(2),
    imatrix: z.string().min(1),
    'target-bpw': z.union([z.number().min(1).max(32), z.literal('recipe')]).describe('bits per weight between 1 and 32, or "recipe"'),
    sensitivity: z.enum(['kl', 'hessian']),
    'act-order': z.boolean(),
    percdamp: z.number().min(0),
    seed: z.number().int().min(0),
    'calib-runtime': z.enum(['native', 'portable']),
    tokenizer: z.string().min(1),
    verify: z.boolean(),
    'verify-on': z.enum(['memory', 'file']).describe('where a GGUF output is checked: memory, or the written file (default over 1 GiB of float32 weights)'),
    variants: list(z.enum(['fp32', 'fp16', 'q8', 'q4', 'q4f16', 'q2', 'q2f16']), 'fp32, fp16, q8, q4, q4f16, q2 or q2f16'),
    dtype: z.enum(['f32', 'f16']),
    pure: z.boolean(),
    'output-tensor-type': z.string().min(1),
    'token-embedding-type': z.string().min(1),
    'leave-output-tensor': z.boolean(),
    'tensor-type': list(z.string().regex(/=/), 'PATTERN=TYPE'),
    'allow-requantize': z.boolean(),
  })
  .partial();

/** `bitscale sweep` settings (flag names; MODEL as `model`; `sensitivity: false` / `verify: false` are --no-sensitivity / --no-verify). */
export const SweepRecipe = z
  .strictObject({
    model: z.string().min(1),
    text: z.string().min(1),
    bits: list(z.union([z.literal(1.58), z.literal(2), z.literal(3), z.literal(4), z.literal(5), z.literal(6), z.literal(8)]), '1.58, 2, 3, 4, 5, 6 or 8'),
    methods: list(z.enum(['rtn', 'gptq', 'awq', 'mixed', 'qat']), 'rtn, gptq, awq, mixed or qat'),
    formats: list(z.enum(['gguf', 'safetensors', 'onnx']), 'gguf, safetensors or onnx'),
    'group-sizes': list(posInt, 'positive integers'),
    'mixed-bpw': list(z.number().min(1).max(32), 'bits per weight between 1 and 32'),
    budget: list(z.union([z.number().positive(), z.string().regex(/^\d+(\.\d+)?\s*(bpw|kB|MB|GB)?$/i)]), 'bits per weight (4.5) or sizes (800MB, 1.5GB)'),
    ctx: z.number().int().min(8),
    'max-tokens': z.number().int().min(8),
    calib: z.string().min(1),
    'qat-text': list(z.string().min(1), 'text files or moby-dick'),
    'qat-steps': posInt,
    seed: z.number().int().min(0),
    'calib-runtime': z.enum(['native', 'portable']),
    out: z.string().min(1),
    tokenizer: z.string().min(1),
    sensitivity: z.boolean(),
    verify: z.boolean(),
  })
  .partial();

export const Recipe = z.strictObject({
  /** recipe format version */
  bitscale: z.literal(1).optional(),
  quantize: QuantizeRecipe.optional(),
  sweep: SweepRecipe.optional(),
});
export type Recipe = z.infer<typeof Recipe>;

export interface LoadedRecipe {
  path: string;
  sha256: string;
  /** the validated section for the command */
  section: Record<string, unknown>;
  /** the section as command-line values: strings for valued flags (lists comma-joined), booleans for switches */
  values: Record<string, string | boolean>;
}

/** Reads, parses (YAML is a superset of JSON) and validates a recipe; returns the command's section. */
export async function loadRecipe(path: string, command: 'quantize' | 'sweep'): Promise<LoadedRecipe> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new IoError('missing_file', 'cannot read the recipe', { file: path, field: '--recipe', found: (e as Error).message });
  }
  let doc: unknown;
  try {
    doc = parseYaml(text);
  } catch (e) {
    throw new ConfigError('bad_config', `recipe is not valid YAML or JSON: ${(e as Error).message.split('\n')[0]}`, { file: path });
  }
  const r = Recipe.safeParse(doc ?? {});
  if (!r.success) {
    const i = r.error.issues[0];
    const field = i.path.join('.');
    const keys = i.code === 'unrecognized_keys' ? (i as { keys: string[] }).keys : null;
    const allowed = i.path.length === 0 ? Object.keys(Recipe.shape) : i.path[0] === 'quantize' ? Object.keys(QuantizeRecipe.shape) : i.path[0] === 'sweep' ? Object.keys(SweepRecipe.shape) : [];
    const named = keys ? keys.map((k) => (field ? `${field}.${k}` : k)).join(', ') : field || '(top level)';
    const expected = keys ? `one of ${allowed.join(', ')}` : expectedOf(i, i.path);
    const more = r.error.issues.length > 1 ? ` (and ${r.error.issues.length - 1} more)` : '';
    throw new ConfigError('bad_config', `recipe field ${named}: ${keys ? 'unknown key' : 'invalid value'}${more}`, {
      file: path,
      field: keys ? (field ? `${field}.${keys[0]}` : keys[0]) : field || '(top level)',
      expected,
      found: keys ? keys.join(', ') : valueAt(doc, i.path),
    });
  }
  const section = (r.data[command] ?? {}) as Record<string, unknown>;
  const values: Record<string, string | boolean> = {};
  for (const [k, v] of Object.entries(section)) {
    if (k === 'verify' || (command === 'sweep' && k === 'sensitivity')) {
      if (v === false) values[`no-${k}`] = true;
      continue;
    }
    values[k] = typeof v === 'boolean' ? v : Array.isArray(v) ? v.join(',') : String(v);
  }
  return { path, sha256: createHash('sha256').update(text).digest('hex'), section, values };
}

/** What a field accepts, for people: from the issue (enum values, type, bounds) or the field's description. */
function expectedOf(i: z.core.$ZodIssue, path: PropertyKey[]): string {
  const sec = path[0] === 'quantize' ? QuantizeRecipe : path[0] === 'sweep' ? SweepRecipe : null;
  const f = sec && typeof path[1] === 'string' ? (sec.shape as Record<string, z.ZodType>)[path[1]] : undefined;
  const desc = f?.description ?? (f instanceof z.ZodOptional ? (f.unwrap() as z.ZodType).description : undefined);
  if (i.code === 'invalid_value') return `one of ${i.values.map(String).join(', ')}`;
  if (i.code === 'too_small') return `≥ ${String(i.minimum)}`;
  if (i.code === 'too_big') return `≤ ${String(i.maximum)}`;
  if (i.code === 'invalid_type') return desc ? `${i.expected}: ${desc}` : i.expected;
  return desc ?? i.message;
}

function valueAt(doc: unknown, path: PropertyKey[]): unknown {
  let v = doc;
  for (const k of path) v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v === undefined ? 'absent' : v;
}
