// Benchmark helpers: medians over repeats (the machine is shared and noisy), and a generated model
// whose tensors are made when read (for multi-GB quantization benchmarks without the disk).
import { Rng } from '../src/core/rng.js';
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

/** A model whose tensors are generated when read (nothing held in memory between tensors). */
export function generatedModel(c: ModelConfig): ModelWeights {
  const tensors = new Map<string, TensorSource>();
  expectedTensors(c).forEach((e, i) => {
    const n = e.shape.reduce((a, b) => a * b, 1);
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
