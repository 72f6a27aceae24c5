// bitscale's library entry point. Re-exports the public API layer by layer.
export * from './core/index.js';
export * from './numerics/float16.js';
export * from './numerics/round.js';
export * from './numerics/linalg.js';
export * from './numerics/metrics.js';
export {
  E4M3, E5M2, E2M1, E2M3, E3M2, UE4M3, E8M0_NAN, codeBits, decodeMini, encodeMini, encodeMiniRef, roundToMini, decodeTable, maxFinite,
  minSubnormal, encodeMiniArray, decodeMiniArray, floorLog2, decodeE8M0, encodeE8M0Exp, encodeE8M0Floor, type MiniFloatFormat,
} from './numerics/minifloat.js';
export * from './quant/index.js';
export * from './algorithms/index.js';
export * from './formats/imatrix/index.js';
export { quantizeModel, TOOL_VERSION, type QuantizeOptions, type QuantizeReport, type QuantizeFormat, type QuantizeMethod } from './pipeline/quantize/quantize.js';
export { runImatrix, collectImatrix, calibrationWindows, calibrationSource, type RunImatrixOptions } from './pipeline/calibrate/calibrate.js';
export type { ModelConfig, RopeLayout, RopeScaling, Architecture } from './model/config.js';
export type { ModelWeights, TensorSource } from './model/weights.js';
export type { Tokenizer, EncodeOptions } from './formats/tokenizer/types.js';
export { Llama2cTokenizer, SpmTokenizer, BpeTokenizer, HfTokenizer, tokenizerFromVocab, spmVocabFromLlama2c, llama2cVocabFromSpm, spmTokenizerFiles } from './formats/tokenizer/index.js';
export type { VocabExport, TokenizerKind } from './formats/tokenizer/index.js';
export { parseLlama2cLayout, encodeLlama2c, type Llama2cHeader, type Llama2cLayout } from './formats/llama2c/checkpoint.js';
export { parseLlama2cVocab, encodeLlama2cVocab, type Llama2cVocab } from './formats/llama2c/tokenizer-bin.js';
export { loadModel, detectFormat, loadTokenizerFile, type LoadOptions } from './model/load.js';
export { saveModel, ggufMetadataFor, type SaveOptions, type SaveResult, type SaveFormat, type FloatDType } from './model/save.js';
export { configFromHfJson, hfConfigJson } from './model/hf-config.js';
export { hfToGguf, ggufToHf, llama2cToHf, hfToLlama2c, canonicalTensors, ggufTensorRole, type GgufTensorRole } from './model/names.js';
export { planGgufTypes, recipeModelOf, rowFallback, requiresImatrix, type RecipeModel, type RecipeOptions, type RecipeTensor, type TensorChoice, type TensorTypeOverride } from './model/gguf-recipe.js';
export { RECIPE_BLOCKS, ROW_FALLBACK, IMATRIX_REQUIRED } from './model/gguf-recipe-rules.js';
export { rotaryRowOrder, permuteRotaryRows, permuteRowBytes } from './model/permute.js';
export { inspectModel, type InspectReport } from './pipeline/inspect.js';
export { convertModel, type ConvertOptions, type ConvertResult } from './pipeline/convert.js';
export * from './formats/bytes.js';
export * from './formats/safetensors/index.js';
export * from './formats/gguf/index.js';
export * from './formats/io/index.js';
export { GraphBuilder, broadcastShapes, makeTensor } from './engine/ir.js';
export type { Graph, Node as GraphNode, Value as GraphValue, IrDType, IrTensor, OpType } from './engine/ir.js';
export { lowerToOnnx } from './engine/lower.js';
export { EngineSession, type SessionOptions } from './engine/session.js';
export { interpret } from './engine/interp.js';
export { LlamaEngine, Decoder, type EngineOptions } from './engine/model.js';
export { buildLlamaGraph, type LlamaGraphOptions } from './engine/llama.js';
export { prepareHostModel, expectedTensors, type HostModel, type PrepareOptions, type WeightPrecision } from './engine/host.js';
export { fakeQuantActivation, type ActQuantSpec } from './engine/actquant.js';
export { referenceForward } from './model/reference.js';
export { perplexity, compareModels, makeWindows, engineModel, generate, sampleToken, throughput } from './eval/index.js';
export type { LogitsModel, PerplexityResult, CompareResult, WindowOptions, WindowProtocol, GenerateOptions, GenerateResult, ThroughputResult } from './eval/index.js';
export { runEval, type EvalOptions, type EvalReport } from './pipeline/eval.js';
export { runGenerate, type GenerateRunOptions, type GenerateReport } from './pipeline/generate.js';
export {
  KUMAR2024, CONSTANT_SETS, CONSTANT_NAMES, withConstants, predict as predictLoss, baseLoss, effectiveParams, precisionFactor, deltaPtq,
  criticalDataSize, robustification, computeOptimalTied, computeOptimalSeparate, computeOptimalFixedN, optimalAtPrecision, trainingCost,
  FLOPS_PER_BIT, fitLaw, predictRow, parseRuns, paretoFrontier, bestWithinBudgets, bestBitsAtSizes,
} from './scaling/index.js';
export type {
  LawConstants, ConstantSet, ConstantName, ConstantSource, TrainPrecision, LawInput, LossPrediction, OptimalPoint, CostWeights, FitOptions,
  FitResult, RunRow, QualityPoint, QualityDirection,
} from './scaling/index.js';
export { renderChart, linearTicks, logTicks, type ChartSpec, type ChartSeries, type ChartPoint, type AxisSpec } from './report/svg.js';
export { scalingCharts } from './report/scaling-plots.js';
export { lawPredict, lawOptimal, lawFit, lawPlot, runLawExperiment, lawGrid, loadConstants, type TrainAndEvaluate, type LawGridPoint } from './pipeline/law/law.js';
export { runSweep, sweepBudgets, type SweepOptions, type SweepOutcome } from './pipeline/sweep/sweep.js';
export { planPoints, type SweepGrid, type SweepMethod, type SweepFormat } from './pipeline/sweep/plan.js';
export { runDemo, DEMO_POINTS, defaultModelDir, type DemoOptions, type DemoOutcome } from './pipeline/sweep/demo.js';
export { renderSweepReport } from './report/sweep-report.js';
export { markFrontiers, shipRecommendations, parseBudget, RUNTIMES, DEFAULT_BUDGETS } from './report/decision.js';
export { intervalFrontier, bestWithinBudget, type IntervalPoint } from './scaling/pareto-ci.js';
export type { SweepRecord, SweepPointResult, SweepPointSpec, SensitivityRow, ShipChoice } from './eval/sweep-types.js';
export { fetchHubModel, hubCacheDir, parseHubId, type HubOptions, type HubModel } from './pipeline/hub.js';
export { quantizeOnnxVariants, ONNX_VARIANTS } from './pipeline/quantize/onnx-variants.js';
export { fitPtqDecay, ptqDecay, type PtqDecayFit, type PtqDecayPoint } from './scaling/ptq-decay.js';
