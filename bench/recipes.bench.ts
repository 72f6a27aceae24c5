// The whole table of issue 14: every named llama.cpp file type, on generated Llamas of several
// shapes (GQA and not, tied and untied, rows that are and are not whole 256-value blocks, 1 to 40
// layers and an 80-layer "70B"), with and without an importance matrix, quantized by llama.cpp's
// llama_model_quantize (through koffi) and by bitscale (RTN, same options): every tensor's type and
// bytes and every metadata key must be equal. Also runs the bundled ggml on the golden inputs for the
// IQ1/IQ2 types the unit test leaves out (their tables take the bundled ggml ~40 s to build).
// Prints per case: tensors compared, mismatches, and both quantizers' wall times with their ratio
// (measured in the same run; the machine may be shared).
//
// Env: RB_FTYPES (comma list, default all), RB_SHAPES (regex over shape labels), RB_JSON (rows).
// Legend: L = layers, E = hidden, F = FFN width, H/Hk = heads / KV heads, V = vocab.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { LLAMA_FTYPES, type LlamaFtype } from '../src/core/ftype.js';
import { GGML_TYPES, type GgmlType } from '../src/core/dtype.js';
import { planGgufTypes } from '../src/model/gguf-recipe.js';
import { llamaCppTensorTypes } from '../test/reference/llamacpp-quant-types.js';
import { quantizeGgml } from '../src/quant/ggml/index.js';
import { compareQuantize, shapeLabel, syntheticImatrix, writeImatrixFile, writeShape, type RecipeShape } from '../test/reference/recipe-compare.js';
import { bundledQuantize } from '../test/reference/ggml-bundled.js';
import { quantizeModel } from '../src/pipeline/quantize/quantize.js';

const ALL = Object.keys(LLAMA_FTYPES) as LlamaFtype[];
// whole-block shapes run the K-/IQ-quants themselves; they are costly in layers, so the depth series
// (rules over n/8, n/16, 7n/8, use_more_bits) runs at E = 32 with every type, plus depth 40 at E = 256
// for the mixes whose rules depend on depth
const DEPTH_TYPES: LlamaFtype[] = ['Q4_K_M', 'Q3_K_M', 'Q5_K_M', 'Q4_K_S', 'Q2_K', 'Q2_K_S', 'IQ4_XS', 'IQ3_M', 'IQ3_XS', 'IQ2_M', 'IQ2_XXS'];

interface Case {
  shape: RecipeShape;
  types: LlamaFtype[];
}

function cases(): Case[] {
  const c: Case[] = [
    { shape: { layers: 2, embd: 256, ff: 512, heads: 4, kvHeads: 1, vocab: 128, tied: false }, types: ALL },
    { shape: { layers: 2, embd: 256, ff: 256, heads: 4, kvHeads: 4, vocab: 128, tied: true }, types: ALL },
    { shape: { layers: 3, embd: 64, ff: 96, heads: 2, kvHeads: 2, vocab: 64, tied: true }, types: ALL },
    { shape: { layers: 3, embd: 320, ff: 160, heads: 10, kvHeads: 5, vocab: 96, tied: false }, types: ALL },
  ];
  for (const L of [1, 2, 3, 5, 7, 8, 9, 15, 16, 17, 23, 24, 31, 32, 33, 40]) c.push({ shape: { layers: L, embd: 32, ff: 64, heads: 4, kvHeads: 1, vocab: 64, tied: L % 2 === 0 }, types: ALL });
  c.push({ shape: { layers: 80, embd: 32, ff: 64, heads: 4, kvHeads: 1, vocab: 64, tied: false }, types: ALL });
  c.push({ shape: { layers: 40, embd: 256, ff: 256, heads: 4, kvHeads: 2, vocab: 64, tied: true }, types: DEPTH_TYPES });
  const only = process.env.RB_SHAPES ? new RegExp(process.env.RB_SHAPES) : null;
  const ft = process.env.RB_FTYPES ? process.env.RB_FTYPES.split(',').map((s) => s.trim().toUpperCase() as LlamaFtype) : null;
  return c.filter((x) => !only || only.test(shapeLabel(x.shape))).map((x) => ({ ...x, types: ft ? x.types.filter((t) => ft.includes(t)) : x.types }));
}

