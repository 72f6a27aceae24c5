// The law's formulas against hand arithmetic and ../shared/REFERENCE.md fixture T1 (float64 values
// computed independently in Python, quoted to 4-5 significant digits).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { KUMAR2024, withConstants } from '../../src/scaling/constants.js';
import { baseLoss, criticalDataSize, deltaPtq, effectiveParams, precisionFactor, predict, robustification } from '../../src/scaling/law.js';
import { BitscaleError } from '../../src/core/errors.js';

const c = KUMAR2024.values;
/** T1 quotes 4 decimals for losses and factors: half a unit in the last place. */
const T1_4DP = 5e-5;
/** T1 quotes 5 significant digits for δ_PTQ and D*. */
const T1_REL_5SIG = 5e-5;

const near = (got: number, want: number, tol: number, what: string) =>
  assert.ok(Math.abs(got - want) <= tol, `${what}: got ${got}, want ${want} ± ${tol}`);
const nearRel = (got: number, want: number, rel: number, what: string) =>
  assert.ok(Math.abs(got - want) <= rel * Math.abs(want), `${what}: got ${got}, want ${want} (rel ${rel})`);

test('hand arithmetic: base law with round constants', () => {
  // A=100, α=0.5, B=1000, β=0.5, E=2, N=1e4, D=1e6:
  // 100·1e4^−0.5 = 100/100 = 1; 1000·1e6^−0.5 = 1000/1000 = 1; L = 1 + 1 + 2 = 4
  const round = { ...c, A: 100, alpha: 0.5, B: 1000, beta: 0.5, E: 2 };
  assert.equal(baseLoss(1e4, 1e6, round), 4);
  // precision factor with γ = P·ln 2 → 1 − e^(−1/ln 2)… simpler: γ = P/ln 2 gives 1 − e^(−ln 2) = 1/2
  near(precisionFactor(4, 4 / Math.LN2), 0.5, 1e-15, 'f = 1/2');
  // three factors of 1/2 → N_eff = N/8
  const half = { ...round, gammaW: 4 / Math.LN2, gammaA: 4 / Math.LN2, gammaKv: 4 / Math.LN2 };
  near(effectiveParams(8e4, { w: 4, a: 4, kv: 4 }, half), 1e4, 1e-9, 'N_eff = N/8');
  // missing precisions are high precision: factor exactly 1
  assert.equal(effectiveParams(123, {}, c), 123);
  assert.equal(precisionFactor(undefined, 2), 1);
  // δ with C_T=1, γ_D=0.5, γ_N=0.5, γ_post=1/ln 2, N=1e4, D=1e6, P=1: 1·1e3·1e-2·2^−1 = 5
  const d = { ...round, CT: 1, gammaD: 0.5, gammaN: 0.5, gammaPost: 1 / Math.LN2 };
  near(deltaPtq(1e4, 1e6, 1, d), 5, 1e-12, 'δ = 5');
  // D* = (βB/(γ_D·C'))^(1/(β+γ_D)), C' = 1·1e4^−0.5·2^−1 = 0.005 → (0.5·1000/(0.5·0.005))^1 = 2e5
  near(criticalDataSize(1e4, 1, d), 2e5, 1e-6, 'D* = 2e5');
});

test('T1.1 precision factors', () => {
  const rows: [number, number, number, number][] = [
    [3, 0.6743, 0.7427, 0.9564],
    [4, 0.7759, 0.8363, 0.9846],
    [6, 0.8939, 0.9338, 0.9981],
    [8, 0.9498, 0.9732, 0.9998],
    [16, 0.9975, 0.9993, 1.0],
  ];
  for (const [P, fw, fa, fkv] of rows) {
    near(precisionFactor(P, c.gammaW), fw, T1_4DP, `f_w(${P})`);
    near(precisionFactor(P, c.gammaA), fa, T1_4DP, `f_a(${P})`);
    near(precisionFactor(P, c.gammaKv), fkv, T1_4DP, `f_kv(${P})`);
  }
  // (the rows are T1's; worked example: f_w(4) = 1 − e^(−4/2.6745) = 1 − e^(−1.4956) = 1 − 0.2241 = 0.7759)
});

test('T1.2 BF16 losses', () => {
  for (const [N, D, L] of [
    [30e6, 1.5e9, 4.1005],
    [110e6, 13e9, 3.374],
    [220e6, 26e9, 3.1966],
    [1.7e9, 26e9, 2.9989],
  ]) {
    near(predict({ N, D }, KUMAR2024).loss, L, T1_4DP, `L(${N}, ${D})`);
  }
  // the terms of L(30e6, 1.5e9) = 0.8336 + 0.5021 + 2.7648
  const t = predict({ N: 30e6, D: 1.5e9 }, KUMAR2024).terms;
  near(t.params, 0.8336, T1_4DP, 'A·N^−α');
  near(t.data, 0.5021, T1_4DP, 'B·D^−β');
  assert.equal(t.irreducible, 2.7648);
});

