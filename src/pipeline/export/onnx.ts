// ONNX export of a prepared model (float or with real low-bit linears) as a Hugging Face-style folder
// that transformers.js and onnxruntime load:
//   config.json (+ "transformers.js_config": dtype and external-data flag), generation_config.json,
//   tokenizer.json + tokenizer_config.json, onnx/model{suffix}.onnx (+ onnx/model{suffix}.onnx_data),
//   bitscale-manifest.json.
// The suffix follows transformers.js's dtype → file mapping: '' (fp32), '_fp16', '_q4' (4-bit
// MatMulNBits), '_q4f16' (q4 linears, other weights float16), '_quantized' (q8), '_q2', '_q2f16'.
// Variants live side by side, as in optimum/transformers.js repositories: exporting into a folder
// that already holds variants of the same model (same config.json) adds or replaces only this
// variant's files, and the one manifest lists every variant. The folder is staged (formats/io/output.ts:
// checked before any work, locked; a folder that gets a variant added starts as a hard-linked copy of
// the old one) and swapped into place only after the ONNX file was opened in onnxruntime and its
// logits (prompt pass, then one cached step) matched the engine's own evaluation of the same weights
// within ONNX_EXPORT_LOGIT_TOLERANCE; otherwise nothing is left behind.
// Legend: T = check tokens, V = vocab.

import { mkdir, open, readdir, readFile, rm, stat } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import { ConfigError, IoError, NumericError } from '../../core/errors.js';
import { checkAborted, ProgressTracker, type ProgressFn } from '../../core/progress.js';
import type { Tensor } from '../../core/tensor.js';
import { buildHfOnnx, dqFits, F16_STORAGE_MIN_ELEMENTS, hfPastNames, nbitsFits, type HfOnnxLinear } from '../../engine/export-hf.js';
import { roundToF16 } from '../../numerics/float16.js';
import type { HostModel } from '../../engine/host.js';
import type { AbsmaxActSpec } from '../../engine/actquant.js';
import { dequantizeNBits, type LowBitWeight } from '../../engine/lowbit-linear.js';
import { LlamaEngine } from '../../engine/model.js';
import { EngineSession } from '../../engine/session.js';
import { generationConfigJson } from '../../formats/hf/json.js';
import { OutputTxn, replaceFile, sha256File } from '../../formats/io/index.js';
import { ONNX_DTYPE_SUFFIX, type OnnxDtype } from '../../formats/onnx/dtypes.js';
import { HfTokenizer } from '../../formats/tokenizer/hf.js';
import type { Tokenizer } from '../../formats/tokenizer/types.js';
import { bpeTokenizerFiles, spmTokenizerFiles } from '../../formats/tokenizer/vocab.js';
import { IntGrid } from '../../algorithms/grid.js';
import { hfConfigJson } from '../../model/hf-config.js';
import type { IntScheme, QuantScheme } from '../../quant/scheme.js';
import type { IntQuantized } from '../../quant/types.js';
import { toUnsignedCodes } from '../../quant/pack.js';

/**
 * Max |logit difference| allowed between onnxruntime on the exported file and the engine on the same
 * weights, scaled by max(1, max |logit|). Both run the same fp32 ops (MatMulNBits at accuracy_level 0);
 * only accumulation order differs (measured ≤ 1e-5 relative on the test models).
 */
export const ONNX_EXPORT_LOGIT_TOLERANCE = 1e-4;
/** above this many bytes of weights the initializers go to an external-data file */
export const ONNX_EXTERNAL_THRESHOLD = 64 << 20;
const TOOL_VERSION = '0.1.0';

export interface ExportOnnxOptions {
  /** paths the export must not overwrite (the input model) */
  inputs?: string[];
  /** replace this variant's files in a folder that has them, or a folder that is not this model's ONNX folder */
  overwrite?: boolean;
  /** 'f16': float weights stored as float16 (fp16 / q4f16 / q2f16 variants; see export-hf.ts floatStorage) */
  floatStorage?: 'f32' | 'f16';
  /** 'auto' (default): external data above ONNX_EXTERNAL_THRESHOLD bytes of weights */
  externalData?: 'auto' | 'always' | 'never';
  /** tokens for the logit check (default: a fixed pattern of 8 ids) */
  checkTokens?: number[];
  /** fake-quantize every decoder linear's input in the graph (BitNet's 8-bit per-token absmax) */
  activations?: AbsmaxActSpec | null;
  /** manifest fields: what produced the weights */
  manifest?: { command?: string; scheme?: string; seed?: number; inputSha256?: Record<string, string>; settings?: Record<string, unknown> };
  onProgress?: ProgressFn;
  signal?: AbortSignal;
}

