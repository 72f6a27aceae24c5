// A slow, plain-loop forward pass of the Llama family in float64: the test oracle for the engine.
// It shares no code with src/engine (its own RoPE, attention and norms), reads weights through a
// getter in canonical names, and returns logits [T, V] for every position of a sequence.
// Legend: T = tokens, V = vocab, E = hidden, F = ffn, H = query heads, Hk = KV heads, D = head dim.

import { ConfigError } from '../core/errors.js';
import type { ModelConfig } from './config.js';

export type TensorGetter = (name: string) => Float32Array;

/** y[N] = W[N, K] · x[K] (+ bias) */
function matvec(w: Float32Array, x: Float64Array, N: number, K: number, bias?: Float32Array): Float64Array {
  const y = new Float64Array(N);
  for (let n = 0; n < N; n++) {
    let s = 0;
    const o = n * K;
    for (let k = 0; k < K; k++) s += w[o + k] * x[k];
    y[n] = s + (bias ? bias[n] : 0);
  }
  return y;
}

function rmsnorm(x: Float64Array, w: Float32Array, eps: number, off = 0, len = x.length): void {
  let ss = 0;
  for (let i = 0; i < len; i++) ss += x[off + i] * x[off + i];
  const inv = 1 / Math.sqrt(ss / len + eps);
  for (let i = 0; i < len; i++) x[off + i] = x[off + i] * inv * w[i];
}

/** Inverse RoPE frequencies in float64, with linear / llama3 scaling. */
export function referenceInvFreq(c: ModelConfig): Float64Array {
  const D = c.headDim;
  const f = Float64Array.from({ length: D / 2 }, (_, i) => 1 / Math.pow(c.ropeTheta, (2 * i) / D));
  const s = c.ropeScaling;
  if (!s) return f;
  if (s.type === 'linear') return f.map((v) => v / s.factor);
  if (s.type === 'llama3') {
    const lo = s.lowFreqFactor ?? 1;
    const hi = s.highFreqFactor ?? 4;
    const old = s.originalMaxPositionEmbeddings ?? 8192;
    return f.map((v) => {
      const wl = (2 * Math.PI) / v;
      if (wl < old / hi) return v;
      if (wl > old / lo) return v / s.factor;
      const t = (old / wl - lo) / (hi - lo);
      return (1 - t) * (v / s.factor) + t * v;
    });
  }
  throw new ConfigError('unsupported', 'RoPE scaling type is not supported', { field: 'rope_scaling.type', found: s.type });
}

function rope(v: Float64Array, off: number, D: number, pos: number, inv: Float64Array, layout: ModelConfig['ropeLayout']): void {
  for (let i = 0; i < D / 2; i++) {
    const a = pos * inv[i];
    const cs = Math.cos(a);
    const sn = Math.sin(a);
    const i0 = layout === 'interleaved' ? off + 2 * i : off + i;
    const i1 = layout === 'interleaved' ? off + 2 * i + 1 : off + i + D / 2;
    const x0 = v[i0];
    const x1 = v[i1];
    v[i0] = x0 * cs - x1 * sn;
    v[i1] = x0 * sn + x1 * cs;
  }
}

/** Logits [T, V] in float64 for `tokens` at positions 0 … T − 1. */
export function referenceForward(c: ModelConfig, get: TensorGetter, tokens: readonly number[]): Float64Array {
  const { hiddenSize: E, nHeads: H, nKvHeads: Hk, headDim: D, vocabSize: V, intermediateSize: F } = c;
  const T = tokens.length;
  const G = H / Hk;
  const inv = referenceInvFreq(c);
  const emb = get('model.embed_tokens.weight');
  const xs: Float64Array[] = tokens.map((t) => Float64Array.from(emb.subarray(t * E, (t + 1) * E)));
  // per layer caches of roped keys and values: [T][Hk·D]
  for (let l = 0; l < c.nLayers; l++) {
    const p = `model.layers.${l}.`;
    const ks: Float64Array[] = [];
    const vs: Float64Array[] = [];
    const qs: Float64Array[] = [];
    for (let t = 0; t < T; t++) {
      const h = Float64Array.from(xs[t]);
      rmsnorm(h, get(`${p}input_layernorm.weight`), c.rmsNormEps);
      const bias = (n: string) => (c.attentionBias ? get(`${p}self_attn.${n}_proj.bias`) : undefined);
      const q = matvec(get(`${p}self_attn.q_proj.weight`), h, H * D, E, bias('q'));
      const k = matvec(get(`${p}self_attn.k_proj.weight`), h, Hk * D, E, bias('k'));
      const v = matvec(get(`${p}self_attn.v_proj.weight`), h, Hk * D, E, bias('v'));
      for (let hh = 0; hh < H; hh++) {
        if (c.qkNorm) rmsnorm(q, get(`${p}self_attn.q_norm.weight`), c.rmsNormEps, hh * D, D);
        rope(q, hh * D, D, t, inv, c.ropeLayout);
      }
      for (let hh = 0; hh < Hk; hh++) {
        if (c.qkNorm) rmsnorm(k, get(`${p}self_attn.k_norm.weight`), c.rmsNormEps, hh * D, D);
        rope(k, hh * D, D, t, inv, c.ropeLayout);
      }
      qs.push(q);
      ks.push(k);
      vs.push(v);
    }
    for (let t = 0; t < T; t++) {
      const ctx = new Float64Array(H * D);
      for (let hh = 0; hh < H; hh++) {
        const kh = Math.floor(hh / G);
        const sc = new Float64Array(t + 1);
        let m = -Infinity;
        for (let j = 0; j <= t; j++) {
          let s = 0;
          for (let d = 0; d < D; d++) s += qs[t][hh * D + d] * ks[j][kh * D + d];
          sc[j] = s / Math.sqrt(D);
          m = Math.max(m, sc[j]);
        }
        let z = 0;
        for (let j = 0; j <= t; j++) z += sc[j] = Math.exp(sc[j] - m);
        for (let j = 0; j <= t; j++) for (let d = 0; d < D; d++) ctx[hh * D + d] += (sc[j] / z) * vs[j][kh * D + d];
      }
      const o = matvec(get(`${p}self_attn.o_proj.weight`), ctx, E, H * D);
      for (let e = 0; e < E; e++) xs[t][e] += o[e];
      const h2 = Float64Array.from(xs[t]);
      rmsnorm(h2, get(`${p}post_attention_layernorm.weight`), c.rmsNormEps);
      const g = matvec(get(`${p}mlp.gate_proj.weight`), h2, F, E);
      const u = matvec(get(`${p}mlp.up_proj.weight`), h2, F, E);
      for (let f = 0; f < F; f++) g[f] = (g[f] / (1 + Math.exp(-g[f]))) * u[f];
      const d = matvec(get(`${p}mlp.down_proj.weight`), g, E, F);
      for (let e = 0; e < E; e++) xs[t][e] += d[e];
    }
  }
  const head = c.tiedEmbeddings ? emb : get('lm_head.weight');
  const out = new Float64Array(T * V);
  for (let t = 0; t < T; t++) {
    rmsnorm(xs[t], get('model.norm.weight'), c.rmsNormEps);
    out.set(matvec(head, xs[t], V, E), t * V);
  }
  return out;
}
