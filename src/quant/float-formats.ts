// Float element formats as quantization schemes: plain casts (F16, BF16, FP8, FP4), absmax-scaled
// FP8/FP4 (scale per tensor/channel/group), OCP MX block formats and NVIDIA NVFP4.
// Every cast here SATURATES (±max instead of Inf/NaN): a quantizer must not invent non-finite weights.
//   scaled float: s = amax / fmax rounded UP to F32 (scale.ts), code = encode(x / s), x̂ = s·decode(code)
//   MX:     32-element blocks along K; X = 2^(floor(log2 amax) − emax_elem) stored as E8M0 (OCP MX v1.0
//           "FLOOR" scale selection); code = encode(x / X) saturating; x̂ = decode(code)·X
//   NVFP4:  16-element blocks along K (torchao nvfp4_quantize, float32 arithmetic at each step):
//           ts = amax_tensor / (448·6); bs = e4m3(clamp(amax_block / 6 / ts, 2^−6, 448));
//           code = e2m1(clamp(x / (ts·bs), −6, 6)); x̂ = e2m1⁻¹(code)·(ts·bs)
// Legend: N = rows, K = contiguous axis, B = block size (32 MX, 16 NVFP4).

import { ShapeError } from '../core/errors.js';
import { bf16ToF32, f16ToF32, f32ToBf16, f32ToF16 } from '../numerics/float16.js';
import {
  E2M1, E2M3, E3M2, E4M3, E5M2, decodeE8M0, decodeTable, encodeE8M0Exp, encodeMini, floorLog2, maxFinite,
  type MiniFloatFormat,
} from '../numerics/minifloat.js';
import { roundHalfEven } from '../numerics/round.js';
import { numel } from '../core/tensor.js';
import { clipRatios } from './check.js';
import { groupMinMax, scaleLayout } from './layout.js';
import { roundScale } from './scale.js';
import { encodeMiniWithKernel, hasMiniKernel } from './minifloat-kernel.js';
import type { FloatScheme, MxScheme, NvFp4Scheme } from './scheme.js';
import type { FloatQuantized, MxQuantized, NvFp4Quantized, QuantizeOptions } from './types.js';

const MINI: Record<string, MiniFloatFormat> = {
  F8_E4M3: E4M3,
  F8_E5M2: E5M2,
  FP4_E2M1: E2M1,
  FP6_E2M3: E2M3,
  FP6_E3M2: E3M2,
  FP8_E4M3: E4M3,
  FP8_E5M2: E5M2,
};

const F16_MAX = 65504;
const BF16_MAX = 3.3895313892515355e38;
const SAT = { saturate: true };

function castF16(x: number, bf: boolean): number {
  const m = bf ? BF16_MAX : F16_MAX;
  const c = x > m ? m : x < -m ? -m : x;
  return bf ? f32ToBf16(c) : f32ToF16(c);
}

export function quantizeFloat(w: Float32Array, shape: number[], scheme: FloatScheme, opts: QuantizeOptions = {}): FloatQuantized {
  const base = { kind: 'float' as const, scheme, shape: [...shape] };
  if (scheme.format === 'F16' || scheme.format === 'BF16') {
    const bf = scheme.format === 'BF16';
    const codes = new Uint16Array(w.length);
    for (let i = 0; i < w.length; i++) codes[i] = castF16(w[i], bf);
    return { ...base, codes };
  }
  const f = MINI[scheme.format];
  const codes = new Uint8Array(w.length);
  if (scheme.granularity === null) {
    if (hasMiniKernel(f) && encodeMiniWithKernel(f, w, codes, null)) return { ...base, codes };
    for (let i = 0; i < w.length; i++) codes[i] = encodeMini(f, w[i], SAT);
    return { ...base, codes };
  }
  const lay = scaleLayout(shape, scheme.granularity, opts.name);
  const { mins, maxs } = groupMinMax(w, lay);
  const fmax = maxFinite(f);
  const scales = new Float32Array(lay.nScales);
  const ratios = clipRatios(opts, lay.nScales);
  for (let s = 0; s < lay.nScales; s++) {
    let amax = Math.max(-mins[s], maxs[s]);
    if (opts.clip) amax = Math.min(amax, Math.max(-opts.clip.min, opts.clip.max));
    if (ratios) amax *= ratios[s];
    scales[s] = roundScale(amax / fmax, 'F32', 'up');
  }
  // the WebAssembly kernel (minifloat-kernel.ts), or this loop, which is its reference
  if (!(hasMiniKernel(f) && encodeMiniWithKernel(f, w, codes, scales, lay.runLen, lay.mod))) {
    for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
      const s = scales[r % lay.mod];
      for (let i = off, end = off + lay.runLen; i < end; i++) codes[i] = s === 0 ? 0 : encodeMini(f, w[i] / s, SAT);
    }
  }
  return { ...base, codes, scales, scaleShape: lay.scaleShape };
}

