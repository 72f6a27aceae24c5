// Scheme strings ⇄ QuantScheme. Grammar (parts joined by '-'; README "## Schemes" lists them):
//   int<b>-<gran>[-asym|-restricted][-f32|-f16|-bf16][-away]   gran: g<G> | channel | channel<axis> | tensor
//       defaults: symmetric over the full code range (s = 2·amax/(2^b − 1); -restricted: s = amax/(2^(b−1) − 1)),
//       half_even, scales F16 for groups and F32 for channel/tensor
//   fp16 | bf16 (plain casts); fp8-e4m3 | fp8-e5m2 | fp4 [-cast|-tensor|-channel|-g<G>] (default -channel)
//   mxfp4 | mxfp6-e2m3 | mxfp6-e3m2 | mxfp8 (= mxfp8-e4m3) | mxfp8-e5m2 | mxint8;  nvfp4
//   nf4-<gran> | log2-<gran> | log2<b>-<gran> | kmeans<b>-<gran>  [-f32|-f16|-bf16]
//   ternary (absmean, per tensor) | binary | seq2 | seq-ternary (per row)  [-tensor|-channel|-g<G>]
//   any quantized ggml type name, lower case: q4_0, q4_k, iq4_nl, tq2_0, …

import { GGML_TYPES, isGgmlType, type GgmlType } from '../core/dtype.js';
import { ConfigError } from '../core/errors.js';
import type { FloatScheme, Granularity, LowBitScheme, MxScheme, QuantScheme, ScaleDType } from './scheme.js';

function bad(s: string, why: string): never {
  throw new ConfigError('bad_option', `cannot parse quantization scheme: ${why}`, {
    field: 'scheme',
    found: s,
    hint: 'examples: int4-g128, int4-g128-asym, int8-channel, fp8-e4m3, mxfp4, nvfp4, nf4-g64, ternary, q4_k',
  });
}

function parseGran(tok: string | undefined, s: string): Granularity | undefined {
  if (tok === undefined) return undefined;
  if (tok === 'tensor') return { kind: 'tensor' };
  const ch = /^channel(\d*)$/.exec(tok);
  if (ch) return { kind: 'channel', axis: ch[1] ? Number(ch[1]) : 0 };
  const g = /^g(\d+)$/.exec(tok);
  if (g) {
    const size = Number(g[1]);
    if (size < 1) bad(s, 'group size must be ≥ 1');
    return { kind: 'group', size };
  }
  return undefined;
}

function formatGran(g: Granularity): string {
  if (g.kind === 'tensor') return 'tensor';
  if (g.kind === 'channel') return g.axis === 0 ? 'channel' : `channel${g.axis}`;
  return `g${g.size}`;
}

const SCALE_TOKENS: Record<string, ScaleDType> = { f32: 'F32', f16: 'F16', bf16: 'BF16' };
const defaultScaleDtype = (g: Granularity): ScaleDType => (g.kind === 'group' ? 'F16' : 'F32');

const FLOAT_NAMES: Record<string, FloatScheme['format']> = {
  'fp8-e4m3': 'F8_E4M3',
  'fp8-e5m2': 'F8_E5M2',
  fp4: 'FP4_E2M1',
};
const MX_NAMES: Record<string, MxScheme['element']> = {
  mxfp4: 'FP4_E2M1',
  'mxfp6-e2m3': 'FP6_E2M3',
  'mxfp6-e3m2': 'FP6_E3M2',
  mxfp8: 'FP8_E4M3',
  'mxfp8-e4m3': 'FP8_E4M3',
  'mxfp8-e5m2': 'FP8_E5M2',
  mxint8: 'INT8',
};
const LOWBIT_NAMES: Record<string, [LowBitScheme['method'], Granularity]> = {
  ternary: ['absmean_ternary', { kind: 'tensor' }],
  binary: ['binary', { kind: 'channel', axis: 0 }],
  seq2: ['seq_2bit', { kind: 'channel', axis: 0 }],
  'seq-ternary': ['seq_ternary', { kind: 'channel', axis: 0 }],
};

