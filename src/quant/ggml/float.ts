// F32, F16 and BF16 rows as ggml stores them: F32 is a little-endian copy; F16/BF16 are 2
// little-endian bytes per value, round-to-nearest-even (ggml_fp32_to_fp16_row /
// ggml_fp32_to_bf16_row_ref). The importance matrix is ignored.

import { f16ToF32, f32ToBf16, f32ToF16 } from '../../numerics/float16.js';
import type { GgmlCodec } from './common.js';

export const FLOAT_CODECS = {
  F32: {
    blockSize: 1,
    typeSize: 4,
    needsImatrix: false,
    quantizeRow: (x, out) => {
      const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
      for (let i = 0; i < x.length; i++) dv.setFloat32(4 * i, x[i], true);
    },
    dequantize: (b, out) => {
      const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
      for (let i = 0; i < out.length; i++) out[i] = dv.getFloat32(4 * i, true);
    },
  },
  F16: {
    blockSize: 1,
    typeSize: 2,
    needsImatrix: false,
    quantizeRow: (x, out) => {
      for (let i = 0; i < x.length; i++) {
        const h = f32ToF16(x[i]);
        out[2 * i] = h & 0xff;
        out[2 * i + 1] = h >>> 8;
      }
    },
    dequantize: (b, out) => {
      for (let i = 0; i < out.length; i++) out[i] = f16ToF32(b[2 * i] | (b[2 * i + 1] << 8));
    },
  },
  BF16: {
    blockSize: 1,
    typeSize: 2,
    needsImatrix: false,
    quantizeRow: (x, out) => {
      for (let i = 0; i < x.length; i++) {
        const h = f32ToBf16(x[i]);
        out[2 * i] = h & 0xff;
        out[2 * i + 1] = h >>> 8;
      }
    },
    dequantize: (b, out) => {
      const o32 = new Uint32Array(out.buffer, out.byteOffset, out.length);
      for (let i = 0; i < out.length; i++) o32[i] = ((b[2 * i] | (b[2 * i + 1] << 8)) << 16) >>> 0;
    },
  },
} satisfies Record<string, GgmlCodec>;
