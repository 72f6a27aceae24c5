import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bitnetActQuant,
  bitnetWeightQuant,
  gradScale,
  lsqRange,
  paretoQBackward,
  paretoQCodes,
  paretoQForward,
  paretoQInitAlpha,
  paretoQLevel,
  paretoQMethod,
  seqParams,
  SEQ_CLIP,
  type QatBits,
} from '../../src/train/quantizers.js';
import { steBackward, steClipped, STE_IDENTITY } from '../../src/train/ste.js';
import { Rng } from '../../src/core/rng.js';

/** REFERENCE T2 values are printed to 5 significant digits. */
const T2_TOL = 5e-6;
/** central differences in float64 with h = 1e-6 on piecewise-linear functions */
const FD_TOL = 1e-7;

const W = [0.7, -0.33, 0.12, -0.04];

function close(a: ArrayLike<number>, b: ArrayLike<number>, tol: number, what: string) {
  assert.equal(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= tol, `${what}[${i}]: ${a[i]} vs ${b[i]}`);
}

test('T2: ParetoQ initial scales and fake-quantized rows', () => {
  const cases: [QatBits, number, number[]][] = [
    [1, 0.2975, [0.2975, -0.2975, 0.2975, -0.2975]],
    [1.58, 0.7, [0.46667, -0.46667, 0, 0]],
    [2, 0.7, [0.525, -0.175, 0.175, -0.175]],
    [3, 0.23333, [0.7, -0.23333, 0.23333, 0]],
    [4, 0.1, [0.7, -0.3, 0.1, 0]],
  ];
  for (const [bits, a0, out] of cases) {
    const alpha = paretoQInitAlpha(W, 1, 4, bits);
    close(alpha, [a0], T2_TOL, `alpha ${bits}`);
    close(paretoQForward(W, alpha, 1, 4, bits), out, T2_TOL, `W_q ${bits}`);
  }
  // the intermediate codes REFERENCE lists
  assert.deepEqual(Array.from(paretoQCodes(W, [0.7 / 3], 1, 4, 3)), [3, -1, 1, 0]);
  assert.deepEqual(Array.from(paretoQCodes(W, [0.1], 1, 4, 4)), [7, -3, 1, 0]);
  assert.deepEqual(Array.from(paretoQCodes(W, [0.7], 1, 4, 1.58)), [2, 0, 1, 1]); // trits {−1,0,1}+1
  assert.deepEqual(Array.from(paretoQCodes(W, [0.7], 1, 4, 2)), [3, 1, 2, 1]); // levels {−.75,−.25,.25,.75} → 0..3
  assert.equal(paretoQMethod(1), 'lsq');
  assert.equal(paretoQMethod(1.58), 'seq');
  assert.equal(paretoQMethod(2), 'seq');
});

test('SEQ levels are the published grids', () => {
  const lv = (bits: 1.58 | 2) => [...new Set(Array.from({ length: 401 }, (_, i) => paretoQLevel(-2 + i / 100, bits)))].sort((a, b) => a - b);
  close(lv(2), [-0.75, -0.25, 0.25, 0.75], 0, '2-bit levels');
  close(lv(1.58), [-2 / 3, 0, 2 / 3], 1e-15, 'ternary levels');
  assert.equal(seqParams(2).qp, 0.75);
  assert.equal(seqParams(1.58).qp, 1);
});

test('ParetoQ gradients equal the REFERENCE formulas on T2 (hand-evaluated)', () => {
  const gy = [1, 2, -1, 0.5];
  // 4-bit LSQ, α = 0.1: v = [7, −3.3, 1.2, −0.4]; Qp = 7 → v = 7 is in range (7 ≤ Qp)
  const r4 = paretoQBackward(W, [0.1], gy, 1, 4, 4);
  const gs4 = 1 / Math.sqrt(4 * 7);
  const d4 = [7 - 7, -3 - -3.3, 1 - 1.2, 0 - -0.4];
  close(r4.galpha, [gs4 * (1 * d4[0] + 2 * d4[1] - 1 * d4[2] + 0.5 * d4[3])], 1e-12, 'gα 4-bit');
  close(r4.gw, gy, 0, 'gW 4-bit (all in range)');
  // 3-bit LSQ with α = 0.2: v = [3.5, −1.65, 0.6, −0.2]; 3.5 > Qp = 3 saturates → d = Qp, gW = 0
  const r3 = paretoQBackward(W, [0.2], gy, 1, 4, 3);
  const gs3 = 1 / Math.sqrt(4 * 3);
  const d3 = [3, -2 - -1.65, 1 - 0.6, 0 - -0.2];
  close(r3.galpha, [gs3 * (1 * d3[0] + 2 * d3[1] - 1 * d3[2] + 0.5 * d3[3])], 1e-12, 'gα 3-bit');
  close(r3.gw, [0, 2, -1, 0.5], 0, 'gW 3-bit');
  // 1-bit: gα = g_s·Σ gy·sign(W), g_s = 1/√(numel·1)
  const r1 = paretoQBackward(W, [0.2975], gy, 1, 4, 1);
  close(r1.galpha, [(1 / 2) * (1 - 2 - 1 - 0.5)], 1e-12, 'gα 1-bit');
  close(r1.gw, [0, 0, -1, 0.5], 0, 'gW 1-bit (0.7/0.2975 and 0.33/0.2975 exceed 1)');
  // 2-bit SEQ, α = 0.7: v[0] = 1 > 0.99 saturates at Qp' = 0.75
  const r2 = paretoQBackward(W, [0.7], gy, 1, 4, 2);
  const v = W.map((w) => w / 0.7);
  const d2 = [0.75, -0.25 - v[1], 0.25 - v[2], -0.25 - v[3]];
  close(r2.galpha, [(1 / 2) * (1 * d2[0] + 2 * d2[1] - 1 * d2[2] + 0.5 * d2[3])], 1e-12, 'gα 2-bit');
  close(r2.gw, [0, 2, -1, 0.5], 0, 'gW 2-bit');
  assert.equal(gradScale(1.58, 16), 1 / 4);
});

