// Rotary position embeddings: host-side frequency tables and the in-graph rotation for both weight
// layouts. Tables are computed the way float32 implementations do (llama2.c run.c, HF transformers):
// inverse frequencies and angles rounded to float32, cos/sin of the float32 angle.
// Legend: T = tokens, P = table positions, D = head dim, Dr = D / 2 rotary pairs, Hx = heads.
// In the graph the rotation is x ⊙ cos + (x · R) ⊙ sin with a constant signed permutation R (4 nodes).

import { ConfigError } from '../core/errors.js';
import type { ModelConfig } from '../model/config.js';
import { llama3KeepWeight } from '../model/rope-scaling.js';
import type { Dim, GraphBuilder, Value } from './ir.js';

/** Inverse frequencies [Dr] with the config's RoPE scaling applied (float32 values). */
export function ropeInvFreq(c: ModelConfig): Float64Array {
  const D = c.headDim;
  const inv = new Float64Array(D / 2);
  for (let i = 0; i < D / 2; i++) inv[i] = Math.fround(1 / Math.fround(Math.pow(c.ropeTheta, (2 * i) / D)));
  const s = c.ropeScaling;
  if (!s) return inv;
  switch (s.type) {
    case 'linear':
      for (let i = 0; i < inv.length; i++) inv[i] = Math.fround(inv[i] / s.factor);
      return inv;
    case 'llama3': {
      // Llama 3.1 (model/rope-scaling.ts): long wavelengths divided by `factor`, short ones kept, a smooth blend between
      for (let i = 0; i < inv.length; i++) {
        const f = inv[i];
        const w = llama3KeepWeight(s, f);
        inv[i] = Math.fround((1 - w) * (f / s.factor) + w * f);
      }
      return inv;
    }
    default:
      throw new ConfigError('unsupported', 'RoPE scaling type is not supported', { field: 'rope_scaling.type', expected: 'linear or llama3', found: s.type });
  }
}

/** cos and sin tables [P, Dr] as float32. */
export function ropeTables(c: ModelConfig, positions: number): { cos: Float32Array; sin: Float32Array } {
  const inv = ropeInvFreq(c);
  const Dr = inv.length;
  const cos = new Float32Array(positions * Dr);
  const sin = new Float32Array(positions * Dr);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < Dr; i++) {
      const a = Math.fround(p * inv[i]);
      cos[p * Dr + i] = Math.cos(a);
      sin[p * Dr + i] = Math.sin(a);
    }
  }
  return { cos, sin };
}

/**
 * The constant R [D, D] with (x · R) = "rotate" x: for 'interleaved' pairs (2i, 2i+1) → (−x[2i+1], x[2i]);
 * for 'half' (i, i + D/2) → (−x[i + D/2], x[i]). Entries are 0 and ±1, so x · R is exact.
 */
export function rotationMatrix(D: number, layout: 'interleaved' | 'half'): Float32Array {
  const R = new Float32Array(D * D);
  for (let i = 0; i < D / 2; i++) {
    const [a, b] = layout === 'interleaved' ? [2 * i, 2 * i + 1] : [i, i + D / 2];
    R[b * D + a] = -1; // out[a] = −x[b]
    R[a * D + b] = 1; // out[b] = x[a]
  }
  return R;
}

/** cos/sin tables [P, D] expanded to every element of the head (pair partners share an angle). */
export function expandedRopeTables(c: ModelConfig, positions: number): { cos: Float32Array; sin: Float32Array } {
  const t = ropeTables(c, positions);
  const D = c.headDim;
  const Dr = D / 2;
  const cos = new Float32Array(positions * D);
  const sin = new Float32Array(positions * D);
  for (let p = 0; p < positions; p++) {
    for (let i = 0; i < Dr; i++) {
      const [a, b] = c.ropeLayout === 'interleaved' ? [2 * i, 2 * i + 1] : [i, i + Dr];
      cos[p * D + a] = cos[p * D + b] = t.cos[p * Dr + i];
      sin[p * D + a] = sin[p * D + b] = t.sin[p * Dr + i];
    }
  }
  return { cos, sin };
}

/**
 * Rotates x [..., T, Hx, D]: y = x ⊙ cos + (x · R) ⊙ sin, with cos/sin [T, D] gathered for the
 * positions (expandedRopeTables; [B, T, D] where each sequence has its own positions) and R from
 * rotationMatrix: per pair, y_a = x_a·c − x_b·s and y_b = x_b·c + x_a·s, the same products as the
 * textbook form in four nodes.
 */
export function applyRopeRotate<N extends Dim>(b: GraphBuilder<N>, x: Value<N>, cos: Value<N>, sin: Value<N>, R: Value<N>): Value<N> {
  // [..., T, D] → [..., T, 1, D]: one angle per position, shared by the heads
  const perHead = (t: Value<N>) => b.reshape(t, [...t.shape.slice(0, -1), 1, ...t.shape.slice(-1)]);
  const c = perHead(cos);
  const s = perHead(sin);
  return b.add(b.mul(x, c), b.mul(b.matmul(x, R), s));
}

/**
 * Rotates x [..., T, Hx, D] by the angles of its positions. With a layout: the textbook form, cos/sin
 * [T, Dr] (ropeTables rows gathered for the positions), 'interleaved' rotating pairs (2i, 2i+1) and
 * 'half' (i, i + D/2). With a rotation matrix R instead: applyRopeRotate (cos/sin [T, D] from
 * expandedRopeTables). Both give the same values.
 */
export function applyRope(b: GraphBuilder, x: Value, cos: Value, sin: Value, layoutOrR: 'interleaved' | 'half' | Value): Value {
  if (typeof layoutOrR !== 'string') return applyRopeRotate(b, x, cos, sin, layoutOrR);
  const layout = layoutOrR;
  const shape = x.shape;
  const [T, Hx, D] = shape.slice(-3);
  const lead = shape.slice(0, -3);
  const Dr = D / 2;
  if (layout === 'interleaved') {
    const c = b.reshape(cos, [T, 1, Dr, 1]);
    const s = b.reshape(sin, [T, 1, Dr, 1]);
    const xp = b.reshape(x, [...lead, T, Hx, Dr, 2]);
    const last = xp.shape.length - 1;
    const x0 = b.slice(xp, [0], [1], [last]);
    const x1 = b.slice(xp, [1], [2], [last]);
    const y0 = b.sub(b.mul(x0, c), b.mul(x1, s));
    const y1 = b.add(b.mul(x0, s), b.mul(x1, c));
    return b.reshape(b.concat([y0, y1], last), [...shape]);
  }
  const c = b.reshape(cos, [T, 1, Dr]);
  const s = b.reshape(sin, [T, 1, Dr]);
  const last = shape.length - 1;
  const x0 = b.slice(x, [0], [Dr], [last]);
  const x1 = b.slice(x, [Dr], [D], [last]);
  return b.concat([b.sub(b.mul(x0, c), b.mul(x1, s)), b.add(b.mul(x1, c), b.mul(x0, s))], last);
}
