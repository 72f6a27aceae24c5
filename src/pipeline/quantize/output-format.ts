// Which container `bitscale quantize` writes when --format is not given, from --out and the scheme,
// the way `convert` reads its output path: *.gguf → GGUF, *.onnx → one ONNX graph; a path without
// either is a GGUF file for llama.cpp types (the CLI's long-standing default), a GPTQ-packed
// safetensors folder for int schemes, and a fake-quant float folder for every other scheme (NF4,
// FP8, MX, …), which no packed container holds. A --format that contradicts the path's extension
// is refused rather than written under a misleading name.

import { ConfigError } from '../../core/errors.js';
import { parseScheme } from '../../quant/index.js';
import type { QuantizeFormat } from './quantize.js';

export const QUANTIZE_FORMATS: QuantizeFormat[] = ['gguf', 'safetensors', 'compressed-tensors', 'fakequant', 'onnx'];

export function resolveQuantizeFormat(out: string, scheme: string, format?: QuantizeFormat): QuantizeFormat {
  const ext = out.endsWith('.gguf') ? 'gguf' : out.endsWith('.onnx') ? 'onnx' : null;
  if (format !== undefined) {
    if (!QUANTIZE_FORMATS.includes(format)) throw new ConfigError('bad_option', 'invalid --format', { field: '--format', expected: QUANTIZE_FORMATS.join(' | '), found: format });
    if (ext && ext !== format) {
      throw new ConfigError('bad_option', `--out ends in .${ext} but --format is ${format}`, { field: '--format', expected: `${ext} for ${out}, or an --out path without .${ext}`, found: format });
    }
    return format;
  }
  if (ext) return ext;
  if (/^(fp32|f32|float)$/i.test(scheme)) return 'onnx';
  const k = parseScheme(scheme).kind;
  return k === 'ggml' ? 'gguf' : k === 'int' ? 'safetensors' : 'fakequant';
}