export function dequantizeFloat(q: FloatQuantized): Float32Array {
  const out = new Float32Array(q.codes.length);
  const fmt = q.scheme.format;
  if (fmt === 'F16' || fmt === 'BF16') {
    const dec = fmt === 'F16' ? f16ToF32 : bf16ToF32;
    for (let i = 0; i < out.length; i++) out[i] = dec(q.codes[i]);
    return out;
  }
  const table = decodeTable(MINI[fmt]);
  if (!q.scales || q.scheme.granularity === null) {
    for (let i = 0; i < out.length; i++) out[i] = table[q.codes[i]];
    return out;
  }
  const lay = scaleLayout(q.shape, q.scheme.granularity);
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const s = q.scales[r % lay.mod];
    for (let i = off, end = off + lay.runLen; i < end; i++) out[i] = s * table[q.codes[i]];
  }
  return out;
}

export function floatBitsPerWeight(scheme: FloatScheme, shape: number[]): number {
  const bits = scheme.format === 'F16' || scheme.format === 'BF16' ? 16 : scheme.format === 'FP4_E2M1' ? 4 : 8;
  if (scheme.granularity === null || bits === 16) return bits;
  const lay = scaleLayout(shape, scheme.granularity);
  const n = numel(shape);
  return n ? bits + (32 * lay.nScales) / n : bits;
}

// ---- MX

export const MX_BLOCK = 32;

/** emax of each MX element type: the exponent of its largest normal power of two (INT8: 0, values q/64). */
const MX_EMAX: Record<MxScheme['element'], number> = {
  FP4_E2M1: 2,
  FP6_E2M3: 2,
  FP6_E3M2: 4,
  FP8_E4M3: 8,
  FP8_E5M2: 15,
  INT8: 0,
};

function blocksAlongK(shape: number[], block: number, what: string, name?: string): number {
  const k = shape.length ? shape[shape.length - 1] : 1;
  if (k % block !== 0) {
    throw new ShapeError('shape_mismatch', `${what} needs the last axis to be a whole number of ${block}-element blocks`, {
      tensor: name ?? '<unnamed>',
      field: 'K',
      expected: `a multiple of ${block}`,
      found: k,
    });
  }
  return numel(shape) / block;
}

function mxEncodeElement(el: MxScheme['element'], v: number): number {
  if (el === 'INT8') {
    const q = roundHalfEven(v * 64);
    return (q > 127 ? 127 : q < -127 ? -127 : q) & 0xff;
  }
  return encodeMini(MINI[el], v, SAT);
}

function mxDecodeTable(el: MxScheme['element']): Float32Array {
  if (el !== 'INT8') return decodeTable(MINI[el]);
  const t = new Float32Array(256);
  for (let c = 0; c < 256; c++) t[c] = ((c << 24) >> 24) / 64;
  return t;
}

