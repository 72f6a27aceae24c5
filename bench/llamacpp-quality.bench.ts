// Quality at the same bytes as llama.cpp's own quantizer (issue 14): for each model and each named
// file type (Q4_K_M, Q3_K_M, IQ4_XS by default), llama.cpp's llama_model_quantize with an importance
// matrix computed from the calibration text, against bitscale's GPTQ (and AWQ, and GPTQ calibrated
// on self-generated windows) onto the same recipe: every tensor of the same type, so the files have
// the same size (checked). As a control, bitscale's RTN with that imatrix must give llama.cpp's file
// byte for byte. Every file is measured by llama.cpp itself (node-llama-cpp, F32 KV cache) on the
// same held-out windows: KL divergence of its next-token distribution from the float model's (the
// F32 GGUF in llama.cpp), perplexity and top-1 agreement, with 95% intervals from a bootstrap over
// windows, and the paired interval of the KLD difference to llama.cpp's file.
//
// Env: RQ_MODELS (stories260k,default,m256; default all present), RQ_M256 (the 256-wide model
//      directory; default /tmp/i14/ptq-model-256, then .cache/ptq-model-256), RQ_TYPES (default
//      q4_k_m,q3_k_m,iq4_xs), RQ_METHODS (default gptq,awq,gptq+self,mixed: GPTQ with --target-bpw
//      recipe, the allocator at the recipe's own size), RQ_EVAL_TOKENS (default 8192),
//      RQ_CTX (default 128), RQ_JSON (write the rows there), RQ_CACHE (work folder, default
//      .cache/llamacpp-quality).
// Legend: T = tokens per window, V = vocab, W = windows.

import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ftypeByName, type LlamaFtype } from '../src/core/ftype.js';
import { logSoftmaxRow } from '../src/eval/divergence.js';
import { importance, readImatrix } from '../src/formats/imatrix/index.js';
import { loadModel } from '../src/model/load.js';
import { saveModel } from '../src/model/save.js';
import { runImatrix } from '../src/pipeline/calibrate/calibrate.js';
import { defaultModelDir, demoCalibText, demoEvalText } from '../src/pipeline/sweep/demo.js';
import { quantizeModel, type QuantizeMethod } from '../src/pipeline/quantize/quantize.js';
import { openLlamaCpp } from '../src/eval/llamacpp.js';
import { llamaCppQuantize } from '../test/reference/llamacpp-quantize.js';
import { compareFiles } from '../test/reference/recipe-compare.js';

// RQ_CACHE: a separate work folder per run, so that runs in parallel do not share files
const CACHE = resolve(process.env.RQ_CACHE ?? join('.cache', 'llamacpp-quality'));
const SHARED = resolve('..', 'shared');

interface Spec {
  name: string;
  path: string;
  tokenizer?: string;
  evalText: string;
  calibFile: string;
}

function specs(): Spec[] {
  mkdirSync(CACHE, { recursive: true });
  const moby = join(CACHE, 'calib-moby.txt');
  if (!existsSync(moby)) writeFileSync(moby, demoCalibText());
  const m256 = [process.env.RQ_M256, '/tmp/i14/ptq-model-256', resolve('.cache', 'ptq-model-256')].find((p) => p && existsSync(join(p, 'model.safetensors')));
  const all: Record<string, () => Spec | null> = {
    stories260k: () => {
      const dir = join(SHARED, 'models', 'stories260K');
      return existsSync(dir)
        ? { name: 'stories260K', path: join(dir, 'stories260K.bin'), tokenizer: join(dir, 'tok512.bin'), evalText: readFileSync(join(SHARED, 'data', 'tinystories-valid-excerpt.txt'), 'utf8'), calibFile: join(SHARED, 'data', 'tinystories-sample.txt') }
        : null;
    },
    default: () => ({ name: 'default-model', path: defaultModelDir(), evalText: demoEvalText(), calibFile: moby }),
    m256: () => (m256 ? { name: 'ptq-model-256', path: m256, evalText: demoEvalText(), calibFile: moby } : null),
  };
  const out: Spec[] = [];
  for (const w of (process.env.RQ_MODELS ?? 'stories260k,default,m256').split(',').map((s) => s.trim()).filter(Boolean)) {
    const s = all[w]?.() ?? null;
    if (s) out.push(s);
    else console.log(`(skipping ${w}: not present)`);
  }
  return out;
}

/** Per window: Σ KL(P_float ‖ P_q) over positions, Σ NLL of the next tokens, top-1 agreements, counts. */
interface WindowStats {
  kl: number[];
  nll: number[];
  agree: number[];
  rows: number[];
  preds: number[];
}