export function parseScheme(input: string): QuantScheme {
  const s = input.trim().toLowerCase();
  if (s === 'fp16') return { kind: 'float', format: 'F16', granularity: null };
  if (s === 'bf16') return { kind: 'float', format: 'BF16', granularity: null };
  if (s === 'nvfp4') return { kind: 'nvfp4' };
  if (s in MX_NAMES) return { kind: 'mx', element: MX_NAMES[s] };
  const up = s.toUpperCase();
  if (isGgmlType(up) && GGML_TYPES[up].quantized) return { kind: 'ggml', type: up as GgmlType };

  for (const [name, format] of Object.entries(FLOAT_NAMES)) {
    if (s === name || s.startsWith(name + '-')) {
      const rest = s.slice(name.length + 1);
      if (!rest) return { kind: 'float', format, granularity: { kind: 'channel', axis: 0 } };
      if (rest === 'cast') return { kind: 'float', format, granularity: null };
      const g = parseGran(rest, s);
      if (!g) bad(s, `unknown granularity '${rest}'`);
      return { kind: 'float', format, granularity: g };
    }
  }
  for (const [name, [method, gdef]] of Object.entries(LOWBIT_NAMES)) {
    if (s === name || s.startsWith(name + '-')) {
      const rest = s.slice(name.length + 1);
      const g = rest ? parseGran(rest, s) : gdef;
      if (!g) bad(s, `unknown granularity '${rest}'`);
      return { kind: 'lowbit', method, granularity: g };
    }
  }

  const parts = s.split('-');
  const head = parts[0];
  const gran = parseGran(parts[1], s);
  const int = /^int([1-8])$/.exec(head);
  const cb = /^(nf4|log2|log2([1-8])|kmeans([1-8]))$/.exec(head);
  if (!int && !cb) bad(s, `unknown scheme '${head}'`);
  if (!gran) bad(s, `expected a granularity (g<G>, channel, tensor) after '${head}', found '${parts[1] ?? ''}'`);
  let symmetric = true;
  let scaleDtype: ScaleDType | undefined;
  let away = false;
  let restricted = false;
  for (const t of parts.slice(2)) {
    if (t === 'asym' && int) symmetric = false;
    else if (t === 'sym' && int) symmetric = true;
    else if (t === 'restricted' && int) restricted = true;
    else if (t in SCALE_TOKENS) scaleDtype = SCALE_TOKENS[t];
    else if (t === 'away' && int) away = true;
    else bad(s, `unknown option '${t}'`);
  }
  if (restricted && !symmetric) bad(s, "'restricted' chooses a symmetric grid's scale; an asymmetric grid has none to restrict");
  scaleDtype ??= defaultScaleDtype(gran);
  if (int) {
    return {
      kind: 'int',
      bits: Number(int[1]),
      symmetric,
      granularity: gran,
      scaleDtype,
      rounding: away ? 'half_away' : 'half_even',
      ...(restricted ? { restricted: true } : {}),
    };
  }
  const m = cb as RegExpExecArray;
  if (m[1] === 'nf4') return { kind: 'codebook', book: 'nf4', bits: 4, granularity: gran, scaleDtype };
  if (m[1].startsWith('log2')) {
    return { kind: 'codebook', book: 'log2', bits: m[2] ? Number(m[2]) : 4, granularity: gran, scaleDtype };
  }
  return { kind: 'codebook', book: 'kmeans', bits: Number(m[3]), granularity: gran, scaleDtype };
}

/** Inverse of parseScheme: parseScheme(formatScheme(x)) deep-equals x. */
export function formatScheme(sc: QuantScheme): string {
  switch (sc.kind) {
    case 'int': {
      let out = `int${sc.bits}-${formatGran(sc.granularity)}`;
      if (!sc.symmetric) out += '-asym';
      else if (sc.restricted) out += '-restricted';
      if (sc.scaleDtype !== defaultScaleDtype(sc.granularity)) out += '-' + sc.scaleDtype.toLowerCase();
      if (sc.rounding === 'half_away') out += '-away';
      return out;
    }
    case 'float': {
      if (sc.format === 'F16') return 'fp16';
      if (sc.format === 'BF16') return 'bf16';
      const name = Object.keys(FLOAT_NAMES).find((k) => FLOAT_NAMES[k] === sc.format) as string;
      if (sc.granularity === null) return `${name}-cast`;
      const g = sc.granularity;
      return g.kind === 'channel' && g.axis === 0 ? name : `${name}-${formatGran(g)}`;
    }
    case 'mx':
      return Object.keys(MX_NAMES).find((k) => MX_NAMES[k] === sc.element) as string;
    case 'nvfp4':
      return 'nvfp4';
    case 'codebook': {
      const head = sc.book === 'nf4' ? 'nf4' : sc.book === 'log2' ? (sc.bits === 4 ? 'log2' : `log2${sc.bits}`) : `kmeans${sc.bits}`;
      let out = `${head}-${formatGran(sc.granularity)}`;
      if (sc.scaleDtype !== defaultScaleDtype(sc.granularity)) out += '-' + sc.scaleDtype.toLowerCase();
      return out;
    }
    case 'lowbit': {
      const [name, [, gdef]] = Object.entries(LOWBIT_NAMES).find(([, [m]]) => m === sc.method) as [
        string,
        [LowBitScheme['method'], Granularity],
      ];
      const same = JSON.stringify(gdef) === JSON.stringify(sc.granularity);
      return same ? name : `${name}-${formatGran(sc.granularity)}`;
    }
    case 'ggml':
      return sc.type.toLowerCase();
  }
}
