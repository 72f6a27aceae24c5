// Reload a written GGUF in llama.cpp (through node-llama-cpp, when installed: it is an optional,
// dev-time dependency, imported dynamically) and compare its logits with the engine's on the same
// windows. Set up as RUNTIME-NOTES says llama.cpp agrees with an exact forward pass: CPU, F32 KV
// cache, flash attention off. llama.cpp quantizes activations to Q8 inside its quantized matmuls,
// so quantized files differ from the engine's float-activation forward by more than rounding.
// Legend: T = tokens, V = vocab.

export interface LlamaCppCheck {
  available: boolean;
  maxAbsLogitDiff: number | null;
  top1Agreement: number | null;
  error?: string;
}

// one llama.cpp instance per process (its initialisation takes seconds)
let llamaInstance: Promise<unknown> | null = null;

export async function compareWithLlamaCpp(gguf: string, windows: number[][], vocab: number, ours: (w: number[]) => Promise<Float32Array>): Promise<LlamaCppCheck> {
  let mod: typeof import('node-llama-cpp');
  try {
    mod = await import('node-llama-cpp');
  } catch {
    return { available: false, maxAbsLogitDiff: null, top1Agreement: null };
  }
  try {
    llamaInstance ??= mod.getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
    const llama = (await llamaInstance) as Awaited<ReturnType<typeof mod.getLlama>>;
    const model = await llama.loadModel({ modelPath: gguf });
    const T = Math.max(...windows.map((w) => w.length));
    const ctx = await model.createContext({ contextSize: Math.max(256, T), flashAttention: false, experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32' } as never);
    let maxd = 0;
    let agree = 0;
    let n = 0;
    try {
      for (const w of windows) {
        const seq = ctx.getSequence();
        let res: ({ next?: { logits?: Map<number, number> } } | undefined)[];
        try {
          res = (await seq.controlledEvaluate(w.map((t) => [t as never, { generateNext: { logits: true } }]) as never)) as typeof res;
        } finally {
          seq.dispose();
        }
        const a = await ours(w);
        res.forEach((r, t) => {
          const l = r!.next!.logits!;
          let ia = 0;
          let ib = -1;
          let best = -Infinity;
          for (let v = 0; v < vocab; v++) {
            const x = l.get(v) ?? -Infinity;
            maxd = Math.max(maxd, Math.abs(x - a[t * vocab + v]));
            if (x > best) {
              best = x;
              ib = v;
            }
            if (a[t * vocab + v] > a[t * vocab + ia]) ia = v;
          }
          agree += ia === ib ? 1 : 0;
          n++;
        });
      }
    } finally {
      await ctx.dispose();
      await model.dispose();
    }
    return { available: true, maxAbsLogitDiff: maxd, top1Agreement: agree / n };
  } catch (e) {
    return { available: true, maxAbsLogitDiff: null, top1Agreement: null, error: (e as Error).message };
  }
}
