// The WebAssembly ggml kernels (built from wasm/ggml by scripts/build-wasm.mjs): loading, memory
// and the row-chunked calls behind quantizeGgml. One instance per thread (module state), memory
// laid out from heapBase() as [importance weights K f32 | input chunk | output chunk]; rows are
// put in a chunk at a time (≈ 256 KB, so a chunk stays in cache: copied from the caller's array,
// or read from a file straight into this memory by a worker, quantizeWithKernelFrom), checked
// for NaN/±Inf, quantized and copied out.
//
// Loading: synchronous where the platform allows it (Node, workers); on a browser main thread,
// where large synchronous compiles are refused, compilation continues asynchronously
// (ggmlKernelsReady()) and the TypeScript codecs serve the calls made before it is done.
// Legend: R = rows, K = values per row, QK = block size, W = bytes per block.

import { NumericError } from '../../../core/errors.js';
import { GGML_TYPES, type GgmlType } from '../../../core/dtype.js';
import { KERNELS_WASM_BASE64 } from './kernels.gen.js';
import { IQ1S_GRID, IQ2S_GRID, IQ2XS_GRID, IQ2XXS_GRID, IQ3S_GRID, IQ3XXS_GRID } from '../iq-grids.table.js';

/** Grid tables a kernel builds its lattice from, uploaded on first use: [family, grid slot, bytes]. */
const GRIDS: Partial<Record<GgmlType, ['iq3' | 'iq2', number, Uint8Array]>> = {
  IQ3_XXS: ['iq3', 0, IQ3XXS_GRID],
  IQ3_S: ['iq3', 1, IQ3S_GRID],
  IQ2_XXS: ['iq2', 0, IQ2XXS_GRID],
  IQ2_XS: ['iq2', 1, IQ2XS_GRID],
  IQ2_S: ['iq2', 2, IQ2S_GRID],
  // IQ1_S/IQ1_M share the IQ2 lattice code (slot 3)
  IQ1_S: ['iq2', 3, IQ1S_GRID],
  IQ1_M: ['iq2', 3, IQ1S_GRID],
};
const gridsReady = new Set<GgmlType>();

function ensureGrid(e: Exports, type: GgmlType): void {
  const g = GRIDS[type];
  if (!g || gridsReady.has(type)) return;
  const [family, slot, bytes] = g;
  new Uint8Array(e.memory.buffer, family === 'iq3' ? e.iq3GridAddress(slot) : e.iq2GridAddress(slot), bytes.length).set(bytes);
  if (family === 'iq3') e.iq3Init(slot);
  else e.iq2Init(slot);
  gridsReady.add(type);
}

interface Exports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  quantize(type: number, x: number, out: number, nRows: number, nPerRow: number, qw: number): void;
  firstNonFinite(x: number, n: number): number;
  convertF16(src: number, dst: number, n: number): void;
  convertF16Checked(src: number, dst: number, n: number): number;
  convertBf16(src: number, dst: number, n: number): void;
  iq4BestIndex(v: number): number;
  iq3GridAddress(which: number): number;
  iq3Init(which: number): void;
  iq2GridAddress(which: number): number;
  iq2Init(which: number): void;
}

/**
 * Kernel type ids (wasm/ggml/index.ts `quantize`) and whether the kernel covers the importance
 * matrix variant (Q8_0 ignores the imatrix in ggml, so both are the same kernel).
 */
const KERNEL_TYPES: Partial<Record<GgmlType, { id: number; imatrix: boolean }>> = {
  Q8_0: { id: 0, imatrix: true },
  Q4_0: { id: 1, imatrix: true },
  Q5_0: { id: 2, imatrix: true },
  Q4_1: { id: 3, imatrix: true },
  Q5_1: { id: 4, imatrix: true },
  Q4_K: { id: 5, imatrix: true },
  Q5_K: { id: 6, imatrix: true },
  Q6_K: { id: 7, imatrix: true },
  Q2_K: { id: 8, imatrix: true },
  Q3_K: { id: 9, imatrix: true },
  IQ4_NL: { id: 10, imatrix: true },
  IQ4_XS: { id: 11, imatrix: true },
  // these ignore the importance matrix (as ggml does)
  TQ1_0: { id: 12, imatrix: true },
  TQ2_0: { id: 13, imatrix: true },
  Q1_0: { id: 14, imatrix: true },
  Q2_0: { id: 15, imatrix: true },
  MXFP4: { id: 16, imatrix: true },
  NVFP4: { id: 17, imatrix: true },
  F16: { id: 18, imatrix: true },
  BF16: { id: 19, imatrix: true },
  IQ3_XXS: { id: 20, imatrix: true },
  IQ3_S: { id: 21, imatrix: true },
  // IQ2_XXS/IQ2_XS need an importance matrix (quantizeGgml enforces it, as ggml does)
  IQ2_XXS: { id: 22, imatrix: true },
  IQ2_XS: { id: 23, imatrix: true },
  IQ2_S: { id: 24, imatrix: true },
  // IQ1_S needs an importance matrix; IQ1_M weighs by x² without one
  IQ1_S: { id: 25, imatrix: true },
  IQ1_M: { id: 26, imatrix: true },
};

/** Input element type of a chunk handed to the kernels. */
export type KernelInput = 'F32' | 'F16' | 'BF16';

const CHUNK_VALUES = 65536;

let ex: Exports | null = null;
let loading: Promise<boolean> | null = null;
let enabled = true;

function wasmBytes(): Uint8Array<ArrayBuffer> {
  const s = atob(KERNELS_WASM_BASE64);
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}

function instantiate(mod: WebAssembly.Module): void {
  ex = new WebAssembly.Instance(mod, {}).exports as unknown as Exports;
}

