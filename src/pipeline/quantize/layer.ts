// One layer of `bitscale quantize`: AWQ scaling (folded into the model), then RTN or GPTQ of every
// linear weight onto its target grid, writing the dequantized weights back into the host model so
// that later layers calibrate on the quantized network (sequential, block by block).
// Legend: N = rows (output features), K = input features; weights row-major [N, K].

import { ConfigError } from '../../core/errors.js';
import { GGML_TYPES, type GgmlType } from '../../core/dtype.js';
import type { HostModel } from '../../engine/host.js';
import type { QuantScheme } from '../../quant/scheme.js';
import type { IntQuantized } from '../../quant/types.js';
import { fakeQuant } from '../../quant/index.js';
import { dequantizeGgml, ggmlSupports, quantizeGgml } from '../../quant/ggml/index.js';
import { IntGrid, CodebookGrid, intGridOptions, type ColumnGrid } from '../../algorithms/grid.js';
import { GgmlGrid, isGptqGgmlType } from '../../algorithms/ggml-grid.js';
import { KQuantGrid, isHookGridType } from '../../algorithms/ggml-hook-grid.js';
import { Iq4Grid, isIq4GridType } from '../../algorithms/ggml-iq4-grid.js';
import { rtnOnGrid } from '../../algorithms/gptq.js';
import { gptqFactor, gptqFast, transposeInto, type GptqFactor } from '../../algorithms/gptq-fast.js';
import type { Gemm } from '../../numerics/gemm.js';
import { awqClipSearch, awqSearchScales, foldIntoLinearRows, foldIntoNorm, scaleInputColumns, SCALE_MAPPINGS, type FakeQuantFn } from '../../algorithms/awq.js';
import { gramQuadForm, outputSqnrDb } from '../../algorithms/stats.js';
import { LINEAR_SITE, type Site } from '../../engine/decoder-block.js';
import type { SiteStats } from '../calibrate/calibrate.js';

// the target of a weight (what plan.ts assigns) lives in target.ts, which the streaming RTN
// path loads without this module's engine and algorithm imports
export { targetFor, targetLabel, type Target } from './target.js';
import { targetFor, targetLabel, type Target } from './target.js';

/** The column grid GPTQ (and grid RTN) uses for a target, or null when the target has none. */
export function gridFor(t: Target, n: number, k: number, imatrix?: Float32Array): ColumnGrid | null {
  if (t.kind === 'int') return new IntGrid(n, k, { ...intGridOptions(t.scheme, k), groupSize: t.groupSize });
  if (t.kind === 'nf4') return new CodebookGrid(n, k, t.groupSize, undefined, t.scheme.scaleDtype);
  if (t.kind === 'ggml' && isGptqGgmlType(t.type)) return new GgmlGrid(t.type, n, k, imatrix);
  if (t.kind === 'ggml' && isHookGridType(t.type)) return new KQuantGrid(t.type, n, k, imatrix);
  if (t.kind === 'ggml' && isIq4GridType(t.type)) return new Iq4Grid(t.type, n, k, imatrix);
  return null;
}

/** Quantize-dequantize with the target by plain RTN (AWQ's search and clip use this). */
export function fakeQuantFn(t: Target, imatrix?: Float32Array): FakeQuantFn {
  return (w, n, k) => {
    if (t.kind === 'ggml') {
      if (t.type === 'F16' || t.type === 'F32' || t.type === 'BF16' || k % GGML_TYPES[t.type].blockSize !== 0) {
        return Float64Array.from(dequantizeGgml(t.type === 'F32' ? 'F32' : 'F16', quantizeGgml(t.type === 'F32' ? 'F32' : 'F16', Float32Array.from(w), n, k), n * k));
      }
      const im = imatrix && imatrix.length === k ? imatrix : undefined;
      return Float64Array.from(dequantizeGgml(t.type, quantizeGgml(t.type, Float32Array.from(w), n, k, im), n * k));
    }
    if (t.kind === 'scheme') return Float64Array.from(fakeQuant(Float32Array.from(w), [n, k], t.scheme));
    const g = gridFor({ ...t, groupSize: Math.min(t.groupSize, k) } as Target, n, k)!;
    return rtnOnGrid(w, n, k, g);
  };
}

/** The codes of an int-grid result as quant's IntQuantized (its target's scheme), for the packed writers. */
export function gridQuantized(r: LinearResult): IntQuantized {
  if (r.target.kind !== 'int' || !(r.grid instanceof IntGrid)) throw new ConfigError('internal', 'linear was not quantized on an int grid', { tensor: r.name });
  return r.grid.toQuantized(r.target.scheme);
}

