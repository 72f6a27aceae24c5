// llama2.c checkpoints (karpathy/llama2.c run.c / runq.c / export.py), read and written.
//
// Three layouts are supported:
// - version 0 ("legacy", no magic): 7 little-endian int32 (dim, hidden_dim, n_layers, n_heads,
//   n_kv_heads, vocab_size, seq_len); a negative vocab_size means a separate classifier follows.
//   Then f32 arrays: token embedding, rms_att×L, wq×L, wk×L, wv×L, wo×L, rms_ffn×L, w1×L, w2×L,
//   w3×L, rms_final, a RoPE table (2 × seq_len × head_dim/2, ignored: RoPE is recomputed), and
//   the classifier when not shared.
// - version 1: a 256-byte header (u32 magic 0x616b3432 "ak42", i32 version, the same 7 int32 with
//   a positive vocab_size, u8 shared_classifier, zero padding), then f32: rms_att×L, rms_ffn×L,
//   rms_final, embedding, wq×L, wk×L, wv×L, wo×L, w1×L, w2×L, w3×L, [classifier]. No RoPE table.
// - version 2 (runq.c "Q8_0"): header as version 1 plus i32 group_size after the flag byte; the
//   norms in f32 (rms_att×L, rms_ffn×L, rms_final), then each remaining matrix in version-1 order
//   as int8 values (numel bytes) immediately followed by its f32 scales (numel / GS), symmetric:
//   scale = max|w| / 127 per group of GS consecutive elements, q = round-half-even(w / scale).
//   (This is not ggml's Q8_0: scales are f32 and stored after the values, not per block.)
//
// Every matrix is a PyTorch nn.Linear weight: [out, in] row-major. wq/wk rows are in the
// interleaved rotary layout (pairs 2i, 2i+1).
// Legend: E = dim, F = hidden_dim, L = n_layers, H = n_heads, Hk = n_kv_heads, D = E / H, V = vocab.

import { FormatError } from '../../core/errors.js';
import { roundHalfEven } from '../../numerics/round.js';

export const LLAMA2C_MAGIC = 0x616b3432;
const V1_HEADER_BYTES = 256;
const LEGACY_HEADER_BYTES = 28;

export type Llama2cVersion = 0 | 1 | 2;

export interface Llama2cHeader {
  version: Llama2cVersion;
  /** E */
  dim: number;
  /** F */
  hiddenDim: number;
  nLayers: number;
  nHeads: number;
  nKvHeads: number;
  /** V (always positive here; the legacy sign is decoded into sharedClassifier) */
  vocabSize: number;
  seqLen: number;
  sharedClassifier: boolean;
  /** version 2 quantization group size, else null */
  groupSize: number | null;
}

/** The named arrays of a llama2.c checkpoint (run.c's TransformerWeights field names). */
export type Llama2cArray =
  | 'token_embedding_table'
  | 'rms_att_weight'
  | 'wq'
  | 'wk'
  | 'wv'
  | 'wo'
  | 'rms_ffn_weight'
  | 'w1'
  | 'w2'
  | 'w3'
  | 'rms_final_weight'
  | 'freq_cis'
  | 'wcls';

export interface Llama2cEntry {
  array: Llama2cArray;
  /** layer index for per-layer arrays, else null */
  layer: number | null;
  shape: number[];
  /** byte offset of the data (the int8 values for 'q80') */
  offset: number;
  /** stored bytes (values and scales for 'q80') */
  byteLength: number;
  encoding: 'f32' | 'q80';
}

export interface Llama2cLayout {
  header: Llama2cHeader;
  headerBytes: number;
  /** in file order; includes the legacy RoPE table as array 'freq_cis' (not a model weight) */
  entries: Llama2cEntry[];
  /** the exact size a file with this header must have */
  fileSize: number;
}

/** Bytes the header parser needs to see (enough for every version). */
export const LLAMA2C_HEADER_PROBE = V1_HEADER_BYTES;

