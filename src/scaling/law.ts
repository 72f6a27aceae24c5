// The precision-aware scaling law as pure functions (Kumar et al. 2024, ../shared/REFERENCE.md §1).
//
// Legend: N = non-embedding parameters, D = training tokens, P_w / P_a / P_kv = training bit widths
// (undefined = trained in high precision, which contributes a factor of exactly 1), P_post = weight
// bit width after post-training quantization (undefined = no PTQ). Losses are nats per token.
//
//   base:     L(N, D)        = A·N^−α + B·D^−β + E                                   (§1.2)
//   training: N_eff          = N·Π_x (1 − e^(−P_x/γ_x)),  L = A·N_eff^−α + B·D^−β + E   (§1.3)
//   PTQ:      δ_PTQ          = C_T·D^γ_D·N_eff^(−γ_N)·e^(−P_post/γ_post)·Π_x R_x      (§1.4, §1.5)
//             R_x            = 1 − e^(−C_x·(P_x − P_post)) (robustification; 1 where unknown)
//   unified:  L_post         = L + δ_PTQ
import { ConfigError } from '../core/errors.js';
import type { ConstantSet, LawConstants } from './constants.js';

/** Training bit widths; a missing entry means that tensor was kept in high precision. */
export interface TrainPrecision {
  w?: number;
  a?: number;
  kv?: number;
}

export interface LawInput {
  N: number;
  D: number;
  train?: TrainPrecision;
  /** weight bit width after post-training quantization; undefined = no PTQ */
  postBits?: number;
}

export interface LossPrediction {
  /** final loss: pretraining loss plus the PTQ degradation */
  loss: number;
  /** loss right after (possibly low-precision) pretraining */
  pretrainLoss: number;
  deltaPtq: number;
  nEff: number;
  /** the three terms of the pretraining loss: A·N_eff^−α, B·D^−β, E */
  terms: { params: number; data: number; irreducible: number };
  caveats: string[];
}

/** Range checks shared by every entry point; errors name the field and what was found. */
export function checkPositive(v: number, field: string): void {
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) {
    throw new ConfigError('bad_option', `${field} must be a finite number > 0`, { field, expected: 'a finite number > 0', found: v });
  }
}

export function checkBits(v: number | undefined, field: string): void {
  if (v === undefined) return;
  if (typeof v !== 'number' || !Number.isFinite(v) || v < 1 || v > 64) {
    throw new ConfigError('bad_option', `${field} must be a bit width in [1, 64]`, { field, expected: 'a number in [1, 64]', found: v });
  }
}

export function checkInput(x: LawInput): void {
  checkPositive(x.N, 'N');
  checkPositive(x.D, 'D');
  checkBits(x.train?.w, 'train.w');
  checkBits(x.train?.a, 'train.a');
  checkBits(x.train?.kv, 'train.kv');
  checkBits(x.postBits, 'postBits');
}

/** 1 − e^(−P/γ): the fraction of a parameter's capacity kept when a tensor is trained at P bits. */
export function precisionFactor(P: number | undefined, gamma: number): number {
  if (P === undefined) return 1;
  return -Math.expm1(-P / gamma);
}

/** Product of the three precision factors (weights, activations, KV cache). */
export function precisionProduct(train: TrainPrecision | undefined, c: LawConstants): number {
  if (!train) return 1;
  return precisionFactor(train.w, c.gammaW) * precisionFactor(train.a, c.gammaA) * precisionFactor(train.kv, c.gammaKv);
}

/** N_eff = N·Π(1 − e^(−P_x/γ_x)). */
export function effectiveParams(N: number, train: TrainPrecision | undefined, c: LawConstants): number {
  return N * precisionProduct(train, c);
}

/** Chinchilla-style L(N, D) = A·N^−α + B·D^−β + E (pass N_eff as N for low-precision training). */
export function baseLoss(N: number, D: number, c: LawConstants): number {
  return c.A * Math.pow(N, -c.alpha) + c.B * Math.pow(D, -c.beta) + c.E;
}

/**
 * Robustification Π_x R_x with R_x = 1 − e^(−C_x·(P_x − P_post)), clamped at 0: post-training
 * quantization to at least the training width changes nothing. Tensors kept in high precision, or
 * whose C_x is unknown, contribute 1, except that weights trained at ≤ P_post bits give 0 whatever
 * C_w is (the formula's limit: rounding to a grid the weights already lie on is exact).
 */
