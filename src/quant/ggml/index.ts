// ggml block codecs: one table (like ggml's type_traits) of row quantizers and dequantizers,
// bit-exact with ggml's reference quantizers (`ggml_quantize_chunk`) and `to_float`.
//
// Legend: R = rows, K = values per row (a multiple of the type's block size QK),
// W = bytes per block. Quantized bytes are row-major: R rows of K/QK blocks of W bytes.

import { ConfigError, NumericError } from '../../core/errors.js';
import { GGML_TYPES, type GgmlType } from '../../core/dtype.js';
import type { GgmlCodec } from './common.js';
import { FLOAT_CODECS } from './float.js';
import { LEGACY_CODECS } from './legacy.js';
import { IQ4_CODECS } from './iq4.js';
import { TERNARY_FP4_CODECS } from './ternary-fp4.js';
import { KQUANT_236_CODECS } from './kquants-q2-q3-q6.js';
import { KQUANT_45_CODECS } from './kquants-q4-q5.js';
import { IQ_GRID_CODECS } from './iq-dequant.js';
import { quantizeQ4_0Fast, quantizeQ8_0Fast } from './fast.js';
import { IQ3_QUANTIZERS } from './iq3-quant.js';
import { IQ2_QUANTIZERS } from './iq2-quant.js';
import { IQ1_QUANTIZERS } from './iq1-quant.js';
import { hasGgmlKernel, quantizeWithKernel } from './wasm/kernels.js';

export type { GgmlCodec } from './common.js';
export { GGML_BLOCK_HOOKS, type BlockHook, type GgmlHookType, type LegacyParams } from './block-hooks.js';
export type { KGroupScales } from './kquants-q2-q3-q6.js';
export type { K45Scales } from './kquants-q4-q5.js';
export { KVALUES_IQ4NL, quantizeIq4Super, packQ4 } from './iq4.js';
export { ggmlKernelsReady, ggmlKernelsEnabled, ggmlKernelTypes, hasGgmlKernel, quantizeWithKernel, setGgmlKernelsEnabled, type KernelInput } from './wasm/kernels.js';
export { encodeGridRows, gridLevels, gridTypeFits, isF16Exact, GRID_GGML_TYPES, GRID_LEVELS, type GridGgmlType } from './grid-encode.js';

/** Every ggml type this module can decode (and, where `quantizeRow` is set, encode). */
export const GGML_CODECS = {
  ...FLOAT_CODECS,
  ...LEGACY_CODECS,
  ...IQ4_CODECS,
  ...TERNARY_FP4_CODECS,
  ...KQUANT_236_CODECS,
  ...KQUANT_45_CODECS,
  ...IQ_GRID_CODECS,
  IQ3_XXS: { ...IQ_GRID_CODECS.IQ3_XXS, quantizeRow: IQ3_QUANTIZERS.IQ3_XXS },
  IQ3_S: { ...IQ_GRID_CODECS.IQ3_S, quantizeRow: IQ3_QUANTIZERS.IQ3_S },
  IQ2_XXS: { ...IQ_GRID_CODECS.IQ2_XXS, quantizeRow: IQ2_QUANTIZERS.IQ2_XXS },
  IQ2_XS: { ...IQ_GRID_CODECS.IQ2_XS, quantizeRow: IQ2_QUANTIZERS.IQ2_XS },
  IQ2_S: { ...IQ_GRID_CODECS.IQ2_S, quantizeRow: IQ2_QUANTIZERS.IQ2_S },
  IQ1_S: { ...IQ_GRID_CODECS.IQ1_S, quantizeRow: IQ1_QUANTIZERS.IQ1_S },
  IQ1_M: { ...IQ_GRID_CODECS.IQ1_M, quantizeRow: IQ1_QUANTIZERS.IQ1_M },
} satisfies Partial<Record<GgmlType, GgmlCodec>>;

export type GgmlCodecType = keyof typeof GGML_CODECS;

function codecOf(type: GgmlType): GgmlCodec | undefined {
  return (GGML_CODECS as Partial<Record<GgmlType, GgmlCodec>>)[type];
}

/** What this module can do for a ggml type. `needsImatrix`: ggml refuses to quantize without one. */
export function ggmlSupports(type: GgmlType): { quantize: boolean; dequantize: boolean; needsImatrix: boolean } {
  const c = codecOf(type);
  return { quantize: !!c?.quantizeRow, dequantize: !!c, needsImatrix: !!c?.needsImatrix };
}

function requireCodec(type: GgmlType, op: 'quantize' | 'dequantize'): GgmlCodec {
  const c = codecOf(type);
  if (!c || (op === 'quantize' && !c.quantizeRow)) {
    throw new ConfigError('unsupported', `ggml type ${type} cannot ${op} here`, {
      field: 'type',
      found: type,
      expected: Object.keys(GGML_CODECS).filter((t) => op === 'dequantize' || codecOf(t as GgmlType)?.quantizeRow),
    });
  }
  return c;
}

/** Throws NumericError('non_finite') at the first NaN/±Inf (ggml asserts; we reject cleanly). */
export function assertFinite(x: Float32Array, what = 'x'): void {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v - v !== 0) {
      throw new NumericError('non_finite', `${what} holds a non-finite value`, { field: what, index: i, found: v });
    }
  }
}

