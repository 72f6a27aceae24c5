// llama.cpp's legacy binary imatrix file (`imatrix.dat`, `llama-imatrix --output-format dat`).
// Layout (little-endian), as read by llama.cpp's common_imatrix_load_legacy:
//   1. i32 n_entries (≥ 1)
//   2. per entry: i32 name_len, name bytes (UTF-8, no terminator), i32 ncall, i32 nval (≥ 1),
//      f32 values[nval], where values = E[x²]·ncall (llama.cpp divides by ncall when loading)
//   3. optional trailer: i32 last_chunk (chunks processed), i32 dataset_len, dataset bytes
// The loader keeps values as sums and ncall as the single count, so importance = values/ncall.
// When writing, ncall = ceil(max(counts)/chunk_size) (llama.cpp's choice) if the chunk size is
// known, else the chunk count (at least 1); values = sums/count·ncall per matrix.
// Legend: K = values per matrix row, M = matrices (experts).

import { FormatError } from '../../core/errors.js';
import type { Imatrix, ImatrixEntry } from './types.js';

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** Parses a legacy imatrix file; every size is checked against the bytes left before allocating. */
export function readImatrixLegacy(bytes: Uint8Array, file = '<buffer>'): Imatrix {
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let o = 0;
  const need = (n: number, field: string): void => {
    if (o + n > bytes.length) {
      throw new FormatError('truncated', 'imatrix file ends early', { file, field, offset: o, expected: `${n} more bytes`, found: bytes.length - o });
    }
  };
  const i32 = (field: string): number => {
    need(4, field);
    const v = dv.getInt32(o, true);
    o += 4;
    return v;
  };
  const nEntries = i32('n_entries');
  // an entry takes at least 4 + 0 + 4 + 4 + 4 bytes
  if (nEntries < 1 || nEntries > (bytes.length - 4) / 16) {
    throw new FormatError('bad_header', 'implausible number of imatrix entries', { file, field: 'n_entries', offset: 0, expected: `1..${Math.floor((bytes.length - 4) / 16)}`, found: nEntries });
  }
  const entries = new Map<string, ImatrixEntry>();
  for (let i = 0; i < nEntries; i++) {
    const at = o;
    const len = i32('name_len');
    if (len < 0) throw new FormatError('bad_string', 'negative name length', { file, field: 'name_len', offset: at, index: i, found: len });
    need(len, 'name');
    let name: string;
    try {
      name = utf8.decode(bytes.subarray(o, o + len));
    } catch {
      throw new FormatError('bad_string', 'entry name is not UTF-8', { file, field: 'name', offset: o, index: i });
    }
    o += len;
    const ncall = i32('ncall');
    const nvalAt = o;
    const nval = i32('nval');
    if (nval < 1) throw new FormatError('bad_header', 'entry has no values', { file, field: 'nval', tensor: name, offset: nvalAt, expected: '≥ 1', found: nval });
    need(nval * 4, 'values');
    if (entries.has(name)) throw new FormatError('duplicate_name', 'imatrix entry appears twice', { file, tensor: name, offset: at });
    const sums = new Float32Array(nval);
    for (let j = 0; j < nval; j++) sums[j] = dv.getFloat32(o + 4 * j, true);
    o += nval * 4;
    entries.set(name, { sums, counts: [ncall] });
  }
  let chunkCount = 0;
  const datasets: string[] = [];
  if (o + 4 <= bytes.length) {
    chunkCount = i32('last_chunk');
    if (o + 4 <= bytes.length) {
      const len = i32('dataset_len');
      if (len > 0) {
        need(len, 'dataset');
        try {
          datasets.push(utf8.decode(bytes.subarray(o, o + len)));
        } catch {
          throw new FormatError('bad_string', 'dataset name is not UTF-8', { file, field: 'dataset', offset: o });
        }
        o += len;
      }
    }
  }
  return { entries, chunkCount, chunkSize: 0, datasets };
}

/** Serialises to the legacy layout (entries in name order, like llama.cpp's sorted save). */
export function writeImatrixLegacy(im: Imatrix): Uint8Array {
  const enc = new TextEncoder();
  const names = [...im.entries.keys()].sort();
  const parts: Uint8Array[] = [];
  const i32 = (v: number): Uint8Array => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, v, true);
    return b;
  };
  parts.push(i32(names.length));
  for (const name of names) {
    const e = im.entries.get(name)!;
    const m = e.counts.length;
    const k = e.sums.length / m;
    const maxCount = Math.max(...e.counts);
    const ncall = im.chunkSize > 0 ? Math.ceil(maxCount / im.chunkSize) : Math.max(1, im.chunkCount || maxCount);
    const nb = enc.encode(name);
    parts.push(i32(nb.length), nb, i32(ncall), i32(e.sums.length));
    const vals = new Float32Array(e.sums.length);
    for (let i = 0; i < m; i++) {
      const c = e.counts[i];
      for (let j = 0; j < k; j++) vals[i * k + j] = c > 0 ? (e.sums[i * k + j] / c) * ncall : 0;
    }
    parts.push(new Uint8Array(vals.buffer));
  }
  parts.push(i32(im.chunkCount));
  const ds = enc.encode(im.datasets[0] ?? '');
  parts.push(i32(ds.length), ds);
  const total = parts.reduce((a, p) => a + p.length, 0);
  const out = new Uint8Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
