// Validation loss of an exported ONNX decoder (export-hf.ts's interface) run in onnxruntime: the same
// windows the trainer's evaluate() scores (data.ts valBatches), one prompt pass per batch with an empty
// past, cross-entropy from the file's logits in float64. This is what `bitscale qat --format onnx`
// reports as the exported file's loss, so the figure comes from the file and not from the weights
// that were written into it.
// Legend: B = batch, S = context, V = vocab, Hk = KV heads, D = head dim.

import { checkAborted } from '../core/progress.js';
import type { Tensor } from '../core/tensor.js';
import { hfPastNames } from '../engine/export-hf.js';
import { EngineSession } from '../engine/session.js';
import type { ModelConfig } from '../model/config.js';
import { valBatches } from '../train/data.js';

export interface OnnxLossOptions {
  batch: number;
  context: number;
  maxBatches?: number;
  threads?: number;
  signal?: AbortSignal;
}

/** Mean next-token cross-entropy (nats/token) of `file` on `val`; targets −1 (repeated rows) are skipped. */
export async function onnxValidationLoss(file: string, c: ModelConfig, val: Int32Array, o: OnnxLossOptions): Promise<number> {
  const s = await EngineSession.fromOnnx(file, { threads: o.threads });
  const V = c.vocabSize;
  let nll = 0;
  let count = 0;
  try {
    for (const b of valBatches(val, o.batch, o.context, o.maxBatches)) {
      checkAborted(o.signal);
      const { B, S } = b;
      const pos = new BigInt64Array(B * S);
      for (let i = 0; i < pos.length; i++) pos[i] = BigInt(i % S);
      const feeds: Record<string, Tensor> = {
        input_ids: { dtype: 'I64', shape: [B, S], data: BigInt64Array.from(b.inputs, (x) => BigInt(x)) },
        attention_mask: { dtype: 'I64', shape: [B, S], data: new BigInt64Array(B * S).fill(1n) },
        position_ids: { dtype: 'I64', shape: [B, S], data: pos },
      };
      const empty: Tensor = { dtype: 'F32', shape: [B, c.nKvHeads, 0, c.headDim], data: new Float32Array(0) };
      for (let i = 0; i < c.nLayers; i++) {
        const n = hfPastNames(i);
        feeds[n.pastK] = empty;
        feeds[n.pastV] = empty;
      }
      const logits = (await s.run(feeds, ['logits'])).logits.data as Float32Array; // [B, S, V]
      for (let t = 0; t < B * S; t++) {
        const y = b.targets[t];
        if (y < 0) continue;
        let mx = -Infinity;
        for (let v = 0; v < V; v++) mx = Math.max(mx, logits[t * V + v]);
        let se = 0;
        for (let v = 0; v < V; v++) se += Math.exp(logits[t * V + v] - mx);
        nll += mx + Math.log(se) - logits[t * V + y];
        count++;
      }
    }
  } finally {
    await s.release();
  }
  return nll / count;
}
