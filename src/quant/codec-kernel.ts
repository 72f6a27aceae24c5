// The WebAssembly row codecs (wasm/ggml/codec.ts, built into the ggml kernel module) behind the
// streamed int and fixed-book schemes (quant/codec-rows.ts): the rows go through the module's
// memory a block at a time, are decoded from F16/BF16 there, their groups' least and greatest
// values found there, each group's scale and zero point chosen here by the reference's own
// functions (affine.ts intParams, codebook.ts codebookScale), and the codes (unsigned, as packed
// containers store them) and optionally ŵ computed there. quantizeInt / quantizeCodebook followed by
// toUnsignedCodes / dequantize stay the reference (test/quant/codec-kernel.test.ts: byte-identical).
// setGgmlKernelsEnabled(false) turns this path off too.
// Legend: R rows of the job, K values per row, G values per group (K for one scale per row),
// nG = R·K/G groups, L levels of a code book, b = bits.

import type { KernelInput } from './ggml/wasm/kernels.js';
import { ggmlKernelExports, ggmlKernelsEnabled } from './ggml/wasm/kernels.js';
import { intParams, intRange } from './affine.js';
import { codebookScale, log2Levels, NF4_LEVELS } from './codebook.js';
import type { QuantScheme } from './scheme.js';

interface CodecExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  firstNonFinite(x: number, n: number): number;
  convertF16Checked(src: number, dst: number, n: number): number;
  convertBf16(src: number, dst: number, n: number): void;
  codecGroupMinMax(x: number, nG: number, G: number, mins: number, maxs: number): void;
  codecIntRows(x: number, nG: number, G: number, scales: number, zeros: number, qmin: number, qmax: number, away: boolean, off: number, codes: number, values: number): void;
  codecBookRows(x: number, nG: number, G: number, scales: number, book: number, L: number, codes: number, values: number): void;
}

/** Values per block of rows (1 MiB of f32). */
const BLOCK_VALUES = 1 << 18;
const align16 = (n: number): number => (n + 15) & ~15;

/** One block's results, views valid until the next block: rows [p0, p0 + n) of the job. */
export interface CodecKernelBlock {
  /** unsigned codes [n, K] */
  codes: Uint8Array;
  /** [n, K/G] */
  scales: Float32Array;
  /** unsigned zero points [n, K/G] (2^(b−1) for symmetric int grids; 0 for code books) */
  zeros: Uint8Array;
  /** ŵ [n, K] when asked for */
  values: Float32Array | null;
}

export interface CodecKernelJob {
  scheme: QuantScheme;
  input: KernelInput;
  R: number;
  K: number;
  /** puts the input bytes of the job's rows [p0, p0 + n) (in output order) into `into` */
  fill: (into: Uint8Array, p0: number, n: number) => void;
  /** whether ŵ is wanted */
  values: boolean;
  emit: (p0: number, n: number, block: CodecKernelBlock) => void;
}

/** The group size the kernels quantize `scheme` with on [·, K] rows, or null where they do not take it. */
export function codecKernelGroup(scheme: QuantScheme, K: number): number | null {
  if (scheme.kind !== 'int' && !(scheme.kind === 'codebook' && scheme.book !== 'kmeans')) return null;
  const g = scheme.granularity;
  const G = g.kind === 'group' ? g.size : g.kind === 'channel' && g.axis === 0 ? K : 0;
  if (!(G > 0) || K % G !== 0) return null;
  if (!ggmlKernelsEnabled()) return null;
  return ggmlKernelExports() ? G : null;
}

/**
 * Runs the job's rows through the kernels (the caller checked codecKernelGroup). Returns false,
 * having emitted only the blocks before, where an input value is NaN/±Inf or a scale or ŵ is not
 * finite: the caller then runs the reference, which throws the error with its index.
 */
