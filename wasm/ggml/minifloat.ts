// Small-float encoding (FP8 E4M3/E5M2, FP4 E2M1, FP6) of scaled values, the kernel behind quant's
// float schemes (src/quant/float-formats.ts quantizeFloat; host side src/quant/minifloat-kernel.ts).
// The same arithmetic as src/numerics/minifloat.ts encodeMini with saturation: v = x / s in
// float64 (x and s are f32, as JavaScript divides them), then the largest positive value ≤ |v| by
// binary search over the format's positive values (float64 table from the host: code 0 … P, then
// the overflow boundary), ties to the even code, overflow to ±max. Bit-exact with the TypeScript
// by construction: the same comparisons on the same doubles.
// Legend: n values, runs of runLen values share scale scales[run % mod] (quant/layout.ts scaleLayout).

/**
 * Codes of n f32 values at x into n bytes at out. scales = 0: no scaling (plain cast); else a run
 * whose scale is 0 gets code 0. Returns −1, or the index of the first NaN when the format has no
 * NaN code (nanCode < 0; the host then lets the TypeScript path throw its error).
 */
export function encodeMiniRuns(x: usize, out: usize, n: i32, offset: f64, runLen: i32, scales: usize, mod: i32, pos: usize, P: i32, signBit: i32, nanCode: i32, mbits: i32, bias: i32): i32 {
  const over = load<f64>(pos + (<usize>(P + 1) << 3));
  // subnormal codes: a / 2^(1 − bias − mbits)
  const subScale = Math.pow(2, <f64>(bias - 1 + mbits));
  // x[0] is value `offset` of the tensor: its run, and the values left in that run
  let r = <i32>Math.floor(offset / <f64>runLen);
  let left = runLen - <i32>(offset - <f64>r * <f64>runLen);
  let s: f64 = scales ? <f64>load<f32>(scales + (<usize>(r % mod) << 2)) : 1.0;
  for (let i = 0; i < n; i++) {
    if (scales && left == 0) {
      r++;
      left = runLen;
      s = <f64>load<f32>(scales + (<usize>(r % mod) << 2));
    }
    left--;
    const w = <f64>load<f32>(x + (<usize>i << 2));
    let code: i32;
    if (scales && s == 0) code = 0;
    else {
      const v = scales ? w / s : w;
      const a = abs<f64>(v);
      if (a != a) {
        // NaN: the format's NaN without a sign (encodeMini's x < 0 is false for every NaN)
        if (nanCode < 0) return i;
        code = nanCode;
        store<u8>(out + <usize>i, <u8>code);
        continue;
      }
      // negative values and −0
      const sign = (reinterpret<u64>(v) >>> 63) != 0 ? signBit : 0;
      if (!(a < over)) {
        code = sign | P;
      } else {
        // the largest k with pos[k] ≤ a: the code a truncates to, read off its float64 bits (the
        // positive codes are ordered like their values), then corrected against the table, so
        // that the result is the binary search's whatever the estimate
        const bits = reinterpret<u64>(a);
        const E = <i32>((bits >>> 52) & 0x7ff) - 1023 + bias;
        let lo: i32 = E >= 1 ? (E << mbits) | <i32>((bits >>> <u64>(52 - mbits)) & <u64>((1 << mbits) - 1)) : <i32>Math.floor(a * subScale);
        if (lo > P) lo = P;
        if (lo < 0) lo = 0;
        while (lo < P && load<f64>(pos + (<usize>(lo + 1) << 3)) <= a) lo++;
        while (lo > 0 && load<f64>(pos + (<usize>lo << 3)) > a) lo--;
        const pl = load<f64>(pos + (<usize>lo << 3));
        const ph = load<f64>(pos + (<usize>(lo + 1) << 3));
        const dl = a - pl;
        const dh = ph - a;
        let k = lo;
        if (dh < dl || (dh == dl && (lo & 1) == 1)) k = lo + 1;
        if (k > P) k = P;
        code = sign | k;
      }
    }
    store<u8>(out + <usize>i, <u8>code);
  }
  return -1;
}
