// Constants of the precision-aware scaling law (Kumar et al., "Scaling Laws for Precision",
// arXiv 2411.04330, ICLR 2025), stored as data with where each number came from. Users can pass
// their own set (for example the output of `fitLaw`) to every function in src/scaling.
//
// Symbols (see docs/scaling-laws.md): N = non-embedding parameters, D = training tokens,
// P_w / P_a / P_kv = training bit widths of weights / activations / KV cache, P_post = bit width of
// the weights after post-training quantization (PTQ). Losses are nats per token.

/**
 * How a number was obtained, using ../shared/REFERENCE.md's tags: 'paper' read in the paper,
 * 'secondary' from third-party notes quoting the paper, 'recall' unverified memory, 'derived' our
 * own derivation from the others, 'fit' fitted by bitscale, 'user' given by the caller.
 */
export type ConstantSource = 'paper' | 'secondary' | 'recall' | 'derived' | 'fit' | 'user';

/** Every constant of the unified law. All are plain numbers so sets serialise to JSON. */
export interface LawConstants {
  /** base law L = A·N^−α + B·D^−β + E */
  A: number;
  alpha: number;
  B: number;
  beta: number;
  E: number;
  /** precision sensitivities γ in N_eff = N·Π(1 − e^(−P_x/γ_x)), bits */
  gammaW: number;
  gammaA: number;
  gammaKv: number;
  /** δ_PTQ = C_T·D^γ_D·N^(−γ_N)·e^(−P_post/γ_post) */
  CT: number;
  gammaD: number;
  gammaN: number;
  gammaPost: number;
  /**
   * Robustification rates C_x of the unified law (the factor 1 − e^(−C_x·(P_x − P_post))).
   * The paper's values were not recovered; when absent the factor is left out (= 1) and the
   * prediction says so in its caveats.
   */
  cRobustW?: number;
  cRobustA?: number;
  cRobustKv?: number;
}

export type ConstantName = keyof LawConstants;

export const CONSTANT_NAMES: readonly ConstantName[] = [
  'A',
  'alpha',
  'B',
  'beta',
  'E',
  'gammaW',
  'gammaA',
  'gammaKv',
  'CT',
  'gammaD',
  'gammaN',
  'gammaPost',
  'cRobustW',
  'cRobustA',
  'cRobustKv',
];

export interface ConstantProvenance {
  source: ConstantSource;
  /** where the number comes from, e.g. 'App. K, Table 2' */
  citation: string;
  note?: string;
}

/** A named set of constants with provenance per constant and caveats that apply to any use. */
export interface ConstantSet {
  name: string;
  citation: string;
  values: LawConstants;
  provenance: Partial<Record<ConstantName, ConstantProvenance>>;
  /** the ranges the constants were fitted on; predictions outside them are extrapolations */
  fittedRange?: { N: [number, number]; D: [number, number]; bits: [number, number] };
  /** caveats every result computed from this set carries */
  caveats: string[];
}

const KUMAR = 'Kumar et al. 2024, "Scaling Laws for Precision", arXiv 2411.04330 (ICLR 2025)';
const TABLE2: ConstantProvenance = {
  source: 'secondary',
  citation: `${KUMAR}, App. K, Table 2`,
  note: 'three third-party notes (a course scaling_law.py, a paper-excerpt note, a blog post) agree',
};

/**
 * The published fit, as recovered in ../shared/REFERENCE.md §1 (fixture T1 uses these numbers).
 * β is tied to α in the paper's fit.
 */
export const KUMAR2024: ConstantSet = {
  name: 'kumar2024',
  citation: KUMAR,
  values: {
    A: 4.299e3,
    alpha: 0.4965,
    B: 1.806e4,
    beta: 0.4965,
    E: 2.7648,
    gammaW: 2.6745,
    gammaA: 2.2102,
    gammaKv: 0.9578,
    CT: 0.0598,
    gammaD: 0.5068,
    gammaN: 0.3439,
    gammaPost: 0.5907,
  },
  provenance: {
    A: TABLE2,
    alpha: TABLE2,
    B: TABLE2,
    beta: { ...TABLE2, note: 'tied to α in the fit; one blog writes "β = 0.5 (approximately)"' },
    E: TABLE2,
    gammaW: TABLE2,
    gammaA: { ...TABLE2, note: 'called γ_i (inputs) in the paper' },
    gammaKv: TABLE2,
    CT: TABLE2,
    gammaD: TABLE2,
    gammaN: TABLE2,
    gammaPost: { source: 'secondary', citation: `${KUMAR}, Eq. 2`, note: 'appears in only one secondary code note (PAPER_CONSTANTS)' },
  },
  fittedRange: { N: [30e6, 1.7e9], D: [1.5e9, 26e9], bits: [3, 16] },
  caveats: [
    'constants are the published fit of Kumar et al. (OLMo-style models on Dolma, integer fake quantization); the authors warn they are "unlikely to be useful" outside that setting',
    'the fit\'s offset terms n_w, n_a, n_kv and bias b were not recovered, so these constants do not reproduce the paper\'s reported 7-8-bit compute-optimal precision (they give about 3.5 bits with separate γ, 5.1 bits with γ_w alone)',
  ],
};

/** Built-in sets by name (the CLI's --constants accepts these names or a JSON file). */
export const CONSTANT_SETS: Readonly<Record<string, ConstantSet>> = { kumar2024: KUMAR2024 };

/** A copy of `base` with some values replaced and marked as given by the caller. */
export function withConstants(base: ConstantSet, overrides: Partial<LawConstants>, name = `${base.name}+user`): ConstantSet {
  const provenance = { ...base.provenance };
  for (const k of Object.keys(overrides) as ConstantName[]) {
    provenance[k] = { source: 'user', citation: 'given by the caller' };
  }
  return { ...base, name, values: { ...base.values, ...overrides }, provenance, caveats: [...base.caveats] };
}
