// The WebAssembly round-to-nearest of the column grids (wasm/ggml/rtn-grid.ts, built into the ggml
// kernel module): IntGrid (int2–int8, per group or channel, symmetric or not) and CodebookGrid (NF4
// and other shared books) in src/algorithms/grid.ts, whose quantizeColumn stays the reference.
// Rows go through the module's memory a block at a time, in row order (the column loop reads
// [N, K] weights one cache line per row). setGgmlKernelsEnabled(false) turns this path off too.
// Legend: N rows, K columns, G group size, ng groups per row.

import { ggmlKernelExports, ggmlKernelsEnabled } from './ggml/wasm/kernels.js';

interface RtnExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  rtnIntRows(w: number, R: number, K: number, G: number, ng: number, scales: number, zeros: number, qmin: number, qmax: number, away: boolean, codes: number, out: number): void;
  rtnBookRows(w: number, R: number, K: number, G: number, ng: number, scales: number, book: number, L: number, codes: number, out: number): void;
}

/** Values per block of rows (1 MiB of float64 in, as much out). */
const BLOCK_VALUES = 1 << 17;
const align16 = (n: number): number => (n + 15) & ~15;

export interface GridRtnInput {
  /** [N, K] weights */
  w: Float64Array;
  n: number;
  k: number;
  groupSize: number;
  /** [N, ng] */
  scales: Float64Array;
  /** [N, K] codes (written) */
  codes: Int8Array | Uint8Array;
  /** [N, K] ŵ (written) */
  out: Float64Array;
}

function exportsIfUsable(w: Float64Array): RtnExports | null {
  if (!ggmlKernelsEnabled()) return null;
  const e = ggmlKernelExports() as unknown as RtnExports | null;
  if (!e) return null;
  // non-finite weights take the TypeScript path (a float → int conversion of NaN would trap here)
  for (let i = 0; i < w.length; i++) if (w[i] - w[i] !== 0) return null;
  return e;
}

function run(e: RtnExports, a: GridRtnInput, extra: { zeros?: Int32Array; book?: Float32Array }, call: (wPtr: number, R: number, sPtr: number, xPtr: number, cPtr: number, oPtr: number) => void): void {
  const { n, k, groupSize: G } = a;
  const ng = Math.ceil(k / G);
  const rowsPer = Math.max(1, Math.floor(BLOCK_VALUES / Math.max(1, k)));
  const xLen = extra.zeros ? rowsPer * ng * 4 : extra.book ? extra.book.length * 4 : 0;
  const wPtr = align16(e.heapBase());
  const sPtr = align16(wPtr + rowsPer * k * 8);
  const xPtr = align16(sPtr + rowsPer * ng * 8);
  const oPtr = align16(xPtr + xLen);
  const cPtr = align16(oPtr + rowsPer * k * 8);
  const need = cPtr + rowsPer * k;
  if (need > e.memory.buffer.byteLength) e.memory.grow(Math.ceil((need - e.memory.buffer.byteLength) / 65536));
  const buf = e.memory.buffer;
  if (extra.book) new Float32Array(buf, xPtr, extra.book.length).set(extra.book);
  const codes = new Uint8Array(a.codes.buffer, a.codes.byteOffset, a.codes.length);
  for (let r0 = 0; r0 < n; r0 += rowsPer) {
    const R = Math.min(rowsPer, n - r0);
    new Float64Array(buf, wPtr, R * k).set(a.w.subarray(r0 * k, (r0 + R) * k));
    new Float64Array(buf, sPtr, R * ng).set(a.scales.subarray(r0 * ng, (r0 + R) * ng));
    if (extra.zeros) new Int32Array(buf, xPtr, R * ng).set(extra.zeros.subarray(r0 * ng, (r0 + R) * ng));
    call(wPtr, R, sPtr, xPtr, cPtr, oPtr);
    a.out.set(new Float64Array(buf, oPtr, R * k), r0 * k);
    codes.set(new Uint8Array(buf, cPtr, R * k), r0 * k);
  }
}

/** IntGrid's RTN of every value (see rtn-grid.ts); false when the kernel cannot run here (nothing written). */
export function rtnIntGridKernel(a: GridRtnInput & { zeros: Int32Array; qmin: number; qmax: number; away: boolean }): boolean {
  const e = exportsIfUsable(a.w);
  if (!e) return false;
  const ng = Math.ceil(a.k / a.groupSize);
  run(e, a, { zeros: a.zeros }, (w, R, s, z, c, o) => e.rtnIntRows(w, R, a.k, a.groupSize, ng, s, z, a.qmin, a.qmax, a.away, c, o));
  return true;
}

/** CodebookGrid's RTN of every value onto `book` (float32 levels, increasing); false when the kernel cannot run here. */
export function rtnBookGridKernel(a: GridRtnInput & { book: Float32Array }): boolean {
  const e = exportsIfUsable(a.w);
  if (!e) return false;
  const ng = Math.ceil(a.k / a.groupSize);
  run(e, a, { book: a.book }, (w, R, s, b, c, o) => e.rtnBookRows(w, R, a.k, a.groupSize, ng, s, b, a.book.length, c, o));
  return true;
}
