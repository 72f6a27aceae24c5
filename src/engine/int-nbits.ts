// Integer-grid weights as MatMulNBits operands (nbits.ts): the int schemes of quant (IntQuantized,
// what `eval --w-bits int4-g128` makes) and the stored codes of GPTQ-packed and compressed-tensors
// checkpoints (PackedIntCodes, formats/packed-int.ts, read by formats/gptq and formats/compressed-tensors).
//   widths: b ≤ 2 → 2-bit, b ≤ 4 → 4-bit, b ≤ 8 → 8-bit container (3-bit codes run as 4-bit, 5–7 as 8-bit);
//           a symmetric code q is stored as q + 2^(w−1) with the kernel's default zero point, an
//           asymmetric one as is with its integer zero point — so u − z is the stored integer exactly
//   blocks: the kernel block is the largest power of two ≤ 256 dividing the group (≥ 16), the group's
//           scale repeated over its blocks; per-channel and per-tensor scales are one group of K
//   g_idx:  act-order checkpoints assign columns to groups; when every group has exactly G columns the
//           columns are sorted by group (perm) and the input is gathered in that order, which keeps the
//           packed kernel (onnxruntime's own g_idx input needs float zero points and an unpacked path)
// W[n, k] = fround(s·(u − z)) as the readers and quant's dequantizeInt compute it, bit for bit.
// Legend: N = rows, K = columns, G = group, nG = groups per row, Gk = kernel block.

import { ConfigError } from '../core/errors.js';
import type { PackedIntCodes } from '../formats/packed-int.js';
import type { IntQuantized } from '../quant/types.js';
import { nbitsBlockFor, nbitsContainer, packNBits, type NBitsLinear } from './nbits.js';

/** Why an int weight cannot run on MatMulNBits, or null when it can. */
export function intNBitsObstacle(bits: number, groupSize: number, K: number): string | null {
  if (!Number.isInteger(bits) || bits < 1 || bits > 8) return `${bits}-bit codes`;
  if (K % groupSize !== 0) return `groups of ${groupSize} do not tile K = ${K}`;
  if (!nbitsBlockFor(groupSize)) return `group ${groupSize} has no power-of-two block >= 16`;
  return null;
}

function kernelName(bits: number, w: number, G: number, Gk: number, perm: boolean): string {
  return `${w}-bit g${Gk}${bits !== w ? ` (${bits}-bit codes)` : ''}${G !== Gk ? ` (groups of ${G})` : ''}${perm ? ' + act-order perm' : ''}`;
}

/**
 * Packs codes with one scale and zero point per group of G consecutive columns of each row
 * (scales/zeros [N·nG], n-major) into operands with kernel block Gk | G.
 */
function fromGroups(N: number, K: number, bits: number, G: number, codes: ArrayLike<number>, scales: Float32Array, zeros: ArrayLike<number> | null, perm: Int32Array | null): NBitsLinear {
  const w = nbitsContainer(bits);
  const Gk = nbitsBlockFor(G);
  const rep = G / Gk;
  const nG = K / G;
  const s = new Float32Array(N * nG * rep);
  const z = zeros ? new Uint8Array(N * nG * rep) : null;
  for (let i = 0; i < N * nG; i++) {
    s.fill(scales[i], i * rep, (i + 1) * rep);
    if (z) z.fill(zeros![i], i * rep, (i + 1) * rep);
  }
  return { N, K, main: packNBits(N, K, w, Gk, codes, s, z), mins: null, perm, kernel: kernelName(bits, w, G, Gk, perm !== null) };
}

/** The NBitsLinear of an int-quantized [N, K] weight, or null when its granularity has no kernel form. */
export function intToNBits(q: IntQuantized): NBitsLinear | null {
  if (q.shape.length !== 2) return null;
  const [N, K] = q.shape;
  const g = q.scheme.granularity;
  const bits = q.scheme.bits;
  let G: number;
  let scales = q.scales;
  let zeros = q.zeros ?? null;
  if (g.kind === 'group') G = g.size;
  else if (g.kind === 'channel' && (g.axis === 0 || g.axis === -2)) G = K;
  else if (g.kind === 'tensor') {
    G = K;
    scales = new Float32Array(N).fill(q.scales[0]);
    if (zeros) zeros = new Uint8Array(N).fill(zeros[0]);
  } else return null;
  if (intNBitsObstacle(bits, G, K)) return null;
  if (q.scheme.symmetric) {
    const off = 1 << (nbitsContainer(bits) - 1);
    const u = new Uint8Array(q.codes.length);
    for (let i = 0; i < u.length; i++) u[i] = q.codes[i] + off;
    return fromGroups(N, K, bits, G, u, scales, null, null);
  }
  if (!zeros) throw new ConfigError('bad_config', 'asymmetric int weight without zero points', { field: 'zeros', expected: 'one per scale', found: 'none' });
  return fromGroups(N, K, bits, G, q.codes, scales, zeros, null);
}

/**
 * The column order that makes act-order groups contiguous: columns sorted by group (stable), or
 * null when g_idx is already ⌊k/G⌋. Throws when the groups are not all of size G (no such order).
 */
export function actOrderPerm(gIdx: Int32Array, G: number): Int32Array | null {
  const K = gIdx.length;
  let trivial = true;
  for (let k = 0; k < K && trivial; k++) trivial = gIdx[k] === Math.floor(k / G);
  if (trivial) return null;
  const nG = K / G;
  const count = new Int32Array(nG);
  for (let k = 0; k < K; k++) {
    if (!(gIdx[k] >= 0 && gIdx[k] < nG)) throw new ConfigError('bad_config', 'g_idx names a group that does not exist', { index: k, expected: `0..${nG - 1}`, found: gIdx[k] });
    count[gIdx[k]]++;
  }
  const bad = count.findIndex((c) => c !== G);
  if (bad >= 0) throw new ConfigError('unsupported', 'act-order groups of unequal size cannot be made contiguous', { index: bad, expected: G, found: count[bad] });
  const next = Int32Array.from({ length: nG }, (_, g) => g * G);
  const perm = new Int32Array(K);
  for (let k = 0; k < K; k++) perm[next[gIdx[k]]++] = k;
  return perm;
}

/** The NBitsLinear of a checkpoint's stored int codes for W [N, K], or null when they have no kernel form. */
export function packedIntToNBits(c: PackedIntCodes, N: number, K: number): NBitsLinear | null {
  const G = c.groupSize;
  if (intNBitsObstacle(c.bits, G, K)) return null;
  let perm: Int32Array | null = null;
  if (c.gIdx) {
    try {
      perm = actOrderPerm(c.gIdx, G);
    } catch {
      return null;
    }
  }
  let codes: Uint8Array = c.codes;
  if (perm) {
    codes = new Uint8Array(N * K);
    for (let n = 0; n < N; n++) for (let k = 0; k < K; k++) codes[n * K + k] = c.codes[n * K + perm[k]];
  }
  // a narrower code in a wider container keeps u − z: the zero point is packed at the container width
  return fromGroups(N, K, c.bits, G, codes, c.scales, c.zeros, perm);
}