export interface LinearResult {
  name: string;
  target: Target;
  /** ggml targets: the bytes to store */
  ggmlBytes?: Uint8Array;
  /** int/nf4 targets: the grid with codes and parameters */
  grid?: ColumnGrid;
  gIdx?: Int32Array;
  /** copy: stored in its target type already, written as it is */
  method: 'rtn' | 'gptq' | 'copy';
  /** output SQNR on the calibration statistics (dB), when measured */
  sqnrDb?: number;
  note?: string;
}

/** The per-tensor rows of a quantize report: type, method, measured SQNR, note. */
export function reportTensors(results: LinearResult[]): { name: string; type: string; method: string; sqnrDb: number | null; note?: string }[] {
  return results.map((r) => ({ name: r.name, type: targetLabel(r.target), method: r.method, sqnrDb: r.sqnrDb ?? null, ...(r.note ? { note: r.note } : {}) }));
}

/** "name: wanted → used" for every ggml target that fell back (rows not whole blocks of the wanted type). */
export function reportFallbacks(results: LinearResult[]): string[] {
  return results.filter((r) => r.target.kind === 'ggml' && r.target.fallbackFrom).map((r) => `${r.name}: ${(r.target as { fallbackFrom: string }).fallbackFrom} → ${targetLabel(r.target)}`);
}

export interface LayerOptions {
  method: 'rtn' | 'gptq' | 'awq';
  scheme: QuantScheme;
  /** the target of each tensor (the quantize plan, or a mixed-precision choice); else targetFor(scheme) */
  targetOf?: (name: string) => Target | undefined;
  /** imatrix per canonical tensor name (from a file), else stats' E[x²] is used */
  imatrix?: (name: string) => Float32Array | undefined;
  actOrder?: boolean;
  percdamp?: number;
  blockSize?: number;
  signal?: AbortSignal;
}

export interface AwqRecord {
  prev: string;
  linears: string[];
  alpha: number;
  lossRtn: number;
  lossAwq: number;
}

/** AWQ for one layer: scale search per mapping, folding, stats rescaled to the new inputs, clipping. */
export function awqLayer(host: HostModel, layer: number, stats: SiteStats, o: LayerOptions): AwqRecord[] {
  const c = host.config;
  const p = `model.layers.${layer}.`;
  const out: AwqRecord[] = [];
  for (const m of SCALE_MAPPINGS[c.architecture]) {
    const site: Site = LINEAR_SITE[m.linears[0]];
    const st = stats[site];
    const K = st.k;
    const prevW = host.tensors.get(`${p}${m.prev}.weight`)!;
    if (m.prevKind === 'linear') {
      // the previous linear's OUTPUT width must equal K (v → o needs H = Hk)
      const rows = m.prev === 'self_attn.v_proj' ? c.nKvHeads * c.headDim : c.intermediateSize;
      if (rows !== K) continue;
    }
    const names = m.linears.map((l) => `${p}${l}.weight`);
    const tgt = o.targetOf?.(names[0]) ?? targetFor(o.scheme, K);
    const fq = fakeQuantFn(tgt, Float32Array.from(st.meanSq()));
    const lins = names.map((n) => ({ name: n, w: Float64Array.from(host.tensors.get(n)!), n: host.tensors.get(n)!.length / K }));
    const gram = st.gramFull();
    const r = awqSearchScales(lins, K, st.meanAbs(), { gram }, fq);
    const s = r.scales;
    if (m.prevKind === 'norm') foldIntoNorm(prevW, s);
    else foldIntoLinearRows(prevW, K, prevW.length / K, s, host.tensors.get(`${p}${m.prev}.bias`));
    for (const l of lins) scaleInputColumns(host.tensors.get(l.name)!, l.n, K, s);
    st.rescaleInputs(s);
    // clipping (the reference skips q and k, whose errors matter through the softmax)
    const g = st.gramFull();
    const groupSize = tgt.kind === 'ggml' ? GGML_TYPES[tgt.type].blockSize : tgt.kind === 'scheme' ? K : tgt.groupSize;
    for (const l of lins) {
      if (/q_proj|k_proj/.test(l.name) || tgt.kind === 'scheme' || groupSize > K) continue;
      const w = host.tensors.get(l.name)!;
      const clipped = awqClipSearch(w, l.n, K, groupSize, g, fakeQuantFn(tgt));
      w.set(clipped.w);
    }
    out.push({ prev: m.prev, linears: m.linears, alpha: r.alpha, lossRtn: r.rtnLoss, lossAwq: Math.min(...r.losses) });
  }
  return out;
}