/** Parses the header and lays out every array; `fileSize` is checked before anything is read. */
export function parseLlama2cLayout(head: Uint8Array, fileSize: number, file = '<buffer>'): Llama2cLayout {
  if (head.length < LEGACY_HEADER_BYTES || fileSize < LEGACY_HEADER_BYTES) {
    throw new FormatError('truncated', 'llama2.c checkpoint shorter than its header', {
      file,
      offset: 0,
      expected: `>= ${LEGACY_HEADER_BYTES} bytes`,
      found: Math.min(head.length, fileSize),
    });
  }
  const dv = new DataView(head.buffer, head.byteOffset, head.byteLength);
  const magic = dv.getUint32(0, true);
  let header: Llama2cHeader;
  let headerBytes: number;
  if (magic === LLAMA2C_MAGIC) {
    if (head.length < V1_HEADER_BYTES || fileSize < V1_HEADER_BYTES) {
      throw new FormatError('truncated', 'llama2.c versioned header is 256 bytes', {
        file,
        offset: 0,
        expected: `>= ${V1_HEADER_BYTES} bytes`,
        found: Math.min(head.length, fileSize),
      });
    }
    const version = dv.getInt32(4, true);
    if (version !== 1 && version !== 2) {
      throw new FormatError('bad_version', 'unsupported llama2.c checkpoint version', {
        file,
        field: 'version',
        offset: 4,
        expected: '1 or 2',
        found: version,
      });
    }
    const p = readParams(dv, 8);
    const shared = head[36];
    if (shared !== 0 && shared !== 1) {
      throw new FormatError('bad_header', 'shared_classifier flag must be 0 or 1', { file, field: 'shared_classifier', offset: 36, expected: '0 or 1', found: shared });
    }
    header = { version, ...p, sharedClassifier: shared === 1, groupSize: version === 2 ? dv.getInt32(37, true) : null };
    headerBytes = V1_HEADER_BYTES;
  } else {
    const p = readParams(dv, 0);
    header = { version: 0, ...p, vocabSize: Math.abs(p.vocabSize), sharedClassifier: p.vocabSize > 0, groupSize: null };
    headerBytes = LEGACY_HEADER_BYTES;
  }
  validateHeader(header, file, headerBytes === LEGACY_HEADER_BYTES ? 0 : 8);
  // every layer stores at least its FFN matrices (3·dim·hidden_dim weights, ≥ 1 byte each in any
  // version): a layer count the file cannot hold is refused before a table of it is built
  const perLayer = 3 * header.dim * header.hiddenDim;
  if (header.nLayers * perLayer > fileSize) {
    throw new FormatError('truncated', 'n_layers is more than the file can hold', {
      file,
      field: 'n_layers',
      offset: (headerBytes === LEGACY_HEADER_BYTES ? 0 : 8) + 8,
      expected: `<= ${Math.floor(fileSize / perLayer)} for a ${fileSize}-byte file (dim ${header.dim}, hidden_dim ${header.hiddenDim})`,
      found: header.nLayers,
    });
  }
  const { entries, end } = layoutEntries(header, headerBytes);
  if (fileSize !== end) {
    throw new FormatError(fileSize < end ? 'truncated' : 'bad_header', fileSize < end ? 'llama2.c checkpoint is shorter than its header implies' : 'llama2.c checkpoint has bytes its header does not account for', {
      file,
      offset: Math.min(fileSize, end),
      expected: `${end} bytes (dim ${header.dim}, hidden_dim ${header.hiddenDim}, n_layers ${header.nLayers}, vocab ${header.vocabSize}, version ${header.version})`,
      found: `${fileSize} bytes`,
      hint: fileSize < end ? 'the file was cut short (incomplete download or copy?)' : 'is this really a llama2.c checkpoint of this version?',
    });
  }
  return { header, headerBytes, entries, fileSize: end };
}

const PARAM_NAMES = ['dim', 'hidden_dim', 'n_layers', 'n_heads', 'n_kv_heads', 'vocab_size', 'seq_len'] as const;

function readParams(dv: DataView, at: number) {
  const v = PARAM_NAMES.map((_, i) => dv.getInt32(at + 4 * i, true));
  return { dim: v[0], hiddenDim: v[1], nLayers: v[2], nHeads: v[3], nKvHeads: v[4], vocabSize: v[5], seqLen: v[6] };
}

// Bounds keep a corrupt header from implying absurd sizes before the file-size check runs.
const MAX_DIM = 1 << 20;

function validateHeader(h: Llama2cHeader, file: string, at: number): void {
  const vals = [h.dim, h.hiddenDim, h.nLayers, h.nHeads, h.nKvHeads, h.vocabSize, h.seqLen];
  vals.forEach((v, i) => {
    if (!Number.isInteger(v) || v <= 0 || v > MAX_DIM) {
      throw new FormatError('bad_header', 'llama2.c header value out of range', {
        file,
        field: PARAM_NAMES[i],
        offset: at + 4 * i,
        expected: `1..${MAX_DIM}`,
        found: v,
        hint: h.version === 0 ? 'a legacy (version 0) file has no magic; is this a llama2.c checkpoint?' : undefined,
      });
    }
  });
  const bad = (field: string, expected: string, found: unknown) => new FormatError('bad_header', 'inconsistent llama2.c header', { file, field, expected, found });
  if (h.dim % h.nHeads !== 0) throw bad('n_heads', `a divisor of dim ${h.dim}`, h.nHeads);
  if (h.nHeads % h.nKvHeads !== 0) throw bad('n_kv_heads', `a divisor of n_heads ${h.nHeads}`, h.nKvHeads);
  if ((h.dim / h.nHeads) % 2 !== 0) throw bad('n_heads', 'an even head dim (RoPE rotates pairs)', h.dim / h.nHeads);
  // export.py only requires GS | dim (then every matrix, having a dim-sized side, is whole groups)
  if (h.groupSize !== null && (h.groupSize <= 0 || h.dim % h.groupSize !== 0)) {
    throw bad('group_size', `a positive divisor of dim ${h.dim}`, h.groupSize);
  }
}

