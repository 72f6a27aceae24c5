// Scoring with an output head stored in row parts (vocab ranges; native-host.ts splits a large head
// so): log softmax(x·Wᵀ)[target] computed one part at a time over every token of a chunk, with the
// log-sum-exp combined across parts, so each part's weights are applied (and, in the unpacked
// kernels, dequantized) once per chunk instead of once per logits chunk, and only one part's logits
// [B, Tc, Vp] exist at a time. With a head part of 2,048 rows and a window of 512 tokens, one
// token chunk covers the window. Per part p (rows v0 … v0 + Vp − 1):
//   m_p = max l,  s_p = Σ exp(l − m_p) (float32 over ≤ 512 values, float64 over those sums),
//   the target's logit where the target falls in the part (GatherElements), 0 elsewhere;
// then lse = M + log Σ_p s_p·exp(m_p − M) in float64 with M = max_p m_p. Same two-level summation
// as llama.ts's targetLogProbs, so both agree to float rounding (test/engine/head-score.test.ts).
// Legend: B = sequences, T = tokens, Tc = tokens per chunk, V = vocab, Vp = rows of a part, P = parts.

import type { GraphBuilder, Value } from './ir.js';

/** One vocab range of the head: `rows` logits per token, computed by `apply` ([B, Tc, E] → [B, Tc, rows]). */
export interface HeadPart {
  rows: number;
  apply: (h: Value) => Value;
}

/** default logits of one part for one token chunk: about 4M floats (16 MB) */
const CHUNK_FLOATS = 1 << 22;

/** Largest divisor of `n` that is at most 512 (the inner length of the two-level exp sum). */
function innerSumLength(n: number): number {
  for (let f = Math.min(512, n); f > 1; f--) if (n % f === 0) return f;
  return 1;
}

/**
 * `x` unchanged (+0 added) but computed after `dep` [B, Tc, 1]: Less(dep, −∞) is false for every
 * value (NaN included), so the cast adds zeros. onnxruntime orders nodes by readiness, and parts that
 * depend only on the head input would all run their matmuls first and hold every part's logits at
 * once (measured: the 63 parts of a 1B head, 264 MB at 512 tokens); chained this way each part
 * starts once the previous one's logits have been read for the last time, so about one part's
 * logits are live at a time.
 */
export function after(b: GraphBuilder, x: Value, dep: Value): Value {
  return b.add(x, b.cast(b.less(dep, -Infinity), 'F32'));
}

/** Per part: max [B, Tc, 1] F32, Σ exp(l − max) [B, Tc, 1] F64, and the target's logit or 0 [B, Tc, 1] F32. */
function partTerms(b: GraphBuilder, logits: Value, target: Value, v0: number): { max: Value; sum: Value; picked: Value } {
  const [B, Tc, Vp] = logits.shape;
  const max = b.max(logits, 2, true);
  const e = b.exp(b.sub(logits, max));
  const f = innerSumLength(Vp);
  const sum = b.sum(b.cast(b.sum(b.reshape(e, [B, Tc, Vp / f, f]), 3, false), 'F64'), 2, true);
  // target − v0 in float32 (exact: ids < 2^24); in range ⟺ |d − (Vp − 1)/2| < Vp/2 for integer d
  const d = b.sub(target, v0);
  const inside = b.less(b.abs(b.sub(d, (Vp - 1) / 2)), Vp / 2);
  const idx = b.cast(b.where(inside, d, 0), 'I64');
  const picked = b.where(inside, b.gatherElements(logits, idx, 2), 0);
  return { max, sum, picked };
}

/**
 * log softmax(head(xf))[targets] [B, Tq] in float64 for a head given as row parts in vocab order.
 * xf [B, Tq, E], targets I64 [B, Tq].
 */
export function partedTargetLogProbs(b: GraphBuilder, xf: Value, parts: readonly HeadPart[], targets: Value, chunkFloats = CHUNK_FLOATS): Value {
  const [B, Tq] = xf.shape;
  const rows = Math.max(1, Math.floor(chunkFloats / (B * Math.max(...parts.map((p) => p.rows)))));
  const out: Value[] = [];
  for (let t0 = 0; t0 < Tq; t0 += rows) {
    const t1 = Math.min(Tq, t0 + rows);
    const Tc = t1 - t0;
    const h = Tq > rows ? b.slice(xf, [t0], [t1], [1]) : xf;
    const tg = b.cast(b.reshape(Tq > rows ? b.slice(targets, [t0], [t1], [1]) : targets, [B, Tc, 1]), 'F32');
    const maxes: Value[] = [];
    const sums: Value[] = [];
    let picked: Value | null = null;
    let v0 = 0;
    let prev: Value | null = null;
    for (const p of parts) {
      const t = partTerms(b, p.apply(prev ? after(b, h, prev) : h), tg, v0);
      // the part's last readers of its logits are the exp sum and the target pick
      prev = b.add(b.cast(t.sum, 'F32'), t.picked);
      maxes.push(t.max);
      sums.push(t.sum);
      picked = picked ? b.add(picked, t.picked) : t.picked; // one part holds the target; the others add 0
      v0 += p.rows;
    }
    const m = b.cast(b.concat(maxes, 2), 'F64'); // [B, Tc, P]
    const M = b.max(m, 2, true);
    const s = b.sum(b.mul(b.concat(sums, 2), b.exp(b.sub(m, M))), 2, true);
    const lse = b.add(M, b.log(s));
    out.push(b.reshape(b.sub(b.cast(picked!, 'F64'), lse), [B, Tc]));
  }
  return out.length === 1 ? out[0] : b.concat(out, 1);
}