/** Multiply-adds a GPTQ step costs, for progress estimates (N = rows, K = columns). */
export function gptqWork(n: number, k: number): number {
  return n * k * k + n * k * 256; // feedback GEMMs + per-value grid work (≈ 256 flops each, measured order)
}

/** The stored bytes of a [N, K] tensor RTN-quantized to a ggml target (the imatrix where the type reads one). */
export function encodeGgmlTarget(type: GgmlType, w: Float32Array, n: number, k: number, imatrix?: Float32Array): Uint8Array {
  return quantizeGgml(type, w, n, k, imatrix && imatrix.length === k && GGML_TYPES[type].quantized ? imatrix : undefined);
}

/**
 * The planned tensors that are not linears of a layer (token embedding, output): RTN onto their
 * ggml targets, as llama.cpp does; the host keeps their decoded values, so that the engine runs
 * the weights the file will hold.
 */
export function quantizeOtherTensors(host: HostModel, targets: ReadonlyMap<string, Target>, imatrix?: (name: string) => Float32Array | undefined): LinearResult[] {
  const out: LinearResult[] = [];
  for (const [name, t] of targets) {
    if (/^model\.layers\.\d+\./.test(name) || t.kind !== 'ggml') continue;
    const w = host.tensors.get(name);
    if (!w) continue;
    if (t.copy) {
      out.push({ name, target: t, method: 'copy' });
      continue;
    }
    const k = name === 'model.embed_tokens.weight' || name === 'lm_head.weight' ? host.config.hiddenSize : w.length;
    const bytes = encodeGgmlTarget(t.type, w, w.length / k, k, imatrix?.(name));
    w.set(dequantizeGgml(t.type, bytes, w.length));
    out.push({ name, target: t, method: 'rtn', ggmlBytes: bytes });
  }
  return out;
}

/**
 * Large buffers a layer loop reuses from layer to layer: the statistics' Gram panels and GPTQ's
 * working buffer [K·N]. Each layer needs the same sizes; allocated afresh, the previous layer's
 * would often still await the garbage collector while the next layer's calibration runs.
 */
export interface LayerBuffers {
  stats?: SiteStats;
  work?: Float32Array;
}

/** Per-tensor progress inside a layer: `work` done (in gptqWork units) with a detail line. */
export type LayerStepFn = (work: number, detail: string) => void;

/**
 * Quantizes the seven linears of a layer; host weights are replaced by their dequantized values.
 * GPTQ runs the float32 fast path (algorithms/gptq-fast.ts) with `o.gemm` for its matrix products;
 * the factor of each input's Hessian is computed once and shared by the linears that read it.
 */
