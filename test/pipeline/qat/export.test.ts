// `bitscale qat` packed exports, every grid: the GGUF (ggml blocks written from the grid) and the
// GPTQ safetensors, loaded back by loadModel, hold exactly the QAT weights (the two containers
// agree bit for bit, every linear row has only its grid's levels) and score exactly the QAT loss.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { llamaConfig, initParams, paramSpecs } from '../../../src/train/graph.js';
import { TrainedBpeTokenizer, trainBpe } from '../../../src/train/bpe-trainer.js';
import { mobyDickText } from '../../../src/train/data.js';
import { writeHfModel } from '../../../src/train/save-hf.js';
import { runQat, type QatJob } from '../../../src/pipeline/qat/qat.js';
import { permuteRotaryRows } from '../../../src/model/permute.js';
import { loadModel } from '../../../src/model/load.js';
import { storedBitsPerWeight } from '../../../src/model/tensor-source.js';
import { LLAMA_FTYPES } from '../../../src/core/ftype.js';
import { tempDir } from '../../helpers.js';

interface Fixture {
  dir: string;
  text: string;
  model: (hidden: number, inter: number) => Promise<string>;
}

async function fixture(): Promise<Fixture> {
  const dir = tempDir('bitscale-qat-');
  const text = mobyDickText(3);
  const tok = new TrainedBpeTokenizer(trainBpe(text, { vocabSize: 300 }));
  const textFile = join(dir, 'text.txt');
  writeFileSync(textFile, text.slice(0, 20000));
  return {
    dir,
    text: textFile,
    model: async (hidden, inter) => {
      const cfg = { ...llamaConfig({ vocabSize: 300, hiddenSize: hidden, intermediateSize: inter, nLayers: 1, nHeads: 4, context: 16 }), bosTokenId: tok.bosId, eosTokenId: tok.eosId };
      const modelDir = join(dir, `fp-${hidden}-${inter}`);
      await writeHfModel({ dir: modelDir, config: cfg, weights: initParams(cfg, 3), tokenizerJson: tok.toHfJson() });
      return modelDir;
    },
  };
}

const settings = { batch: 2, context: 16, threads: 1, valBatches: 2 };

/** Every parameter of an exported file in the rotate-half layout, as the trainer holds them. */
async function params(path: string): Promise<Map<string, Float32Array>> {
  const m = await loadModel(path);
  try {
    const out = new Map<string, Float32Array>();
    for (const [name, src] of m.tensors) {
      let w = await src.readF32();
      if (m.config.ropeLayout === 'interleaved' && /self_attn\.(q|k)_proj\.weight$/.test(name)) {
        w = permuteRotaryRows(w, name.includes('q_proj') ? m.config.nHeads : m.config.nKvHeads, m.config.headDim, 'interleaved', 'half');
      }
      out.set(name, w);
    }
    return out;
  } finally {
    await m.close();
  }
}

/** Distinct multiples of the row's step in a row: must be within the grid's level set. */
function assertOnGrid(w: Float32Array, N: number, K: number, levels: number[], what: string): void {
  for (let n = 0; n < N; n++) {
    const row = w.subarray(n * K, (n + 1) * K);
    const mags = [...new Set(Array.from(row, Math.abs))].filter((v) => v > 0).sort((a, b) => a - b);
    if (!mags.length) continue;
    const unit = Math.min(...levels.filter((l) => l > 0));
    const step = mags[0] / unit;
    for (const v of row) {
      const l = v / step;
      assert.ok(levels.includes(Math.round(l)) && Math.abs(l - Math.round(l)) < 1e-6, `${what} row ${n}: ${v} is not a grid level (step ${step})`);
    }
  }
}

const GRIDS: { bits: number; bitnet?: boolean; gguf: string; gptq: number; levels: number[] }[] = [
  { bits: 1, gguf: 'TQ2_0', gptq: 2, levels: [-1, 0, 1] },
  { bits: 1.58, gguf: 'TQ2_0', gptq: 2, levels: [-1, 0, 1] },
  { bits: 1.58, bitnet: true, gguf: 'TQ2_0', gptq: 2, levels: [-1, 0, 1] },
  { bits: 2, gguf: 'Q2_K', gptq: 3, levels: [-3, -1, 1, 3] },
  { bits: 3, gguf: 'Q3_K', gptq: 3, levels: [-4, -3, -2, -1, 0, 1, 2, 3] },
  { bits: 4, gguf: 'Q4_0', gptq: 4, levels: [-8, -7, -6, -5, -4, -3, -2, -1, 0, 1, 2, 3, 4, 5, 6, 7] },
];

