// `bitscale inspect`: argument parsing and printing only; the work is pipeline/inspect.ts.
import { ConfigError } from '../../core/errors.js';
import type { CommandMeta } from '../command.js';
import { parse } from '../args.js';
import { modelArg } from '../model-arg.js';
import { out, reportError, table, printJson } from '../output.js';
import { inspectModel, type InspectReport } from '../../pipeline/inspect.js';

export const meta: CommandMeta = {
  name: 'inspect',
  summary: 'show a model file: architecture, parameters, tensors, dtypes, metadata, tokenizer',
  usage: `bitscale inspect PATH [--json] [--tokenizer FILE]

  PATH              llama2.c checkpoint, GGUF file, or Hugging Face directory / .safetensors
  --json            print one JSON object (numeric "parameters" field)
  --tokenizer FILE  tokenizer.bin / tokenizer.json to use instead of the one found beside PATH
  Reads headers only; tensor data is never loaded.`,
};

const n = (x: number) => x.toLocaleString('en-US');

function mb(bytes: number): string {
  return bytes >= 1e6 ? `${(bytes / 1e6).toFixed(2)} MB` : `${(bytes / 1e3).toFixed(1)} kB`;
}

function print(r: InspectReport): void {
  const c = r.config;
  out(`${r.path}  (${r.format}, ${mb(r.fileBytes)})`);
  out(
    `architecture ${c.architecture}: vocab ${n(c.vocabSize)}, hidden ${c.hiddenSize}, ffn ${c.intermediateSize}, layers ${c.nLayers}, ` +
      `heads ${c.nHeads} (kv ${c.nKvHeads}, dim ${c.headDim}), context ${n(c.maxSeqLen)}`,
  );
  out(
    `rope theta ${c.ropeTheta} (${c.ropeLayout}${c.ropeScaling ? `, scaling ${c.ropeScaling.type} x${c.ropeScaling.factor}` : ''}), rms eps ${c.rmsNormEps}, ` +
      `${c.tiedEmbeddings ? 'tied' : 'separate'} embeddings${c.attentionBias ? ', qkv bias' : ''}${c.qkNorm ? ', q/k norm' : ''}`,
  );
  const extra = r.parameters - r.weightParameters;
  out(`parameters ${n(r.parameters)}${extra ? ` (${n(r.weightParameters)} weights + ${n(extra)} stored RoPE table values)` : ''}`);
  out('');
  const showStored = r.tensors.some((t) => t.stored !== t.name);
  out(
    table(
      ['tensor', ...(showStored ? ['in file'] : []), 'shape', 'dtype', 'bytes', 'bits/w'],
      r.tensors.map((t) => [t.name, ...(showStored ? [t.stored] : []), t.shape.join('x'), t.dtype, n(t.bytes), t.bitsPerWeight.toFixed(2)]),
    ),
  );
  out('');
  out(table(['dtype', 'tensors', 'parameters', 'bytes', 'bits/w'], Object.entries(r.dtypeTotals).map(([d, v]) => [d, v.tensors, n(v.parameters), n(v.bytes), v.bitsPerWeight.toFixed(2)])));
  const md = Object.entries(r.metadata).filter(([, v]) => v !== null && v !== undefined);
  if (md.length) {
    out('');
    out('metadata:');
    for (const [k, v] of md) out(`  ${k} = ${typeof v === 'string' ? v : JSON.stringify(v)}`.slice(0, 160));
  }
  out('');
  const t = r.tokenizer;
  out(t ? `tokenizer ${t.kind}: ${n(t.vocabSize)} tokens, bos ${t.bosId}, eos ${t.eosId}, unk ${t.unkId}; ${JSON.stringify(t.sample?.text)} → [${t.sample?.ids.join(', ')}]` : 'tokenizer: none found');
}

export async function run(argv: string[]): Promise<number> {
  try {
    const p = parse(argv, { json: { type: 'boolean' }, tokenizer: { type: 'string' } }, meta.usage);
    const path = p.positionals[0] === undefined ? undefined : await modelArg(p.positionals[0], { quiet: !!p.values.json });
    if (!path) throw new ConfigError('bad_option', 'PATH is required', { field: 'PATH', hint: meta.usage.split('\n')[0] });
    if (p.positionals.length > 1) throw new ConfigError('bad_option', 'inspect takes one PATH', { field: 'PATH', found: p.positionals.join(' ') });
    const r = await inspectModel(path, { tokenizer: p.values.tokenizer as string | undefined });
    if (p.values.json) printJson('inspect', r);
    else print(r);
    return 0;
  } catch (e) {
    return reportError(e);
  }
}
