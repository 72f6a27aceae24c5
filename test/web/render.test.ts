// The inspect report's per-tensor table (web/render.ts): a model with more than TENSOR_ROWS_OPEN
// tensors gets a closed, empty table whose rows the page builds when it is opened, so that the
// tab does not hold one row of DOM and layout per tensor for as long as the model is open (the
// Blink heap that followed the tensor count in the memory-infra dumps, docs/web.md); a short one
// is shown open as before. The rows themselves are the same either way.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { inspectHtml, tensorTableHtml, TENSOR_ROWS_OPEN } from '../../web/render.js';
import type { InspectReport } from '../../src/pipeline/inspect.js';

function report(nTensors: number): InspectReport {
  const tensors = Array.from({ length: nTensors }, (_, i) => ({ name: `model.layers.${i}.mlp.up_proj.weight`, stored: `blk.${i}.ffn_up.weight`, shape: [32, 16], dtype: 'F32', bytes: 2048, bitsPerWeight: 32 }));
  return {
    path: 'm.gguf', format: 'gguf', fileBytes: 2048 * nTensors,
    config: { architecture: 'llama', vocabSize: 32, hiddenSize: 16, intermediateSize: 32, nLayers: nTensors, nHeads: 2, nKvHeads: 2, headDim: 8, maxSeqLen: 64, rmsNormEps: 1e-5, ropeTheta: 10000, ropeScaling: null, ropeLayout: 'half', tiedEmbeddings: true, attentionBias: false, qkNorm: false, bosTokenId: 1, eosTokenId: 2 },
    parameters: 512 * nTensors, weightParameters: 512 * nTensors, tensors,
    dtypeTotals: { F32: { tensors: nTensors, parameters: 512 * nTensors, bytes: 2048 * nTensors, bitsPerWeight: 32 } },
    metadata: {}, tokenizer: null,
  };
}

const rows = (html: string) => (html.match(/<tr>/g) ?? []).length - (html.match(/<thead><tr>/g) ?? []).length;

test('a short tensor table is shown open with one row per tensor', () => {
  const h = inspectHtml(report(TENSOR_ROWS_OPEN), 'm.gguf');
  assert.match(h, /<details id="tensors" open><summary>64 tensors<\/summary><table class="tensors">/);
  // the tensor rows and the dtype totals' one row
  assert.equal(rows(h), TENSOR_ROWS_OPEN + 1);
});

test('a long tensor table starts closed and empty; its rows are the same when built', () => {
  const r = report(TENSOR_ROWS_OPEN + 443);
  const h = inspectHtml(r, 'm.gguf');
  assert.match(h, /<details id="tensors"><summary>507 tensors<\/summary><\/details>/);
  assert.doesNotMatch(h, /class="tensors"/);
  assert.equal(rows(h), 1, 'only the dtype totals row');
  const t = tensorTableHtml(r);
  assert.equal(rows(t), 507);
  assert.match(t, /<td>model\.layers\.506\.mlp\.up_proj\.weight<\/td><td>blk\.506\.ffn_up\.weight<\/td><td>32×16<\/td><td>F32<\/td><td>2,048<\/td><td>32\.00<\/td>/);
});