interface Row {
  shape: string;
  ftype: string;
  imatrix: boolean;
  result: string;
  tensors: number;
  msLlamaCpp: number;
  msBitscale: number;
}

function goldenCheck(): void {
  const dir = resolve('..', 'shared', 'golden', 'ggml-quants');
  if (!existsSync(resolve(dir, 'manifest.tsv'))) return;
  const f32 = (p: string) => {
    const b = readFileSync(resolve(dir, p));
    return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
  };
  const im = f32('imatrix.f32');
  const rows = readFileSync(resolve(dir, 'manifest.tsv'), 'utf8').trim().split('\n').slice(1).map((l) => l.split('\t'));
  const changed: string[] = [];
  let n = 0;
  for (const r of rows) {
    const type = r[1].toUpperCase() as GgmlType;
    if (!['IQ1_S', 'IQ1_M', 'IQ2_XXS', 'IQ2_XS', 'IQ2_S'].includes(type)) continue;
    const x = f32(`${r[0]}.input.f32`);
    const got = bundledQuantize(type, x, Number(r[6]), Number(r[7]), r[3] === '1' ? im : undefined);
    const ours = quantizeGgml(type, x, Number(r[6]), Number(r[7]), r[3] === '1' ? im : undefined);
    const gold = readFileSync(resolve(dir, r[8]));
    n++;
    if (!Buffer.from(got).equals(gold)) changed.push(`${r[0]} ${type}${r[3] === '1' ? ' imatrix' : ''}${Buffer.from(ours).equals(Buffer.from(got)) ? ' (bitscale = bundled)' : ' (bitscale ≠ bundled!)'}`);
    else if (!Buffer.from(ours).equals(gold)) changed.push(`${r[0]} ${type}: bitscale ≠ golden = bundled!`);
  }
  console.log(`bundled ggml vs d99724f goldens, IQ1/IQ2 rows: ${n} rows; differing from the goldens: ${changed.length ? changed.join(', ') : 'none'}`);
}

/**
 * What each file type gives the tensors of a Llama-3.1-8B-shaped model (32 layers, GQA 4, untied),
 * from bitscale's planner, checked against llama.cpp's own type selection for that shape.
 */
function recipeSummary(): void {
  const L = 32;
  const E = 4096;
  const F = 14336;
  const tensors: { name: string; shape: number[] }[] = [{ name: 'token_embd.weight', shape: [128256, E] }, { name: 'output.weight', shape: [128256, E] }];
  for (let l = 0; l < L; l++) {
    for (const [n, shape] of [['attn_q', [E, E]], ['attn_k', [1024, E]], ['attn_v', [1024, E]], ['attn_output', [E, E]], ['ffn_gate', [F, E]], ['ffn_up', [F, E]], ['ffn_down', [E, F]]] as const) {
      tensors.push({ name: `blk.${l}.${n}.weight`, shape: [...shape] });
    }
  }
  const model = { arch: 'llama', nLayers: L, nHeads: 32, nKvHeads: 8, nExperts: 0 };
  console.log('\nRecipes on a Llama-3.1-8B shape (32 layers, 32/8 heads, E 4096, F 14336, vocab 128256, untied), with an imatrix; bpw over all weights:');
  console.log('| file type | base | token_embd | output | attn_v | ffn_down | attn_output | attn_q / attn_k | ffn_gate / ffn_up | bpw | = llama.cpp |\n|---|---|---|---|---|---|---|---|---|---|---|');
  for (const ft of ALL) {
    const plan = planGgufTypes(model, tensors, { ftype: ft, hasImatrix: true });
    const theirs = llamaCppTensorTypes({ arch: 'llama', nEmbd: E, nFf: F, nLayer: L, nHead: 32, nHeadKv: 8, headDim: 128 }, tensors.map((t) => ({ name: t.name, ne: [...t.shape].reverse() })), { ftype: ft });
    // compute_types sees no imatrix: compare where the imatrix cannot matter
    const noIm = planGgufTypes(model, tensors, { ftype: ft, hasImatrix: false });
    const same = tensors.every((t) => theirs.get(t.name) === noIm.get(t.name)!.type);
    const role = (r: string) => {
      const cnt = new Map<string, number>();
      for (const t of tensors) if (t.name.endsWith(`${r}.weight`) && (r !== 'output' || t.name === 'output.weight')) cnt.set(plan.get(t.name)!.type!, (cnt.get(plan.get(t.name)!.type!) ?? 0) + 1);
      return [...cnt].map(([k, v]) => (cnt.size > 1 ? `${v}× ${k}` : k)).join(', ');
    };
    let bits = 0;
    let n = 0;
    for (const t of tensors) {
      const g = GGML_TYPES[plan.get(t.name)!.type!];
      const numel = t.shape[0] * t.shape[1];
      bits += (numel / g.blockSize) * g.typeSize * 8;
      n += numel;
    }
    console.log(`| ${ft} | ${LLAMA_FTYPES[ft].base} | ${role('token_embd')} | ${role('output')} | ${role('attn_v')} | ${role('ffn_down')} | ${role('attn_output')} | ${role('attn_q')} / ${role('attn_k')} | ${role('ffn_gate')} / ${role('ffn_up')} | ${(bits / n).toFixed(2)} | ${same ? 'yes' : 'NO'} |`);
  }
}

