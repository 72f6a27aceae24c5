// Shared helpers for the native-weights tests: GGUF files whose linears are stored in one ggml
// type (written by our bit-exact ggml codec), and the comparison every test makes: perplexity of
// the native engine (weights run as stored, scored in the graph) against the dequantized engine
// (every weight float32 in memory, log-softmax in float64 in JS) on the same windows.
import assert from 'node:assert/strict';
import { GGML_TYPES, type GgmlType } from '../../src/core/dtype.js';
import type { QuantTensor } from '../../src/core/tensor.js';
import { LlamaEngine, type EngineOptions } from '../../src/engine/model.js';
import { engineModel, perplexity } from '../../src/eval/index.js';
import { saveModel } from '../../src/model/save.js';
import type { ModelWeights } from '../../src/model/weights.js';
import { quantizeGgml } from '../../src/quant/ggml/index.js';

/** the bound: the native path's perplexity equals the dequantized path's within 1e-4 nats */
export const NATIVE_NLL_ATOL = 1e-4;

const LINEAR = /\.(q_proj|k_proj|v_proj|o_proj|gate_proj|up_proj|down_proj)\.weight$/;

/**
 * Writes `w` as GGUF with every linear whose rows are whole `type` blocks stored in `type` (the rest
 * F32), and with `embed` the token embedding too. Returns how many tensors hold the type.
 */
export async function writeTypedGguf(w: ModelWeights, path: string, type: GgmlType, embed = false): Promise<number> {
  const QK = GGML_TYPES[type].blockSize;
  const pick = (n: string, shape: number[]) => (LINEAR.test(n) || (embed && n === 'model.embed_tokens.weight') || n === 'lm_head.weight') && shape.length === 2 && shape[1] % QK === 0;
  let typed = 0;
  await saveModel(w, path, {
    format: 'gguf',
    overwrite: true,
    tensorType: (n) => (pick(n, w.tensors.get(n)!.shape) ? type : undefined),
    tensor: async (n, src): Promise<QuantTensor | null> => {
      if (!pick(n, src.shape)) return null;
      typed++;
      const [N, K] = src.shape;
      return { type, shape: src.shape, bytes: quantizeGgml(type, await src.readF32(), N, K) };
    },
  });
  return typed;
}

export interface NativeComparison {
  native: number;
  dequantized: number;
  nbits: number;
  float: number;
}

/**
 * Perplexity of `m` run natively and dequantized on the same windows; asserts they agree within
 * NATIVE_NLL_ATOL and returns both NLLs and the native path counts.
 */
export async function compareNative(label: string, m: ModelWeights, ids: number[], ctx: number, opts: EngineOptions = {}): Promise<NativeComparison> {
  const win = { ctx, bosId: m.config.bosTokenId ?? 1 };
  const ref = await LlamaEngine.create(m, { ...opts, native: false });
  const dq = await perplexity(engineModel(ref, { scoreInGraph: false }), ids, win);
  await ref.close();
  const nat = await LlamaEngine.create(m, { ...opts, native: opts.native ?? true });
  const nv = await perplexity(engineModel(nat), ids, win);
  const paths = nat.host.weightPaths!;
  await nat.close();
  const d = Math.abs(nv.nll - dq.nll);
  assert.ok(d < NATIVE_NLL_ATOL, `${label}: native NLL ${nv.nll} vs dequantized ${dq.nll} (|Δ| = ${d.toExponential(2)})`);
  return { native: nv.nll, dequantized: dq.nll, nbits: paths.filter((p) => p.path === 'nbits').length, float: paths.filter((p) => p.path === 'float').length };
}
