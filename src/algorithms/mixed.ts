// Mixed-precision bit allocation: choose one quantization type per tensor so that the whole
// model meets a bits-per-weight (or byte) budget with the least total sensitivity-weighted error.
// Like llama.cpp's Q4_K_M recipe (some tensors one step up), but chosen from measured data.
// Errors come from `measureSensitivity` (‖(W − Ŵ)‖²_H with the layer Hessian, or the imatrix
// diagonal) or from a caller's callback (e.g. a KL-divergence contribution from the engine).
// Allocators: 'dp' (default) solves the multiple-choice knapsack by dynamic programming over the
// budget cut into RESOLUTION units (each tensor's cost rounded up, so the plan always fits);
// 'lagrangian' relaxes to min Σ e + λ·Σ b with λ found by bisection; 'greedy' starts from the
// cheapest types and buys the best Δerror/Δbits upgrades. Every method ends with that greedy fill
// of whatever budget is left, measured in exact bits.
// Legend: N = rows, K = columns of a tensor; bits are totals per tensor (bpw × numel).

import { ConfigError } from '../core/errors.js';

export interface Candidate {
  /** type label (a ggml type name or a scheme string) */
  type: string;
  /** total storage bits of the tensor in this type */
  bits: number;
  /** error if quantized to this type (any additive measure) */
  error: number;
}

export interface TensorSensitivity {
  name: string;
  numel: number;
  candidates: Candidate[];
}

export type BitBudget = { bitsPerWeight: number } | { totalBytes: number };

export interface AllocationPlan {
  version: 1;
  method: 'dp' | 'lagrangian' | 'greedy';
  budgetBits: number;
  totalBits: number;
  bitsPerWeight: number;
  totalError: number;
  /** the Lagrange multiplier of the relaxed solution (lagrangian only) */
  lambda: number | null;
  tensors: { name: string; type: string; bits: number; error: number }[];
}

function budgetBits(tensors: TensorSensitivity[], b: BitBudget): number {
  if ('bitsPerWeight' in b) return b.bitsPerWeight * tensors.reduce((a, t) => a + t.numel, 0);
  return b.totalBytes * 8;
}

function validate(tensors: TensorSensitivity[]): void {
  for (const t of tensors) {
    if (!t.candidates.length) throw new ConfigError('bad_option', 'tensor has no candidate types', { tensor: t.name });
    for (const c of t.candidates) {
      if (!(c.bits >= 0) || !(c.error >= 0) || !Number.isFinite(c.error)) {
        throw new ConfigError('bad_option', 'candidate bits and error must be finite and non-negative', { tensor: t.name, field: c.type, found: c });
      }
    }
  }
}

function pick(t: TensorSensitivity, lambda: number): number {
  let best = 0;
  let bestV = Infinity;
  t.candidates.forEach((c, i) => {
    const v = c.error + lambda * c.bits;
    if (v < bestV || (v === bestV && c.bits < t.candidates[best].bits)) {
      bestV = v;
      best = i;
    }
  });
  return best;
}

function minBitsIndex(t: TensorSensitivity): number {
  let b = 0;
  t.candidates.forEach((c, i) => {
    const cb = t.candidates[b];
    if (c.bits < cb.bits || (c.bits === cb.bits && c.error < cb.error)) b = i;
  });
  return b;
}

/** Spends leftover budget on the single upgrade with the best error drop per extra bit, repeatedly. */
function greedyFill(tensors: TensorSensitivity[], choice: number[], budget: number): void {
  let used = tensors.reduce((a, t, i) => a + t.candidates[choice[i]].bits, 0);
  for (;;) {
    let bestGain = 0;
    let bestT = -1;
    let bestC = -1;
    tensors.forEach((t, i) => {
      const cur = t.candidates[choice[i]];
      t.candidates.forEach((c, j) => {
        const db = c.bits - cur.bits;
        const de = cur.error - c.error;
        if (de <= 0 || used + db > budget) return;
        const gain = db > 0 ? de / db : Infinity;
        if (gain > bestGain) {
          bestGain = gain;
          bestT = i;
          bestC = j;
        }
      });
    });
    if (bestT < 0) return;
    used += tensors[bestT].candidates[bestC].bits - tensors[bestT].candidates[choice[bestT]].bits;
    choice[bestT] = bestC;
  }
}

