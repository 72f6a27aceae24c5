// Entry of the ggml kernel module (built by scripts/build-wasm.mjs into
// src/quant/ggml/wasm/kernels.gen.ts). Calling convention: the host places row-major f32 rows at
// `x`, optional per-column importance weights at `qw` (0 = none), and reserves the output bytes
// at `out`; all addresses are byte offsets into this module's memory, above heapBase().

import { quantizeQ8_0, quantizeQx_0, quantizeQx_1 } from './legacy';
import { quantizeK45, quantizeQ6_K } from './kquants';
import { quantizeQ2_K, quantizeQ3_K } from './kquants-23';
import { quantizeIq4Nl, quantizeIq4Xs } from './iq4';
import { quantizeLegacyIm } from './legacy-im';
import { quantizeIq3 } from './iq3';
export { iq3GridAddress, iq3Init } from './iq3';
import { quantizeIq2 } from './iq2';
export { iq2GridAddress, iq2Init } from './iq2';
import { quantizeIq1M, quantizeIq1S } from './iq1';
import { quantizeMxfp4, quantizeNvfp4, quantizeQ1_0, quantizeQ2_0, quantizeTq1_0, quantizeTq2_0 } from './ternary-fp4';

export { firstNonFinite } from './common';

/** First byte the host may use (16-aligned, past the kernels' static scratch). */
export function heapBase(): usize {
  return (__heap_base + 15) & ~(<usize>15);
}

/** Quantizes nRows × nPerRow values of ggml type `t` (see TYPE_IDS in the host loader). */
export function quantize(t: i32, x: usize, out: usize, nRows: i32, nPerRow: i32, qw: usize): void {
  const nb32 = (nRows * nPerRow) >> 5;
  switch (t) {
    case 0: quantizeQ8_0(x, out, nb32); break;
    case 1: if (qw) quantizeLegacyIm(0, 4, x, out, nRows, nPerRow, qw); else quantizeQx_0(4, x, out, nb32); break;
    case 2: if (qw) quantizeLegacyIm(0, 5, x, out, nRows, nPerRow, qw); else quantizeQx_0(5, x, out, nb32); break;
    case 3: if (qw) quantizeLegacyIm(1, 4, x, out, nRows, nPerRow, qw); else quantizeQx_1(4, x, out, nb32); break;
    case 4: if (qw) quantizeLegacyIm(1, 5, x, out, nRows, nPerRow, qw); else quantizeQx_1(5, x, out, nb32); break;
    case 5: quantizeK45(15, x, out, nRows, nPerRow, qw); break;
    case 6: quantizeK45(31, x, out, nRows, nPerRow, qw); break;
    case 7: quantizeQ6_K(x, out, nRows, nPerRow, qw); break;
    case 8: quantizeQ2_K(x, out, nRows, nPerRow, qw); break;
    case 9: quantizeQ3_K(x, out, nRows, nPerRow, qw); break;
    case 10: quantizeIq4Nl(x, out, nRows, nPerRow, qw); break;
    case 11: quantizeIq4Xs(x, out, nRows, nPerRow, qw); break;
    case 12: quantizeTq1_0(x, out, (nRows * nPerRow) >> 8); break;
    case 13: quantizeTq2_0(x, out, (nRows * nPerRow) >> 8); break;
    case 14: quantizeQ1_0(x, out, (nRows * nPerRow) >> 7); break;
    case 15: quantizeQ2_0(x, out, (nRows * nPerRow) >> 6); break;
    case 16: quantizeMxfp4(x, out, nb32); break;
    case 17: quantizeNvfp4(x, out, (nRows * nPerRow) >> 6); break;
    case 18: encodeF16(x, out, nRows * nPerRow); break;
    case 19: encodeBf16(x, out, nRows * nPerRow); break;
    case 20: quantizeIq3(true, x, out, nRows, nPerRow, qw); break;
    case 21: quantizeIq3(false, x, out, nRows, nPerRow, qw); break;
    case 22: quantizeIq2(0, x, out, nRows, nPerRow, qw); break;
    case 23: quantizeIq2(1, x, out, nRows, nPerRow, qw); break;
    case 24: quantizeIq2(2, x, out, nRows, nPerRow, qw); break;
    case 25: quantizeIq1S(x, out, nRows, nPerRow, qw); break;
    case 26: quantizeIq1M(x, out, nRows, nPerRow, qw); break;
    default: unreachable();
  }
}

export { convertF16, convertF16Checked, convertBf16 } from './convert';
export { iq4BestIndex } from './iq4';
import { encodeBf16, encodeF16 } from './convert';
export { encodeMiniRuns } from './minifloat';
export { rtnBookRows, rtnIntRows } from './rtn-grid';
export { codecBookRows, codecGroupMinMax, codecIntRows } from './codec';