/** llama.cpp's log-probabilities [T, V] of every window (float64 rows, log-softmax of its logits). */
async function llamaLogProbs(gguf: string, windows: number[][], V: number, T: number): Promise<Float64Array[]> {
  const ref = await openLlamaCpp(gguf, T, V, 2);
  try {
    const out: Float64Array[] = [];
    for (const w of windows) {
      const logits = await ref.logits(w);
      const lp = new Float64Array(w.length * V);
      const row = new Float64Array(V);
      for (let t = 0; t < w.length; t++) {
        logSoftmaxRow(logits, t, V, row);
        lp.set(row, t * V);
      }
      out.push(lp);
    }
    return out;
  } finally {
    await ref.close();
  }
}

function windowStats(ref: Float64Array[], q: Float64Array[], windows: number[][], V: number): WindowStats {
  const s: WindowStats = { kl: [], nll: [], agree: [], rows: [], preds: [] };
  windows.forEach((w, i) => {
    let kl = 0;
    let nll = 0;
    let agree = 0;
    for (let t = 0; t < w.length; t++) {
      let am = 0;
      let bm = 0;
      for (let v = 0; v < V; v++) {
        const p = ref[i][t * V + v];
        kl += Math.exp(p) * (p - q[i][t * V + v]);
        if (p > ref[i][t * V + am]) am = v;
        if (q[i][t * V + v] > q[i][t * V + bm]) bm = v;
      }
      if (am === bm) agree++;
      if (t + 1 < w.length) nll -= q[i][t * V + w[t + 1]];
    }
    s.kl.push(kl);
    s.nll.push(nll);
    s.agree.push(agree);
    s.rows.push(w.length);
    s.preds.push(w.length - 1);
  });
  return s;
}

const sum = (a: number[], idx: number[]) => idx.reduce((x, i) => x + a[i], 0);

