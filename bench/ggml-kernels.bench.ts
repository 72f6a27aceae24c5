// The WebAssembly ggml kernels against the TypeScript reference codecs they are tested against
// (same run, one thread, the same bytes): millions of values per second for every type with a
// kernel, without and with an importance matrix. Usage: npm run bench ggml-kernels
// BITSCALE_KERNELS_TYPES=Q4_K,Q6_K limits the types; the TypeScript side runs on fewer rows (it
// is 10–200× slower), which is fair for a per-value rate.
import { Rng } from '../src/core/rng.js';
import { ggmlKernelTypes, quantizeGgml, quantizeGgmlReference } from '../src/quant/ggml/index.js';
import type { GgmlType } from '../src/core/dtype.js';
import { fmt, timeMs } from './util.js';

const K = 4096;

export default async function (): Promise<void> {
  const want = process.env.BITSCALE_KERNELS_TYPES?.split(',');
  const rng = new Rng(1);
  const x = rng.fillNormal(new Float32Array(64 * K), 0, 0.02);
  const im = Float32Array.from({ length: K }, () => 0.1 + rng.next());
  console.log(`Gaussian rows of ${K}; WebAssembly on 64 rows, TypeScript on 4 (medians of 5 runs); one thread`);
  console.log('| type | imatrix | WebAssembly Mvalues/s | TypeScript Mvalues/s | speed-up |');
  console.log('|---|---|---|---|---|');
  for (const { type, imatrix } of ggmlKernelTypes()) {
    if (want && !want.includes(type)) continue;
    for (const useIm of imatrix ? [false, true] : [false]) {
      const q = useIm ? im : undefined;
      const tw = await timeMs(() => quantizeGgml(type as GgmlType, x, 64, K, q), 5, 1);
      const xs = x.subarray(0, 4 * K);
      const tt = await timeMs(() => quantizeGgmlReference(type as GgmlType, xs, 4, K, q), 5, 1);
      const w = (64 * K) / tw / 1e3;
      const t = (4 * K) / tt / 1e3;
      console.log(`| ${type} | ${useIm ? 'yes' : 'no'} | ${fmt(w, 1)} | ${fmt(t, 2)} | ${fmt(w / t, 1)}× |`);
    }
  }
}
