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
  /** positions compared over all windows (every position unless the vocabulary is large: checkedPositions) */
  positions?: number;
  error?: string;
}

/** logits compared per window: every position up to this many logits, else evenly spaced positions */
export const LLAMACPP_LOGITS_PER_WINDOW = 1 << 23;

/**
 * The positions of a T-token window the check compares: all of them while T·V ≤
 * LLAMACPP_LOGITS_PER_WINDOW, else P = ⌊budget / V⌋ evenly spaced ones, the last included (at V =
 * 128,256 and T = 512: 65 positions, every 8th). Why: llama.cpp's logits reach JavaScript as a Map
 * per position, ≈ 0.1 s each at that vocabulary — 1,024 positions took longer than the rest of a 1B
 * model's checks; its forward over the whole window still runs, and a wrong tensor moves every
 * position's logits, so the spaced positions catch what all of them would.
 */
export function checkedPositions(T: number, V: number, budget = LLAMACPP_LOGITS_PER_WINDOW): number[] {
  const P = Math.max(1, Math.min(T, Math.floor(budget / V)));
  if (P >= T) return Array.from({ length: T }, (_, t) => t);
  return Array.from({ length: P }, (_, k) => Math.round(((k + 1) * T) / P) - 1);
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
        const at = checkedPositions(w.length, vocab);
        const theirs = await ref.logits(w, at); // [P, V]
        const a = await ours(w); // [T, V]
        at.forEach((t, r) => {
          let ia = 0;
          let ib = 0;
          for (let v = 0; v < vocab; v++) {
            const x = theirs[r * vocab + v];
            const y = a[t * vocab + v];
            maxd = Math.max(maxd, Math.abs(x - y));
            if (x > theirs[r * vocab + ib]) ib = v;
            if (y > a[t * vocab + ia]) ia = v;
          }
          agree += ia === ib ? 1 : 0;
          n++;
        });
      }
    } finally {
      await ref.close();
    }
    return { available: true, maxAbsLogitDiff: maxd, top1Agreement: agree / n, positions: n };
  } catch (e) {
    return { available: true, maxAbsLogitDiff: null, top1Agreement: null, error: (e as Error).message };
  }
}