export function quantizeMx(w: Float32Array, shape: number[], scheme: MxScheme, opts: QuantizeOptions = {}): MxQuantized {
  const nb = blocksAlongK(shape, MX_BLOCK, 'MX', opts.name);
  const codes = new Uint8Array(w.length);
  const scales = new Uint8Array(nb);
  const emax = MX_EMAX[scheme.element];
  for (let b = 0; b < nb; b++) {
    const off = b * MX_BLOCK;
    let amax = 0;
    for (let i = off; i < off + MX_BLOCK; i++) amax = Math.max(amax, Math.abs(w[i]));
    const code = amax === 0 ? 0 : encodeE8M0Exp(floorLog2(amax) - emax);
    scales[b] = code;
    const X = decodeE8M0(code);
    for (let i = off; i < off + MX_BLOCK; i++) codes[i] = mxEncodeElement(scheme.element, w[i] / X);
  }
  return { kind: 'mx', scheme, shape: [...shape], codes, scales };
}

export function dequantizeMx(q: MxQuantized): Float32Array {
  const t = mxDecodeTable(q.scheme.element);
  const out = new Float32Array(q.codes.length);
  for (let b = 0; b < q.scales.length; b++) {
    const X = decodeE8M0(q.scales[b]);
    for (let i = b * MX_BLOCK; i < (b + 1) * MX_BLOCK; i++) out[i] = t[q.codes[i]] * X;
  }
  return out;
}

export function mxBitsPerWeight(scheme: MxScheme): number {
  const el = scheme.element;
  const bits = el === 'FP4_E2M1' ? 4 : el.startsWith('FP6') ? 6 : 8;
  return bits + 8 / MX_BLOCK;
}

// ---- NVFP4

export const NVFP4_BLOCK = 16;
/** torchao's E4M3_EPS = torch.finfo(float8_e4m3fn).tiny: the smallest normal E4M3, 2^−6. */
const E4M3_EPS = 2 ** -6;
const E4M3_MAX = 448;
const E2M1_MAX = 6;

export function quantizeNvFp4(w: Float32Array, shape: number[], scheme: NvFp4Scheme, opts: QuantizeOptions = {}): NvFp4Quantized {
  const nb = blocksAlongK(shape, NVFP4_BLOCK, 'NVFP4', opts.name);
  const codes = new Uint8Array(w.length);
  const scales = new Uint8Array(nb);
  let amax = 0;
  for (let i = 0; i < w.length; i++) amax = Math.max(amax, Math.abs(w[i]));
  const ts = Math.fround(amax / (E4M3_MAX * E2M1_MAX));
  const out: NvFp4Quantized = { kind: 'nvfp4', scheme, shape: [...shape], codes, scales, tensorScale: ts };
  if (ts === 0) return out;
  const e4m3 = decodeTable(E4M3);
  for (let b = 0; b < nb; b++) {
    const off = b * NVFP4_BLOCK;
    let bmax = 0;
    for (let i = off; i < off + NVFP4_BLOCK; i++) bmax = Math.max(bmax, Math.abs(w[i]));
    let bs = Math.fround(Math.fround(bmax / E2M1_MAX) / ts);
    bs = Math.min(E4M3_MAX, Math.max(E4M3_EPS, bs));
    const sc = encodeMini(E4M3, bs, SAT);
    scales[b] = sc;
    const total = Math.fround(ts * e4m3[sc]);
    for (let i = off; i < off + NVFP4_BLOCK; i++) {
      let v = Math.fround(w[i] / total);
      v = v > E2M1_MAX ? E2M1_MAX : v < -E2M1_MAX ? -E2M1_MAX : v;
      codes[i] = encodeMini(E2M1, v, SAT);
    }
  }
  return out;
}

export function dequantizeNvFp4(q: NvFp4Quantized): Float32Array {
  const out = new Float32Array(q.codes.length);
  if (q.tensorScale === 0) return out;
  const e4m3 = decodeTable(E4M3);
  const e2m1 = decodeTable(E2M1);
  for (let b = 0; b < q.scales.length; b++) {
    const total = Math.fround(q.tensorScale * e4m3[q.scales[b]]);
    for (let i = b * NVFP4_BLOCK; i < (b + 1) * NVFP4_BLOCK; i++) out[i] = e2m1[q.codes[i]] * total;
  }
  return out;
}

export function nvfp4BitsPerWeight(shape: number[]): number {
  const n = numel(shape);
  return 4 + 8 / NVFP4_BLOCK + (n ? 32 / n : 0);
}
