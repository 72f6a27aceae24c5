// Regenerates test/quant/fixtures/ggml-v0.5.0-changed.json: the bytes the bundled ggml (llama.cpp
// release v0.5.0, through koffi) gives for the golden rows where it no longer agrees with the
// d99724f2 goldens (see CHANGED_SINCE_GOLDEN in test/quant/ggml-golden.test.ts). Its IQ1/IQ2
// tables take ggml ~40 s to build, which is why the test reads this file instead of calling it.
// Run: npx tsx test/reference/make-bundled-fixtures.ts
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { bundledQuantize } from './ggml-bundled.js';

const DIR = resolve('..', 'shared', 'golden', 'ggml-quants');
const f32 = (p: string) => {
  const b = readFileSync(resolve(DIR, p));
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
};
const rows: Record<string, string> = {};
for (const imatrix of [false, true]) {
  const bytes = bundledQuantize('IQ1_M', f32('edge.input.f32'), 8, 512, imatrix ? f32('imatrix.f32') : undefined);
  rows[`edge IQ1_M${imatrix ? ' imatrix' : ''}`] = Buffer.from(bytes).toString('hex');
}
const out = { generator: 'ggml_quantize_chunk of libggml-base.so in @node-llama-cpp/linux-x64 3.22.1 (llama.cpp release v0.5.0)', inputs: '../shared/golden/ggml-quants (8 rows × 512)', rows };
writeFileSync(resolve('test/quant/fixtures/ggml-v0.5.0-changed.json'), JSON.stringify(out, null, 1) + '\n');
console.log(Object.keys(rows).join(', '));