export interface ExportOnnxResult {
  out: string;
  /** path of the ONNX file inside `out` */
  modelFile: string;
  files: string[];
  /** transformers.js dtype the file name encodes */
  dtype: OnnxDtype;
  /** every variant the folder holds after this export */
  variants: OnnxDtype[];
  bytes: { model: number; externalData: number };
  maxAbsLogitDiff: number;
  tolerance: number;
  /** seconds to create the onnxruntime session on the written file */
  loadSeconds: number;
  linears: HfOnnxLinear[];
}

export { ONNX_DTYPE_SUFFIX, type OnnxDtype } from '../../formats/onnx/dtypes.js';

function dtypeOf(host: HostModel): 'fp32' | 'q8' | 'q4' | 'q2' {
  const bits = new Set<number>();
  // only weights that become MatMulNBits count; the others are float initializers
  for (const { q } of host.lowBit.values()) if (nbitsFits(q)) bits.add(q.scheme.bits);
  if (!bits.size) return 'fp32';
  const b = Math.min(...bits);
  return b <= 2 ? 'q2' : b <= 4 ? 'q4' : 'q8';
}

function tokenizerFiles(tok: Tokenizer | null, maxLen: number): { tokenizer: Record<string, unknown>; config: Record<string, unknown> } | null {
  if (!tok) return null;
  if (tok instanceof HfTokenizer) return { tokenizer: tok.json, config: tok.config };
  if (tok.exportVocab) {
    const v = tok.exportVocab();
    return v.model === 'llama' ? spmTokenizerFiles(v, maxLen) : bpeTokenizerFiles(v, maxLen);
  }
  return null;
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(
    () => true,
    () => false,
  );
}

/** sha256 of each input file (of each file directly inside an input directory) */
async function hashInputs(paths: readonly string[]): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const p of paths) {
    const st = await stat(p).catch(() => null);
    if (st?.isFile()) out[p] = await sha256File(p);
    else if (st?.isDirectory()) {
      for (const f of (await readdir(p)).sort()) {
        const fp = join(p, f);
        if ((await stat(fp)).isFile()) out[fp] = await sha256File(fp);
      }
    }
  }
  return out;
}

function i64(xs: readonly number[], shape: number[]): Tensor<'I64'> {
  return { dtype: 'I64', shape, data: BigInt64Array.from(xs.map(BigInt)) };
}

/**
 * Runs the exported file: a prompt pass over tokens[0 … T−2] with an empty past, then one cached
 * step for tokens[T−1]; returns max |Δ| against the engine's full-sequence logits [T, V].
 */
async function checkAgainstEngine(file: string, host: HostModel, tokens: number[], act: AbsmaxActSpec | null): Promise<{ maxAbs: number; scale: number; loadSeconds: number }> {
  const c = host.config;
  const T = tokens.length;
  const V = c.vocabSize;
  // the reference runs every linear on its dequantized float weight, so the check also covers the
  // MatMulNBits packing (codes, scales, zero points) and not only the graph structure
  const engine = LlamaEngine.fromHost({ config: c, tensors: host.tensors, lowBit: new Map() }, { session: { threads: 2 }, activations: act ? (site) => (site === 'lm_head' ? null : act) : null });
  const t0 = performance.now();
  const s = await EngineSession.fromOnnx(file, { threads: 2 });
  const loadSeconds = (performance.now() - t0) / 1000;
  try {
    const ref = await engine.forward(tokens);
    const empty = { dtype: 'F32' as const, shape: [1, c.nKvHeads, 0, c.headDim], data: new Float32Array(0) };
    const feeds: Record<string, Tensor> = {
      input_ids: i64(tokens.slice(0, T - 1), [1, T - 1]),
      attention_mask: i64(new Array(T - 1).fill(1), [1, T - 1]),
      position_ids: i64(Array.from({ length: T - 1 }, (_, t) => t), [1, T - 1]),
    };
    for (let i = 0; i < c.nLayers; i++) {
      const n = hfPastNames(i);
      feeds[n.pastK] = empty;
      feeds[n.pastV] = empty;
    }
    const r1 = await s.run(feeds);
    const step: Record<string, Tensor> = {
      input_ids: i64([tokens[T - 1]], [1, 1]),
      attention_mask: i64(new Array(T).fill(1), [1, T]),
      position_ids: i64([T - 1], [1, 1]),
    };
    for (let i = 0; i < c.nLayers; i++) {
      const n = hfPastNames(i);
      step[n.pastK] = r1[n.presentK];
      step[n.pastV] = r1[n.presentV];
    }
    const r2 = await s.run(step);
    const got = new Float32Array(T * V);
    got.set(r1.logits.data as Float32Array, 0);
    got.set(r2.logits.data as Float32Array, (T - 1) * V);
    let maxAbs = 0;
    let scale = 1;
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(got[i] - ref[i]);
      maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
      scale = Math.max(scale, Math.abs(ref[i]));
    }
    return { maxAbs, scale, loadSeconds };
  } finally {
    await s.release();
    await engine.close();
  }
}

