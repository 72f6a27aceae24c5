// Benchmark helpers: medians over repeats (the machine is shared and noisy), and a generated model
// whose tensors are made when read (for multi-GB quantization benchmarks without the disk).
import { Rng } from '../src/core/rng.js';
import { decodeF16Array } from '../src/numerics/float16.js';
import { quantizeGgml } from '../src/quant/ggml/index.js';
import type { Tensor } from '../src/core/tensor.js';
import { expectedTensors } from '../src/engine/host.js';
import type { ModelConfig } from '../src/model/config.js';
import type { ModelWeights, TensorSource } from '../src/model/weights.js';

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** Runs fn `repeats` times (after `warmup` runs) and returns the median wall time in ms. */
export async function timeMs(fn: () => unknown | Promise<unknown>, repeats = 5, warmup = 1): Promise<number> {
  for (let i = 0; i < warmup; i++) await fn();
  const ts: number[] = [];
  for (let i = 0; i < repeats; i++) {
    const t0 = performance.now();
    await fn();
    ts.push(performance.now() - t0);
  }
  return median(ts);
}

export function fmt(x: number, digits = 1): string {
  return x.toFixed(digits);
}

/**
 * A model whose tensors are generated when read (nothing held in memory between tensors). With
 * `storage: 'F16'` the weight matrices come out as F16 (one xorshift32 draw per value, converted by
 * the WebAssembly kernel), so multi-GB F16 files are written several times faster.
 */
export function generatedModel(c: ModelConfig, opts: { storage?: 'F32' | 'F16' } = {}): ModelWeights {
  const tensors = new Map<string, TensorSource>();
  expectedTensors(c).forEach((e, i) => {
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (opts.storage === 'F16' && e.shape.length === 2) {
      const make16 = (): Uint16Array => {
        // xorshift32 seeded per tensor: cheap enough for billions of values
        let x = (i + 1) * 2654435761 >>> 0 || 1;
        const d = new Float32Array(n);
        for (let j = 0; j < n; j++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          d[j] = ((x >>> 0) / 4294967296 - 0.5) * 0.04;
        }
        const b = quantizeGgml('F16', d, 1, n);
        return new Uint16Array(b.buffer, b.byteOffset, n);
      };
      tensors.set(e.name, {
        name: e.name, shape: e.shape, dtype: 'F16', byteLength: n * 2,
        read: async (): Promise<Tensor> => ({ dtype: 'F16', shape: e.shape, data: make16() }),
        readF32: async () => decodeF16Array(make16()),
      });
      return;
    }
    const make = (): Float32Array => {
      const rng = new Rng(i + 1);
      const d = new Float32Array(n);
      const norm = e.shape.length === 1;
      for (let j = 0; j < n; j++) d[j] = norm ? 1 : (rng.next() - 0.5) * 0.04;
      return d;
    };
    tensors.set(e.name, {
      name: e.name, shape: e.shape, dtype: 'F32', byteLength: n * 4,
      read: async (): Promise<Tensor> => ({ dtype: 'F32', shape: e.shape, data: make() }),
      readF32: async () => make(),
    });
  });
  return { config: c, tokenizer: null, tensors, source: { format: 'safetensors', path: '<generated>' }, metadata: {}, close: async () => {} };
}
