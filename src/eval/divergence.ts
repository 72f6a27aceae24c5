// Per-position comparison of two models' next-token distributions: log-softmax of a logits row,
// KL(P_ref ‖ P_test) and top-1 agreement. Shared by compareModels (eval), quantize's verification
// and the mixed-precision allocator's KL sensitivity.
// Legend: R = rows (positions), V = vocab.

/** Fills `out` [V] with row `row`'s log-softmax (float64) of logits [R, V]; returns the row's argmax (first on ties). */
export function logSoftmaxRow(logits: Float32Array, row: number, V: number, out: Float64Array): number {
  const o = row * V;
  let m = -Infinity;
  let arg = 0;
  for (let v = 0; v < V; v++) {
    if (logits[o + v] > m) {
      m = logits[o + v];
      arg = v;
    }
  }
  let s = 0;
  for (let v = 0; v < V; v++) s += Math.exp(logits[o + v] - m);
  const lse = m + Math.log(s);
  for (let v = 0; v < V; v++) out[v] = logits[o + v] - lse;
  return arg;
}

/** KL(P ‖ Q) of two distributions given as log-probabilities [V]. */
export function klDivergence(p: Float64Array, q: Float64Array): number {
  let kl = 0;
  for (let v = 0; v < p.length; v++) kl += Math.exp(p[v]) * (p[v] - q[v]);
  return kl;
}

/** Summed KL(P_ref ‖ P_test) and top-1 agreements over every row of two logits tensors [R, V]. */
export function compareLogitRows(ref: Float32Array, test: Float32Array, V: number): { klSum: number; agree: number; rows: number } {
  const p = new Float64Array(V);
  const q = new Float64Array(V);
  const rows = ref.length / V;
  let klSum = 0;
  let agree = 0;
  for (let r = 0; r < rows; r++) {
    const a = logSoftmaxRow(ref, r, V, p);
    const b = logSoftmaxRow(test, r, V, q);
    klSum += klDivergence(p, q);
    if (a === b) agree++;
  }
  return { klSum, agree, rows };
}

/**
 * The quantize checks' figures over windows: mean KL(P_ref ‖ P_test) per token, top-1 agreement,
 * the largest |Δ logit| and the reference's largest |logit| (the scale tolerances are stated in),
 * from each window's logits [T, V] added one pair at a time (a window's logits can be dropped after).
 */
export class LogitTally {
  private klSum = 0;
  private agree = 0;
  private rows = 0;
  maxAbs = 0;
  scale = 0;

  constructor(private readonly V: number) {}

  add(ref: Float32Array, test: Float32Array): void {
    const c = compareLogitRows(ref, test, this.V);
    this.klSum += c.klSum;
    this.agree += c.agree;
    this.rows += c.rows;
    for (let i = 0; i < ref.length; i++) {
      this.maxAbs = Math.max(this.maxAbs, Math.abs(ref[i] - test[i]));
      this.scale = Math.max(this.scale, Math.abs(ref[i]));
    }
  }

  get kld(): number {
    return this.klSum / this.rows;
  }

  get top1(): number {
    return this.agree / this.rows;
  }
}