export async function quantizeLayerLinears(host: HostModel, layer: number, stats: SiteStats | null, o: LayerOptions & { gemm?: Gemm; buffers?: LayerBuffers; onStep?: LayerStepFn }): Promise<LinearResult[]> {
  const out: LinearResult[] = [];
  let factorSite: Site | null = null;
  let factor: GptqFactor | null = null;
  // one working buffer [K·N] for every linear of the layer (GPTQ's W̃ᵀ, then (W − Ŵ)ᵀ; Wᵀ for the SQNR)
  let work: Float32Array | null = o.buffers?.work ?? null;
  for (const [lin, site] of Object.entries(LINEAR_SITE)) {
    const name = `model.layers.${layer}.${lin}.weight`;
    const w = host.tensors.get(name)!;
    const st = stats?.[site];
    const K = st ? st.k : site === 'ffn_down' ? host.config.intermediateSize : site === 'attn_out' ? host.config.nHeads * host.config.headDim : host.config.hiddenSize;
    const N = w.length / K;
    const tgt = o.targetOf?.(name) ?? targetFor(o.scheme, K);
    const im = o.imatrix?.(name) ?? (st ? Float32Array.from(st.meanSq()) : undefined);
    const res: LinearResult = { name, target: tgt, method: 'rtn' };
    if (tgt.kind === 'ggml' && tgt.copy) {
      // already stored in its target type (a quantized input): written as it is, weights unchanged
      out.push({ ...res, method: 'copy' });
      continue;
    }
    const grid = gridFor(tgt, N, K, im);
    const short = `${lin} [${N}, ${K}]`;
    let wq: Float32Array;
    if (o.method === 'gptq' && st?.gram && grid) {
      if (!factor || factorSite !== site) {
        factor = null; // the previous input's factor is no longer needed
        o.onStep?.(0, `${short}: factoring H`);
        // inputs too wide for the SQNR figure need their Gram matrix no more: factor it in place (the
        // factor at the Gram's own panel width, so that no re-layout copy is made)
        const inPlace = K > SQNR_MAX_K && o.method === 'gptq';
        factor = await gptqFactor(st.gram, 2 / Math.max(1, st.nTokens), { percdamp: o.percdamp, actOrder: o.actOrder, gemm: o.gemm, signal: o.signal, what: `layer ${layer} ${site} Hessian`, inPlace, panelWidth: st.gram.nb });
        factorSite = site;
      }
      let last = 0;
      const sqnr = K <= SQNR_MAX_K;
      // ‖W·X‖² before W is overwritten; GPTQ writes Ŵ into W and hands back (W − Ŵ)ᵀ
      if (!work || work.length < N * K) {
        work = new Float32Array(maxLinearSize(host, layer));
        if (o.buffers) o.buffers.work = work;
      }
      let signal = 0;
      if (sqnr) {
        transposeInto(w, N, K, work);
        signal = await gramQuadForm(work.subarray(0, N * K), N, st.gram, o.gemm);
      }
      const r = await gptqFast(w, N, K, factor, grid, {
        blockSize: o.blockSize, gemm: o.gemm, signal: o.signal, out: w, keepErrors: sqnr, work,
        onBlock: (done, total) => {
          o.onStep?.(gptqWork(N, K) * ((done - last) / total), `${short}: columns ${done}/${total}`);
          last = done;
        },
      });
      if (sqnr) res.sqnrDb = 10 * Math.log10(signal / Math.max(1e-300, await gramQuadForm(r.errorsT!, N, st.gram, o.gemm)));
      wq = r.weights;
      res.method = 'gptq';
      res.gIdx = r.gIdx;
    } else if (tgt.kind === 'ggml') {
      if (o.method === 'gptq' && GGML_TYPES[tgt.type].quantized) res.note = `GPTQ cannot target ${tgt.type} yet; importance-weighted RTN used`;
      const ok = ggmlSupports(tgt.type).quantize;
      if (!ok) throw new ConfigError('unsupported', `ggml type ${tgt.type} cannot be quantized here yet`, { tensor: name, found: tgt.type });
      res.ggmlBytes = quantizeGgml(tgt.type, w, N, K, im && GGML_TYPES[tgt.type].quantized ? im : undefined);
      wq = dequantizeGgml(tgt.type, res.ggmlBytes, N * K);
      o.onStep?.(gptqWork(N, K), `${short}: rounded`);
    } else if (grid) {
      wq = Float32Array.from(rtnOnGrid(w, N, K, grid));
      o.onStep?.(gptqWork(N, K), `${short}: rounded`);
    } else if (tgt.kind === 'scheme') {
      if (o.method === 'gptq') throw new ConfigError('unsupported', 'GPTQ needs an int, nf4 or ggml target', { field: 'scheme', found: tgt.scheme.kind });
      wq = fakeQuant(w, [N, K], tgt.scheme);
      o.onStep?.(gptqWork(N, K), `${short}: rounded`);
    } else {
      throw new ConfigError('internal', 'no quantizer for target', { tensor: name });
    }
    if (grid && tgt.kind === 'ggml' && res.method === 'gptq') res.ggmlBytes = (grid as GgmlGrid | KQuantGrid | Iq4Grid).encode();
    if (grid && tgt.kind !== 'ggml') res.grid = grid;
    if (st?.gram && K <= SQNR_MAX_K && res.method !== 'gptq') res.sqnrDb = await outputSqnrDb(w, wq, N, K, st.gram, o.gemm);
    if (wq !== w) w.set(wq);
    out.push(res);
  }
  return out;
}

/** Elements of layer `layer`'s largest linear weight. */
function maxLinearSize(host: HostModel, layer: number): number {
  let m = 0;
  for (const lin of Object.keys(LINEAR_SITE)) m = Math.max(m, host.tensors.get(`model.layers.${layer}.${lin}.weight`)?.length ?? 0);
  return m;
}

/** Widest input whose per-tensor output SQNR is measured (two N·K²/2 GEMM passes each). */
export const SQNR_MAX_K = 2048;
