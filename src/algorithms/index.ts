// Post-training quantization algorithms: pure functions of weights and calibration statistics
// (browser-safe). GPTQ onto any column grid, AWQ, SmoothQuant, RTN, mixed-precision allocation.
export { ActivationStats, gramOf, weightedError, diagWeightedError } from './stats.js';
export { IntGrid, CodebookGrid, intGridOptions, type ColumnGrid, type IntGridOptions } from './grid.js';
export { GgmlGrid, GPTQ_GGML_TYPES, isGptqGgmlType, type GptqGgmlType } from './ggml-grid.js';
export { KQuantGrid, HOOK_GRID_TYPES, isHookGridType, type HookGridType } from './ggml-hook-grid.js';
export { gptq, rtnOnGrid, actOrderPermutation, type GptqOptions, type GptqResult } from './gptq.js';
export {
  awqAlphaGrid, awqScales, awqSearchScales, awqClipSearch, outputLoss, scaledFakeQuant, scaleInputColumns, foldIntoNorm, foldIntoLinearRows,
  SCALE_MAPPINGS, type FakeQuantFn, type LossData, type AwqLinear, type AwqScaleResult, type AwqClipResult, type ScaleMapping,
} from './awq.js';
export { smoothQuantScales, weightColumnMax, fakeQuantInt8PerRow, w8a8Error } from './smoothquant.js';
export { rtn, type RtnResult } from './rtn.js';
export { allocateBits, uniformPlan, type AllocationPlan, type BitBudget, type Candidate, type TensorSensitivity } from './mixed.js';
export { measureSensitivity, type SensitivityInputs } from './sensitivity.js';
export { hqq, type HqqOptions, type HqqResult } from './hqq.js';
