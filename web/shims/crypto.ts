// `node:crypto` in the browser bundle: an incremental SHA-256 (manifests hash their inputs as a
// stream; WebCrypto's digest takes only whole buffers) and randomBytes over getRandomValues.
// SHA-256 as FIPS 180-4 specifies it; checked against node:crypto by test/web/shims.test.ts.
import { Buffer } from './buffer.js';

const K = new Uint32Array([
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
  0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
  0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
  0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
]);

export class Sha256 {
  private h = new Uint32Array([0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19]);
  private block = new Uint8Array(64);
  private fill = 0;
  private bytes = 0;
  private w = new Uint32Array(64);

  update(data: Uint8Array | string): this {
    const d = typeof data === 'string' ? new TextEncoder().encode(data) : data;
    this.bytes += d.length;
    let i = 0;
    if (this.fill) {
      const take = Math.min(64 - this.fill, d.length);
      this.block.set(d.subarray(0, take), this.fill);
      this.fill += take;
      i = take;
      if (this.fill === 64) {
        this.compress(this.block, 0);
        this.fill = 0;
      }
    }
    for (; i + 64 <= d.length; i += 64) this.compress(d, i);
    if (i < d.length) {
      this.block.set(d.subarray(i), 0);
      this.fill = d.length - i;
    }
    return this;
  }

  digest(enc?: 'hex'): string | Buffer {
    const bits = this.bytes * 8;
    const pad = new Uint8Array(((this.fill < 56 ? 56 : 120) - this.fill) + 8);
    pad[0] = 0x80;
    const dv = new DataView(pad.buffer);
    dv.setUint32(pad.length - 8, Math.floor(bits / 2 ** 32));
    dv.setUint32(pad.length - 4, bits >>> 0);
    this.update(pad);
    const out = new Buffer(32);
    const ov = new DataView(out.buffer);
    for (let j = 0; j < 8; j++) ov.setUint32(j * 4, this.h[j]);
    return enc === 'hex' ? out.toString('hex') : out;
  }

  private compress(d: Uint8Array, o: number): void {
    const w = this.w;
    for (let j = 0; j < 16; j++) w[j] = (d[o + 4 * j] << 24) | (d[o + 4 * j + 1] << 16) | (d[o + 4 * j + 2] << 8) | d[o + 4 * j + 3];
    for (let j = 16; j < 64; j++) {
      const a = w[j - 15];
      const b = w[j - 2];
      const s0 = ((a >>> 7) | (a << 25)) ^ ((a >>> 18) | (a << 14)) ^ (a >>> 3);
      const s1 = ((b >>> 17) | (b << 15)) ^ ((b >>> 19) | (b << 13)) ^ (b >>> 10);
      w[j] = (w[j - 16] + s0 + w[j - 7] + s1) | 0;
    }
    // eight plain int32 locals (`| 0`): a destructured array literal here allocated an array and
    // boxed numbers per 64-byte block, ≈ 1 GB of garbage for a 400 MB model's input hash (the job
    // worker's heap growth in the web bench's allocation profile)
    const H = this.h;
    let a = H[0] | 0, b = H[1] | 0, c = H[2] | 0, dd = H[3] | 0, e = H[4] | 0, f = H[5] | 0, g = H[6] | 0, h = H[7] | 0;
    for (let j = 0; j < 64; j++) {
      const S1 = ((e >>> 6) | (e << 26)) ^ ((e >>> 11) | (e << 21)) ^ ((e >>> 25) | (e << 7));
      const ch = (e & f) ^ (~e & g);
      const t1 = (h + S1 + ch + K[j] + w[j]) | 0;
      const S0 = ((a >>> 2) | (a << 30)) ^ ((a >>> 13) | (a << 19)) ^ ((a >>> 22) | (a << 10));
      const maj = (a & b) ^ (a & c) ^ (b & c);
      const t2 = (S0 + maj) | 0;
      h = g;
      g = f;
      f = e;
      e = (dd + t1) | 0;
      dd = c;
      c = b;
      b = a;
      a = (t1 + t2) | 0;
    }
    this.h[0] += a;
    this.h[1] += b;
    this.h[2] += c;
    this.h[3] += dd;
    this.h[4] += e;
    this.h[5] += f;
    this.h[6] += g;
    this.h[7] += h;
  }
}

export function createHash(alg: string): Sha256 {
  if (alg !== 'sha256') throw new Error(`hash ${alg} is not available in the browser build`);
  return new Sha256();
}

export function randomBytes(n: number): Buffer {
  const b = new Buffer(n);
  crypto.getRandomValues(b);
  return b;
}

export function randomUUID(): string {
  return crypto.randomUUID();
}

export default { createHash, randomBytes, randomUUID };
