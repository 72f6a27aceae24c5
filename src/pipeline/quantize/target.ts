// The target of one weight in `bitscale quantize`: the ggml type (llama.cpp's row fallback when K
// is not a whole number of blocks) or the int / nf4 / other scheme with its group size. Small on
// purpose: the quantization plan (plan.ts) needs it on every path, the streaming RTN one
// included, without layer.ts's engine and algorithm imports.
// Legend: N = rows (output features), K = input features.

import { ConfigError } from '../../core/errors.js';
import type { GgmlType } from '../../core/dtype.js';
import { rowFallback } from '../../model/gguf-recipe.js';
import type { CodebookScheme, IntScheme, QuantScheme } from '../../quant/scheme.js';
import { formatScheme } from '../../quant/index.js';

/**
 * What one weight is quantized to. ggml targets come from the GGUF plan (plan.ts); int and
 * nf4 targets carry their whole scheme (scale dtype, rounding, restricted range): the grid quantizes
 * exactly as quant's codec of that scheme.
 */
export type Target =
  /** copy: the tensor is already stored in `type` and is written as it is */
  | { kind: 'ggml'; type: GgmlType; fallbackFrom?: GgmlType; copy?: boolean }
  | { kind: 'int'; scheme: IntScheme; groupSize: number }
  | { kind: 'nf4'; scheme: CodebookScheme; groupSize: number }
  | { kind: 'scheme'; scheme: QuantScheme };

/**
 * The target for a [N, K] weight under `scheme` alone. For a ggml type: that type, or llama.cpp's
 * row fallback when K is not a whole number of its blocks (the table in model/gguf-recipe-rules.ts);
 * whole models take their ggml types from the GGUF plan (plan.ts) instead.
 */
export function targetFor(scheme: QuantScheme, k: number): Target {
  if (scheme.kind === 'ggml') {
    const t = rowFallback(scheme.type, k);
    return t === scheme.type ? { kind: 'ggml', type: t } : { kind: 'ggml', type: t, fallbackFrom: scheme.type };
  }
  const gsize = (g: QuantScheme & { granularity: unknown }): number => {
    const gr = (g as { granularity: { kind: string; size?: number; axis?: number } }).granularity;
    if (gr.kind === 'group') return gr.size!;
    if (gr.kind === 'channel' && (gr.axis ?? 0) === 0) return k;
    throw new ConfigError('unsupported', 'only per-group or per-output-channel grids are supported for linear weights', { field: 'scheme', found: gr });
  };
  if (scheme.kind === 'int') return { kind: 'int', scheme, groupSize: gsize(scheme) };
  if (scheme.kind === 'codebook' && scheme.book === 'nf4') return { kind: 'nf4', scheme, groupSize: gsize(scheme) };
  return { kind: 'scheme', scheme };
}

/** The type a report names for a target: the ggml type, or the scheme string (parseScheme reads it back). */
export function targetLabel(t: Target): string {
  switch (t.kind) {
    case 'ggml': return t.type;
    default: return formatScheme(t.scheme);
  }
}