test('bitscale qat: every grid → GGUF and GPTQ safetensors, both exact (rows of 256: TQ2_0, Q2_K, Q3_K, Q4_0)', { timeout: 120_000 }, async () => {
  const f = await fixture();
  try {
    const model = await f.model(256, 256);
    for (const g of GRIDS) {
      const label = `${g.bits}${g.bitnet ? ' BitNet' : ''}`;
      const job: QatJob = { model, bits: g.bits, bitnet: g.bitnet, text: [f.text], steps: 2, format: 'gguf', out: join(f.dir, 'q.gguf'), settings, overwrite: true };
      const a = await runQat(job);
      assert.deepEqual(a.ggmlTypes, [g.gguf], label);
      assert.deepEqual(a.notes, [], label);
      // labelled as llama.cpp labels such a file (Q3_K linears: Q3_K_S), not "all F32"
      const gm = await loadModel(join(f.dir, 'q.gguf'));
      assert.equal(gm.metadata['general.file_type'], LLAMA_FTYPES[g.gguf === 'Q3_K' ? 'Q3_K_S' : (g.gguf as 'Q4_0' | 'Q2_K' | 'TQ2_0')].id, label);
      await gm.close();
      assert.equal(a.lossExported, a.lossQat, `${label}: GGUF loss`);
      const b = await runQat({ ...job, format: 'safetensors', out: join(f.dir, 'q-st') });
      assert.deepEqual(b.packing, [`GPTQ int${g.gptq}`], label);
      assert.equal(b.lossExported, b.lossQat, `${label}: safetensors loss`);
      assert.equal(b.lossQat, a.lossQat, `${label}: same seed, same QAT model`);
      const qc = JSON.parse(readFileSync(join(f.dir, 'q-st', 'config.json'), 'utf8')).quantization_config;
      assert.deepEqual({ m: qc.quant_method, b: qc.bits, g: qc.group_size, s: qc.sym, d: qc.desc_act }, { m: 'gptq', b: g.gptq, g: -1, s: true, d: false }, label);
      const st = await loadModel(join(f.dir, 'q-st'));
      assert.equal(st.metadata['bitscale.qat.method'], a.method, label);
      const cfgSpecs = paramSpecs(st.config);
      await st.close();
      // the two containers, written independently from the same QAT weights, agree bit for bit
      const pg = await params(join(f.dir, 'q.gguf'));
      const ps = await params(join(f.dir, 'q-st'));
      for (const p of cfgSpecs) {
        const x = pg.get(p.name)!;
        const y = ps.get(p.name)!;
        for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) assert.fail(`${label} ${p.name}[${i}]: GGUF ${x[i]} vs safetensors ${y[i]}`);
        if (p.linear) assertOnGrid(y, p.shape[0], p.shape[1], g.levels, `${label} ${p.name}`);
      }
    }
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});

test('bitscale qat: rows that are not 256-blocks use Q4_0; not 32-blocks, F32 with a note; --ggml-type picks another exact container', { timeout: 60_000 }, async () => {
  const f = await fixture();
  try {
    // hidden 96: q/k/v/o/gate/up rows of 96 (Q4_0); down_proj rows of 80 (F32)
    const narrow = await f.model(96, 80);
    const a = await runQat({ model: narrow, bits: 2, text: [f.text], steps: 2, format: 'gguf', out: join(f.dir, 'n.gguf'), settings });
    assert.deepEqual(a.ggmlTypes, ['Q4_0']);
    assert.equal(a.notes!.length, 1);
    assert.match(a.notes![0], /down_proj.*80.*F32/);
    assert.equal(a.lossExported, a.lossQat);
    const m = await loadModel(join(f.dir, 'n.gguf'));
    assert.equal(m.tensors.get('model.layers.0.mlp.down_proj.weight')!.dtype, 'F32');
    assert.equal(m.tensors.get('model.layers.0.mlp.up_proj.weight')!.dtype, 'Q4_0');
    await m.close();
    // 3-bit GPTQ needs N·3 and K·3 to fill 32-bit words: [80, 96] and [96, 80] cannot, [96, 96] can
    const b = await runQat({ model: narrow, bits: 3, text: [f.text], steps: 2, format: 'safetensors', out: join(f.dir, 'n-st'), settings });
    assert.equal(b.lossExported, b.lossQat);
    assert.equal(b.notes!.length, 3, b.notes!.join('\n'));
    const s = await loadModel(join(f.dir, 'n-st'));
    const q = s.tensors.get('model.layers.0.self_attn.q_proj.weight')!;
    // codes 3 bits, plus per row one 3-bit zero and an f16 scale, plus the int32 g_idx per column
    assert.ok(Math.abs(storedBitsPerWeight(q) - (3 + (3 + 16 + 32) / 96)) < 1e-9, `q_proj stored at ${storedBitsPerWeight(q)} bpw`);
    await s.close();

    const wide = await f.model(256, 256);
    const t1 = await runQat({ model: wide, bits: 1.58, text: [f.text], steps: 2, format: 'gguf', ggmlType: 'TQ1_0', out: join(f.dir, 't1.gguf'), settings });
    assert.deepEqual(t1.ggmlTypes, ['TQ1_0']);
    assert.equal(t1.lossExported, t1.lossQat);
    const k4 = await runQat({ model: wide, bits: 4, text: [f.text], steps: 2, format: 'gguf', ggmlType: 'Q4_K', out: join(f.dir, 'k4.gguf'), settings });
    assert.deepEqual(k4.ggmlTypes, ['Q4_K']);
    assert.equal(k4.lossExported, k4.lossQat);
    await assert.rejects(runQat({ model: wide, bits: 3, text: [f.text], steps: 1, format: 'gguf', ggmlType: 'Q2_K', out: join(f.dir, 'x.gguf'), settings }), { code: 'bad_option' });
    await assert.rejects(runQat({ model: wide, bits: 3, text: [f.text], steps: 1, format: 'safetensors', ggmlType: 'Q3_K', out: join(f.dir, 'x'), settings }), { code: 'bad_option' });
    await assert.rejects(runQat({ model: wide, bits: 3, text: [f.text], steps: 1, format: 'safetensors', out: wide, overwrite: true, settings }), { code: 'would_overwrite_input' });
    const untouched = await loadModel(wide);
    assert.equal(untouched.tensors.get('model.layers.0.mlp.up_proj.weight')!.dtype, 'F32', 'the input model is untouched');
    await untouched.close();
  } finally {
    rmSync(f.dir, { recursive: true, force: true });
  }
});
