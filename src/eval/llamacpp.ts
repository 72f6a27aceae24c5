// llama.cpp (through node-llama-cpp) as an independent runtime for GGUF files: logits and
// log-probabilities of a token sequence. Set up as RUNTIME-NOTES says llama.cpp agrees with an exact
// forward pass: CPU, F32 KV cache, flash attention off, `includeTop: 1` (not includeMax) for the max
// logit. node-llama-cpp is an optional, dev-time dependency, imported on first use.
// Legend: T = tokens, V = vocab.
import type { Llama, LlamaContext, LlamaModel } from 'node-llama-cpp';
import { ConfigError } from '../core/errors.js';

export interface LlamaCppRef {
  /**
   * logits [T, V] for every position of `tokens`, or [P, V] for the P ascending `positions` given
   * (the others are evaluated without logits: node-llama-cpp hands each position's V logits over
   * as a Map, ≈ 0.1 s a position at V = 128,256)
   */
  logits(tokens: number[], positions?: readonly number[]): Promise<Float32Array>;
  /** natural-log probability of tokens[t + 1] given tokens[0..t], for every t */
  logProbs(tokens: number[]): Promise<Float64Array>;
  /** evaluates tokens without returning logits (prompt processing only) */
  evaluate(tokens: number[]): Promise<void>;
  close(): Promise<void>;
}

// one llama.cpp instance per process (its initialisation takes seconds)
let llama: Promise<Llama> | null = null;

/** node-llama-cpp's module, or null when it is not installed. */
export async function importLlamaCpp(): Promise<typeof import('node-llama-cpp') | null> {
  try {
    return await import('node-llama-cpp');
  } catch {
    return null;
  }
}

/**
 * Opens `path` in llama.cpp with a context of `contextSize` tokens. `threads`: llama.cpp's
 * default when left out. Throws ConfigError 'unsupported' when node-llama-cpp is not installed.
 */
export async function openLlamaCpp(path: string, contextSize: number, vocab: number, threads?: number): Promise<LlamaCppRef> {
  const mod = await importLlamaCpp();
  if (!mod) throw new ConfigError('unsupported', 'comparing with llama.cpp needs node-llama-cpp, which is not installed', { file: path, hint: 'npm install node-llama-cpp' });
  llama ??= mod.getLlama({ gpu: false, build: 'never', logLevel: 'error' as never });
  const model: LlamaModel = await (await llama).loadModel({ modelPath: path });
  let ctx: LlamaContext;
  try {
    ctx = await model.createContext({
      contextSize,
      flashAttention: false,
      ...(threads !== undefined ? { threads } : {}),
      experimentalKvCacheKeyType: 'F32',
      experimentalKvCacheValueType: 'F32',
    } as never);
  } catch (e) {
    await model.dispose();
    throw e;
  }
  const run = async (tokens: number[], next: (t: number) => object) => {
    const seq = ctx.getSequence();
    try {
      return (await seq.controlledEvaluate(tokens.map((t, i) => [t as never, { generateNext: next(i) }]) as never)) as ({ next?: { logits?: Map<number, number>; totalLogitWeight?: number } } | undefined)[];
    } finally {
      seq.dispose();
    }
  };
  return {
    async logits(tokens, positions) {
      const want = positions ? new Set(positions) : null;
      const res = await run(tokens, (i) => (!want || want.has(i) ? { logits: true } : {}));
      const rows = positions ?? tokens.map((_, i) => i);
      const out = new Float32Array(rows.length * vocab);
      rows.forEach((t, r) => {
        for (const [id, l] of res[t]!.next!.logits!) out[r * vocab + id] = l;
      });
      return out;
    },
    async logProbs(tokens) {
      const res = await run(tokens, (i) => ({ logits: { filter: { tokens: [tokens[i + 1] ?? tokens[i]], includeTop: 1 } }, totalLogitWeight: true }));
      const out = new Float64Array(tokens.length - 1);
      for (let t = 0; t + 1 < tokens.length; t++) {
        const n = res[t]!.next!;
        const ls = [...n.logits!.values()];
        const max = Math.max(...ls);
        out[t] = n.logits!.get(tokens[t + 1])! - max - Math.log(n.totalLogitWeight!);
      }
      return out;
    },
    async evaluate(tokens) {
      const seq = ctx.getSequence();
      try {
        await seq.evaluateWithoutGeneratingNewTokens(tokens as never);
      } finally {
        seq.dispose();
      }
    },
    async close() {
      await ctx.dispose();
      await model.dispose();
    },
  };
}
