// One quantizer per scheme name (issue #16). For every int scheme, the weights that
//   - `bitscale quantize --method rtn` computes (quantize-layer's quantizeLayerLinears: the pipeline's
//     grids) and writes (fake-quant safetensors; GPTQ-packed and compressed-tensors read back by loadModel),
//   - quant's fakeQuant,
//   - the engine's fake-quant weights (prepareHostModel's `weights`: `eval --w-bits SCHEME`),
//   - the low-precision trainer's forward weights (`train --weights SCHEME`),
// are equal with atol 0; NF4 through the pipeline's grid equals fakeQuant too, from the one NF4 table.
// Legend: N = rows (output features), K = input features.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Rng } from '../../../src/core/rng.js';
import { prepareHostModel, isLinearWeight } from '../../../src/engine/host.js';
import { loadModel } from '../../../src/model/load.js';
import type { ModelWeights } from '../../../src/model/weights.js';
import { fakeQuant, formatScheme, NF4_LEVELS, parseScheme } from '../../../src/quant/index.js';
import { quantizeLayerLinears } from '../../../src/pipeline/quantize/layer.js';
import { quantizeModel } from '../../../src/pipeline/quantize/quantize.js';
import { parseLpSpec } from '../../../src/train/lowprec.js';
import { Trainer, TRAIN_DEFAULTS } from '../../../src/train/trainer.js';
import { syntheticModel, tinyConfig } from '../../model/synthetic.js';
import { tempDir } from '../../helpers.js';

const INT_SCHEMES = [
  'int2-g32', 'int3-g32', 'int4-g32', 'int5-g64', 'int8-g32', 'int4-channel', 'int8-channel',
  'int4-g32-asym', 'int3-g64-asym', 'int2-channel-asym', 'int6-channel-asym-bf16',
  'int4-g32-restricted', 'int3-channel-restricted', 'int4-g32-away', 'int4-g32-f32', 'int4-g64-bf16', 'int8-tensor',
];

/** A one-layer Llama (K = 64 or 128) whose q_proj holds the awkward groups: all zero, all positive, one outlier. */
function awkwardModel(): ModelWeights {
  const m = syntheticModel(tinyConfig({ hiddenSize: 64, intermediateSize: 128, nLayers: 1, nHeads: 4, nKvHeads: 2, headDim: 16 }), 5);
  const q = m.tensors.get('model.layers.0.self_attn.q_proj.weight')!;
  const rng = new Rng(6);
  const data = rng.fillNormal(new Float32Array(64 * 64), 0, 0.05);
  data.fill(0, 0, 32); // row 0, group 0: zeros (scale 0)
  for (let i = 64; i < 96; i++) data[i] = Math.abs(data[i]); // row 1, group 0: no negative value
  data[200] = 1.7; // row 3: one outlier
  m.tensors.set(q.name, { ...q, readF32: async () => data.slice(), read: async () => ({ dtype: 'F32', shape: q.shape, data: data.slice() }) });
  return m;
}

const same = (a: Float32Array, b: Float32Array, what: string) => {
  assert.equal(a.length, b.length, what);
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) assert.fail(`${what}: [${i}] ${a[i]} vs ${b[i]}`);
};

