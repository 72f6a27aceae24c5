// The node-llama-cpp wrapper lives in src/eval/llamacpp.ts; this re-export keeps bench/ptq-quality.bench.ts
// building until it imports from there (then delete this file).
export { openLlamaCpp, type LlamaCppRef } from '../../src/eval/llamacpp.js';