function load(): Exports | null {
  if (ex || loading) return ex;
  if (typeof WebAssembly === 'undefined') return null;
  const bytes = wasmBytes();
  try {
    instantiate(new WebAssembly.Module(bytes));
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    // a browser main thread refuses synchronous compiles of this size: compile asynchronously
    loading = WebAssembly.compile(bytes).then(
      (m) => (instantiate(m), true),
      () => false,
    );
  }
  return ex;
}

/** Resolves when the kernels are usable on this thread (false where WebAssembly is unavailable). */
export async function ggmlKernelsReady(): Promise<boolean> {
  if (load()) return true;
  return loading ? loading : false;
}

/**
 * Turns the WebAssembly fast path on (default) or off; off, every ggml type quantizes through the
 * TypeScript reference codecs (tests compare the two). Per thread.
 */
export function setGgmlKernelsEnabled(on: boolean): void {
  enabled = on;
}

export function ggmlKernelsEnabled(): boolean {
  return enabled;
}

/** Whether a kernel quantizes `type` (with an importance matrix when `imatrix`) on this thread now. */
export function hasGgmlKernel(type: GgmlType, imatrix: boolean): boolean {
  const k = KERNEL_TYPES[type];
  return enabled && !!k && (!imatrix || k.imatrix) && !!load();
}

/** The module's exports (tests reach single routines through it), or null where it is not loaded. */
export function ggmlKernelExports(): Readonly<Exports> | null {
  return load();
}

/** Types the kernels cover (with and without an importance matrix). */
export function ggmlKernelTypes(): { type: GgmlType; imatrix: boolean }[] {
  return Object.entries(KERNEL_TYPES).map(([t, k]) => ({ type: t as GgmlType, imatrix: k!.imatrix }));
}

function ensureMemory(e: Exports, bytes: number): void {
  const have = e.memory.buffer.byteLength;
  if (bytes > have) e.memory.grow(Math.ceil((bytes - have) / 65536));
}

const align16 = (n: number): number => (n + 15) & ~15;

/**
 * Puts `into.length` bytes of input elements `from`… (counted in values from the first row) into
 * `into`, a view on the kernel's memory: the caller's array copied, or a file read straight into
 * it (src/quant/node/quant-worker.ts), which saves a copy of every input byte.
 */
export type KernelFill = (into: Uint8Array, from: number) => void;

/**
 * Quantizes R = nRows rows of K = nPerRow values to ggml `type` into `out` (R·K/QK·W bytes),
 * reading `x` as f32 values or as F16/BF16 bits (`input`). The caller has validated the shapes
 * and checked hasGgmlKernel(). A NaN/±Inf value throws NumericError('non_finite') naming its
 * index in `x` (the first one: chunks are checked in order before they are quantized).
 */
export function quantizeWithKernel(
  type: GgmlType,
  x: Float32Array | Uint16Array,
  input: KernelInput,
  nRows: number,
  nPerRow: number,
  imatrix: Float32Array | undefined,
  out: Uint8Array,
): void {
  const el = x.BYTES_PER_ELEMENT;
  const bytes = new Uint8Array(x.buffer, x.byteOffset, x.byteLength);
  quantizeWithKernelFrom(type, (into, from) => into.set(bytes.subarray(from * el, from * el + into.length)), input, nRows, nPerRow, imatrix, out);
}

/**
 * quantizeWithKernel with the input delivered a chunk of rows at a time by `fill` (see
 * KernelFill), directly into the kernel's memory.
 */
export function quantizeWithKernelFrom(
  type: GgmlType,
  fill: KernelFill,
  input: KernelInput,
  nRows: number,
  nPerRow: number,
  imatrix: Float32Array | undefined,
  out: Uint8Array,
): void {
  const e = load()!;
  const k = KERNEL_TYPES[type]!;
  ensureGrid(e, type);
  const { blockSize, typeSize } = GGML_TYPES[type];
  const rowBytes = (nPerRow / blockSize) * typeSize;
  const rowsPer = Math.max(1, Math.floor(CHUNK_VALUES / Math.max(1, nPerRow)));
  const qwPtr = align16(e.heapBase());
  const xPtr = align16(qwPtr + (imatrix ? nPerRow * 4 : 0));
  const srcPtr = align16(xPtr + rowsPer * nPerRow * 4); // F16/BF16 staging
  const outPtr = align16(srcPtr + (input === 'F32' ? 0 : rowsPer * nPerRow * 2));
  ensureMemory(e, outPtr + rowsPer * rowBytes);
  const buf = e.memory.buffer;
  if (imatrix) new Float32Array(buf, qwPtr, nPerRow).set(imatrix);
  for (let r0 = 0; r0 < nRows; r0 += rowsPer) {
    const rows = Math.min(rowsPer, nRows - r0);
    const n = rows * nPerRow;
    const from = r0 * nPerRow;
    let bad: number;
    if (input === 'F32') {
      fill(new Uint8Array(buf, xPtr, n * 4), from);
      bad = e.firstNonFinite(xPtr, n);
    } else {
      fill(new Uint8Array(buf, srcPtr, n * 2), from);
      if (input === 'F16') bad = e.convertF16Checked(srcPtr, xPtr, n);
      else {
        e.convertBf16(srcPtr, xPtr, n);
        bad = e.firstNonFinite(xPtr, n);
      }
    }
    if (bad >= 0) {
      const found = new Float32Array(buf, xPtr + bad * 4, 1)[0];
      throw new NumericError('non_finite', 'x holds a non-finite value', { field: 'x', index: from + bad, found });
    }
    e.quantize(k.id, xPtr, outPtr, rows, nPerRow, imatrix ? qwPtr : 0);
    out.set(new Uint8Array(buf, outPtr, rows * rowBytes), r0 * rowBytes);
  }
}