test('every int scheme: pipeline RTN = fakeQuant = engine fake-quant weights = trainer forward weights (atol 0)', { timeout: 120_000 }, async () => {
  const m = awkwardModel();
  const float = await prepareHostModel(m);
  const linears = [...float.tensors.keys()].filter(isLinearWeight);
  assert.equal(linears.length, 7);
  const shapeOf = (n: string) => m.tensors.get(n)!.shape;
  for (const s of INT_SCHEMES) {
    const scheme = parseScheme(s);
    const host = await prepareHostModel(m);
    const perTensor = scheme.kind === 'int' && scheme.granularity.kind === 'tensor';
    // the quantize pipeline rounds linears per group or per output channel; a per-tensor scheme is refused
    if (perTensor) await assert.rejects(quantizeLayerLinears(host, 0, null, { method: 'rtn', scheme }), { code: 'unsupported' });
    else await quantizeLayerLinears(host, 0, null, { method: 'rtn', scheme });
    const engine = await prepareHostModel(m, { weights: scheme });
    const tr = await Trainer.create(m.config, {
      ...TRAIN_DEFAULTS, batch: 1, context: 8, threads: 1,
      lowPrecision: { weights: parseLpSpec(formatScheme(scheme), 'weights'), activations: null, kv: null },
    }, float.tensors);
    try {
      const trained = tr.effectiveWeights();
      for (const n of linears) {
        const want = fakeQuant(float.tensors.get(n)!, shapeOf(n), scheme, { name: n });
        if (!perTensor) same(host.tensors.get(n)!, want, `${s} pipeline RTN ${n}`);
        same(engine.tensors.get(n)!, want, `${s} engine ${n}`);
        same(trained.get(n)!, want, `${s} trainer ${n}`);
      }
    } finally {
      await tr.release();
    }
  }
});

test('NF4: the pipeline\'s code-book grid rounds as fakeQuant does, from the one NF4 table', async () => {
  const m = awkwardModel();
  for (const s of ['nf4-g32', 'nf4-g64-f32', 'nf4-channel']) {
    const scheme = parseScheme(s);
    const host = await prepareHostModel(m);
    const float = await prepareHostModel(m);
    await quantizeLayerLinears(host, 0, null, { method: 'rtn', scheme });
    for (const [n, w] of float.tensors) {
      if (isLinearWeight(n)) same(host.tensors.get(n)!, fakeQuant(w, m.tensors.get(n)!.shape, scheme), `${s} ${n}`);
    }
  }
  // the levels are REFERENCE §7's, and no other module carries a copy of them
  assert.equal(NF4_LEVELS[1], Math.fround(-0.6961928009986877));
  const copies: string[] = [];
  const walk = (dir: string) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (p.endsWith('.ts') && readFileSync(p, 'utf8').includes('0.6961928009986877')) copies.push(p);
    }
  };
  walk(resolve('src'));
  assert.deepEqual(copies, [resolve('src/quant/codebook.ts')]);
});

test('files `quantize` writes hold the same weights: fake-quant, GPTQ-packed and compressed-tensors reloads (default model)', { timeout: 180_000 }, async () => {
  const MODEL = resolve('assets/default-model');
  const dir = tempDir('bitscale-oneq-');
  const float = await loadModel(MODEL);
  try {
    const cases: [format: 'fakequant' | 'safetensors' | 'compressed-tensors', scheme: string, stored: string][] = [
      ['fakequant', 'int3-g64', 'int3-g64'],
      ['safetensors', 'int4-g32', 'int4-g32'],
      ['safetensors', 'int3-g128-asym', 'int3-g128-asym'],
      // packed formats store f16 scales: the scheme used (and reported) is the -f16 one
      ['compressed-tensors', 'int8-channel', 'int8-channel-f16'],
    ];
    for (const [format, s, stored] of cases) {
      const out = join(dir, `${format}-${s}`);
      const r = await quantizeModel({ model: MODEL, out, format, scheme: s, method: 'rtn', verify: false });
      assert.equal(r.scheme, stored);
      const scheme = parseScheme(stored);
      const back = await loadModel(out);
      const engine = await prepareHostModel(float, { weights: scheme });
      try {
        let n = 0;
        for (const [name, src] of float.tensors) {
          if (!isLinearWeight(name)) continue;
          const want = fakeQuant(await src.readF32(), src.shape, scheme, { name });
          same(await back.tensors.get(name)!.readF32(), want, `${format} ${s} ${name}`);
          same(engine.tensors.get(name)!, want, `engine ${s} ${name}`);
          n++;
        }
        assert.equal(n, 28);
      } finally {
        await back.close();
      }
    }
  } finally {
    await float.close();
  }
});