/** Shapes of every model array (rows = out features). */
export function llama2cShapes(h: Llama2cHeader): Record<Exclude<Llama2cArray, 'freq_cis'>, number[]> {
  const D = h.dim / h.nHeads;
  const kv = h.nKvHeads * D;
  return {
    token_embedding_table: [h.vocabSize, h.dim],
    rms_att_weight: [h.dim],
    wq: [h.nHeads * D, h.dim],
    wk: [kv, h.dim],
    wv: [kv, h.dim],
    wo: [h.dim, h.nHeads * D],
    rms_ffn_weight: [h.dim],
    w1: [h.hiddenDim, h.dim],
    w2: [h.dim, h.hiddenDim],
    w3: [h.hiddenDim, h.dim],
    rms_final_weight: [h.dim],
    wcls: [h.vocabSize, h.dim],
  };
}

const LAYERED = new Set<Llama2cArray>(['rms_att_weight', 'wq', 'wk', 'wv', 'wo', 'rms_ffn_weight', 'w1', 'w2', 'w3']);

/** The array sequence of a version, one item per array name (expanded per layer by layoutEntries). */
export function llama2cOrder(h: Pick<Llama2cHeader, 'version' | 'sharedClassifier'>): Llama2cArray[] {
  const mats: Llama2cArray[] = ['wq', 'wk', 'wv', 'wo', 'w1', 'w2', 'w3'];
  const cls: Llama2cArray[] = h.sharedClassifier ? [] : ['wcls'];
  if (h.version === 0) {
    return ['token_embedding_table', 'rms_att_weight', 'wq', 'wk', 'wv', 'wo', 'rms_ffn_weight', 'w1', 'w2', 'w3', 'rms_final_weight', 'freq_cis', ...cls];
  }
  return ['rms_att_weight', 'rms_ffn_weight', 'rms_final_weight', 'token_embedding_table', ...mats, ...cls];
}

function layoutEntries(h: Llama2cHeader, start: number): { entries: Llama2cEntry[]; end: number } {
  const shapes = llama2cShapes(h);
  const entries: Llama2cEntry[] = [];
  let off = start;
  for (const array of llama2cOrder(h)) {
    if (array === 'freq_cis') {
      // real and imaginary halves, seq_len × D/2 each
      const n = h.seqLen * (h.dim / h.nHeads);
      entries.push({ array, layer: null, shape: [2, h.seqLen, h.dim / h.nHeads / 2], offset: off, byteLength: 4 * n, encoding: 'f32' });
      off += 4 * n;
      continue;
    }
    const shape = shapes[array];
    const quant = h.version === 2 && shape.length === 2;
    const layers = LAYERED.has(array) ? h.nLayers : 1;
    for (let l = 0; l < layers; l++) {
      const n = shape[0] * (shape[1] ?? 1);
      const byteLength = quant ? n + 4 * (n / (h.groupSize as number)) : 4 * n;
      entries.push({ array, layer: LAYERED.has(array) ? l : null, shape: [...shape], offset: off, byteLength, encoding: quant ? 'q80' : 'f32' });
      off += byteLength;
    }
  }
  return { entries, end: off };
}

/** Decodes an entry's stored bytes (exactly `entry.byteLength` of them) to float32. */
export function decodeLlama2cEntry(entry: Llama2cEntry, bytes: Uint8Array, groupSize: number | null): Float32Array {
  if (bytes.length !== entry.byteLength) {
    throw new FormatError('truncated', 'short read of a llama2.c array', { tensor: entryLabel(entry), offset: entry.offset, expected: entry.byteLength, found: bytes.length });
  }
  const n = entry.shape.reduce((a, b) => a * b, 1);
  const copy = bytes.slice(); // aligned, owned
  if (entry.encoding === 'f32') return new Float32Array(copy.buffer, 0, n);
  const GS = groupSize as number;
  const q = new Int8Array(copy.buffer, 0, n);
  const s = new Float32Array(copy.buffer.slice(n, n + 4 * (n / GS)));
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = q[i] * s[(i / GS) | 0];
  return out;
}