/** Validates quantizeGgml's arguments; returns the codec. */
function checkQuantizeArgs(
  type: GgmlType,
  x: Float32Array,
  nRows: number,
  nPerRow: number,
  imatrix: Float32Array | undefined,
): GgmlCodec {
  const c = requireCodec(type, 'quantize');
  if (!Number.isInteger(nRows) || !Number.isInteger(nPerRow) || nRows < 0 || nPerRow < 0) {
    throw new ConfigError('bad_option', 'nRows and nPerRow must be non-negative integers', {
      field: 'shape',
      found: [nRows, nPerRow],
    });
  }
  if (nPerRow % c.blockSize !== 0) {
    throw new ConfigError('bad_option', `${type} rows must be a whole number of ${c.blockSize}-value blocks`, {
      field: 'nPerRow',
      expected: `a multiple of ${c.blockSize}`,
      found: nPerRow,
    });
  }
  if (x.length !== nRows * nPerRow) {
    throw new ConfigError('shape_mismatch', `${type}: input length does not match nRows × nPerRow`, {
      field: 'x',
      expected: nRows * nPerRow,
      found: x.length,
    });
  }
  if (imatrix && imatrix.length !== nPerRow) {
    throw new ConfigError('shape_mismatch', 'imatrix must hold one weight per column', {
      field: 'imatrix',
      expected: nPerRow,
      found: imatrix.length,
    });
  }
  if (c.needsImatrix && !imatrix) {
    throw new ConfigError('bad_option', `${type} needs an importance matrix (as in ggml)`, {
      field: 'imatrix',
      expected: `Float32Array[${nPerRow}]`,
      found: 'none',
    });
  }
  if (imatrix) assertFinite(imatrix, 'imatrix');
  return c;
}

/**
 * Quantize `x` ([R, K] row-major, R = nRows, K = nPerRow) to ggml `type`, exactly as
 * ggml_quantize_chunk does. `imatrix` ([K], mean squared activation per column) is used by the
 * types whose quantizer takes quant_weights; the others ignore it. Runs the WebAssembly kernel
 * where one covers the type (wasm/ggml; setGgmlKernelsEnabled(false) forces TypeScript), else the
 * TypeScript codec; both give the same bytes (test/quant/ggml-wasm.test.ts).
 * @returns R·K/QK·W bytes.
 */
export function quantizeGgml(
  type: GgmlType,
  x: Float32Array,
  nRows: number,
  nPerRow: number,
  imatrix?: Float32Array,
): Uint8Array {
  const c = checkQuantizeArgs(type, x, nRows, nPerRow, imatrix);
  if (hasGgmlKernel(type, !!imatrix)) {
    const out = new Uint8Array((x.length / c.blockSize) * c.typeSize);
    quantizeWithKernel(type, x, 'F32', nRows, nPerRow, imatrix, out);
    return out;
  }
  // Fast single-pass paths (finite check folded in); Q8_0 ignores the imatrix, as ggml does.
  if (type === 'Q8_0' || (type === 'Q4_0' && !imatrix)) {
    const out = new Uint8Array((x.length / 32) * c.typeSize);
    if (type === 'Q8_0') quantizeQ8_0Fast(x, out);
    else quantizeQ4_0Fast(x, out);
    return out;
  }
  return quantizeRows(c, x, nRows, nPerRow, imatrix);
}

/** The plain per-row reference path (no fast paths): what the fast paths are tested against. */
export function quantizeGgmlReference(
  type: GgmlType,
  x: Float32Array,
  nRows: number,
  nPerRow: number,
  imatrix?: Float32Array,
): Uint8Array {
  return quantizeRows(checkQuantizeArgs(type, x, nRows, nPerRow, imatrix), x, nRows, nPerRow, imatrix);
}

function quantizeRows(c: GgmlCodec, x: Float32Array, nRows: number, nPerRow: number, imatrix?: Float32Array): Uint8Array {
  assertFinite(x);
  const rowBytes = (nPerRow / c.blockSize) * c.typeSize;
  const out = new Uint8Array(nRows * rowBytes);
  for (let r = 0; r < nRows; r++) {
    c.quantizeRow!(
      x.subarray(r * nPerRow, (r + 1) * nPerRow),
      out.subarray(r * rowBytes, (r + 1) * rowBytes),
      imatrix,
    );
  }
  return out;
}

/** Decode `n` values of ggml `type` from `bytes` (exactly ggml's to_float). */
export function dequantizeGgml(type: GgmlType, bytes: Uint8Array, n: number): Float32Array {
  const c = requireCodec(type, 'dequantize');
  if (!Number.isInteger(n) || n < 0 || n % c.blockSize !== 0) {
    throw new ConfigError('bad_option', `${type}: value count must be a whole number of ${c.blockSize}-value blocks`, {
      field: 'n',
      expected: `a multiple of ${c.blockSize}`,
      found: n,
    });
  }
  const need = (n / c.blockSize) * c.typeSize;
  if (bytes.length < need) {
    throw new ConfigError('shape_mismatch', `${type}: too few bytes for ${n} values`, {
      field: 'bytes',
      expected: need,
      found: bytes.length,
    });
  }
  const out = new Float32Array(n);
  c.dequantize(bytes.subarray(0, need), out);
  return out;
}

/** Block geometry check against the core registry (used by tests; cheap). */
export function ggmlCodecGeometryMismatches(): string[] {
  const bad: string[] = [];
  for (const [t, c] of Object.entries(GGML_CODECS) as [GgmlType, GgmlCodec][]) {
    const g = GGML_TYPES[t];
    if (g.blockSize !== c.blockSize || g.typeSize !== c.typeSize) bad.push(t);
  }
  return bad;
}
