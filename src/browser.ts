// bitscale's browser entry point: the layers that never touch node:* (core, numerics, quant,
// formats over bytes, algorithms, scaling, SVG charts). Read a GGUF or safetensors file from a
// browser File with `blobSource`, quantize with any scheme or ggml type, run GPTQ/AWQ on
// statistics you provide, and evaluate the precision-aware scaling laws, all without a server.
// ggml types quantize with WebAssembly kernels (await ggmlKernelsReady() on a page's main thread)
// and across Web Workers with GgmlWebPool (worker module: bitscale/browser-worker).
export * from './core/index.js';
export * from './numerics/float16.js';
export * from './numerics/round.js';
export * from './quant/index.js';
export { GgmlWebPool, type WebWorkerLike } from './quant/ggml/wasm/web-pool.js';
export { ggmlKernelsReady, setGgmlKernelsEnabled } from './quant/ggml/index.js';
export * from './formats/bytes.js';
export * from './formats/safetensors/index.js';
export * from './formats/gguf/index.js';
export * from './scaling/index.js';
export { fitPtqDecay, ptqDecay } from './scaling/ptq-decay.js';
export { gptq, rtnOnGrid } from './algorithms/gptq.js';
export { IntGrid, CodebookGrid } from './algorithms/grid.js';
export { awqSearchScales, awqClipSearch, SCALE_MAPPINGS } from './algorithms/awq.js';
export { renderChart } from './report/svg.js';
// the sweep report and its "what to ship" answer (the browser app's Pareto chart and table)
export { renderSweepReport } from './report/sweep-report.js';
export { frontierChart } from './report/frontier-charts.js';
export { markFrontiers, shipRecommendations, parseBudget, RUNTIMES } from './report/decision.js';
export { intervalFrontier, bestWithinBudget } from './scaling/pareto-ci.js';