/**
 * Attaches integer codes from the quantize pipeline's grids to `host` so that 2/4/8-bit group grids
 * become MatMulNBits and other int grids int8-container DequantizeLinear. The grids' codes (quant's:
 * signed for symmetric schemes) are stored unsigned with a zero point per group (quant's
 * toUnsignedCodes), symmetric and asymmetric alike (packed uint8 zero points); act-order
 * layers (a non-trivial g_idx) stay float, as MatMulNBits with g_idx and packed zero points is wrong in
 * onnxruntime (RUNTIME-NOTES).
 */
export function hostWithGridCodes(host: HostModel, results: readonly { name: string; grid?: unknown; gIdx?: Int32Array }[], scheme: QuantScheme): HostModel {
  const lowBit = new Map(host.lowBit);
  if (scheme.kind !== 'int') return { ...host, lowBit };
  for (const r of results) {
    const g = r.grid;
    if (!(g instanceof IntGrid) || g.k % g.groupSize !== 0) continue;
    if (r.gIdx && r.gIdx.some((v, j) => v !== Math.floor(j / g.groupSize))) continue;
    const own = g.toQuantized(scheme);
    const u = toUnsignedCodes(own);
    const q: IntQuantized = { ...own, scheme: { ...own.scheme, symmetric: false }, codes: u.codes, zeros: u.zeros };
    if (nbitsFits(q) || dqFits(q)) lowBit.set(r.name, { q, mode: 'nbits' });
  }
  return { ...host, lowBit };
}

/** A uniform grid with one step per row: x̂ = step·(u − zeroPoint), u ∈ 0 … 2^bits − 1. */
export interface RowGrid {
  /** MatMulNBits width */
  bits: 2 | 4 | 8;
  /** default 2^(bits−1): MatMulNBits's implicit zero point (no input); another integer → packed uint8
   * zero points; a non-integer (1.5 for SEQ 2-bit) → float zero points */
  zeroPoint?: number;
}

/**
 * Attaches MatMulNBits codes for weights that lie exactly on a per-row grid (QAT's grids: ternary and
 * binary u = level + 2 with step α/1.5, α or γ; SEQ 2-bit step α/2 with zero point 1.5; LSQ 3/4-bit
 * step α on 4 bits). `steps` holds each row's step [N]; the block is the largest power of two ≤ 128
 * dividing K, every block of a row repeats the row's step. The stored step is refitted from the row's
 * largest level when the given one misses by a few ulps (the codec rounds α on its way to the scale).
 * A weight is converted only when dequantizeNBits reproduces every element bit for bit; anything else
 * stays a float initializer (exportOnnx's `linears` says which).
 */
