// The portable onnxruntime: onnxruntime-web's WebAssembly CPU kernels, loaded in Node as the page
// loads them in the browser (`--calib-runtime portable`). WebAssembly fixes every float operation
// and the kernels fix their summation order, so a float result is the same bytes on every machine
// and in the page; onnxruntime-node's native MLAS kernels pick their order by CPU (AVX2, AVX-512) and
// differ from the WebAssembly ones in the last bits. Calibration statistics feed rounding decisions,
// so those last bits change output bytes: this runtime makes calibrated outputs reproducible
// everywhere at the cost of speed (figures in docs/web.md).
//
// The intra-op thread count does not change any result (measured: GEMM, the calibration block graph
// and the logits graph give the same bytes at 1, 2 and 4 threads; test/pipeline/quantize/
// calib-runtime.test.ts checks whole outputs at 1 and 2), so it is left to the caller. It is fixed
// for the process when the first portable session opens (onnxruntime-web starts its thread pool once).

import { readFileSync, readdirSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import type * as OrtWeb from 'onnxruntime-web';

type OrtWebModule = typeof OrtWeb;

let loaded: Promise<OrtWebModule> | null = null;
let wantThreads: number | null = null;

/** true in Node (the CLI); false in the page's worker, which configures onnxruntime-web itself */
const IN_NODE = typeof process !== 'undefined' && typeof process.versions?.node === 'string' && typeof (globalThis as { window?: unknown }).window === 'undefined' && typeof (globalThis as { importScripts?: unknown }).importScripts === 'undefined';

/**
 * Intra-op threads of the portable runtime in this process (Node only; the page sets its own).
 * Takes effect only before the first portable session opens; later calls are ignored.
 */
export function setPortableThreads(n: number): void {
  if (!loaded) wantThreads = Math.max(1, Math.floor(n));
}

/** onnxruntime-web, loaded on first use (a native-only run never loads it). */
export function portableOrt(): Promise<OrtWebModule> {
  loaded ??= import('onnxruntime-web').then((m) => {
    // Node: onnxruntime-web finds its .wasm beside its own module; its default thread count is
    // the browser's (half the cores, at most 4) unless set here
    if (IN_NODE && wantThreads !== null) m.env.wasm.numThreads = wantThreads;
    return m;
  });
  return loaded;
}

/**
 * Opens a session on the WASM backend only (never WebGPU: its kernels are the GPU's). External data
 * is given as bytes (`externalData`), which is how onnxruntime-web takes it; a model given by path is
 * read back with every other file of its folder as its external data.
 */
export async function createPortableSession(
  model: string | Uint8Array,
  options: OrtWeb.InferenceSession.SessionOptions,
  externalData?: { path: string; data: Uint8Array }[],
): Promise<OrtWeb.InferenceSession> {
  const ort = await portableOrt();
  const o: OrtWeb.InferenceSession.SessionOptions = { ...options, executionProviders: ['wasm'] };
  // the thread count is the runtime's (env.wasm.numThreads), not the session's
  delete o.intraOpNumThreads;
  if (typeof model !== 'string') return ort.InferenceSession.create(model, externalData ? { ...o, externalData } : o);
  const dir = dirname(model);
  const files = readdirSync(dir)
    .filter((n) => n !== basename(model))
    .map((n) => ({ path: n, data: new Uint8Array(readFileSync(join(dir, n))) }));
  return ort.InferenceSession.create(new Uint8Array(readFileSync(model)), { ...o, externalData: files });
}