export function runCodecKernel(job: CodecKernelJob): boolean {
  const { scheme, input, R, K } = job;
  const G = codecKernelGroup(scheme, K)!;
  const e = ggmlKernelExports() as unknown as CodecExports;
  const el = input === 'F32' ? 4 : 2;
  const rowsPer = Math.max(1, Math.floor(BLOCK_VALUES / K));
  const nv = rowsPer * K;
  const gPer = nv / G;
  const book = scheme.kind === 'codebook' ? (scheme.book === 'nf4' ? NF4_LEVELS : log2Levels(scheme.bits)) : null;
  // memory: input bytes, f32 rows, min/max f64, scales f32, zeros u8, book, codes, ŵ
  const rawPtr = align16(e.heapBase());
  const xPtr = input === 'F32' ? rawPtr : align16(rawPtr + nv * el);
  const minPtr = align16(xPtr + nv * 4);
  const maxPtr = minPtr + gPer * 8;
  const sPtr = align16(maxPtr + gPer * 8);
  const zPtr = align16(sPtr + gPer * 4);
  const bookPtr = align16(zPtr + gPer);
  const cPtr = align16(bookPtr + (book ? book.length * 4 : 0));
  const vPtr = align16(cPtr + nv);
  const need = vPtr + (job.values ? nv * 4 : 0);
  if (need > e.memory.buffer.byteLength) e.memory.grow(Math.ceil((need - e.memory.buffer.byteLength) / 65536));
  const buf = e.memory.buffer;
  if (book) new Float32Array(buf, bookPtr, book.length).set(book);
  const mins = new Float64Array(buf, minPtr, gPer);
  const maxs = new Float64Array(buf, maxPtr, gPer);
  const scales = new Float32Array(buf, sPtr, gPer);
  const zeros = new Uint8Array(buf, zPtr, gPer);
  const zerosU = new Uint8Array(gPer);
  const int = scheme.kind === 'int' ? scheme : null;
  const { qmin, qmax } = int ? intRange(int) : { qmin: 0, qmax: 0 };
  const off = int?.symmetric ? 2 ** (int.bits - 1) : 0;
  for (let p0 = 0; p0 < R; p0 += rowsPer) {
    const n = Math.min(rowsPer, R - p0);
    const m = n * K;
    const nG = m / G;
    job.fill(new Uint8Array(buf, rawPtr, m * el), p0, n);
    if (input === 'F16') {
      if (e.convertF16Checked(rawPtr, xPtr, m) >= 0) return false;
    } else {
      if (input === 'BF16') e.convertBf16(rawPtr, xPtr, m);
      if (e.firstNonFinite(xPtr, m) >= 0) return false;
    }
    e.codecGroupMinMax(xPtr, nG, G, minPtr, maxPtr);
    if (int) {
      for (let g = 0; g < nG; g++) {
        const p = intParams(mins[g], maxs[g], int);
        if (!Number.isFinite(p.scale)) return false;
        scales[g] = p.scale;
        zeros[g] = p.zero;
        zerosU[g] = p.zero + off;
      }
      e.codecIntRows(xPtr, nG, G, sPtr, zPtr, qmin, qmax, int.rounding === 'half_away', off, cPtr, job.values ? vPtr : 0);
    } else {
      const dt = scheme.kind === 'codebook' ? scheme.scaleDtype : null;
      for (let g = 0; g < nG; g++) {
        const s = codebookScale(Math.max(-mins[g], maxs[g]), dt);
        if (!Number.isFinite(s)) return false;
        scales[g] = s;
      }
      e.codecBookRows(xPtr, nG, G, sPtr, bookPtr, book!.length, cPtr, job.values ? vPtr : 0);
    }
    const values = job.values ? new Float32Array(buf, vPtr, m) : null;
    if (values && e.firstNonFinite(vPtr, m) >= 0) return false;
    job.emit(p0, n, { codes: new Uint8Array(buf, cPtr, m), scales: scales.subarray(0, nG), zeros: zerosU.subarray(0, nG), values });
  }
  return true;
}