export function hostWithRowGridCodes(host: HostModel, steps: ReadonlyMap<string, Float32Array>, grid: RowGrid): HostModel {
  const lowBit = new Map(host.lowBit);
  const bits = grid.bits;
  const mid = 1 << (bits - 1);
  const z = grid.zeroPoint ?? mid;
  const umax = (1 << bits) - 1;
  for (const [name, step] of steps) {
    const w = host.tensors.get(name);
    const N = step.length;
    if (!w || N === 0 || w.length % N !== 0) continue;
    const K = w.length / N;
    let G = 128;
    while (G >= 16 && K % G !== 0) G /= 2;
    if (G < 16) continue;
    const Kb = K / G;
    const u = new Uint8Array(N * K);
    const scales = new Float32Array(N * Kb);
    let exact = true;
    for (let n = 0; n < N && exact; n++) {
      const a = step[n];
      const ok = Number.isFinite(a) && a !== 0;
      let big = 0;
      let at = -1;
      for (let k = 0; k < K && exact; k++) {
        const v = ok ? Math.round(w[n * K + k] / a + z) : Math.round(z);
        exact = v >= 0 && v <= umax;
        u[n * K + k] = v;
        if (Math.abs(v - z) > Math.abs(big)) [big, at] = [v - z, n * K + k];
      }
      const fits = (sc: number) => {
        for (let k = 0; k < K; k++) if (Math.fround((u[n * K + k] - z) * sc) !== w[n * K + k]) return false;
        return true;
      };
      let sc = Math.fround(a);
      if (exact && !fits(sc) && big) sc = Math.fround(w[at] / big);
      exact &&= fits(sc);
      scales.fill(sc, n * Kb, (n + 1) * Kb);
    }
    if (!exact) continue;
    const granularity = { kind: 'group' as const, size: G };
    const base = { kind: 'int' as const, shape: [N, K], scales, scaleShape: [N, Kb] };
    let entry: LowBitWeight;
    if (z === mid) {
      // signed codes: MatMulNBits's default zero point 2^(bits−1) undoes the bias, no zero-point input
      const scheme = { kind: 'int', bits, symmetric: true, granularity, scaleDtype: 'F32', rounding: 'half_even' } as IntScheme;
      entry = { q: { ...base, scheme, codes: Int8Array.from(u, (v) => v - mid) }, mode: 'nbits' };
    } else {
      const scheme = { kind: 'int', bits, symmetric: false, granularity, scaleDtype: 'F32', rounding: 'half_even' } as IntScheme;
      entry = Number.isInteger(z)
        ? { q: { ...base, scheme, codes: u, zeros: new Uint8Array(N * Kb).fill(z) }, mode: 'nbits' }
        : { q: { ...base, scheme, codes: u }, mode: 'nbits', floatZeros: new Float32Array(N * Kb).fill(z) };
    }
    // the check above is this reference's arithmetic; keep the two tied
    const back = dequantizeNBits(entry.q, entry.floatZeros);
    if (back.every((v, i) => v === w[i])) lowBit.set(name, entry);
  }
  return { ...host, lowBit };
}

/**
 * Attaches 4-bit codes for weights that are exactly a per-row scale times an integer in [−8, 7]
 * (QAT's LSQ 3- and 4-bit weights: W = s_row · level, s_row ≈ α_row), so they run as MatMulNBits with
 * the row scale repeated over blocks; see hostWithRowGridCodes. Inexact weights stay float.
 */
export function hostWithRowScaleCodes(host: HostModel, rowScales: ReadonlyMap<string, Float32Array>): HostModel {
  return hostWithRowGridCodes(host, rowScales, { bits: 4 });
}

/** The variant a host exports as: its low-bit width, with float16 float weights when asked. */
export function onnxDtypeOf(host: HostModel, floatStorage: 'f32' | 'f16' = 'f32'): OnnxDtype {
  const b = dtypeOf(host);
  if (floatStorage !== 'f16') return b;
  if (b === 'q8') throw new ConfigError('unsupported', 'transformers.js has no q8 file with float16 weights', { field: 'dtype', expected: 'fp16, q4f16 or q2f16 (float16 with 4/2-bit linears)', found: 'q8 + f16' });
  return b === 'fp32' ? 'fp16' : b === 'q4' ? 'q4f16' : 'q2f16';
}

/**
 * The variants a quantize run with a `bits`-wide int scheme adds to a folder (before any work, so an
 * existing variant is refused up front). The export decides from the weights that fit MatMulNBits; a
 * model none of whose linears fit writes fp32 instead, and the export's own check still stands.
 */
export function onnxVariantsOfBits(bits: number, storages: readonly ('f32' | 'f16')[]): OnnxDtype[] {
  const b: OnnxDtype = bits <= 2 ? 'q2' : bits <= 4 ? 'q4' : 'q8';
  return storages.map((st) => (st === 'f16' ? (b === 'q4' ? 'q4f16' : b === 'q2' ? 'q2f16' : b) : b));
}