function plan(tensors: TensorSensitivity[], choice: number[], method: AllocationPlan['method'], budget: number, lambda: number | null): AllocationPlan {
  const rows = tensors.map((t, i) => ({ name: t.name, type: t.candidates[choice[i]].type, bits: t.candidates[choice[i]].bits, error: t.candidates[choice[i]].error }));
  const totalBits = rows.reduce((a, r) => a + r.bits, 0);
  const numel = tensors.reduce((a, t) => a + t.numel, 0);
  return {
    version: 1,
    method,
    budgetBits: budget,
    totalBits,
    bitsPerWeight: numel ? totalBits / numel : 0,
    totalError: rows.reduce((a, r) => a + r.error, 0),
    lambda,
    tensors: rows,
  };
}

/**
 * Chooses a type per tensor meeting the budget. Throws ConfigError('bad_option') when even the
 * smallest candidates do not fit.
 */
export function allocateBits(tensors: TensorSensitivity[], budget: BitBudget, method: AllocationPlan['method'] = 'dp'): AllocationPlan {
  validate(tensors);
  const B = budgetBits(tensors, budget);
  const minChoice = tensors.map(minBitsIndex);
  const minBits = tensors.reduce((a, t, i) => a + t.candidates[minChoice[i]].bits, 0);
  if (minBits > B) {
    throw new ConfigError('bad_option', 'the bit budget is below the smallest candidate types', { field: 'target', expected: `≥ ${minBits} bits`, found: B });
  }
  if (method === 'dp') {
    const choice = dpChoice(tensors, B);
    greedyFill(tensors, choice, B);
    return plan(tensors, choice, 'dp', B, null);
  }
  if (method === 'greedy') {
    const choice = minChoice.slice();
    greedyFill(tensors, choice, B);
    return plan(tensors, choice, 'greedy', B, null);
  }
  const bitsAt = (lambda: number): number => tensors.reduce((a, t) => a + t.candidates[pick(t, lambda)].bits, 0);
  // λ large enough that every tensor takes its cheapest option
  let hi = 1;
  while (bitsAt(hi) > B && hi < 1e300) hi *= 4;
  let lo = 0;
  if (bitsAt(0) <= B) {
    hi = 0;
  } else {
    for (let it = 0; it < 200; it++) {
      const mid = (lo + hi) / 2;
      if (bitsAt(mid) <= B) hi = mid;
      else lo = mid;
      if (hi - lo <= 1e-12 * hi) break;
    }
  }
  const choice = tensors.map((t) => pick(t, hi));
  greedyFill(tensors, choice, B);
  return plan(tensors, choice, 'lagrangian', B, hi);
}

/** Budget units for the dynamic program (memory: tensors × RESOLUTION bytes). */
const RESOLUTION = 20000;

function dpChoice(tensors: TensorSensitivity[], B: number): number[] {
  const unit = B / RESOLUTION;
  const U = RESOLUTION;
  const cost = tensors.map((t) => t.candidates.map((c) => Math.ceil(c.bits / unit - 1e-9)));
  // best[u] = least error using at most u units for the tensors so far
  let best = new Float64Array(U + 1);
  const pickAt = tensors.map(() => new Int16Array(U + 1).fill(-1));
  for (let i = 0; i < tensors.length; i++) {
    const next = new Float64Array(U + 1).fill(Infinity);
    const cand = tensors[i].candidates;
    for (let j = 0; j < cand.length; j++) {
      const cj = cost[i][j];
      const ej = cand[j].error;
      for (let u = cj; u <= U; u++) {
        const v = best[u - cj] + ej;
        if (v < next[u]) {
          next[u] = v;
          pickAt[i][u] = j;
        }
      }
    }
    best = next;
  }
  const choice = new Array<number>(tensors.length);
  let u = U;
  for (let i = tensors.length - 1; i >= 0; i--) {
    const j = pickAt[i][u];
    // rounding up can make the DP infeasible where exact bits fit; fall back to the cheapest
    if (j < 0) return tensors.map(minBitsIndex);
    choice[i] = j;
    u -= cost[i][j];
  }
  return choice;
}

/** The plan for one type everywhere (the baseline a mixed plan is compared with). */
export function uniformPlan(tensors: TensorSensitivity[], type: string): AllocationPlan {
  const choice = tensors.map((t) => {
    const i = t.candidates.findIndex((c) => c.type === type);
    if (i < 0) throw new ConfigError('bad_option', `tensor has no candidate of type ${type}`, { tensor: t.name, field: 'type', found: type });
    return i;
  });
  const total = tensors.reduce((a, t, i) => a + t.candidates[choice[i]].bits, 0);
  return plan(tensors, choice, 'greedy', total, null);
}