test('1-bit gW follows the clip |W/α| ≤ 1 (the saturated element gets no gradient)', () => {
  const r = paretoQBackward(W, [0.2975], [1, 1, 1, 1], 1, 4, 1);
  close(r.gw, [0, 0, 1, 1], 0, 'gW'); // |0.7/0.2975| > 1 and |−0.33/0.2975| > 1
});

/**
 * The STE surrogate: round(v) frozen at the base point, so that d/dα and d/dW exist; central
 * differences of Σ gy·W_q̃ must equal the backward (α-gradient divided by g_s).
 */
function surrogate(w: number[], alpha: number[], base: { w: number[]; alpha: number[] }, gy: number[], N: number, K: number, bits: QatBits): number {
  const seq = paretoQMethod(bits) === 'seq';
  const lo = seq ? -SEQ_CLIP : lsqRange(bits as 1 | 3 | 4).qn;
  const hi = seq ? SEQ_CLIP : lsqRange(bits as 1 | 3 | 4).qp;
  const sat = seq ? seqParams(bits as 1.58 | 2).qp : hi;
  let s = 0;
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const i = n * K + k;
      const v0 = base.w[i] / base.alpha[n];
      const v = w[i] / alpha[n];
      let y: number;
      if (bits === 1) y = alpha[n] * Math.sign(base.w[i]) + (v0 >= -1 && v0 <= 1 ? w[i] - base.w[i] : 0);
      else if (v0 < lo) y = alpha[n] * (seq ? -sat : lo);
      else if (v0 > hi) y = alpha[n] * sat;
      else y = alpha[n] * (v + (paretoQLevel(v0, bits) - v0));
      s += gy[i] * y;
    }
  }
  return s;
}

test('ParetoQ backward matches central differences of the STE surrogate (all bit widths)', () => {
  const rng = new Rng(3);
  const N = 3;
  const K = 8;
  const w = Array.from({ length: N * K }, () => rng.normal(0, 0.1));
  const gy = Array.from({ length: N * K }, () => rng.normal());
  const h = 1e-6;
  for (const bits of [1, 1.58, 2, 3, 4] as QatBits[]) {
    const alpha = Array.from(paretoQInitAlpha(w, N, K, bits), (a) => a * 0.8); // some saturate
    const { gw, galpha } = paretoQBackward(w, alpha, gy, N, K, bits);
    const base = { w, alpha };
    const gs = gradScale(bits, N * K);
    for (let n = 0; n < N; n++) {
      const ap = alpha.slice();
      const am = alpha.slice();
      ap[n] += h;
      am[n] -= h;
      const fd = (surrogate(w, ap, base, gy, N, K, bits) - surrogate(w, am, base, gy, N, K, bits)) / (2 * h);
      assert.ok(Math.abs(fd * gs - galpha[n]) < FD_TOL, `bits ${bits} gα[${n}]: fd ${fd * gs} vs ${galpha[n]}`);
    }
    for (let i = 0; i < N * K; i++) {
      const wp = w.slice();
      const wm = w.slice();
      wp[i] += h;
      wm[i] -= h;
      const fd = (surrogate(wp, alpha, base, gy, N, K, bits) - surrogate(wm, alpha, base, gy, N, K, bits)) / (2 * h);
      assert.ok(Math.abs(fd - gw[i]) < FD_TOL, `bits ${bits} gW[${i}]: fd ${fd} vs ${gw[i]}`);
    }
  }
});

test('T3: BitNet absmean ternary weights and 8-bit per-token activations', () => {
  const { wq, gamma } = bitnetWeightQuant([0.2, -0.5, 0.05, 1.0]);
  assert.equal(gamma, 0.4375);
  close(wq, [0, -0.4375, 0, 0.4375], 0, 'W_q');
  close(bitnetActQuant([0.5, -2.0, 1.0], 1, 3), [0.503937, -2.0, 1.007874], 1e-6, 'x̂');
  // 31.75 and 63.5 are ties: half-to-even gives 32 and 64 (not 32 and 63/64 by other modes)
  close(bitnetActQuant([0.5, -2.0, 1.0], 1, 3).map((x) => x * 63.5), [32, -127, 64], 1e-12, 'codes');
});

test('STE rules: identity passes everything, clipped masks outside [lo, hi]', () => {
  const x = [-2, -1, 0.5, 1, 2];
  close(steBackward(STE_IDENTITY, x, [1], [1, 1, 1, 1, 1], 1, 5), [1, 1, 1, 1, 1], 0, 'identity');
  close(steBackward(steClipped(-1, 1), x, [1], [1, 1, 1, 1, 1], 1, 5), [0, 1, 1, 1, 0], 0, 'clipped');
});
