// Which points a sweep runs: bits × methods × group sizes × formats, expanded into concrete
// schemes the quantizer understands, with the choices a user of llama.cpp / AutoGPTQ would expect
// (ggml types where the format is GGUF, int-gG schemes in GPTQ-packed safetensors otherwise).

import { ConfigError } from '../../core/errors.js';
import type { ModelConfig } from '../../model/config.js';
import type { SweepPointSpec } from '../../eval/sweep-types.js';

export type SweepMethod = 'rtn' | 'gptq' | 'awq' | 'mixed' | 'qat';
export type SweepFormat = 'gguf' | 'safetensors' | 'onnx';

export interface SweepGrid {
  /** nominal bit widths: 1.58 (ternary), 2, 3, 4, 5, 6, 8 */
  bits: number[];
  methods: SweepMethod[];
  formats: SweepFormat[];
  /** group sizes for int schemes (default: the largest of 128/64/32 dividing every linear's K) */
  groupSizes?: number[];
  /** target bits-per-weight values for mixed-precision points (GGUF only) */
  mixedBpw?: number[];
}

/** Input sizes K of every linear layer. */
function linearKs(c: ModelConfig): number[] {
  return [c.hiddenSize, c.nHeads * c.headDim, c.intermediateSize];
}

/** The largest of 128/64/32 dividing every linear's K, or 0 (per output channel) when none does. */
export function defaultGroupSize(c: ModelConfig): number {
  const ks = linearKs(c);
  for (const g of [128, 64, 32]) if (ks.every((k) => k % g === 0)) return g;
  return 0;
}

/** GPTQ-style int32 packing needs every K to be a multiple of 32 (whole words at 2/3/4/8 bits). */
export function packable(c: ModelConfig): boolean {
  return linearKs(c).every((k) => k % 32 === 0);
}

/**
 * The llama.cpp type for a bit width. Below 4 bits ggml only has super-block types (K-quants,
 * TQ), which need rows that are multiples of 256; on smaller rows llama.cpp would silently fall
 * back to a 4–5-bit type, so those points are left out rather than mislabelled.
 */
function ggmlTypeFor(bits: number, kquants: boolean): string | null {
  const table: Record<string, [string, string | null]> = {
    '1.58': ['tq1_0', null],
    '2': ['q2_k', null],
    '3': ['q3_k', null],
    '4': ['q4_k', 'q4_0'],
    '5': ['q5_k', 'q5_0'],
    '6': ['q6_k', 'q8_0'],
    '8': ['q8_0', 'q8_0'],
  };
  const t = table[String(bits)];
  if (!t) return null;
  return kquants ? t[0] : t[1];
}

export function planPoints(c: ModelConfig, g: SweepGrid): SweepPointSpec[] {
  for (const b of g.bits) {
    if (![1.58, 2, 3, 4, 5, 6, 8].includes(b)) {
      throw new ConfigError('bad_option', 'unsupported bit width in --bits', { field: '--bits', expected: '1.58, 2, 3, 4, 5, 6 or 8', found: b });
    }
  }
  const kquants = linearKs(c).every((k) => k % 256 === 0);
  const groups = g.groupSizes?.length ? g.groupSizes : [defaultGroupSize(c)];
  const pts: SweepPointSpec[] = [{ id: 'base-f32', method: 'base', scheme: 'f32', bits: 32, format: 'none' }];
  const seen = new Set<string>();
  const add = (p: SweepPointSpec) => {
    if (seen.has(p.id)) return;
    seen.add(p.id);
    pts.push(p);
  };
  for (const bits of g.bits) {
    for (const method of g.methods) {
      if (method === 'mixed') continue;
      if (method === 'qat') {
        // ParetoQ's quantizers per width: SEQ for ternary and 2 bits, LSQ for 3/4 bits, per-row scales;
        // the QAT model is kept as float weights on those grids (packed size from the scheme)
        const scheme = bits === 1.58 ? 'seq-ternary' : bits === 2 ? 'seq2' : bits <= 4 ? `int${bits}-channel` : null;
        if (scheme) add({ id: `qat-${bits}bit`, method, scheme, bits, format: 'fakequant' });
        continue;
      }
      for (const format of g.formats) {
        if (format === 'gguf') {
          const t = ggmlTypeFor(bits, kquants);
          if (!t) continue;
          // GPTQ reaches the legacy and K-quant block types (ternary TQ types are RTN only)
          if (bits === 1.58 && method !== 'rtn') continue;
          add({ id: `${method}-${t}`, method, scheme: t, bits, format });
        } else if (format === 'onnx') {
          // MatMulNBits: 2, 4 or 8 bits in blocks of a power of two ≥ 16 dividing every K (the
          // transformers.js folder of quantize --format onnx); other widths would not be low-bit there
          if (![2, 4, 8].includes(bits)) continue;
          for (const gs of groups) {
            if (!(gs >= 16 && (gs & (gs - 1)) === 0 && linearKs(c).every((k) => k % gs === 0))) continue;
            add({ id: `${method}-int${bits}-g${gs}-onnx`, method, scheme: `int${bits}-g${gs}`, bits, format });
          }
        } else {
          if (bits === 1.58 || bits > 8) continue;
          for (const gs of groups) {
            const scheme = gs > 0 ? `int${bits}-g${gs}` : `int${bits}-channel`;
            // rows that cannot be packed into int32 words are written as fake-quant float files
            add({ id: `${method}-${scheme}`, method, scheme, bits, format: packable(c) ? format : 'fakequant' });
          }
        }
      }
    }
  }
  if (g.methods.includes('mixed') && g.formats.includes('gguf')) {
    for (const bpw of g.mixedBpw ?? [3.5]) {
      add({ id: `mixed-${bpw}bpw`, method: 'mixed', scheme: kquants ? 'q4_k' : 'q4_0', bits: bpw, format: 'gguf', targetBpw: bpw });
    }
  }
  return pts;
}
