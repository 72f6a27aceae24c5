// llama.cpp's GGUF imatrix format (the default output of `llama-imatrix` since 2025):
//   metadata: general.type = "imatrix", imatrix.datasets (array of string),
//             imatrix.chunk_count (u32), imatrix.chunk_size (u32)
//   tensors, per weight W: "<W>.in_sum2"  F32, ne = [K, M]  (Σ x_j² per matrix/expert)
//                          "<W>.counts"   F32, ne = [1, M]  (tokens per matrix)
// Only the .in_sum2/.counts pairs are read (a file may carry other tensors); an unpaired or
// non-F32 tensor is an error naming it, as in llama.cpp's loader.
// Legend: K = values per matrix row, M = matrices (experts; 1 for dense weights).

import { FormatError } from '../../core/errors.js';
import { memorySource, typedFromBytes } from '../bytes.js';
import { encodeGguf, gv, readGguf, type GgufValue, type GgufWriteTensor } from '../gguf/index.js';
import type { Imatrix, ImatrixEntry } from './types.js';

const SUMS = '.in_sum2';
const COUNTS = '.counts';

/** True when the bytes start with the GGUF magic (otherwise try the legacy reader). */
export function isGgufImatrix(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x47 && bytes[1] === 0x47 && bytes[2] === 0x55 && bytes[3] === 0x46;
}

export async function readImatrixGguf(bytes: Uint8Array, file = '<buffer>'): Promise<Imatrix> {
  const g = await readGguf(memorySource(bytes, file));
  const pairs = new Map<string, { sums?: string; counts?: string }>();
  for (const t of g.tensors) {
    const isSums = t.name.endsWith(SUMS);
    const isCounts = t.name.endsWith(COUNTS);
    if (!isSums && !isCounts) continue;
    if (t.type !== 'F32') throw new FormatError('dtype_unknown', 'imatrix tensors must be F32', { file, tensor: t.name, expected: 'F32', found: t.type });
    const base = t.name.slice(0, t.name.length - (isSums ? SUMS.length : COUNTS.length));
    const p = pairs.get(base) ?? {};
    if (isSums) p.sums = t.name;
    else p.counts = t.name;
    pairs.set(base, p);
  }
  const entries = new Map<string, ImatrixEntry>();
  for (const [base, p] of pairs) {
    if (!p.sums || !p.counts) {
      throw new FormatError('missing_tensor', 'imatrix sums and counts are not paired', { file, tensor: base, expected: `${base}${SUMS} and ${base}${COUNTS}`, found: p.sums ?? p.counts });
    }
    const sums = typedFromBytes('F32', await g.readBytes(p.sums)).slice();
    const counts = Array.from(typedFromBytes('F32', await g.readBytes(p.counts)), (c) => Math.round(c));
    if (!counts.length || sums.length % counts.length !== 0) {
      throw new FormatError('shape_mismatch', 'imatrix sums are not a whole number of rows per count', { file, tensor: p.sums, expected: `a multiple of ${counts.length}`, found: sums.length });
    }
    entries.set(base, { sums, counts });
  }
  const num = (key: string): number => {
    const v = g.get(key);
    return typeof v === 'number' ? v : typeof v === 'bigint' ? Number(v) : 0;
  };
  const ds = g.get('imatrix.datasets');
  await g.close();
  return {
    entries,
    chunkCount: num('imatrix.chunk_count'),
    chunkSize: num('imatrix.chunk_size'),
    datasets: Array.isArray(ds) ? ds.filter((x): x is string => typeof x === 'string') : [],
  };
}

export async function writeImatrixGguf(im: Imatrix): Promise<Uint8Array> {
  const meta: [string, GgufValue][] = [
    ['general.type', gv.str('imatrix')],
    ['imatrix.datasets', gv.arr('string', [...im.datasets])],
    ['imatrix.chunk_count', gv.u32(im.chunkCount)],
    ['imatrix.chunk_size', gv.u32(im.chunkSize)],
  ];
  const tensors: GgufWriteTensor[] = [];
  for (const name of [...im.entries.keys()].sort()) {
    const e = im.entries.get(name)!;
    const m = e.counts.length;
    const k = e.sums.length / m;
    tensors.push({ name: name + SUMS, type: 'F32', shape: [m, k], data: e.sums });
    tensors.push({ name: name + COUNTS, type: 'F32', shape: [m, 1], data: Float32Array.from(e.counts) });
  }
  return encodeGguf(meta, tensors);
}