/** Refuses, naming the file, when the ONNX folder `out` already holds one of `variants` (--force replaces them). */
export async function refuseExistingVariants(out: string, variants: readonly OnnxDtype[]): Promise<void> {
  for (const d of variants) {
    const file = join(resolve(out), 'onnx', `model${ONNX_DTYPE_SUFFIX[d]}.onnx`);
    if (await exists(file)) throw new IoError('exists', `the folder already holds the ${d} variant`, { file, hint: 'pass --force to replace this variant (the other variants are kept)' });
  }
}

/** What an existing folder holds: its config.json (without transformers.js_config) and manifest, or null when it is no bitscale ONNX folder. */
async function readOnnxFolder(out: string): Promise<{ config: Record<string, unknown>; manifest: Record<string, unknown> } | null> {
  try {
    const config = JSON.parse(await readFile(join(out, 'config.json'), 'utf8')) as Record<string, unknown>;
    const manifest = JSON.parse(await readFile(join(out, 'bitscale-manifest.json'), 'utf8')) as Record<string, unknown>;
    if ((manifest.settings as { format?: string } | undefined)?.format !== 'onnx' || !(await exists(join(out, 'onnx')))) return null;
    return { config, manifest };
  } catch {
    return null;
  }
}

const withoutTjs = (cfg: Record<string, unknown>) => JSON.stringify({ ...cfg, 'transformers.js_config': undefined });

/** Whether `out` is a bitscale ONNX folder of the model with this config (an export adds its variant there). */
export async function isOnnxFolderOf(out: string, config: HostModel['config']): Promise<boolean> {
  const prev = await readOnnxFolder(resolve(out));
  return !!prev && withoutTjs(prev.config) === withoutTjs(hfConfigJson({ ...config, ropeLayout: 'half' }) as Record<string, unknown>);
}

/** Writes `host` (and its tokenizer) as one variant of an ONNX model folder at `outDir`; see the file comment. */
export async function exportOnnx(host: HostModel, tokenizer: Tokenizer | null, outDir: string, opts: ExportOnnxOptions = {}): Promise<ExportOnnxResult> {
  const c = host.config;
  const out = resolve(outDir);
  const dtype = onnxDtypeOf(host, opts.floatStorage);
  const modelName = `model${ONNX_DTYPE_SUFFIX[dtype]}.onnx`;
  const baseCfg = hfConfigJson({ ...c, ropeLayout: 'half' }) as Record<string, unknown>;
  const prev = await readOnnxFolder(out);
  // an ONNX folder of the same model gets this variant added; anything else at `out` is replaced only with overwrite
  const adding = !!prev && withoutTjs(prev.config) === withoutTjs(baseCfg);
  if (prev && !adding && !opts.overwrite) {
    throw new IoError('exists', 'output is an ONNX folder of another model', { file: out, expected: 'a new folder, or an ONNX folder of the same model (variants are added to it)', found: 'config.json differs', hint: 'pass --force to replace it' });
  }
  if (adding && !opts.overwrite) await refuseExistingVariants(out, [dtype]);
  // checked before any work (inputs protected, --force only over a folder bitscale wrote), then staged
  const txn = await OutputTxn.begin(outDir, { kind: 'dir', force: opts.overwrite, update: adding, inputs: opts.inputs, command: opts.manifest?.command ?? 'export-onnx' });
  try {
    const r = await writeOnnxFolder(host, tokenizer, out, txn.staged, opts, { dtype, modelName, baseCfg, prev: adding ? prev : null });
    await txn.commit();
    return r;
  } catch (e) {
    await txn.abort();
    throw e;
  }
}

interface FolderPlan {
  dtype: OnnxDtype;
  modelName: string;
  baseCfg: Record<string, unknown>;
  /** the folder this variant is added to (its files are already in `tmp`, as hard links), or null for a new folder */
  prev: { config: Record<string, unknown>; manifest: Record<string, unknown> } | null;
}

