// Reload a written GGUF in llama.cpp (eval/llamacpp: node-llama-cpp, when installed) and compare
// its logits with the engine's on the same windows. llama.cpp quantizes activations to Q8 inside
// its quantized matmuls, so quantized files differ from the engine's float-activation forward by
// more than rounding.
// Legend: T = tokens, V = vocab.
import { importLlamaCpp, openLlamaCpp } from '../../eval/llamacpp.js';

export interface LlamaCppCheck {
  available: boolean;
  maxAbsLogitDiff: number | null;
  top1Agreement: number | null;
  error?: string;
}

export async function compareWithLlamaCpp(gguf: string, windows: number[][], vocab: number, ours: (w: number[]) => Promise<Float32Array>): Promise<LlamaCppCheck> {
  if (!(await importLlamaCpp())) return { available: false, maxAbsLogitDiff: null, top1Agreement: null };
  try {
    const T = Math.max(...windows.map((w) => w.length));
    const ref = await openLlamaCpp(gguf, Math.max(256, T), vocab);
    let maxd = 0;
    let agree = 0;
    let n = 0;
    try {
      for (const w of windows) {
        const theirs = await ref.logits(w); // [T, V]
        const a = await ours(w);
        for (let t = 0; t < w.length; t++) {
          let ia = 0;
          let ib = 0;
          for (let v = 0; v < vocab; v++) {
            const i = t * vocab + v;
            maxd = Math.max(maxd, Math.abs(theirs[i] - a[i]));
            if (theirs[i] > theirs[t * vocab + ib]) ib = v;
            if (a[i] > a[t * vocab + ia]) ia = v;
          }
          agree += ia === ib ? 1 : 0;
          n++;
        }
      }
    } finally {
      await ref.close();
    }
    return { available: true, maxAbsLogitDiff: maxd, top1Agreement: agree / n };
  } catch (e) {
    return { available: true, maxAbsLogitDiff: null, top1Agreement: null, error: (e as Error).message };
  }
}
