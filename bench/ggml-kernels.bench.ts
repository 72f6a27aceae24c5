// The WebAssembly ggml kernels against the TypeScript reference codecs they are tested against
// (same run, one thread, the same bytes): millions of values per CPU-second for every type with a
// kernel, without and with an importance matrix. CPU time (process.cpuUsage, medians of 5) rather
// than wall time, because the machine these figures come from is shared and loaded.
// Then the small-float codecs of quant's float schemes (FP8 E4M3/E5M2, FP4 E2M1; kernel
// wasm/ggml/minifloat.ts): the whole quantize() call (scales and codes) with the kernels on and off;
// and RTN on the int and NF4 column grids as `quantize --method rtn` runs it (rtnOnGrid: group fits,
// then every value; kernel wasm/ggml/rtn-grid.ts).
// Usage: npm run bench ggml-kernels; BITSCALE_KERNELS_TYPES=Q4_K,Q6_K limits the types (add
// `codecs` for the float schemes; =codecs runs those only). The TypeScript side runs on fewer rows (it is 10–200× slower), which is
// fair for a per-value rate.
import { Rng } from '../src/core/rng.js';
import { ggmlKernelTypes, ggmlSupports, quantizeGgml, quantizeGgmlReference, setGgmlKernelsEnabled } from '../src/quant/ggml/index.js';
import { parseScheme, quantize } from '../src/quant/index.js';
import { rtnOnGrid } from '../src/algorithms/gptq.js';
import { gridFor, targetFor } from '../src/pipeline/quantize/layer.js';
import type { GgmlType } from '../src/core/dtype.js';
import { fmt, median } from './util.js';

/** Median CPU milliseconds of fn over `repeats` runs after one warm-up. */
function cpuMs(fn: () => unknown, repeats = 5): number {
  fn();
  const ts: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const c0 = process.cpuUsage();
    fn();
    const c = process.cpuUsage(c0);
    ts.push((c.user + c.system) / 1e3);
  }
  return median(ts);
}

const K = 4096;

export default async function (): Promise<void> {
  const want = process.env.BITSCALE_KERNELS_TYPES?.split(',');
  const rng = new Rng(1);
  const x = rng.fillNormal(new Float32Array(64 * K), 0, 0.02);
  const im = Float32Array.from({ length: K }, () => 0.1 + rng.next());
  console.log(`Gaussian rows of ${K}; WebAssembly on 64 rows, TypeScript on 4 (CPU time, medians of 5 runs); one thread`);
  console.log('| type | imatrix | WebAssembly Mvalues/CPU-s | TypeScript Mvalues/CPU-s | speed-up |');
  console.log('|---|---|---|---|---|');
  for (const { type, imatrix } of ggmlKernelTypes()) {
    if (want && !want.includes(type)) continue;
    // IQ2_XXS, IQ2_XS and IQ1_S quantize only with an importance matrix (as in ggml)
    for (const useIm of imatrix ? (ggmlSupports(type).needsImatrix ? [true] : [false, true]) : [false]) {
      const q = useIm ? im : undefined;
      const tw = cpuMs(() => quantizeGgml(type as GgmlType, x, 64, K, q));
      const xs = x.subarray(0, 4 * K);
      const tt = cpuMs(() => quantizeGgmlReference(type as GgmlType, xs, 4, K, q));
      const w = (64 * K) / tw / 1e3;
      const t = (4 * K) / tt / 1e3;
      console.log(`| ${type} | ${useIm ? 'yes' : 'no'} | ${fmt(w, 1)} | ${fmt(t, 2)} | ${fmt(w / t, 1)}× |`);
    }
  }
  if (want && !want.includes('codecs')) return;
  console.log('');
  console.log(`quant float schemes (quantize()) and int/NF4 grid RTN (rtnOnGrid) of [64, ${K}] (CPU time, medians of 5 runs); one thread`);
  console.log('| scheme | WebAssembly Mvalues/CPU-s | TypeScript Mvalues/CPU-s | speed-up |');
  console.log('|---|---|---|---|');
  for (const name of ['fp8-e4m3', 'fp8-e4m3-g32', 'fp8-e5m2', 'fp4', 'fp4-g32', 'fp8-e4m3-cast', 'int4-g128', 'int4-g128-asym', 'int8-channel', 'int2-g64', 'nf4-g64']) {
    const scheme = parseScheme(name);
    // float schemes: quantize(); int/NF4: the RTN pipeline's grid RTN (its own row in the table)
    const t = targetFor(scheme, K);
    const grid = t.kind === 'int' || t.kind === 'nf4';
    const quantizeOnce = (): unknown => (grid ? rtnOnGrid(x, 64, K, gridFor(t, 64, K)!) : quantize(x, [64, K], scheme));
    // both paths warmed up first (the scale computation they share is compiled by the first one)
    const ts = (): number => {
      setGgmlKernelsEnabled(false);
      try {
        return cpuMs(quantizeOnce);
      } finally {
        setGgmlKernelsEnabled(true);
      }
    };
    ts();
    cpuMs(quantizeOnce);
    const tw = cpuMs(quantizeOnce);
    const tt = ts();
    const w = (64 * K) / tw / 1e3;
    const tsRate = (64 * K) / tt / 1e3;
    console.log(`| ${name}${grid ? ' (grid RTN)' : ''} | ${fmt(w, 1)} | ${fmt(tsRate, 1)} | ${fmt(w / tsRate, 1)}× |`);
  }
}