/** Writes the folder's files at `tmp` (the staging copy of `out`) and checks the ONNX file there. */
async function writeOnnxFolder(host: HostModel, tokenizer: Tokenizer | null, out: string, tmp: string, opts: ExportOnnxOptions, plan: FolderPlan): Promise<ExportOnnxResult> {
  const c = host.config;
  const { dtype, modelName, baseCfg, prev } = plan;
  const tokens = opts.checkTokens ?? Array.from({ length: 8 }, (_, i) => (i * 7 + 1) % c.vocabSize);
  if (tokens.length < 2) throw new ConfigError('bad_option', 'the logit check needs at least 2 tokens', { field: 'checkTokens', found: tokens.length });
  checkAborted(opts.signal);

  let weightBytes = 0;
  for (const t of host.tensors.values()) weightBytes += t.byteLength;
  const mode = opts.externalData ?? 'auto';
  const useExternal = mode === 'always' || (mode === 'auto' && weightBytes > ONNX_EXTERNAL_THRESHOLD);
  const track = new ProgressTracker('export-onnx', 3, opts.onProgress, 'stage');
  const built = buildHfOnnx(host, {
    external: useExternal ? { location: `${modelName}_data` } : null,
    // the q/k row layout the graph rotates with (config.json always says rotate-half): the ONNX reader needs it
    metadata: { producer: 'bitscale', scheme: opts.manifest?.scheme ?? 'float', dtype, rope_layout: c.ropeLayout },
    activations: opts.activations ?? null,
    floatStorage: opts.floatStorage ?? 'f32',
  });
  checkAborted(opts.signal);
  track.tick('graph built');

  await mkdir(join(tmp, 'onnx'), { recursive: true });
  const prevVariants = (prev ? (prev.manifest.variants as Record<string, VariantRecord> | undefined) : undefined) ?? (prev ? legacyVariant(prev.manifest) : {});
  // this variant's old files (carried over as hard links) go; the new ones are written fresh
  for (const f of [prevVariants[dtype]?.file, prevVariants[dtype]?.externalData, `onnx/${modelName}`, `onnx/${modelName}_data`]) if (f) await rm(join(tmp, f), { force: true });
  const variantFiles = [`onnx/${modelName}`];
  await replaceFile(join(tmp, 'onnx', modelName), built.model);
  if (built.external) {
    const fh = await open(join(tmp, 'onnx', built.external.location), 'w');
    try {
      for (const p of built.external.parts) await fh.write(p);
    } finally {
      await fh.close();
    }
    variantFiles.push(`onnx/${built.external.location}`);
  }
  // the reference: the same weights as the file holds them (float16-stored ones rounded)
  const ref = opts.floatStorage === 'f16' ? f16Reference(host, built.linears) : host;
  const chk = await checkAgainstEngine(join(tmp, 'onnx', modelName), ref, tokens, opts.activations ?? null);
  track.tick('onnxruntime logits checked');
  const tolerance = ONNX_EXPORT_LOGIT_TOLERANCE * chk.scale;
  if (!(chk.maxAbs <= tolerance)) {
    throw new NumericError('mismatch', 'exported ONNX logits differ from the engine', { file: join(out, 'onnx', modelName), expected: `max |Δ| <= ${tolerance}`, found: chk.maxAbs });
  }
  checkAborted(opts.signal);

  const nbits = built.linears.filter((l) => l.op === 'MatMulNBits').length;
  const dq = built.linears.filter((l) => l.op === 'DequantizeLinear').length;
  const bytes = { model: built.model.byteLength, externalData: built.external?.byteLength ?? 0 };
  const input = { paths: opts.inputs ?? [], sha256: opts.manifest?.inputSha256 ?? (await hashInputs(opts.inputs ?? [])) };
  const variant: VariantRecord = {
    file: `onnx/${modelName}`,
    externalData: built.external ? `onnx/${built.external.location}` : null,
    command: opts.manifest?.command ?? 'export-onnx',
    input,
    settings: { format: 'onnx', dtype, scheme: opts.manifest?.scheme ?? 'float', seed: opts.manifest?.seed ?? null, floatStorage: opts.floatStorage ?? 'f32', ...(opts.activations ? { activations: opts.activations } : {}), ...(opts.manifest?.settings ?? {}) },
    bytes,
    linears: { matMulNBits: nbits, dequantizeLinear: dq, float: built.linears.length - nbits - dq, detail: built.linears },
    check: { tokens, maxAbsLogitDiff: chk.maxAbs, tolerance, loadSeconds: chk.loadSeconds, reference: 'bitscale engine (full-sequence graph) vs onnxruntime on the file: prompt pass + one cached step' },
  };
  const variants: Record<string, VariantRecord> = { ...prevVariants, [dtype]: variant };
  // one chunk of external data for the variants that have it (transformers.js reads a per-file map)
  const ext: Record<string, number> = {};
  for (const v of Object.values(variants)) if (v.externalData) ext[basename(v.file)] = 1;
  const prevTjs = (prev ? (prev.config['transformers.js_config'] as { dtype?: string } | undefined) : undefined) ?? {};
  const cfg = { ...baseCfg, 'transformers.js_config': { dtype: prevTjs.dtype ?? dtype, ...(Object.keys(ext).length ? { use_external_data_format: ext } : {}) } };
  const gen = generationConfigJson({ bosTokenId: c.bosTokenId, eosTokenIds: c.eosTokenId === null ? [] : [c.eosTokenId] });
  const tf = tokenizerFiles(tokenizer, c.maxSeqLen);
  const hasTokenizer = !!tf || (!!prev && (await exists(join(tmp, 'tokenizer.json'))));
  const folderFiles = ['config.json', 'generation_config.json', ...(hasTokenizer ? ['tokenizer.json', 'tokenizer_config.json'] : []), ...Object.values(variants).flatMap((v) => [v.file, ...(v.externalData ? [v.externalData] : [])])].sort();
  const manifest = {
    tool: 'bitscale',
    version: TOOL_VERSION,
    // the latest variant's fields, then every variant
    command: variant.command,
    input,
    settings: variant.settings,
    output: { files: folderFiles, modelFile: variant.file, bytes },
    linears: variant.linears,
    check: variant.check,
    variants,
  };
  const result: ExportOnnxResult = {
    out,
    modelFile: join(out, 'onnx', modelName),
    files: [...folderFiles.map((f) => join(out, f)), join(out, 'bitscale-manifest.json')],
    dtype,
    variants: Object.keys(variants).sort() as OnnxDtype[],
    bytes,
    maxAbsLogitDiff: chk.maxAbs,
    tolerance,
    loadSeconds: chk.loadSeconds,
    linears: built.linears,
  };
  await replaceFile(join(tmp, 'config.json'), JSON.stringify(cfg, null, 2) + '\n');
  // a folder a variant is added to keeps its generation config and tokenizer
  if (!prev || !(await exists(join(tmp, 'generation_config.json')))) await replaceFile(join(tmp, 'generation_config.json'), JSON.stringify(gen, null, 2) + '\n');
  if (tf && !(prev && (await exists(join(tmp, 'tokenizer.json'))))) {
    await replaceFile(join(tmp, 'tokenizer.json'), JSON.stringify(tf.tokenizer));
    await replaceFile(join(tmp, 'tokenizer_config.json'), JSON.stringify(tf.config, null, 2) + '\n');
  }
  await replaceFile(join(tmp, 'bitscale-manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
  track.tick('files written');
  return result;
}


/** One variant's entry in the folder's manifest. */
interface VariantRecord {
  file: string;
  externalData: string | null;
  command: string;
  input: { paths: string[]; sha256: Record<string, string> };
  settings: Record<string, unknown>;
  bytes: { model: number; externalData: number };
  linears: Record<string, unknown>;
  check: Record<string, unknown>;
}

/** A manifest written before variants were listed describes its one variant at the top level. */
function legacyVariant(m: Record<string, unknown>): Record<string, VariantRecord> {
  const s = m.settings as { dtype?: string } | undefined;
  const o = m.output as { modelFile?: string; bytes?: VariantRecord['bytes'] } | undefined;
  if (!s?.dtype || !o?.modelFile) return {};
  return { [s.dtype]: { file: o.modelFile, externalData: null, command: String(m.command ?? ''), input: m.input as VariantRecord['input'], settings: s, bytes: o.bytes ?? { model: 0, externalData: 0 }, linears: (m.linears ?? {}) as Record<string, unknown>, check: (m.check ?? {}) as Record<string, unknown> } };
}

/** The host as an f16-storage file holds it: float weights of at least F16_STORAGE_MIN_ELEMENTS rounded to float16 (the linears with codes stay). */
function f16Reference(host: HostModel, linears: HfOnnxLinear[]): HostModel {
  const coded = new Set(linears.filter((l) => l.op !== 'float').map((l) => l.name));
  const tensors = new Map<string, Float32Array>();
  for (const [n, t] of host.tensors) tensors.set(n, coded.has(n) || t.length < F16_STORAGE_MIN_ELEMENTS ? t : Float32Array.from(t, roundToF16));
  return { ...host, tensors };
}