test('T1.3 quantized training at N = 220e6, D = 26e9', () => {
  const cases: [object, number, number][] = [
    [{ w: 8, a: 8, kv: 8 }, 2.033e8, 3.209],
    [{ w: 4, a: 4, kv: 4 }, 1.4056e8, 3.2738],
    [{ w: 3, a: 3, kv: 3 }, 1.0536e8, 3.3334],
    [{ w: 4 }, 1.707e8, 3.2382],
    [{ w: 8 }, 2.0895e8, 3.2046],
  ];
  for (const [train, nEff, L] of cases) {
    const p = predict({ N: 220e6, D: 26e9, train }, KUMAR2024);
    nearRel(p.nEff, nEff, T1_REL_5SIG, `N_eff ${JSON.stringify(train)}`);
    near(p.loss, L, T1_4DP, `L ${JSON.stringify(train)}`);
    assert.equal(p.deltaPtq, 0);
  }
});

test('T1.4 δ_PTQ and its scaling in D and N', () => {
  for (const [N, D, P, want] of [
    [220e6, 26e9, 4, 0.017586],
    [220e6, 26e9, 3, 0.095585],
    [220e6, 26e9, 8, 2.015e-5],
    [30e6, 26e9, 4, 0.034894],
    [220e6, 1.5e9, 4, 0.0041429],
  ]) {
    nearRel(deltaPtq(N, D, P, c), want, T1_REL_5SIG, `δ(${N}, ${D}, ${P})`);
  }
  // doubling D multiplies δ by 2^0.5068 = 1.421; doubling N divides it by 2^0.3439 = 1.269
  nearRel(deltaPtq(220e6, 52e9, 4, c) / deltaPtq(220e6, 26e9, 4, c), 1.421, 5e-4, 'D doubling');
  nearRel(deltaPtq(220e6, 26e9, 4, c) / deltaPtq(440e6, 26e9, 4, c), 1.269, 5e-4, 'N doubling');
  // the unified prediction adds δ to the BF16 loss: 3.1966 + 0.017586
  near(predict({ N: 220e6, D: 26e9, postBits: 4 }, KUMAR2024).loss, 3.1966 + 0.017586, T1_4DP, 'unified');
});

test('T1.5 critical data size, and the loss after PTQ really is minimal there', () => {
  const d4 = criticalDataSize(220e6, 4, c);
  nearRel(d4, 1.753e11, 5e-4, 'D*(P=4)');
  nearRel(criticalDataSize(220e6, 3, c), 3.244e10, 5e-4, 'D*(P=3)');
  const post = (D: number) => predict({ N: 220e6, D, postBits: 4 }, KUMAR2024).loss;
  assert.ok(post(d4) < post(d4 * 0.9) && post(d4) < post(d4 * 1.1), 'more or less data than D* raises the post-PTQ loss');
});

test('unified law: robustification', () => {
  // without C_x, training weights at ≤ P_post bits makes PTQ exact; other tensors count as 1
  assert.equal(robustification({ w: 4 }, 4, c).factor, 0);
  assert.deepEqual(robustification({ w: 8, a: 8 }, 4, c), { factor: 1, unknown: ['C_w', 'C_a'] });
  const p = predict({ N: 220e6, D: 26e9, train: { w: 8 }, postBits: 4 }, KUMAR2024);
  assert.ok(p.caveats.some((s) => s.includes('C_w')), 'caveat names the unknown constant');
  // with C_w = 1: R = 1 − e^(−(8 − 4)) = 0.98168, and δ uses N_eff = 2.0895e8 (T1.3) instead of N:
  // δ = 0.017586 (T1.4, N = 220e6) · (220e6 / 2.0895e8)^0.3439 · 0.98168 = 0.017901 · 0.98168 = 0.017573
  // (T1's 5 significant digits leave ~1e-4 relative)
  const set = withConstants(KUMAR2024, { cRobustW: 1 });
  nearRel(predict({ N: 220e6, D: 26e9, train: { w: 8 }, postBits: 4 }, set).deltaPtq, 0.017573, 1e-4, 'δ with R_w');
});

test('caveats and range errors', () => {
  const p = predict({ N: 1e12, D: 1e9 }, KUMAR2024);
  assert.ok(p.caveats.some((s) => s.includes('outside the fitted range')));
  assert.ok(p.caveats.some((s) => s.includes('7-8-bit')), 'the published-constants caveat travels with every result');
  for (const bad of [{ N: -1, D: 1e9 }, { N: 1e9, D: 0 }, { N: NaN, D: 1e9 }, { N: 1e9, D: 1e9, postBits: 0.5 }, { N: 1e9, D: 1e9, train: { w: 70 } }]) {
    assert.throws(
      () => predict(bad, KUMAR2024),
      (e: unknown) => e instanceof BitscaleError && e.code === 'bad_option' && e.context.field !== undefined,
      JSON.stringify(bad),
    );
  }
});