export function entryLabel(e: Pick<Llama2cEntry, 'array' | 'layer'>): string {
  return e.layer === null ? e.array : `${e.array}[${e.layer}]`;
}

/** Encodes the 7-int32 legacy header or the 256-byte versioned header. */
export function encodeLlama2cHeader(h: Llama2cHeader): Uint8Array {
  const bytes = new Uint8Array(h.version === 0 ? LEGACY_HEADER_BYTES : V1_HEADER_BYTES);
  const dv = new DataView(bytes.buffer);
  let at = 0;
  if (h.version !== 0) {
    dv.setUint32(0, LLAMA2C_MAGIC, true);
    dv.setInt32(4, h.version, true);
    at = 8;
  }
  const vocab = h.version === 0 && !h.sharedClassifier ? -h.vocabSize : h.vocabSize;
  [h.dim, h.hiddenDim, h.nLayers, h.nHeads, h.nKvHeads, vocab, h.seqLen].forEach((v, i) => dv.setInt32(at + 4 * i, v, true));
  if (h.version !== 0) {
    bytes[36] = h.sharedClassifier ? 1 : 0;
    if (h.version === 2) dv.setInt32(37, h.groupSize as number, true);
  }
  return bytes;
}

/**
 * Quantizes one matrix as runq.c expects: int8 values then f32 scales (see the file comment).
 * Division and the scale are float32 as torch computes them; rounding is half-to-even (torch.round).
 */
export function quantizeLlama2cQ80(w: Float32Array, groupSize: number): Uint8Array {
  const n = w.length;
  if (n % groupSize !== 0) throw new RangeError(`Q8_0 export: ${n} elements is not a multiple of group size ${groupSize}`);
  const out = new Uint8Array(n + 4 * (n / groupSize));
  const q = new Int8Array(out.buffer, 0, n);
  const scales = new Float32Array(n / groupSize);
  for (let g = 0; g < n / groupSize; g++) {
    let amax = 0;
    for (let i = g * groupSize; i < (g + 1) * groupSize; i++) amax = Math.max(amax, Math.abs(w[i]));
    const scale = Math.fround(amax / 127);
    scales[g] = scale;
    for (let i = g * groupSize; i < (g + 1) * groupSize; i++) {
      // an all-zero group gives 0/0 = NaN in torch, cast to int8 0
      q[i] = scale === 0 ? 0 : roundHalfEven(Math.fround(w[i] / scale));
    }
  }
  out.set(new Uint8Array(scales.buffer), n);
  return out;
}

/** llama2.c's legacy RoPE table (theta 10000): cos rows then sin rows, [seq_len, D/2] each. */
export function llama2cRopeTable(h: Llama2cHeader, theta = 10000): Float32Array {
  const D = h.dim / h.nHeads;
  const half = D / 2;
  const out = new Float32Array(2 * h.seqLen * half);
  for (let t = 0; t < h.seqLen; t++) {
    for (let i = 0; i < half; i++) {
      const freq = Math.fround(1 / Math.fround(Math.pow(theta, Math.fround((2 * i) / D))));
      const a = Math.fround(t * freq);
      out[t * half + i] = Math.cos(a);
      out[h.seqLen * half + t * half + i] = Math.sin(a);
    }
  }
  return out;
}

/**
 * Serializes a checkpoint chunk by chunk (one array at a time, so memory stays at one tensor).
 * `get(array, layer)` returns an array's float32 values in llama2.c layout (interleaved wq/wk rows).
 */
export async function* encodeLlama2c(
  h: Llama2cHeader,
  get: (array: Exclude<Llama2cArray, 'freq_cis'>, layer: number | null) => Promise<Float32Array>,
): AsyncGenerator<Uint8Array> {
  validateHeader(h, '<output>', 0);
  yield encodeLlama2cHeader(h);
  const { entries } = layoutEntries(h, 0);
  for (const e of entries) {
    if (e.array === 'freq_cis') {
      yield new Uint8Array(llama2cRopeTable(h).buffer);
      continue;
    }
    const data = await get(e.array, e.layer);
    const n = e.shape.reduce((a, b) => a * b, 1);
    if (data.length !== n) {
      throw new FormatError('shape_mismatch', 'array has the wrong number of elements for this header', { tensor: entryLabel(e), expected: n, found: data.length });
    }
    if (e.encoding === 'q80') yield quantizeLlama2cQ80(data, h.groupSize as number);
    else yield new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  }
}
