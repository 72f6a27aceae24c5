// Post-training quantization quality (issue 5): RTN / GPTQ / AWQ onto ggml types, GPTQ with an
// imatrix, and the --target-bpw mixed-precision allocator, each written as GGUF by quantizeModel
// and measured twice on the same held-out tokens and windows: by our engine (perplexity, and KL
// divergence of the quantized model's next-token distribution from the float model's) and by
// llama.cpp through node-llama-cpp on the written GGUF (perplexity). The float reference in
// llama.cpp is the same model saved as an F32 GGUF.
//
// Env: PTQ_MODELS (comma list of stories260k, default, m256, or directories; default: all present),
//      PTQ_EVAL_TOKENS (default 2048), PTQ_CTX (default 128), PTQ_METHODS (default rtn,gptq,awq),
//      PTQ_LLAMACPP=0 to skip llama.cpp, PTQ_MIXED (methods of the mixed points, default rtn,gptq+self),
//      PTQ_POINTS (regex of point ids to run), PTQ_SEED (calibration seed, default 0), PTQ_WINDOWS
//      (calibration windows, default 16) and PTQ_CALIB_SEQ (their length, default 128): the
//      calibration docs/ptq-results.md was measured with (the quantizer's default before it became
//      128 × 512, capped for small models), PTQ_SENSITIVITY (kl | hessian, for the mixed
//      points), PTQ_JSON (write rows there).
//      A method 'gptq+self' is GPTQ calibrated on windows sampled from the float model (--calib self).
// Legend: T = tokens per window, V = vocab, W = windows.
import { existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { resolve, join, basename } from 'node:path';
import { GGML_TYPES, type GgmlType } from '../src/core/dtype.js';
import { LlamaEngine } from '../src/engine/model.js';
import { compareLogitRows, logSoftmaxRow } from '../src/eval/divergence.js';
import { loadModel } from '../src/model/load.js';
import { saveModel } from '../src/model/save.js';
import { runImatrix } from '../src/pipeline/calibrate/calibrate.js';
import { defaultModelDir, demoCalibText, demoEvalText } from '../src/pipeline/sweep/demo.js';
import { quantizeModel, type QuantizeMethod } from '../src/pipeline/quantize/quantize.js';
import { openLlamaCpp } from '../src/eval/llamacpp.js';

const CACHE = resolve('.cache', 'ptq-quality');
const SHARED = resolve('..', 'shared');

interface ModelSpec {
  name: string;
  path: string;
  tokenizer?: string;
  evalText: string;
  calibFile: string;
}

interface Row {
  model: string;
  point: string;
  bytes: number;
  bpw: number;
  pplEngine: number;
  pplLlama: number | null;
  kld: number;
  top1: number;
  seconds: number;
  note: string;
  /** summed engine NLL of each evaluation window (for the paired bootstrap) */
  winNll?: number[];
}

function models(): ModelSpec[] {
  mkdirSync(CACHE, { recursive: true });
  const moby = join(CACHE, 'calib-moby.txt');
  if (!existsSync(moby)) writeFileSync(moby, demoCalibText());
  const all: Record<string, () => ModelSpec | null> = {
    stories260k: () => {
      const dir = join(SHARED, 'models', 'stories260K');
      if (!existsSync(dir)) return null;
      return {
        name: 'stories260K', path: join(dir, 'stories260K.bin'), tokenizer: join(dir, 'tok512.bin'),
        evalText: readText(join(SHARED, 'data', 'tinystories-valid-excerpt.txt')), calibFile: join(SHARED, 'data', 'tinystories-sample.txt'),
      };
    },
    default: () => ({ name: 'default-model', path: defaultModelDir(), evalText: demoEvalText(), calibFile: moby }),
    m256: () => (existsSync(resolve('.cache', 'ptq-model-256', 'model.safetensors')) ? { name: 'ptq-model-256', path: resolve('.cache', 'ptq-model-256'), evalText: demoEvalText(), calibFile: moby } : null),
  };
  const want = (process.env.PTQ_MODELS ?? 'stories260k,default,m256').split(',').map((s) => s.trim()).filter(Boolean);
  const out: ModelSpec[] = [];
  for (const w of want) {
    const m = all[w] ? all[w]() : existsSync(w) ? { name: basename(w), path: resolve(w), evalText: demoEvalText(), calibFile: moby } : null;
    if (m) out.push(m);
    else console.log(`(skipping ${w}: not present)`);
  }
  return out;
}

function readText(p: string): string {
  return readFileSync(p, 'utf8');
}

/** engine metrics: PPL over the windows' next-token predictions; KLD/top-1 vs the float model's logits */
async function engineMetrics(e: LlamaEngine, windows: number[][], V: number, ref: Float32Array[] | null): Promise<{ ppl: number; kld: number; top1: number; logits: Float32Array[]; winNll: number[] }> {
  let nll = 0;
  let n = 0;
  let kl = 0;
  let agree = 0;
  let m = 0;
  const all: Float32Array[] = [];
  const winNll: number[] = [];
  const lp = new Float64Array(V);
  for (let w = 0; w < windows.length; w++) {
    const toks = windows[w];
    const logits = await e.forward(toks);
    const nll0 = nll;
    for (let t = 0; t + 1 < toks.length; t++) {
      logSoftmaxRow(logits, t, V, lp);
      nll -= lp[toks[t + 1]];
      n++;
    }
    if (ref) {
      const c = compareLogitRows(ref[w], logits, V);
      kl += c.klSum;
      agree += c.agree;
      m += c.rows;
    }
    all.push(logits);
    winNll.push(nll - nll0);
  }
  return { ppl: Math.exp(nll / n), kld: ref ? kl / m : 0, top1: ref ? agree / m : 1, logits: all, winNll };
}

async function llamaPpl(gguf: string, windows: number[][], V: number, ctx: number): Promise<number> {
  const ref = await openLlamaCpp(gguf, ctx, V, 1);
  try {
    let nll = 0;
    let n = 0;
    for (const w of windows) {
      const lp = await ref.logProbs(w);
      for (const x of lp) nll -= x;
      n += lp.length;
    }
    return Math.exp(nll / n);
  } finally {
    await ref.close();
  }
}

interface Point {
  id: string;
  method: QuantizeMethod;
  scheme: string;
  imatrix?: boolean;
  /** 'self': calibration windows sampled from the float model (--calib self) */
  calib?: 'self';
  /** mixed precision at the measured linear bpw of this uniform point (fallbacks included) */
  sizeOf?: string;
}

/** 'gptq+self' → GPTQ calibrated on self-generated windows */
function parseMethod(m: string): { method: QuantizeMethod; calib?: 'self' } {
  const [method, calib] = m.split('+');
  return { method: method as QuantizeMethod, calib: calib === 'self' ? 'self' : undefined };
}

function points(kOk: boolean, methods: string[], mixedMethods: string[]): Point[] {
  const types = kOk ? ['q8_0', 'q4_0', 'q4_k', 'q3_k', 'q2_k'] : ['q8_0', 'q4_0'];
  const ps: Point[] = [];
  for (const t of types) for (const m of methods) ps.push({ id: `${m}-${t}`, ...parseMethod(m), scheme: t });
  ps.push({ id: 'rtn-q4_0+imatrix', method: 'rtn', scheme: 'q4_0', imatrix: true });
  ps.push({ id: 'gptq-q4_0+imatrix', method: 'gptq', scheme: 'q4_0', imatrix: true });
  // the allocator at the sizes of the uniform types it is compared with (same method)
  for (const m of mixedMethods) {
    if (kOk) ps.push({ id: `${m}-mixed@q3_k`, ...parseMethod(m), scheme: 'q3_k', sizeOf: `${m}-q3_k` });
    const at = kOk ? 'q4_k' : 'q4_0';
    ps.push({ id: `${m}-mixed@${at}`, ...parseMethod(m), scheme: at, sizeOf: `${m}-${at}` });
  }
  const only = process.env.PTQ_POINTS ? new RegExp(process.env.PTQ_POINTS) : null;
  return only ? ps.filter((p) => only.test(p.id) || ps.some((q) => q.sizeOf === p.id && only.test(q.id))) : ps;
}

function linearBpw(tensors: { name: string; type: string }[], shapes: Map<string, number[]>): number {
  let bits = 0;
  let n = 0;
  for (const t of tensors) {
    const g = GGML_TYPES[t.type as GgmlType];
    const shape = shapes.get(t.name);
    if (!g || !shape) return NaN;
    const numel = shape.reduce((a, b) => a * b, 1);
    bits += (numel / g.blockSize) * g.typeSize * 8;
    n += numel;
  }
  return bits / n;
}

const f = (x: number | null, d = 3) => (x === null || !Number.isFinite(x) ? '–' : x.toFixed(d));

export default async function ptqQuality(): Promise<void> {
  const evalTokens = Number(process.env.PTQ_EVAL_TOKENS ?? 2048);
  const ctx = Number(process.env.PTQ_CTX ?? 128);
  const methods = (process.env.PTQ_METHODS ?? 'rtn,gptq,gptq+self,awq').split(',');
  const mixedMethods = (process.env.PTQ_MIXED ?? 'rtn,gptq+self').split(',').filter(Boolean);
  const useLlama = process.env.PTQ_LLAMACPP !== '0';
  const rows: Row[] = [];
  for (const spec of models()) {
    const dir = join(CACHE, spec.name);
    mkdirSync(dir, { recursive: true });
    const weights = await loadModel(spec.path, { tokenizer: spec.tokenizer });
    const c = weights.config;
    const V = c.vocabSize;
    const shapes = new Map([...weights.tensors].map(([k, s]) => [k, s.shape]));
    const nParams = [...weights.tensors.values()].reduce((a, s) => a + s.shape.reduce((x, y) => x * y, 1), 0);
    const T = Math.min(ctx, c.maxSeqLen || ctx);
    const toks = weights.tokenizer!.encode(spec.evalText);
    const W = Math.min(Math.floor(toks.length / T), Math.floor(evalTokens / T));
    const windows = Array.from({ length: W }, (_, w) => toks.slice(w * T, (w + 1) * T));
    const kOk = c.hiddenSize % 256 === 0 && c.intermediateSize % 256 === 0;
    console.log(`\n${spec.name}: hidden ${c.hiddenSize}, intermediate ${c.intermediateSize}, ${c.nLayers} layers, vocab ${V}, ${nParams} params; eval ${W}×${T} tokens; K-quants ${kOk ? 'yes' : 'no (rows not multiples of 256)'}`);

    // float reference: engine log-probs, and the model saved as F32 GGUF for llama.cpp
    const t0 = Date.now();
    const fe = await LlamaEngine.create(weights);
    const fm = await engineMetrics(fe, windows, V, null);
    await fe.close();
    const floatGguf = join(dir, 'float-f32.gguf');
    await saveModel(weights, floatGguf, { format: 'gguf', dtype: 'F32', overwrite: true });
    await weights.close();
    const fl = useLlama ? await llamaPpl(floatGguf, windows, V, T) : null;
    rows.push({ model: spec.name, point: 'float (F32)', bytes: statSync(floatGguf).size, bpw: 32, pplEngine: fm.ppl, pplLlama: fl, kld: 0, top1: 1, seconds: (Date.now() - t0) / 1000, note: '', winNll: fm.winNll });
    printRow(rows.at(-1)!, true);

    const imatrixPath = join(dir, 'imatrix.gguf');
    await runImatrix({ model: spec.path, tokenizer: spec.tokenizer, out: imatrixPath, calib: spec.calibFile, seed: 0, overwrite: true });

    for (const p of points(kOk, methods, mixedMethods)) {
      const out = join(dir, `${p.id}.gguf`);
      const t1 = Date.now();
      const target = p.sizeOf ? rows.find((r) => r.model === spec.name && r.point === p.sizeOf)?.bpw : undefined;
      if (p.sizeOf && !target) {
        console.log(`${spec.name} ${p.id}: no ${p.sizeOf} row to size against`);
        continue;
      }
      let rep;
      try {
        rep = await quantizeModel({
          model: spec.path, tokenizer: spec.tokenizer, out, format: 'gguf', scheme: p.scheme, method: p.method, calib: p.calib ?? spec.calibFile,
          imatrix: p.imatrix ? imatrixPath : undefined, targetBpw: target, seed: Number(process.env.PTQ_SEED ?? 0),
          windows: Number(process.env.PTQ_WINDOWS ?? 16), seqLen: Number(process.env.PTQ_CALIB_SEQ ?? 128),
          mixedSensitivity: process.env.PTQ_SENSITIVITY === 'hessian' ? 'hessian' : 'kl', verify: false, keepHost: true, overwrite: true,
        });
      } catch (e) {
        console.log(`${spec.name} ${p.id}: quantize failed: ${(e as Error).message}`);
        continue;
      }
      const qe = LlamaEngine.fromHost(rep.host!);
      const qm = await engineMetrics(qe, windows, V, fm.logits);
      await qe.close();
      const ql = useLlama ? await llamaPpl(out, windows, V, T) : null;
      const bytes = statSync(out).size;
      const lb = linearBpw(rep.tensors, shapes);
      const note = p.sizeOf ? mixSummary(rep.tensors) : rep.fallbacks.length ? `${rep.fallbacks.length} fallbacks` : '';
      rows.push({ model: spec.name, point: p.id, bytes, bpw: lb, pplEngine: qm.ppl, pplLlama: ql, kld: qm.kld, top1: qm.top1, seconds: (Date.now() - t1) / 1000, note, winNll: qm.winNll });
      printRow(rows.at(-1)!, false);
      if (process.env.PTQ_JSON) writeFileSync(process.env.PTQ_JSON, JSON.stringify({ evalTokens, ctx, rows }, null, 2));
    }
    checks(rows.filter((r) => r.model === spec.name), nParams);
  }
  if (process.env.PTQ_JSON) writeFileSync(process.env.PTQ_JSON, JSON.stringify({ evalTokens, ctx, rows }, null, 2));
}

function mixSummary(tensors: { type: string }[]): string {
  const cnt = new Map<string, number>();
  for (const t of tensors) cnt.set(t.type, (cnt.get(t.type) ?? 0) + 1);
  return [...cnt].map(([k, v]) => `${v}×${k}`).join(' ');
}

function printRow(r: Row, header: boolean): void {
  if (header) console.log('| model | point | file bytes | linear bpw | PPL engine | PPL llama.cpp | KLD engine | top-1 | s | note |\n|---|---|---|---|---|---|---|---|---|---|');
  console.log(`| ${r.model} | ${r.point} | ${r.bytes} | ${f(r.bpw, 3)} | ${f(r.pplEngine)} | ${f(r.pplLlama)} | ${f(r.kld, 5)} | ${f(r.top1, 3)} | ${r.seconds.toFixed(1)} | ${r.note} |`);
}

/**
 * Paired bootstrap over evaluation windows of the fraction of RTN's log-perplexity gap a point
 * closes: windows are resampled with replacement (the same windows for all three models), 2000
 * times with a fixed seed; returns the 2.5 % and 97.5 % quantiles in percent. When the gap itself is
 * small against the window-to-window spread, the interval is wide and the point estimate is noise.
 */
function closureCi(rtn?: number[], g?: number[], fl?: number[]): [number, number] | null {
  if (!rtn || !g || !fl || rtn.length !== g.length || g.length !== fl.length || !rtn.length) return null;
  const W = rtn.length;
  let state = 12345;
  const rand = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32);
  const out: number[] = [];
  for (let b = 0; b < 2000; b++) {
    let r = 0;
    let q = 0;
    let z = 0;
    for (let i = 0; i < W; i++) {
      const j = Math.floor(rand() * W);
      r += rtn[j];
      q += g[j];
      z += fl[j];
    }
    out.push((100 * (r - q)) / (r - z));
  }
  out.sort((a, b) => a - b);
  return [out[Math.floor(0.025 * out.length)], out[Math.floor(0.975 * out.length)]];
}

