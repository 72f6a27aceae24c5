// The row codecs of the streamed int / code-book schemes (quant/codec-rows.ts: `int4-g128`,
// `int8-channel`, `nf4-g64`, …) on f32 rows whose groups tile the rows (K a multiple of G; one
// group per row for per-channel scales), so a block of rows is a flat run of groups. Same float64
// operations per value as quant/affine.ts quantizeInt and quant/codebook.ts quantizeCodebook (the
// references, test/quant/codec-kernel.test.ts): min/max per group here, the scale and zero point of
// each group on the host (quant/affine.ts intParams, quant/codebook.ts codebookScale: one definition),
// then the codes, unsigned as the packed containers store them, and optionally ŵ in f32. The
// rounding and the nearest level are the GPTQ grid kernels' (rtn-grid.ts), shared.
// Legend: nG groups of G values, x f32 [nG·G], scales f32 [nG], zeros u8 [nG], book f32 [L].

import { nearestBookLevel, roundMode } from './rtn-grid';

/** Least and greatest value of each group (stored as f64 [nG]). The host checked every value is finite. */
export function codecGroupMinMax(x: usize, nG: i32, G: i32, mins: usize, maxs: usize): void {
  for (let g = 0; g < nG; g++) {
    const p = x + (<usize>g * <usize>G << 2);
    let lo: f32 = load<f32>(p);
    let hi: f32 = lo;
    let j = 0;
    if (G >= 8) {
      // min/max of finite values do not depend on the order they are taken in
      let vlo = v128.load(p);
      let vhi = vlo;
      for (j = 4; j + 4 <= G; j += 4) {
        const v = v128.load(p + (<usize>j << 2));
        vlo = f32x4.min(vlo, v);
        vhi = f32x4.max(vhi, v);
      }
      lo = min<f32>(min<f32>(f32x4.extract_lane(vlo, 0), f32x4.extract_lane(vlo, 1)), min<f32>(f32x4.extract_lane(vlo, 2), f32x4.extract_lane(vlo, 3)));
      hi = max<f32>(max<f32>(f32x4.extract_lane(vhi, 0), f32x4.extract_lane(vhi, 1)), max<f32>(f32x4.extract_lane(vhi, 2), f32x4.extract_lane(vhi, 3)));
    }
    for (; j < G; j++) {
      const v = load<f32>(p + (<usize>j << 2));
      if (v < lo) lo = v;
      if (v > hi) hi = v;
    }
    store<f64>(mins + (<usize>g << 3), <f64>lo);
    store<f64>(maxs + (<usize>g << 3), <f64>hi);
  }
}

/**
 * q = clamp(round(x / s) + z, qmin, qmax) per value (z where s = 0), rounded half to even or, with
 * `away`, half away from zero; stored as the unsigned code q + off (off = 2^(b−1) for symmetric
 * grids, 0 otherwise). With `values` ≠ 0 also ŵ = f32(s·(q − z)).
 */
export function codecIntRows(x: usize, nG: i32, G: i32, scales: usize, zeros: usize, qmin: f64, qmax: f64, away: bool, off: i32, codes: usize, values: usize): void {
  const offF = <f64>off;
  for (let g = 0; g < nG; g++) {
    const s = <f64>load<f32>(scales + (<usize>g << 2));
    const z = <f64>load<u8>(zeros + <usize>g);
    const lo = qmin - z;
    const hi = qmax - z;
    const i0 = <usize>g * <usize>G;
    for (let j = 0; j < G; j++) {
      const i = i0 + <usize>j;
      let q = z;
      if (s != 0) {
        let t = <f64>load<f32>(x + (i << 2)) / s;
        t = t < lo ? lo : t > hi ? hi : t;
        q = roundMode(t, away) + z;
      }
      store<u8>(codes + i, <u8>(<i32>(q + offF)));
      if (values) store<f32>(values + (i << 2), <f32>(s * (q - z)));
    }
  }
}

/**
 * code = index of the level of `book` (L ascending f32 levels) nearest to v = x / s (0 where s = 0;
 * ties to the even index, the ends clamped, as quant/codebook.ts nearestLevel); with `values` ≠ 0
 * also ŵ = f32(s·book[code]).
 */
export function codecBookRows(x: usize, nG: i32, G: i32, scales: usize, book: usize, L: i32, codes: usize, values: usize): void {
  const bottom = <f64>load<f32>(book);
  const top = <f64>load<f32>(book + (<usize>(L - 1) << 2));
  for (let g = 0; g < nG; g++) {
    const s = <f64>load<f32>(scales + (<usize>g << 2));
    const i0 = <usize>g * <usize>G;
    for (let j = 0; j < G; j++) {
      const i = i0 + <usize>j;
      const v: f64 = s == 0 ? 0 : <f64>load<f32>(x + (i << 2)) / s;
      const q = nearestBookLevel(book, L, v, bottom, top);
      store<u8>(codes + i, <u8>q);
      if (values) store<f32>(values + (i << 2), <f32>(s * <f64>load<f32>(book + (<usize>q << 2))));
    }
  }
}