export default async function recipes(): Promise<void> {
  recipeSummary();
  goldenCheck();
  const rows: Row[] = [];
  let bad = 0;
  let totalL = 0;
  let totalB = 0;
  console.log('| shape | file type | imatrix | result | tensors | llama.cpp ms | bitscale ms | ratio |\n|---|---|---|---|---|---|---|---|');
  for (const cs of cases()) {
    const dir = mkdtempSync(join(tmpdir(), 'bitscale-recipes-'));
    try {
      const input = await writeShape(dir, cs.shape);
      const data = syntheticImatrix(cs.shape);
      const file = join(dir, 'im.gguf');
      await writeImatrixFile(file, data);
      for (const ftype of cs.types) {
        for (const withIm of [true, false]) {
          let row: Row;
          try {
            const r = await compareQuantize(input, dir, { ftype, imatrix: withIm ? { file, data } : undefined });
            const ok = !r.mismatches.length && !r.metadata.length;
            row = { shape: shapeLabel(cs.shape), ftype, imatrix: withIm, result: ok ? 'identical' : [...r.mismatches, ...r.metadata].slice(0, 3).join('; '), tensors: r.tensors, msLlamaCpp: r.msLlamaCpp, msBitscale: r.msBitscale };
            totalL += r.msLlamaCpp;
            totalB += r.msBitscale;
            if (!ok) bad++;
          } catch (e) {
            // llama.cpp refused: bitscale must refuse the same input
            const msg = (e as Error).message.split('\n')[0];
            let ours = 'accepted';
            try {
              await quantizeModel({ model: input, out: join(dir, 'refused.gguf'), format: 'gguf', scheme: ftype, method: 'rtn', verify: false, overwrite: true, tokenizer: null, imatrix: withIm ? file : undefined });
            } catch (e2) {
              ours = `refused (${(e2 as Error).message.split('\n')[0].slice(0, 80)})`;
            }
            if (ours === 'accepted') bad++;
            row = { shape: shapeLabel(cs.shape), ftype, imatrix: withIm, result: `llama.cpp refused (${msg.slice(0, 40)}…), bitscale ${ours}`, tensors: 0, msLlamaCpp: NaN, msBitscale: NaN };
          }
          rows.push(row);
          console.log(`| ${row.shape} | ${ftype} | ${withIm ? 'yes' : 'no'} | ${row.result} | ${row.tensors} | ${row.msLlamaCpp.toFixed(0)} | ${row.msBitscale.toFixed(0)} | ${(row.msBitscale / row.msLlamaCpp).toFixed(1)} |`);
          if (process.env.RB_JSON) writeFileSync(process.env.RB_JSON, JSON.stringify(rows, null, 1));
        }
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  console.log(`\n${rows.length} cases, ${rows.filter((r) => r.result === 'identical').length} identical, ${rows.filter((r) => r.result.startsWith('llama.cpp refused')).length} refused by both, ${bad} FAILING; time bitscale / llama.cpp over the compared cases: ${(totalB / 1000).toFixed(0)} s / ${(totalL / 1000).toFixed(0)} s = ${(totalB / totalL).toFixed(1)}×`);
}