export function robustification(train: TrainPrecision | undefined, postBits: number, c: LawConstants): { factor: number; unknown: string[] } {
  if (!train) return { factor: 1, unknown: [] };
  const unknown: string[] = [];
  let factor = 1;
  const one = (P: number | undefined, C: number | undefined, name: string, isWeights: boolean): number => {
    if (P === undefined) return 1;
    if (isWeights && P <= postBits) return 0;
    if (C === undefined) {
      unknown.push(name);
      return 1;
    }
    return Math.max(0, -Math.expm1(-C * (P - postBits)));
  };
  factor *= one(train.w, c.cRobustW, 'C_w', true);
  factor *= one(train.a, c.cRobustA, 'C_a', false);
  factor *= one(train.kv, c.cRobustKv, 'C_kv', false);
  return { factor, unknown };
}

/**
 * δ_PTQ = C_T·D^γ_D·N_eff^(−γ_N)·e^(−P_post/γ_post)·Π R_x. It grows with D (over-trained models
 * degrade more), shrinks with N and decays exponentially with P_post.
 */
export function deltaPtq(N: number, D: number, postBits: number, c: LawConstants, train?: TrainPrecision): number {
  const nEff = effectiveParams(N, train, c);
  const { factor } = robustification(train, postBits, c);
  return c.CT * Math.pow(D, c.gammaD) * Math.pow(nEff, -c.gammaN) * Math.exp(-postBits / c.gammaPost) * factor;
}

/** Extrapolation warnings for a point outside the range the constants were fitted on. */
export function rangeCaveats(x: { N?: number; D?: number; bits?: (number | undefined)[] }, set: ConstantSet): string[] {
  const r = set.fittedRange;
  if (!r) return [];
  const out: string[] = [];
  const fmt = (v: number) => v.toExponential(2);
  if (x.N !== undefined && (x.N < r.N[0] || x.N > r.N[1])) out.push(`N = ${fmt(x.N)} is outside the fitted range [${fmt(r.N[0])}, ${fmt(r.N[1])}] (extrapolation)`);
  if (x.D !== undefined && (x.D < r.D[0] || x.D > r.D[1])) out.push(`D = ${fmt(x.D)} is outside the fitted range [${fmt(r.D[0])}, ${fmt(r.D[1])}] (extrapolation)`);
  for (const b of x.bits ?? []) {
    if (b !== undefined && (b < r.bits[0] || b > r.bits[1])) {
      out.push(`${Number(b.toFixed(2))} bits is outside the fitted range [${r.bits[0]}, ${r.bits[1]}] bits (extrapolation)`);
      break;
    }
  }
  return out;
}

/** The unified law for one configuration, with every term and the caveats that apply. */
export function predict(x: LawInput, set: ConstantSet): LossPrediction {
  checkInput(x);
  const c = set.values;
  const nEff = effectiveParams(x.N, x.train, c);
  const terms = { params: c.A * Math.pow(nEff, -c.alpha), data: c.B * Math.pow(x.D, -c.beta), irreducible: c.E };
  const pretrainLoss = terms.params + terms.data + terms.irreducible;
  const caveats = [...set.caveats, ...rangeCaveats({ N: x.N, D: x.D, bits: [x.train?.w, x.train?.a, x.train?.kv, x.postBits] }, set)];
  let d = 0;
  if (x.postBits !== undefined) {
    d = deltaPtq(x.N, x.D, x.postBits, c, x.train);
    const { unknown } = robustification(x.train, x.postBits, c);
    if (unknown.length) {
      caveats.push(
        `robustification constants ${unknown.join(', ')} are unknown, so their factors are taken as 1: δ_PTQ of a model trained in low precision is likely over-estimated (the paper finds low-precision training makes PTQ hurt less)`,
      );
    }
  }
  return { loss: pretrainLoss + d, pretrainLoss, deltaPtq: d, nEff, terms, caveats };
}

/**
 * Critical data size D* beyond which more pretraining raises the loss after PTQ to `postBits`
 * (App. E.1, Eq. 13). With C' = C_T·N_eff^(−γ_N)·e^(−P_post/γ_post)·Π R_x the post-PTQ loss is
 * const + B·D^−β + C'·D^γ_D, stationary at D* = (β·B / (γ_D·C'))^(1/(β+γ_D)). Infinity when
 * PTQ costs nothing (C' = 0).
 */
export function criticalDataSize(N: number, postBits: number, c: LawConstants, train?: TrainPrecision): number {
  checkPositive(N, 'N');
  checkBits(postBits, 'postBits');
  const nEff = effectiveParams(N, train, c);
  const cPrime = c.CT * Math.pow(nEff, -c.gammaN) * Math.exp(-postBits / c.gammaPost) * robustification(train, postBits, c).factor;
  if (cPrime === 0) return Infinity;
  return Math.pow((c.beta * c.B) / (c.gammaD * cPrime), 1 / (c.beta + c.gammaD));
}