function checks(rows: Row[], _nParams: number): void {
  const get = (id: string) => rows.find((r) => r.point === id);
  const fl = get('float (F32)')!;
  const rtn = get('rtn-q4_0');
  for (const g of rows.filter((r) => /-q4_0/.test(r.point) && r.point !== 'rtn-q4_0' && !/mixed|^awq/.test(r.point))) {
    if (!rtn) continue;
    const closes = (a: number | null, b: number | null, fz: number | null) => (a === null || b === null || fz === null ? NaN : (100 * (a - b)) / (a - fz));
    const e = closes(rtn.pplEngine, g.pplEngine, fl.pplEngine);
    const l = closes(rtn.pplLlama, g.pplLlama, fl.pplLlama);
    // the float model's KLD is 0, so the fraction of RTN's KLD removed is the KLD gap closed
    const k = 100 * (1 - g.kld / rtn.kld);
    const ci = closureCi(rtn.winNll, g.winNll, fl.winNll);
    console.log(`${fl.model}: ${g.point} closes ${f(e, 1)}% (engine; 95% CI over windows ${ci ? `${f(ci[0], 0)}…${f(ci[1], 0)}%` : '–'}) / ${f(l, 1)}% (llama.cpp) of the RTN Q4_0 perplexity gap and ${f(k, 1)}% of its KLD; same size ${g.bytes === rtn.bytes ? 'yes' : `no (${g.bytes} vs ${rtn.bytes} bytes)`}; ≥ 50%: ${e >= 50 && (Number.isNaN(l) || l >= 50) ? 'PASS' : 'FAIL'}`);
  }
  for (const m of rows.filter((r) => r.point.includes('-mixed@'))) {
    const [meth, at] = m.point.split('-mixed@');
    const u = get(`${meth}-${at}`);
    if (!u) continue;
    const better = m.pplEngine < u.pplEngine && m.kld < u.kld && (m.pplLlama === null || u.pplLlama === null || m.pplLlama < u.pplLlama);
    console.log(`${fl.model}: ${m.point} at ${f(m.bpw, 3)} bpw (${m.bytes} B): PPL ${f(m.pplEngine)}/${f(m.pplLlama)} KLD ${f(m.kld, 5)} vs uniform ${u.point} at ${f(u.bpw, 3)} bpw (${u.bytes} B): PPL ${f(u.pplEngine)}/${f(u.pplLlama)} KLD ${f(u.kld, 5)} → ${better ? 'mixed better' : m.kld < u.kld ? 'mixed better in KLD only' : 'mixed NOT better'}${m.bytes > u.bytes ? ' (mixed file is larger)' : ''}`);
  }
}