/** Bootstrap over windows (2000 resamples, fixed seed): 95% interval of f(resampled indices). */
function bootstrap(W: number, f: (idx: number[]) => number): [number, number] {
  let state = 12345;
  const rand = () => (state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32;
  const xs: number[] = [];
  for (let b = 0; b < 2000; b++) {
    const idx = Array.from({ length: W }, () => Math.floor(rand() * W));
    xs.push(f(idx));
  }
  xs.sort((a, b) => a - b);
  return [xs[Math.floor(0.025 * xs.length)], xs[Math.floor(0.975 * xs.length)]];
}

interface Row {
  model: string;
  ftype: string;
  point: string;
  bytes: number;
  kld: number;
  kldCi: [number, number];
  ppl: number;
  pplCi: [number, number];
  top1: number;
  /** KLD − llama.cpp's KLD at this type, with its paired 95% interval */
  dKld: number | null;
  dKldCi: [number, number] | null;
  note: string;
}

const f = (x: number, d = 4) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const fe = (x: number) => (Number.isFinite(x) ? x.toExponential(2) : '–');

export default async function llamacppQuality(): Promise<void> {
  const evalTokens = Number(process.env.RQ_EVAL_TOKENS ?? 8192);
  const ctx = Number(process.env.RQ_CTX ?? 128);
  const types = (process.env.RQ_TYPES ?? 'q4_k_m,q3_k_m,iq4_xs').split(',').map((t) => ftypeByName(t)!).filter(Boolean) as LlamaFtype[];
  const methods = (process.env.RQ_METHODS ?? 'gptq,awq,gptq+self,mixed').split(',').filter(Boolean);
  const rows: Row[] = [];
  const save = () => process.env.RQ_JSON && writeFileSync(process.env.RQ_JSON, JSON.stringify({ evalTokens, ctx, rows }, null, 2));
  console.log('| model | type | point | file bytes | KLD [95% CI] | PPL [95% CI] | top-1 | ΔKLD vs llama.cpp [95% CI] | note |\n|---|---|---|---|---|---|---|---|---|');
  for (const spec of specs()) {
    const dir = join(CACHE, spec.name);
    mkdirSync(dir, { recursive: true });
    const weights = await loadModel(spec.path, { tokenizer: spec.tokenizer });
    const c = weights.config;
    const V = c.vocabSize;
    const T = Math.min(ctx, c.maxSeqLen || ctx);
    const toks = weights.tokenizer!.encode(spec.evalText);
    const W = Math.min(Math.floor(toks.length / T), Math.floor(evalTokens / T));
    const windows = Array.from({ length: W }, (_, w) => toks.slice(w * T, (w + 1) * T));
    // one input for both quantizers: the model as an F32 GGUF (with its vocabulary)
    const floatGguf = join(dir, 'float-f32.gguf');
    await saveModel(weights, floatGguf, { format: 'gguf', dtype: 'F32', overwrite: true });
    await weights.close();
    const imatrixPath = join(dir, 'imatrix.gguf');
    await runImatrix({ model: floatGguf, out: imatrixPath, calib: spec.calibFile, seed: 0, overwrite: true });
    const im = await readImatrix(readFileSync(imatrixPath), imatrixPath);
    const imData = new Map([...im.entries].map(([n, e]) => [n, importance(e)]));
    console.log(`\n${spec.name}: hidden ${c.hiddenSize}, FFN ${c.intermediateSize}, ${c.nLayers} layers, vocab ${V}; eval ${W}×${T} tokens; imatrix ${im.entries.size} entries from ${spec.calibFile}`);
    const ref = await llamaLogProbs(floatGguf, windows, V, T);
    const floatStats = windowStats(ref, ref, windows, V);
    const idxAll = Array.from({ length: W }, (_, i) => i);
    const fppl = Math.exp(sum(floatStats.nll, idxAll) / sum(floatStats.preds, idxAll));
    console.log(`| ${spec.name} | – | float (F32) | ${statSync(floatGguf).size} | 0 | ${f(fppl, 3)} | 1 | – | |`);

    for (const ftype of types) {
      const lc = join(dir, `llama.cpp-${ftype}.gguf`);
      await llamaCppQuantize(floatGguf, lc, { ftype, imatrix: imData, nthread: 2 });
      const lcBytes = statSync(lc).size;
      // control: bitscale RTN with the same imatrix is llama.cpp's file, byte for byte
      const rtn = join(dir, `bitscale-rtn-${ftype}.gguf`);
      await quantizeModel({ model: floatGguf, out: rtn, format: 'gguf', scheme: ftype, method: 'rtn', imatrix: imatrixPath, verify: false, overwrite: true });
      const same = await compareFiles(rtn, lc);
      rmSync(rtn, { force: true });
      // llama-quantize's command line (not the library call used here) adds the quantize.imatrix.* keys bitscale writes
      same.metadata = same.metadata.filter((m) => !m.startsWith('quantize.imatrix.'));
      console.log(`${spec.name} ${ftype}: bitscale RTN + imatrix vs llama.cpp: ${same.mismatches.length ? `${same.mismatches.length} tensors differ: ${same.mismatches.slice(0, 3).join('; ')}` : `all ${same.tensors} tensors identical`}${same.metadata.length ? `; metadata differs: ${same.metadata.join('; ')}` : ''}`);
      // each file is measured as soon as it is written (a cut run keeps its rows), llama.cpp's first
      let base: WindowStats | null = null;
      const measure = async (point: string, path: string, note: string) => {
        const st = windowStats(ref, await llamaLogProbs(path, windows, V, T), windows, V);
        base ??= st;
        const kld = (idx: number[]) => sum(st.kl, idx) / sum(st.rows, idx);
        const ppl = (idx: number[]) => Math.exp(sum(st.nll, idx) / sum(st.preds, idx));
        const b = base;
        const dk = (idx: number[]) => kld(idx) - sum(b.kl, idx) / sum(b.rows, idx);
        const bytes = statSync(path).size;
        const row: Row = {
          model: spec.name, ftype, point, bytes, kld: kld(idxAll), kldCi: bootstrap(W, kld), ppl: ppl(idxAll), pplCi: bootstrap(W, ppl),
          top1: sum(st.agree, idxAll) / sum(st.rows, idxAll), dKld: st === base ? null : dk(idxAll), dKldCi: st === base ? null : bootstrap(W, dk),
          note: `${note}${bytes !== lcBytes ? ` (size ${bytes > lcBytes ? 'LARGER' : 'smaller'}: ${bytes} vs ${lcBytes} bytes)` : ''}`,
        };
        rows.push(row);
        save();
        console.log(`| ${row.model} | ${ftype} | ${row.point} | ${bytes} | ${fe(row.kld)} [${fe(row.kldCi[0])}, ${fe(row.kldCi[1])}] | ${f(row.ppl, 3)} [${f(row.pplCi[0], 3)}, ${f(row.pplCi[1], 3)}] | ${f(row.top1, 3)} | ${row.dKld === null ? '–' : `${fe(row.dKld)} [${fe(row.dKldCi![0])}, ${fe(row.dKldCi![1])}]`} | ${row.note} |`);
      };
      await measure('llama.cpp + imatrix', lc, 'llama_model_quantize');
      for (const m of methods) {
        const [method, calib] = m === 'mixed' ? ['gptq'] : m.split('+');
        const out = join(dir, `bitscale-${m}-${ftype}.gguf`);
        const t0 = Date.now();
        const rep = await quantizeModel({
          model: floatGguf, out, format: 'gguf', scheme: ftype, method: method as QuantizeMethod, calib: calib === 'self' ? 'self' : spec.calibFile, seed: 0, verify: false, overwrite: true,
          ...(m === 'mixed' ? { targetBpw: 'recipe' as const } : {}),
        });
        const notes = new Set(rep.tensors.map((t) => t.note).filter(Boolean));
        await measure(`bitscale ${m}`, out, `${((Date.now() - t0) / 1000).toFixed(0)} s${notes.size ? `; ${[...notes].join('; ')}` : ''}`);
        rmSync(out, { force: true });
      }
    }
  }
  save();
}
