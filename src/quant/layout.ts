// Scale-group layout: which elements share one scale. Every granularity is expressed as equal-length
// contiguous runs of the row-major data, each run belonging to one scale index, so codecs loop over
// runs without per-element division.
// Legend: N = rows, K = last (contiguous) axis, G = group size, S = number of scales.
//   tensor:          1 run of numel elements, scale 0;                      scale shape []
//   channel(axis a): outer·mid runs of `inner` elements, scale = run % mid; scale shape [shape[a]]
//   group(G):        numel/G runs of G elements, scale = run;             scale shape [...shape[:-1], K/G]

import { ConfigError, ShapeError } from '../core/errors.js';
import { numel } from '../core/tensor.js';
import type { Granularity } from './scheme.js';

export interface ScaleLayout {
  /** number of runs */
  nRuns: number;
  /** elements per run */
  runLen: number;
  /** scale index of run r is r % mod (mod = nScales for tensor/group, mid for channel) */
  mod: number;
  nScales: number;
  scaleShape: number[];
}

export function scaleLayout(shape: readonly number[], g: Granularity, name?: string): ScaleLayout {
  const n = numel(shape);
  const tensor = name ?? '<unnamed>';
  switch (g.kind) {
    case 'tensor':
      return { nRuns: 1, runLen: n, mod: 1, nScales: 1, scaleShape: [] };
    case 'channel': {
      const a = g.axis < 0 ? g.axis + shape.length : g.axis;
      if (!Number.isInteger(a) || a < 0 || a >= shape.length) {
        throw new ConfigError('bad_option', 'channel axis out of range', {
          tensor,
          expected: `an axis of a rank-${shape.length} tensor`,
          found: g.axis,
        });
      }
      const mid = shape[a];
      let outer = 1;
      for (let i = 0; i < a; i++) outer *= shape[i];
      const inner = numel(shape.slice(a + 1));
      return { nRuns: outer * mid, runLen: inner, mod: mid, nScales: mid, scaleShape: [mid] };
    }
    case 'group': {
      const k = shape.length ? shape[shape.length - 1] : 1;
      if (!Number.isInteger(g.size) || g.size < 1) {
        throw new ConfigError('bad_option', 'group size must be a positive integer', { tensor, found: g.size });
      }
      if (k % g.size !== 0) {
        throw new ShapeError('shape_mismatch', 'last axis is not a whole number of groups (ragged last group)', {
          tensor,
          field: 'K',
          expected: `a multiple of group size ${g.size}`,
          found: k,
          hint: 'pick a group size that divides the input dimension, or pad the tensor',
        });
      }
      const nScales = n / g.size;
      const scaleShape = shape.length ? [...shape.slice(0, -1), k / g.size] : [1];
      return { nRuns: nScales, runLen: g.size, mod: nScales, nScales, scaleShape };
    }
  }
}

/** Min and max of each scale group. [S] each. */
export function groupMinMax(w: Float32Array, lay: ScaleLayout): { mins: Float64Array; maxs: Float64Array } {
  const mins = new Float64Array(lay.nScales).fill(Infinity);
  const maxs = new Float64Array(lay.nScales).fill(-Infinity);
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const s = r % lay.mod;
    let lo = mins[s];
    let hi = maxs[s];
    for (let i = off, end = off + lay.runLen; i < end; i++) {
      const v = w[i];
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    mins[s] = lo;
    maxs[s] = hi;
  }
  for (let s = 0; s < lay.nScales; s++) {
    if (mins[s] === Infinity) {
      mins[s] = 0;
      maxs[s] = 0;
    }
  }
  return { mins, maxs };
}

/** Sum of |w| and element count of each scale group (for absmean scales). */
export function groupAbsMean(w: Float32Array, lay: ScaleLayout): Float64Array {
  const sums = new Float64Array(lay.nScales);
  const counts = new Float64Array(lay.nScales);
  for (let r = 0, off = 0; r < lay.nRuns; r++, off += lay.runLen) {
    const s = r % lay.mod;
    let acc = 0;
    for (let i = off, end = off + lay.runLen; i < end; i++) acc += Math.abs(w[i]);
    sums[s] += acc;
    counts[s] += lay.runLen;
  }
  for (let s = 0; s < lay.nScales; s++) sums[s] = counts[s] ? sums[s] / counts[s] : 0;
  return sums;
}
