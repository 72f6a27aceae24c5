// Round-to-nearest of float64 weights on the column grids of GPTQ/RTN (src/algorithms/grid.ts
// IntGrid and CodebookGrid, whose quantizeColumn is the reference), a block of rows at a time in
// row order: the same float64 operations per value as the TypeScript, so the same codes and values.
// Legend: R rows in this call, K columns, G group size, ng = ⌈K / G⌉ groups per row.

/** TypeScript's roundHalfEven and roundHalfAwayFromZero (numerics/round.ts) on float64. */
// @ts-ignore: decorator
@inline export function roundMode(x: f64, away: bool): f64 {
  if (!away) return nearest<f64>(x);
  const a = abs<f64>(x);
  let r = floor<f64>(a);
  if (a - r >= 0.5) r += 1;
  return x < 0 ? -r : r;
}

/**
 * IntGrid: q = clamp(round(w / s) + z, qmin, qmax), or z where s = 0; codes (one byte each, the
 * two's complement of q) and ŵ = s·(q − z). Scales and zeros [R, ng] start at the block's first row.
 */
export function rtnIntRows(w: usize, R: i32, K: i32, G: i32, ng: i32, scales: usize, zeros: usize, qmin: f64, qmax: f64, away: bool, codes: usize, out: usize): void {
  for (let r = 0; r < R; r++) {
    for (let g = 0; g < ng; g++) {
      const s = load<f64>(scales + (<usize>(r * ng + g) << 3));
      const z = <f64>load<i32>(zeros + (<usize>(r * ng + g) << 2));
      const c1 = min<i32>(K, (g + 1) * G);
      for (let j = g * G; j < c1; j++) {
        const i = <usize>(r * K + j);
        let q = z;
        if (s != 0) {
          q = roundMode(load<f64>(w + (i << 3)) / s, away) + z;
          if (q < qmin) q = qmin;
          else if (q > qmax) q = qmax;
        }
        store<u8>(codes + i, <u8>(<i32>q));
        store<f64>(out + (i << 3), s * (q - z));
      }
    }
  }
}

/**
 * The index of the level of `book` (L ascending f32 levels, bottom and top its ends) nearest to v:
 * ties to the even index, the ends clamped, as quant/codebook.ts nearestLevel.
 */
// @ts-ignore: decorator
@inline export function nearestBookLevel(book: usize, L: i32, v: f64, bottom: f64, top: f64): i32 {
  if (v <= bottom) return 0;
  if (v >= top) return L - 1;
  // the largest lo with book[lo] ≤ v (the binary search's): one less than the count of such
  // levels, counted without branches (a code book has a handful of levels)
  let cnt = 0;
  for (let t = 1; t < L - 1; t++) cnt += <i32>(<f64>load<f32>(book + (<usize>t << 2)) <= v);
  const lo = cnt;
  const hi = lo + 1;
  const dl = v - <f64>load<f32>(book + (<usize>lo << 2));
  const dh = <f64>load<f32>(book + (<usize>hi << 2)) - v;
  return dh < dl || (dh == dl && (hi & 1) == 0) ? hi : lo;
}

/**
 * CodebookGrid: code = the nearest level of v = w / s (0 where s = 0; ties to the even index, the
 * ends clamped, as quant/codebook.ts nearestLevel), ŵ = s·book[code]. book: L float32 levels.
 */
export function rtnBookRows(w: usize, R: i32, K: i32, G: i32, ng: i32, scales: usize, book: usize, L: i32, codes: usize, out: usize): void {
  const top = <f64>load<f32>(book + (<usize>(L - 1) << 2));
  const bottom = <f64>load<f32>(book);
  for (let r = 0; r < R; r++) {
    for (let g = 0; g < ng; g++) {
      const s = load<f64>(scales + (<usize>(r * ng + g) << 3));
      const c1 = min<i32>(K, (g + 1) * G);
      for (let j = g * G; j < c1; j++) {
        const i = <usize>(r * K + j);
        const v: f64 = s == 0 ? 0 : load<f64>(w + (i << 3)) / s;
        const q = nearestBookLevel(book, L, v, bottom, top);
        store<u8>(codes + i, <u8>q);
        store<f64>(out + (i << 3), s * <f64>load<f32>(book + (<usize>q << 2)));
      }
    }
  }
}
