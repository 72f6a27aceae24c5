// The WebAssembly small-float encoder (wasm/ggml/minifloat.ts, built into the ggml kernel module)
// behind quantizeFloat: FP8 E4M3/E5M2, FP6 and FP4 E2M1 codes of scaled values, bit-exact with
// numerics/minifloat.ts encodeMini (saturating), which stays the reference. Values go through the
// module's memory a chunk at a time; setGgmlKernelsEnabled(false) turns this path off too.
// Legend: n values; runs of runLen values share scale scales[run % mod] (layout.ts scaleLayout).

import { encodeTables, type MiniFloatFormat } from '../numerics/minifloat.js';
import { ggmlKernelExports, ggmlKernelsEnabled } from './ggml/wasm/kernels.js';

interface MiniExports {
  memory: WebAssembly.Memory;
  heapBase(): number;
  encodeMiniRuns(x: number, out: number, n: number, offset: number, runLen: number, scales: number, mod: number, pos: number, P: number, signBit: number, nanCode: number, mbits: number, bias: number): number;
}

const CHUNK = 1 << 16;
const align16 = (n: number): number => (n + 15) & ~15;

/** Whether the kernel encodes `f` on this thread now (signed formats; the module loaded and enabled). */
export function hasMiniKernel(f: MiniFloatFormat): boolean {
  return f.signed && ggmlKernelsEnabled() && !!ggmlKernelExports();
}

/**
 * codes[i] = encodeMini(f, w[i] / s, saturate) with s = scales[run % mod] (a zero scale gives
 * code 0), or of w[i] itself when `scales` is null. Returns false, having written nothing
 * reliable, when a value is NaN and the format has no NaN code: the caller runs the TypeScript
 * path, which throws its error. The caller checked hasMiniKernel(f).
 */
export function encodeMiniWithKernel(f: MiniFloatFormat, w: Float32Array, codes: Uint8Array, scales: Float32Array | null, runLen = 1, mod = 1): boolean {
  const e = ggmlKernelExports() as unknown as MiniExports;
  const t = encodeTables(f);
  const P = t.maxCode;
  const posPtr = align16(e.heapBase());
  const sPtr = align16(posPtr + (P + 2) * 8);
  const xPtr = align16(sPtr + (scales ? scales.length * 4 : 0));
  const outPtr = align16(xPtr + CHUNK * 4);
  const need = outPtr + CHUNK;
  if (need > e.memory.buffer.byteLength) e.memory.grow(Math.ceil((need - e.memory.buffer.byteLength) / 65536));
  const buf = e.memory.buffer;
  new Float64Array(buf, posPtr, P + 2).set(t.pos);
  if (scales) new Float32Array(buf, sPtr, scales.length).set(scales);
  const xs = new Float32Array(buf, xPtr, CHUNK);
  const out = new Uint8Array(buf, outPtr, CHUNK);
  for (let i0 = 0; i0 < w.length; i0 += CHUNK) {
    const n = Math.min(CHUNK, w.length - i0);
    xs.set(w.subarray(i0, i0 + n));
    const bad = e.encodeMiniRuns(xPtr, outPtr, n, i0, Math.max(1, runLen), scales ? sPtr : 0, Math.max(1, mod), posPtr, P, t.signBit, t.nanCode, f.mbits, f.bias);
    if (bad >= 0) return false;
    codes.set(out.subarray(0, n), i0);
  }
  return true;
}
