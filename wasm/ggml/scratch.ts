// Static scratch memory of the K-quant kernels (one thread per module instance, so module-level
// buffers are safe): transposed groups, levels, scales. Sizes in bytes.

export const X = memory.data(2048, 16); // transposed values (up to 4 quads × 16 or 2 quads × 32 vectors)
export const Wt = memory.data(2048, 16); // transposed weights
export const Lt = memory.data(2048, 16); // transposed search levels (f32 lanes)
export const Laux = memory.data(512, 16);
export const SCALES = memory.data(64, 16); // f32[16]
export const MINS = memory.data(64, 16); // f32[16]
export const SW = memory.data(64, 16); // f32[16] group weight sums
export const SC = memory.data(16, 16); // u8[16] integer sub-scales
export const MN = memory.data(16, 16); // u8[16] integer mins
export const LB = memory.data(256, 16); // u8[256] codes
export const WROW = memory.data(1024, 16); // f32[256] per-value weights (imatrix paths)
export const SCI = memory.data(64, 16); // i32[16] integer sub-scales (Q2_K/Q3_K, before packing)
export const MNI = memory.data(64, 16); // i32[16]
export const LS = memory.data(16, 16); // u8[16] levels of a scalar fit

// @ts-ignore: decorator
@inline export function f32At(p: usize, i: i32): f32 {
  return load<f32>(p + (<usize>i << 2));
}
